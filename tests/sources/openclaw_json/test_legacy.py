"""Legacy inputs (store spec §8): credentials/oauth.json and an agent's auth.json become
``<provider>:default`` profiles; oauth.json is never changed, auth.json never created."""

from __future__ import annotations

import pytest

from sidecar.secret import Secret
from sidecar.sources.openclaw.model import ApiKeyCredential, OAuthCredential
from sidecar.sources.openclaw_json.legacy import (
    parse_legacy,
    profiles_from_auth_json,
    profiles_from_oauth_json,
)
from tests.sources.conftest import HOUR, NOW

OAUTH_JSON = {
    "openai-codex": {
        "access": "eyJ-l",
        "refresh": "rt_l",
        "expires": NOW + HOUR,
        "accountId": "acc",
    },
    "Anthropic": {"access": "sk-ant-oat01-l", "refresh": "sk-ant-ort01-l", "expires": NOW + HOUR},
    "broken": {"refresh": "only"},
    "junk": "x",
}
API_KEY = {"type": "api_key", "provider": "openai", "key": "sk-proj-1"}


def write_oauth_json(sd, folder=None):
    return sd.write((folder or sd.path / "credentials") / "oauth.json", OAUTH_JSON)


def test_profiles_from_oauth_json():
    """Each provider's entry becomes <provider>:default of type oauth, provider lowercased."""
    assert profiles_from_oauth_json(OAUTH_JSON) == {
        "openai-codex:default": {
            "type": "oauth",
            "provider": "openai-codex",
            "access": "eyJ-l",
            "refresh": "rt_l",
            "expires": NOW + HOUR,
            "accountId": "acc",
        },
        "anthropic:default": {
            "type": "oauth",
            "provider": "anthropic",
            "access": "sk-ant-oat01-l",
            "refresh": "sk-ant-ort01-l",
            "expires": NOW + HOUR,
        },
    }


def test_profiles_from_auth_json():
    """auth.json entries naming their provider become <provider>:default profiles; entries
    without a provider field are rejected, as OpenClaw 2026.6.1 does (the key is not used)."""
    doc = {
        "a": {"type": "api_key", "provider": "openai", "key": "sk-1"},
        "b": {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-t"},
        "c": {
            "type": "oauth",
            "provider": "openai-codex",
            "access": "a",
            "refresh": "r",
            "expires": 5,
        },
        "openrouter": {"type": "api_key", "key": "sk-no-provider"},
        "nothing": {"foo": 1},
    }
    assert profiles_from_auth_json(doc) == {
        "openai:default": {"type": "api_key", "provider": "openai", "key": "sk-1"},
        "anthropic:default": {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-t"},
        "openai-codex:default": {
            "type": "oauth",
            "provider": "openai-codex",
            "access": "a",
            "refresh": "r",
            "expires": 5,
        },
    }


@pytest.mark.parametrize("data", [None, b"", b"{", b"[1]", b"\xff"])
def test_unreadable_legacy_file_is_empty(data):
    """A legacy file that is missing or broken imports nothing (it is only an input)."""
    assert parse_legacy(data) == {}


def test_oauth_json_appears_in_mains_view(sd):
    """Without auth-profiles.json, oauth.json's entries are main's profiles."""
    write_oauth_json(sd)
    view = sd.store().view_sync("main")
    assert {pid: v.profile for pid, v in view.profiles.items()} == {
        "openai-codex:default": OAuthCredential(
            "openai-codex:default",
            "openai-codex",
            None,
            {},
            access=Secret("eyJ-l"),
            refresh=Secret("rt_l"),
            expires=NOW + HOUR,
            account_id="acc",
        ),
        "anthropic:default": OAuthCredential(
            "anthropic:default",
            "anthropic",
            None,
            {},
            access=Secret("sk-ant-oat01-l"),
            refresh=Secret("sk-ant-ort01-l"),
            expires=NOW + HOUR,
            account_id=None,
        ),
    }
    assert not sd.profiles_path().exists()


def test_oauth_json_is_inherited_not_copied(sd):
    """Agent W sees main's imported profiles, owned by main."""
    write_oauth_json(sd)
    view = sd.store().view_sync("w")
    assert {pid: v.owner for pid, v in view.profiles.items()} == {
        "openai-codex:default": "main",
        "anthropic:default": "main",
    }


def test_oauth_dir_override(sd, tmp_path):
    """$OPENCLAW_OAUTH_DIR is where oauth.json is looked for."""
    from sidecar.sources.openclaw.layout import Layout
    from sidecar.sources.openclaw_json.store import JsonStore

    write_oauth_json(sd, tmp_path / "oauth-elsewhere")
    environ = {**sd.environ, "OPENCLAW_OAUTH_DIR": str(tmp_path / "oauth-elsewhere")}
    store = JsonStore(Layout.from_env(environ), home=sd.home, clock=sd.clock)
    assert sorted(store.view_sync("main").profiles) == ["anthropic:default", "openai-codex:default"]


def test_oauth_json_ignored_when_a_store_exists(sd):
    """An existing auth-profiles.json is the store; oauth.json is not merged in."""
    write_oauth_json(sd)
    sd.write_profiles("main", {"openai:manual": API_KEY})
    assert list(sd.store().view_sync("main").profiles) == ["openai:manual"]


def test_first_write_imports_oauth_json_and_leaves_it_unchanged(sd):
    """The new store holds the imported profiles plus the new one; oauth.json keeps its bytes."""
    legacy = write_oauth_json(sd)
    before = legacy.read_bytes()
    path = sd.store().put_profile_sync("main", "openai:manual", API_KEY)
    assert (list(sd.load(path)["profiles"]), legacy.read_bytes()) == (
        ["openai-codex:default", "anthropic:default", "openai:manual"],
        before,
    )


@pytest.mark.anyio
async def test_refresh_of_imported_profile_writes_a_store_and_keeps_oauth_json(sd):
    """Refreshing an imported profile creates auth-profiles.json; oauth.json is untouched."""
    legacy = sd.write(
        sd.path / "credentials" / "oauth.json",
        {"openai-codex": {"access": "old", "refresh": "rt_old", "expires": NOW - 1}},
    )
    before = legacy.read_bytes()

    async def exchange(credential):
        return {"access": "new", "refresh": "rt_new", "expires": NOW + HOUR}

    await sd.store().refresh("main", "openai-codex:default", exchange)
    assert (sd.load(sd.profiles_path())["profiles"], legacy.read_bytes()) == (
        {
            "openai-codex:default": {
                "type": "oauth",
                "provider": "openai-codex",
                "access": "new",
                "refresh": "rt_new",
                "expires": NOW + HOUR,
            }
        },
        before,
    )


@pytest.mark.parametrize("agent", ["main", "w"])
def test_auth_json_is_imported_then_deleted_on_the_first_write(sd, agent):
    """An agent's auth.json shows in its view, then moves into auth-profiles.json and goes."""
    auth = sd.write(
        sd.agent_dir(agent) / "auth.json",
        {"openai": {"type": "api_key", "provider": "openai", "key": "sk-l"}},
    )
    store = sd.store()
    view = store.view_sync(agent)
    assert (view.get("openai:default").profile, view.get("openai:default").owner) == (
        ApiKeyCredential("openai:default", "openai", None, {}, key=Secret("sk-l"), key_ref=None),
        agent,
    )
    store.put_profile_sync(agent, "anthropic:work", {"type": "token", "provider": "anthropic"})
    assert (sd.load(sd.profiles_path(agent))["profiles"], auth.exists()) == (
        {
            "openai:default": {"type": "api_key", "provider": "openai", "key": "sk-l"},
            "anthropic:work": {"type": "token", "provider": "anthropic"},
        },
        False,
    )


def test_auth_json_ignored_when_a_store_exists(sd):
    """With auth-profiles.json present, auth.json is neither read nor deleted."""
    sd.write_profiles("main", {"openai:manual": API_KEY})
    auth = sd.write(sd.agent_dir() / "auth.json", {"anthropic": {"type": "api_key", "key": "k"}})
    store = sd.store()
    assert list(store.view_sync("main").profiles) == ["openai:manual"]
    store.put_profile_sync("main", "openai:b", API_KEY)
    assert auth.exists()


@pytest.mark.anyio
async def test_auth_json_is_never_created(sd):
    """No read, write or refresh of any agent leaves an auth.json behind."""
    sd.write_profiles(
        "main",
        {
            "c:x": {
                "type": "oauth",
                "provider": "c",
                "access": "a",
                "refresh": "r",
                "expires": NOW - 1,
            }
        },
    )
    store = sd.store()
    store.view_sync("w")
    store.put_profile_sync("w", "openai:w", API_KEY)
    store.update_state_sync("w", lambda s: s)
    store.put_profile_sync("main", "openai:m", API_KEY)

    async def exchange(credential):
        return {"access": "a2", "expires": NOW + HOUR}

    await store.refresh("w", "c:x", exchange)
    assert list(sd.path.rglob("auth.json")) == []
