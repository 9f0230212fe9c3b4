"""The JSON store as a credential source: state (§4), inheritance (§7), refresh (§6), corrupt
stores (§8) and a cache that notices other writers."""

from __future__ import annotations

import dataclasses
import json
import os

import anyio
import pytest

from sidecar.errors import NoProfile, StoreError, StoreReadOnly
from sidecar.secret import Secret
from sidecar.sources.openclaw.model import (
    AuthState,
    OAuthCredential,
    SecretRef,
    TokenCredential,
    UsageStats,
)
from sidecar.sources.openclaw_json import store as jsonstore
from tests.sources.conftest import HOUR, NOW

CODEX = "openai-codex:alice@example.com"
API_KEY = {"type": "api_key", "provider": "openai", "key": "sk-proj-1"}
STATE = {
    "order": {"anthropic": ["anthropic:work", "anthropic:default"]},
    "lastGood": {"anthropic": "anthropic:work"},
    "usageStats": {"anthropic:work": {"lastUsed": NOW - HOUR, "errorCount": 0}},
}


def files_of(path):
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


# --- §4 state --------------------------------------------------------------------------------


def test_era_a_b_inline_state_is_read(sd):
    """order/lastGood/usageStats inside auth-profiles.json are the agent's state."""
    sd.write_profiles(
        "main", {"anthropic:work": {"type": "token", "provider": "anthropic"}}, **STATE
    )
    state = sd.store().view_sync("main").state
    assert (dict(state.order), dict(state.last_good), dict(state.usage)) == (
        {"anthropic": ("anthropic:work", "anthropic:default")},
        {"anthropic": "anthropic:work"},
        {"anthropic:work": UsageStats(last_used=NOW - HOUR)},
    )


def test_auth_state_json_wins_per_key(sd):
    """Where both exist, auth-state.json's keys override the inline ones; others stay."""
    sd.write_profiles("main", {}, **STATE)
    sd.write_state("main", order={"anthropic": ["anthropic:default"]})
    state = sd.store().view_sync("main").state
    assert (dict(state.order), dict(state.last_good), list(state.usage)) == (
        {"anthropic": ("anthropic:default",)},
        {"anthropic": "anthropic:work"},
        ["anthropic:work"],
    )


def mark_good(state):
    return dataclasses.replace(state, last_good={**state.last_good, "openai": "openai:manual"})


def test_rewriting_an_inline_store_keeps_state_inline(sd):
    """An era-A/B store gets its new state inline, and no auth-state.json is created."""
    path = sd.write_profiles("main", {"openai:manual": API_KEY}, **STATE)
    sd.store().update_state_sync("main", mark_good)
    want = {
        "version": 1,
        "profiles": {"openai:manual": API_KEY},
        **STATE,
        "lastGood": {"anthropic": "anthropic:work", "openai": "openai:manual"},
    }
    assert (sd.load(path), files_of(sd.agent_dir())) == (want, ["auth-profiles.json"])


def test_state_update_in_era_c_writes_auth_state_only(sd):
    """An era-C store's state goes to auth-state.json; auth-profiles.json keeps its bytes."""
    path = sd.write_profiles("main", {"openai:manual": API_KEY})
    before = path.read_bytes()
    sd.store().update_state_sync("main", mark_good)
    assert (path.read_bytes(), sd.state_path().read_bytes()) == (
        before,
        sd.dump({"version": 1, "lastGood": {"openai": "openai:manual"}}),
    )


def test_auth_state_json_is_deleted_when_empty(sd):
    """Clearing every key removes auth-state.json instead of writing an empty one."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    sd.write_state("main", lastGood={"openai": "openai:manual"})
    sd.store().update_state_sync("main", lambda s: dataclasses.replace(s, last_good={}))
    assert files_of(sd.agent_dir()) == ["auth-profiles.json"]


@pytest.mark.anyio
async def test_async_update_state_keeps_unknown_usage_fields(sd):
    """update_state merges into the stored state; fields it does not name survive."""
    sd.write_profiles("main", {"anthropic:work": {"type": "token", "provider": "anthropic"}})
    sd.write_state(
        "main", usageStats={"anthropic:work": {"lastUsed": 1, "failureCounts": {"auth": 2}}}
    )

    def used(state):
        usage = state.usage["anthropic:work"]
        raw = {**usage.raw, "lastUsed": NOW}
        return dataclasses.replace(
            state, usage={"anthropic:work": dataclasses.replace(usage, raw=raw)}
        )

    await sd.store().update_state("main", used)
    assert sd.load(sd.state_path()) == {
        "version": 1,
        "usageStats": {"anthropic:work": {"lastUsed": NOW, "failureCounts": {"auth": 2}}},
    }


# --- §7 inheritance --------------------------------------------------------------------------


def owners(view):
    return {pid: (v.owner, v.origin) for pid, v in view.profiles.items()}


def test_view_is_main_union_own_with_own_winning(sd):
    """Agent W sees main's profiles and its own; on the same id W's copy wins."""
    sd.write_profiles(
        "main",
        {
            "openai:manual": API_KEY,
            "anthropic:work": {"type": "token", "provider": "anthropic", "token": "main-t"},
        },
    )
    sd.write_profiles(
        "w", {"anthropic:work": {"type": "token", "provider": "anthropic", "token": "w-t"}}
    )
    view = sd.store().view_sync("w")
    assert owners(view) == {
        "openai:manual": ("main", sd.profiles_path("main")),
        "anthropic:work": ("w", sd.profiles_path("w")),
    }
    assert view.get("anthropic:work").profile.token == Secret("w-t")


def test_agent_without_store_reads_main_and_copies_nothing(sd):
    """An agent with no files of its own sees main's profiles; nothing is written for it."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    assert owners(sd.store().view_sync("w")) == {"openai:manual": ("main", sd.profiles_path())}
    assert not (sd.path / "agents" / "w").exists()


def test_main_does_not_inherit_from_other_agents(sd):
    """main's view holds only main's profiles."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    sd.write_profiles("w", {"openai:w": API_KEY})
    assert list(sd.store().view_sync("main").profiles) == ["openai:manual"]


def test_expired_own_copy_loses_to_fresher_main_copy(sd):
    """W's expired OAuth copy is replaced in the view by main's usable one, owned by main."""
    sd.write_profiles("main", {CODEX: sd.oauth("main-a", "main-r", NOW + HOUR)})
    sd.write_profiles("w", {CODEX: sd.oauth("w-a", "w-r", NOW - HOUR)})
    view = sd.store().view_sync("w").get(CODEX)
    assert (view.owner, view.profile.access) == ("main", Secret("main-a"))


def test_usable_own_copy_wins_over_main(sd):
    """W's copy wins while it is usable, even if main's expires later."""
    sd.write_profiles("main", {CODEX: sd.oauth("main-a", "main-r", NOW + 2 * HOUR)})
    sd.write_profiles("w", {CODEX: sd.oauth("w-a", "w-r", NOW + HOUR)})
    assert sd.store().view_sync("w").get(CODEX).owner == "w"


def test_state_is_merged_per_key(sd):
    """W's order/lastGood/usageStats override main's per provider / profile."""
    sd.write_profiles("main", {})
    sd.write_state(
        "main", order={"anthropic": ["a:1"], "openai": ["o:1"]}, lastGood={"openai": "o:1"}
    )
    sd.write_profiles("w", {})
    sd.write_state("w", order={"anthropic": ["a:2"]})
    state = sd.store().view_sync("w").state
    assert (dict(state.order), dict(state.last_good)) == (
        {"anthropic": ("a:2",), "openai": ("o:1",)},
        {"openai": "o:1"},
    )


def test_put_profile_for_agent_creates_its_own_store_with_only_its_profile(sd):
    """A login for W creates W's store holding W's profile alone; main's file is unchanged."""
    main = sd.write_profiles("main", {"openai:manual": API_KEY})
    before = main.read_bytes()
    fields = {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-w"}
    path = sd.store().put_profile_sync("w", "anthropic:work", fields)
    assert (path, sd.load(path), main.read_bytes()) == (
        sd.profiles_path("w"),
        {"version": 1, "profiles": {"anthropic:work": fields}},
        before,
    )


@pytest.mark.anyio
async def test_async_put_profile_keeps_other_profiles(sd, umask):
    """put_profile adds to the existing store; the file stays 0600."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    path = await sd.store().put_profile("main", "openai:b", API_KEY)
    assert (sd.load(path)["profiles"], oct(os.stat(path).st_mode & 0o777)) == (
        {"openai:manual": API_KEY, "openai:b": API_KEY},
        "0o600",
    )


def test_new_agent_folders_are_private(sd, umask):
    """Folders created for a new agent's store are 0700."""
    sd.store().put_profile_sync("w", "openai:w", API_KEY)
    modes = [oct(os.stat(p).st_mode & 0o777) for p in (sd.agent_dir("w").parent, sd.agent_dir("w"))]
    assert modes == ["0o700", "0o700"]


def test_agents_lists_main_first(sd):
    """agents(): main first, then the configured and the on-disk agents, sorted."""
    sd.write_config({"agents": {"list": [{"id": "zed"}, {"id": "Bad Id"}]}})
    sd.write_profiles("alpha", {})
    (sd.path / "agents" / "..hidden").mkdir()
    assert sd.store().agents() == ["main", "alpha", "zed"]


# --- corrupt stores --------------------------------------------------------------------------

CORRUPT = {
    "truncated": b'{\n  "version": 1,\n  "profiles": {\n    "openai:manual": {\n      "ty',
    "garbage": b"\x00\x9f\x92\x96\xff binary \x00",
    "array": b'[{"version": 1, "profiles": {}}]\n',
    "profiles-not-object": b'{"version": 1, "profiles": ["openai:manual"]}\n',
}


@pytest.mark.parametrize("data", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_store_is_reported_and_never_overwritten(sd, monkeypatch, data):
    """Reads raise StoreError naming the file after retrying; writes leave its bytes alone."""
    retries: list[float] = []
    monkeypatch.setattr(jsonstore.time, "sleep", retries.append)
    path = sd.write(sd.profiles_path(), data)
    store = sd.store()
    attempts = [
        lambda: store.view_sync("main"),
        lambda: store.view_sync("w"),
        lambda: store.put_profile_sync("main", "openai:new", API_KEY),
        lambda: store.update_state_sync("main", mark_good),
    ]
    for attempt in attempts:
        with pytest.raises(StoreError) as info:
            attempt()
        assert str(path) in info.value.message
    assert (path.read_bytes(), files_of(sd.agent_dir()), len(retries) >= len(attempts)) == (
        data,
        ["auth-profiles.json"],
        True,
    )


def test_corrupt_auth_state_json_is_not_overwritten(sd, monkeypatch):
    """A broken auth-state.json is reported, not replaced."""
    monkeypatch.setattr(jsonstore.time, "sleep", lambda s: None)
    sd.write_profiles("main", {"openai:manual": API_KEY})
    path = sd.write(sd.state_path(), b'{"version": 1, "order": ')
    with pytest.raises(StoreError):
        sd.store().update_state_sync("main", mark_good)
    assert path.read_bytes() == b'{"version": 1, "order": '


def test_store_mid_write_is_read_after_a_retry(sd, monkeypatch):
    """A file OpenClaw is still writing (eras A/B) is read again, and the finished one is used."""
    path = sd.write(sd.profiles_path(), CORRUPT["truncated"])
    finished = sd.dump({"version": 1, "profiles": {"openai:manual": API_KEY}})
    monkeypatch.setattr(jsonstore.time, "sleep", lambda s: path.write_bytes(finished))
    assert list(sd.store().view_sync("main").profiles) == ["openai:manual"]


# --- cache -----------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["other-store", "raw-file"])
def test_view_notices_another_writer(sd, writer):
    """A file changed by someone else shows up in the next view without a restart."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    store = sd.store()
    assert list(store.view_sync("w").profiles) == ["openai:manual"]
    if writer == "other-store":
        sd.store().put_profile_sync("main", "openai:b", API_KEY)
    else:
        sd.write_profiles("main", {"openai:manual": API_KEY, "openai:b": API_KEY})
    assert list(store.view_sync("w").profiles) == ["openai:manual", "openai:b"]


@pytest.mark.anyio
async def test_async_view_notices_a_new_own_store(sd):
    """An agent that gains its own store is seen through the async view too."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    store = sd.store()
    assert owners(await store.view("w")) == {"openai:manual": ("main", sd.profiles_path())}
    sd.write_profiles("w", {"openai:manual": API_KEY})
    assert owners(await store.view("w")) == {"openai:manual": ("w", sd.profiles_path("w"))}


def test_view_resolves_nothing_and_shows_refs(sd):
    """A profile with a SecretRef is listed with its ref; the view does not run resolvers."""
    sd.write_profiles(
        "main", {"anthropic:t": {"type": "token", "provider": "anthropic", "token": "${CLAUDE}"}}
    )
    profile = sd.store().view_sync("main").get("anthropic:t").profile
    assert profile == TokenCredential(
        "anthropic:t",
        "anthropic",
        None,
        {},
        token=None,
        token_ref=SecretRef("env", "default", "CLAUDE"),
        expires=None,
    )


# --- read-only -------------------------------------------------------------------------------


def test_put_profile_into_read_only_store_is_store_read_only(sd, monkeypatch):
    """A store folder that refuses new files (read-only mount) is StoreReadOnly, file unchanged."""
    import errno

    path = sd.write_profiles("main", {"openai:manual": API_KEY})
    before = path.read_bytes()
    real_open = os.open

    def open_(p, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(p))
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(StoreReadOnly):
        sd.store().put_profile_sync("main", "openai:b", API_KEY)
    monkeypatch.undo()
    assert path.read_bytes() == before


# --- §6 refresh ------------------------------------------------------------------------------


class Exchange:
    """A fake token endpoint: counts calls, returns new fields, or runs ``side`` and raises."""

    def __init__(self, result=None, *, side=None, error=None):
        self.calls: list[OAuthCredential] = []
        self.result = result if result is not None else {}
        self.side = side
        self.error = error

    async def __call__(self, credential):
        self.calls.append(credential)
        if self.side is not None:
            self.side(credential)
        if self.error is not None:
            raise self.error
        return self.result


NEW = {"access": "eyJ-new", "refresh": "rt_new", "expires": NOW + HOUR}


def main_with_expired_codex(sd, **extra):
    return sd.write_profiles(
        "main",
        {
            CODEX: sd.oauth(
                "eyJ-old",
                "rt_old",
                NOW - 1,
                email="alice@example.com",
                accountId="acc-1",
                futureField=[1],
            ),
            "openai:manual": API_KEY,
            **extra,
        },
    )


@pytest.mark.anyio
async def test_refresh_of_inherited_profile_writes_mains_store(sd):
    """W's refresh of main's profile merges the new fields into main's file; W gets no file."""
    main = main_with_expired_codex(sd)
    state = sd.write_state("main", lastGood={"openai-codex": CODEX})
    state_before = state.read_bytes()
    exchange = Exchange(NEW)
    got = await sd.store().refresh("w", CODEX, exchange)
    assert (len(exchange.calls), exchange.calls[0].refresh, got) == (
        1,
        Secret("rt_old"),
        OAuthCredential(
            CODEX,
            "openai-codex",
            "alice@example.com",
            {},
            access=Secret("eyJ-new"),
            refresh=Secret("rt_new"),
            expires=NOW + HOUR,
            account_id="acc-1",
        ),
    )
    assert sd.load(main) == {
        "version": 1,
        "profiles": {
            CODEX: sd.oauth(
                "eyJ-new",
                "rt_new",
                NOW + HOUR,
                email="alice@example.com",
                accountId="acc-1",
                futureField=[1],
            ),
            "openai:manual": API_KEY,
        },
    }
    assert (state.read_bytes(), (sd.path / "agents" / "w").exists()) == (state_before, False)
    assert files_of(sd.path / "locks" / "oauth-refresh") == []
    assert files_of(sd.agent_dir()) == ["auth-profiles.json", "auth-state.json"]


@pytest.mark.anyio
async def test_refresh_holds_both_locks_around_the_exchange(sd):
    """During the token call the refresh lock and the owner's store lock are held by us."""
    main_with_expired_codex(sd)
    seen = {}

    def look(credential):
        for name, path in [
            ("refresh", sd.layout.refresh_lock_path("openai-codex", CODEX)),
            ("store", sd.agent_dir() / "auth-profiles.json.lock"),
        ]:
            seen[name] = json.loads(path.read_bytes())["pid"] if path.exists() else None

    await sd.store().refresh("w", CODEX, Exchange(NEW, side=look))
    assert seen == {"refresh": os.getpid(), "store": os.getpid()}


@pytest.mark.anyio
async def test_refresh_adopts_a_usable_credential_without_calling(sd):
    """If the stored credential is already usable (someone refreshed), no call is made."""
    path = sd.write_profiles("main", {CODEX: sd.oauth("eyJ-fresh", "rt_f", NOW + HOUR)})
    before = path.read_bytes()
    exchange = Exchange(NEW)
    got = await sd.store().refresh("main", CODEX, exchange)
    assert (exchange.calls, got.access, path.read_bytes()) == ([], Secret("eyJ-fresh"), before)


@pytest.mark.anyio
async def test_refresh_adopts_when_the_rejected_token_was_already_replaced(sd):
    """rejected_access naming an older token: the stored one is newer, so it is used."""
    sd.write_profiles("main", {CODEX: sd.oauth("eyJ-fresh", "rt_f", NOW + HOUR)})
    exchange = Exchange(NEW)
    got = await sd.store().refresh("main", CODEX, exchange, rejected_access="eyJ-older")
    assert (exchange.calls, got.access) == ([], Secret("eyJ-fresh"))


@pytest.mark.anyio
async def test_rejected_access_forces_a_refresh(sd):
    """A usable-looking token the upstream rejected is refreshed anyway."""
    path = sd.write_profiles("main", {CODEX: sd.oauth("eyJ-fresh", "rt_f", NOW + HOUR)})
    exchange = Exchange(NEW)
    got = await sd.store().refresh("main", CODEX, exchange, rejected_access="eyJ-fresh")
    assert (len(exchange.calls), got.access, sd.load(path)["profiles"][CODEX]["refresh"]) == (
        1,
        Secret("eyJ-new"),
        "rt_new",
    )


@pytest.mark.anyio
async def test_refresh_merge_keeps_fields_the_provider_did_not_return(sd):
    """A response without a new refresh token keeps the stored one and every other field."""
    path = main_with_expired_codex(sd)
    await sd.store().refresh("main", CODEX, Exchange({"access": "eyJ-2", "expires": NOW + HOUR}))
    assert sd.load(path)["profiles"][CODEX] == sd.oauth(
        "eyJ-2", "rt_old", NOW + HOUR, email="alice@example.com", accountId="acc-1", futureField=[1]
    )


@pytest.mark.anyio
async def test_failed_exchange_leaves_the_store_unchanged(sd):
    """An exchange that raises writes nothing and the error reaches the caller."""
    path = main_with_expired_codex(sd)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="token endpoint down"):
        await sd.store().refresh("main", CODEX, Exchange(error=RuntimeError("token endpoint down")))
    assert (path.read_bytes(), files_of(sd.agent_dir())) == (before, ["auth-profiles.json"])


@pytest.mark.anyio
async def test_failed_exchange_adopts_a_credential_rotated_meanwhile(sd):
    """If someone else rotated the token during our failed call, their fresh one is used."""
    path = main_with_expired_codex(sd)
    rotated = sd.oauth("eyJ-theirs", "rt_theirs", NOW + HOUR)

    def rotate(credential):
        sd.write_profiles("main", {CODEX: rotated, "openai:manual": API_KEY})

    exchange = Exchange(side=rotate, error=RuntimeError("refresh_token_reused"))
    got = await sd.store().refresh("main", CODEX, exchange)
    assert (len(exchange.calls), got.access, got.refresh, sd.load(path)["profiles"][CODEX]) == (
        1,
        Secret("eyJ-theirs"),
        Secret("rt_theirs"),
        rotated,
    )


@pytest.mark.anyio
async def test_concurrent_refreshes_in_one_process_call_once(sd):
    """Two tasks refreshing the same profile: one token call, both get the new credential."""
    main_with_expired_codex(sd)
    store = sd.store()
    exchange = Exchange(NEW)
    results = []

    async def one():
        results.append(await store.refresh("w", CODEX, exchange))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    assert (len(exchange.calls), [r.access for r in results]) == (
        1,
        [Secret("eyJ-new"), Secret("eyJ-new")],
    )


@pytest.mark.anyio
async def test_refresh_of_own_copy_writes_own_store(sd):
    """A profile W holds itself is refreshed in W's file; main's copy is untouched."""
    main = sd.write_profiles("main", {CODEX: sd.oauth("m-a", "m-r", NOW - HOUR)})
    main_before = main.read_bytes()
    own = sd.write_profiles("w", {CODEX: sd.oauth("w-a", "w-r", NOW - 1)})
    await sd.store().refresh("w", CODEX, Exchange(NEW))
    assert (sd.load(own)["profiles"][CODEX]["refresh"], main.read_bytes()) == (
        "rt_new",
        main_before,
    )


@pytest.mark.anyio
async def test_refresh_of_an_inline_store_keeps_its_state_inline(sd):
    """Refreshing in an era-A/B file keeps order/lastGood/usageStats in it, unchanged."""
    path = sd.write_profiles("main", {CODEX: sd.oauth("a", "r", NOW - 1)}, **STATE)
    await sd.store().refresh("main", CODEX, Exchange(NEW))
    assert sd.load(path) == {
        "version": 1,
        "profiles": {CODEX: sd.oauth("eyJ-new", "rt_new", NOW + HOUR)},
        **STATE,
    }
    assert files_of(sd.agent_dir()) == ["auth-profiles.json"]


@pytest.mark.parametrize("pid", ["openai:manual", "nope:missing"])
@pytest.mark.anyio
async def test_refresh_of_a_non_oauth_profile_is_no_profile(sd, pid):
    """Only OAuth profiles are refreshed."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    with pytest.raises(NoProfile):
        await sd.store().refresh("main", pid, Exchange(NEW))


def test_an_inline_store_emptied_of_state_keeps_its_shape(sd):
    """Era A/B: clearing every state key leaves them inline (empty), so a later update still
    writes inline and never creates auth-state.json."""
    sd.write_profiles(
        "main",
        {"openai:a": {"type": "api_key", "provider": "openai", "key": "k"}},
        order={"openai": ["openai:a"]},
    )
    store = sd.store()
    store.update_state_sync("main", lambda state: AuthState())
    store.update_state_sync("main", lambda state: AuthState(last_good={"openai": "openai:a"}))
    doc = sd.load(sd.profiles_path("main"))
    assert (doc["order"], doc["lastGood"], sd.state_path("main").exists()) == (
        {},
        {"openai": "openai:a"},
        False,
    )


def test_an_agents_expired_copy_gives_way_to_mains_without_a_file_change(sd):
    """The cached view is merged again once the agent's own OAuth copy stops being usable, so
    main's fresher copy takes over although no file changed (store spec §7)."""

    def oauth(access, expires):
        return {
            "type": "oauth",
            "provider": "openai-codex",
            "access": access,
            "refresh": "r",
            "expires": expires,
        }

    sd.write_profiles("main", {"c:x": oauth("main-copy", NOW + 10 * HOUR)})
    sd.write_profiles("w", {"c:x": oauth("own-copy", NOW + HOUR)})
    store = sd.store(check_interval_s=3600)
    assert store.view_sync("w").get("c:x").owner == "w"
    sd.now = NOW + HOUR
    assert (store.view_sync("w").get("c:x").owner, store.view_sync("w").get("c:x").origin) == (
        "main",
        sd.profiles_path("main"),
    )


def test_a_usage_write_to_one_agent_does_not_reparse_the_others(sd, monkeypatch):
    """After a state write, only the store whose files changed is parsed again."""
    for agent in ("main", "a", "b"):
        sd.write_profiles(
            agent, {f"{agent}:k": {"type": "api_key", "provider": "openai", "key": "k"}}
        )
    store = sd.store()
    for agent in ("main", "a", "b"):
        store.view_sync(agent)
    parsed: list[str] = []
    real = store.snapshot
    monkeypatch.setattr(store, "snapshot", lambda agent: parsed.append(agent) or real(agent))
    store.update_state_sync("a", lambda state: state)
    sd.write_state("a", lastGood={"openai": "a:k"})
    for agent in ("main", "a", "b"):
        store.view_sync(agent)
    assert parsed == ["a"]
