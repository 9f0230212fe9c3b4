"""OpenClaw's SQLite store (era D) as a credential source, on real SQLite files with the exact
auth tables 2026.9.6 creates (``sqlite3 <db> .schema``): reading, inheritance, writing, newer
schemas, change detection, the fence refresh protocol and recovery after a kill."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from sidecar.errors import (
    NoProfile,
    ReauthRequired,
    RefreshUnavailable,
    StoreReadOnly,
    StoreUnsupported,
)
from sidecar.sources import choice as sources
from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import AuthState, OAuthCredential
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.sources.openclaw_sqlite import claims, fence
from sidecar.sources.openclaw_sqlite.store import SqliteStore
from tests.sources.conftest import HOUR, NOW

# Verbatim from databases the real 2026.9.6 CLI created.
AGENT_SCHEMA = """
CREATE TABLE auth_profile_store (
  store_key TEXT NOT NULL PRIMARY KEY,
  store_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE auth_profile_state (
  state_key TEXT NOT NULL PRIMARY KEY,
  state_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
"""
STATE_SCHEMA = """
CREATE TABLE config_machine_state (
      state_key TEXT NOT NULL PRIMARY KEY,
      value_json TEXT NOT NULL,
      updated_at_ms INTEGER NOT NULL
    ) STRICT;
"""
PROFILE = "anthropic:default"
TOKEN = {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-main"}
KEY = {"type": "api_key", "provider": "openai", "key": "sk-work"}


def compact(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class Db:
    """A state dir laid out as 2026.9.6 lays it out, and raw access to its rows."""

    def __init__(self, sd: Any) -> None:
        self.sd = sd
        self.state_db = sd.path / "state" / "openclaw.sqlite"

    def agent_db(self, agent: str) -> Path:
        return Path(self.sd.agent_dir(agent)) / "openclaw-agent.sqlite"

    @staticmethod
    def create(path: Path, schema: str, version: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
            conn.execute(f"PRAGMA user_version={version}")
        return path

    def shared(
        self, profiles: dict[str, Any] | None = None, version: int = 18, **state: Any
    ) -> None:
        self.create(self.state_db, STATE_SCHEMA, version)
        self.put(self.state_db, "auth.sharedStore", {"location": "state-db"})
        if profiles is not None:
            self.put(self.state_db, "authProfiles.store", {"version": 1, "profiles": profiles})
        if state:
            self.put(self.state_db, "authProfiles.state", {"version": 1, **state})

    def agent(
        self, agent: str, profiles: dict[str, Any] | None = None, version: int = 23, **state: Any
    ) -> Path:
        path = self.create(self.agent_db(agent), AGENT_SCHEMA, version)
        if profiles is not None:
            self.put(path, "primary", {"version": 1, "profiles": profiles})
        if state:
            self.put(path, "primary", {"version": 1, **state}, table="auth_profile_state")
        return path

    def put(self, path: Path, key: str, doc: Any, table: str | None = None, at: int = NOW) -> None:
        table = table or ("config_machine_state" if path == self.state_db else "auth_profile_store")
        cols = {
            "config_machine_state": ("state_key", "value_json", "updated_at_ms"),
            "auth_profile_store": ("store_key", "store_json", "updated_at"),
            "auth_profile_state": ("state_key", "state_json", "updated_at"),
        }[table]
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(
                f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES (?, ?, ?)",  # noqa: S608
                (key, compact(doc), at),
            )

    def cell(self, path: Path, table: str = "", key: str = "") -> tuple[str, int] | None:
        shared = path == self.state_db
        table = table or ("config_machine_state" if shared else "auth_profile_store")
        key = key or ("authProfiles.store" if shared else "primary")
        value, when = {
            "config_machine_state": ("value_json", "updated_at_ms"),
            "auth_profile_store": ("store_json", "updated_at"),
            "auth_profile_state": ("state_json", "updated_at"),
        }[table]
        first = "state_key" if table != "auth_profile_store" else "store_key"
        with contextlib.closing(sqlite3.connect(path)) as conn:
            row = conn.execute(
                f"SELECT {value}, {when} FROM {table} WHERE {first} = ?",  # noqa: S608
                (key,),
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def profiles(self, path: Path) -> dict[str, Any]:
        cell = self.cell(path)
        assert cell is not None
        result: dict[str, Any] = json.loads(cell[0])["profiles"]
        return result

    def store(self, **kwargs: Any) -> SqliteStore:
        kwargs.setdefault("check_interval_s", 0)
        kwargs.setdefault("poll_s", 0.01)
        return SqliteStore(self.sd.layout, home=self.sd.home, clock=self.sd.clock, **kwargs)


@pytest.fixture
def db(sd: Any) -> Db:
    return Db(sd)


def oauth(access: str, refresh: str, expires: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": "anthropic",
        "access": access,
        "refresh": refresh,
        "expires": expires,
        "email": "me@example.com",
        **extra,
    }


# --- reading and inheritance ---------------------------------------------------------------------


def test_shared_store_and_agent_inherit(db: Db) -> None:
    """main = the state DB's authProfiles.store; work = main's ∪ its own, work winning."""
    db.shared({"anthropic:work": TOKEN}, order={"anthropic": ["anthropic:work"]})
    db.agent("work", {"openai:manual": KEY})
    store = db.store()
    main, work = store.view_sync("main"), store.view_sync("work")
    assert (sorted(main.profiles), main.era) == (["anthropic:work"], Era.SQLITE)
    assert sorted(work.profiles) == ["anthropic:work", "openai:manual"]
    assert (work.profiles["anthropic:work"].owner, work.profiles["openai:manual"].owner) == (
        "main",
        "work",
    )
    assert (work.profiles["anthropic:work"].origin, work.profiles["openai:manual"].origin) == (
        db.state_db,
        db.agent_db("work"),
    )
    assert dict(work.state.order) == {"anthropic": ("anthropic:work",)}


def test_legacy_main_store_without_shared_row(db: Db) -> None:
    """2026.6.5-8.x: no auth.sharedStore row, main's own agent DB is the shared store."""
    db.agent("main", {"anthropic:work": TOKEN})
    assert db.store().view_sync("main").profiles["anthropic:work"].origin == db.agent_db("main")


def test_main_agent_db_state_applies_over_the_shared_store(db: Db) -> None:
    """`models auth order set --agent main` writes main's agent DB; that order is main's."""
    db.shared({"anthropic:a": TOKEN, "anthropic:b": TOKEN}, order={"anthropic": ["anthropic:a"]})
    db.agent("main", {}, order={"anthropic": ["anthropic:b"]})
    assert dict(db.store().view_sync("main").state.order) == {"anthropic": ("anthropic:b",)}


def test_unknown_user_version_is_read_but_never_written(db: Db) -> None:
    """A newer schema is served read-only; the refusal names the version."""
    db.shared({"anthropic:work": TOKEN}, version=19)
    store = db.store()
    before = db.cell(db.state_db)
    assert list(store.view_sync("main").profiles) == ["anthropic:work"]
    with pytest.raises(StoreReadOnly, match="user_version 19"):
        store.put_profile_sync("main", "openai:manual", KEY)
    assert db.cell(db.state_db) == before
    assert any("user_version 19" in n for n in sources.notices(store, "main"))


def test_changes_are_noticed_without_rereading(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unchanged store is not re-read; another connection's commit is seen at once."""
    db.shared({"anthropic:work": TOKEN})
    store = db.store()
    reads: list[Path] = []
    real = store.readers.read
    monkeypatch.setattr(store.readers, "read", lambda p, k: reads.append(p) or real(p, k))
    first = store.view_sync("main")
    count = len(reads)
    assert store.view_sync("main") is first
    assert len(reads) == count
    db.put(db.state_db, "authProfiles.store", {"version": 1, "profiles": {"openai:m": KEY}})
    assert list(store.view_sync("main").profiles) == ["openai:m"]


def test_half_migrated_agent_is_refused(db: Db) -> None:
    """JSON beside an empty SQLite store: OpenClaw refuses that agent's auth, so do we."""
    db.shared({})
    db.sd.write_profiles("main", {"anthropic:work": TOKEN})
    with pytest.raises(StoreUnsupported, match="openclaw doctor --fix"):
        db.store().view_sync("main")


def test_json_left_beside_a_filled_store_is_reported(db: Db) -> None:
    """JSON beside a non-empty SQLite store is ignored and reported."""
    db.shared({"anthropic:work": TOKEN})
    db.sd.write_profiles("main", {"openai:old": KEY})
    store = db.store()
    assert list(store.view_sync("main").profiles) == ["anthropic:work"]
    assert "#143173" in sources.notices(store, "main")[0]


def test_profiles_renamed_by_doctor_are_reported(db: Db) -> None:
    """An order still naming openai-codex:x while openai:x is stored is explained."""
    codex = {**oauth("a", "r", NOW + HOUR), "provider": "openai"}
    db.shared({"openai:me@example.com": codex}, order={"openai": ["openai-codex:me@example.com"]})
    store = db.store()
    assert sources.notices(store, "main", store.view_sync("main")) == [
        "profile openai-codex:me@example.com is now openai:me@example.com "
        "(renamed by `openclaw doctor --fix`)"
    ]


def test_open_source_picks_the_layout(db: Db, sd: Any) -> None:
    """JSON layouts get the JsonStore, era D the SqliteStore."""
    sd.write_profiles("main", {"anthropic:work": TOKEN})
    assert isinstance(sources.open_source(sd.layout, home=sd.home), JsonStore)
    db.agent("work", {"openai:manual": KEY})
    assert isinstance(sources.open_source(sd.layout, home=sd.home), SqliteStore)


# --- writing -------------------------------------------------------------------------------------


def test_put_profile_writes_compact_json_and_keeps_the_rest(db: Db) -> None:
    """One upsert: OpenClaw's compact format, other profiles and unknown fields kept."""
    db.shared({"anthropic:work": {**TOKEN, "x-unknown": [1]}})
    db.sd.now = NOW + 5
    path = db.store().put_profile_sync("main", "openai:manual", KEY)
    assert path == db.state_db
    assert db.cell(db.state_db) == (
        '{"version":1,"profiles":{"anthropic:work":{"type":"token","provider":"anthropic",'
        '"token":"sk-ant-oat01-main","x-unknown":[1]},"openai:manual":{"type":"api_key",'
        '"provider":"openai","key":"sk-work"}}}',
        NOW + 5,
    )


def test_put_profile_into_a_new_agent_row(db: Db) -> None:
    """An agent DB without the primary row gets one; main's store is untouched."""
    db.shared({"anthropic:work": TOKEN})
    db.agent("work")
    db.store().put_profile_sync("work", "openai:manual", KEY)
    assert db.profiles(db.agent_db("work")) == {"openai:manual": KEY}
    assert list(db.profiles(db.state_db)) == ["anthropic:work"]


def test_no_database_is_ever_created(db: Db) -> None:
    """An agent without a database is refused with the openclaw command to run first."""
    db.shared({"anthropic:work": TOKEN})
    with pytest.raises(StoreReadOnly, match="openclaw models auth --agent work paste-api-key"):
        db.store().put_profile_sync("work", "openai:manual", KEY)
    assert not db.agent_db("work").exists()


def test_update_state_writes_and_deletes_the_state_row(db: Db) -> None:
    """State is a row of its own; OpenClaw deletes it when it becomes empty."""
    db.agent("work", {"openai:manual": KEY})
    store = db.store()
    store.update_state_sync("work", lambda s: AuthState(order={"openai": ("openai:manual",)}))
    assert db.cell(db.agent_db("work"), "auth_profile_state") == (
        '{"version":1,"order":{"openai":["openai:manual"]}}',
        NOW,
    )
    store.update_state_sync("work", lambda s: AuthState())
    assert db.cell(db.agent_db("work"), "auth_profile_state") is None


def test_writes_are_refused_while_the_database_is_locked(db: Db) -> None:
    """A write waits OpenClaw's busy timeout at most, then reports the lock."""
    from sidecar.sources.openclaw_sqlite import db as sqlitedb

    db.agent("work", {"openai:manual": KEY})
    holder = sqlite3.connect(db.agent_db("work"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    old, sqlitedb.BUSY_TIMEOUT_S = sqlitedb.BUSY_TIMEOUT_S, 0.05
    try:
        with pytest.raises(Exception, match="locked"):
            db.store().put_profile_sync("work", "openai:x", KEY)
    finally:
        sqlitedb.BUSY_TIMEOUT_S = old
        holder.execute("ROLLBACK")
        holder.close()


# --- refresh -------------------------------------------------------------------------------------


def run(coro: Any) -> Any:
    async def main() -> Any:
        return await coro

    return anyio.run(main)


def new_tokens(n: int = 1) -> dict[str, Any]:
    return {"access": f"NEW-A{n}", "refresh": f"NEW-R{n}", "expires": NOW + HOUR}


def test_refresh_fences_calls_and_settles(db: Db) -> None:
    """During the call the row holds a pending fence; afterwards the merged credential, and
    neither lock nor claim record is left."""
    db.shared({PROFILE: oauth("OLD-A", "OLD-R", NOW - 1, idToken="id")})
    store = db.store()
    seen: list[Any] = []

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        seen.append((cred.refresh.reveal(), db.profiles(db.state_db)[PROFILE]))
        return new_tokens()

    result = run(store.refresh("work", PROFILE, exchange))
    sent, during = seen[0]
    assert sent == "OLD-R"
    assert fence.is_pending_fence(during)
    assert during["email"] == "me@example.com"
    assert db.profiles(db.state_db)[PROFILE] == {
        **oauth("NEW-A1", "NEW-R1", NOW + HOUR),
        "idToken": "id",
    }
    assert result.access.reveal() == "NEW-A1"
    assert list(store.layout.refresh_lock_dir().iterdir()) == []


def test_usable_credential_is_adopted_without_a_call(db: Db) -> None:
    """Nothing to do: no fence, no call."""
    db.shared({PROFILE: oauth("A", "R", NOW + HOUR)})

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        raise AssertionError("no call expected")

    assert run(db.store().refresh("main", PROFILE, exchange)).access.reveal() == "A"


def test_someone_elses_fence_is_waited_for_and_adopted(db: Db) -> None:
    """A pending fence is observed (never refreshed in parallel) and its result adopted."""
    original = oauth("OLD-A", "OLD-R", NOW - 1)
    theirs = fence.make_fence(PROFILE, original, "ab" * 16)
    db.shared({PROFILE: theirs})
    store = db.store()

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        raise AssertionError("must not refresh a fenced profile")

    async def main() -> OAuthCredential:
        async with anyio.create_task_group() as tg:
            result: list[OAuthCredential] = []

            async def ours() -> None:
                result.append(await store.refresh("main", PROFILE, exchange))

            tg.start_soon(ours)
            await anyio.sleep(0.1)
            db.put(
                db.state_db,
                "authProfiles.store",
                {"version": 1, "profiles": {PROFILE: oauth("THEIR-A", "THEIR-R", NOW + HOUR)}},
            )
        return result[0]

    assert anyio.run(main).access.reveal() == "THEIR-A"


def test_failed_fence_is_reported_not_overwritten(db: Db) -> None:
    """OpenClaw's failed fence: reauth_required naming the command; the row is untouched."""
    failed = fence.failed_fence(fence.make_fence(PROFILE, oauth("A", "R", NOW - 1), "cd" * 16))
    db.shared({PROFILE: failed})

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        raise AssertionError("no call expected")

    with pytest.raises(ReauthRequired, match="openclaw models auth login --provider anthropic"):
        run(db.store().refresh("main", PROFILE, exchange))
    assert db.profiles(db.state_db)[PROFILE] == failed


def test_stale_pending_fence_becomes_failed(db: Db) -> None:
    """A pending fence whose row has not changed for 180 s is settled as OpenClaw settles a
    claim that cannot finish: the terminal failed fence."""
    pending = fence.make_fence(PROFILE, oauth("A", "R", NOW - 1), "ef" * 16)
    db.shared()
    db.put(
        db.state_db,
        "authProfiles.store",
        {"version": 1, "profiles": {PROFILE: pending}},
        at=NOW - 181_000,
    )

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        raise AssertionError("no call expected")

    with pytest.raises(ReauthRequired, match="abandoned"):
        run(db.store().refresh("main", PROFILE, exchange))
    assert db.profiles(db.state_db)[PROFILE] == fence.failed_fence(pending)


def test_unreachable_provider_puts_the_old_credential_back(db: Db) -> None:
    """A failure that is not a refusal leaves no fence: the old token is kept."""
    original = oauth("OLD-A", "OLD-R", NOW - 1)
    db.shared({PROFILE: original})

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        raise RefreshUnavailable("down")

    with pytest.raises(RefreshUnavailable):
        run(db.store().refresh("main", PROFILE, exchange))
    assert db.profiles(db.state_db)[PROFILE] == original


def test_refused_grant_leaves_openclaws_failed_fence(db: Db) -> None:
    """The provider refused the refresh token: the terminal fence, as OpenClaw leaves it."""
    db.shared({PROFILE: oauth("OLD-A", "OLD-R", NOW - 1)})

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        raise ReauthRequired("refused")

    with pytest.raises(ReauthRequired):
        run(db.store().refresh("main", PROFILE, exchange))
    assert fence.is_failed_fence(db.profiles(db.state_db)[PROFILE])


@pytest.mark.parametrize("answered", [False, True])
def test_a_killed_claim_is_put_back(db: Db, answered: bool) -> None:
    """A fence with the claim record of a dead sidecar: the original (or, if the provider had
    answered, the new credential) goes back in place at the next start."""
    original = oauth("OLD-A", "OLD-R", NOW - 1)
    left = fence.make_fence(PROFILE, original, "01" * 16)
    db.shared({PROFILE: left})
    store = db.store()
    record = claims.claim_path(store.layout.refresh_lock_dir(), db.state_db, "anthropic", PROFILE)
    claim = claims.Claim(
        record, str(db.state_db), PROFILE, "anthropic", left, original, pid=2**22 + 1
    )
    refreshed = {**original, **new_tokens()}
    claims.write(claims.with_refreshed(claim, refreshed) if answered else claim)
    assert isinstance(sources.open_source(db.sd.layout, home=db.sd.home), SqliteStore)
    assert db.profiles(db.state_db)[PROFILE] == (refreshed if answered else original)
    assert not record.exists()


def test_unknown_profile(db: Db) -> None:
    db.shared({"anthropic:work": TOKEN})

    async def exchange(cred: OAuthCredential) -> dict[str, Any]:
        return {}

    with pytest.raises(NoProfile):
        run(db.store().refresh("main", "anthropic:work", exchange))
