"""Era detection (store spec §1): an era-D (SQLite) store is refused, and the sidecar never
creates auth-profiles.json beside it; a bare state/openclaw.sqlite proves nothing."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from sidecar.errors import StoreUnsupported
from sidecar.sources.openclaw.era import Era, json_era, sqlite_store_path
from sidecar.sources.openclaw.model import parse_profiles

API_KEY = {"type": "api_key", "provider": "openai", "key": "sk-1"}


def make_db(path, *statements: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for sql in statements:
            conn.execute(sql)
        conn.commit()


AGENT_TABLES = (
    "CREATE TABLE auth_profile_store (store_key TEXT PRIMARY KEY, store_json TEXT, updated_at INT)",
    "CREATE TABLE auth_profile_state (state_key TEXT PRIMARY KEY, state_json TEXT, updated_at INT)",
)
MACHINE_STATE = (
    "CREATE TABLE config_machine_state (state_key TEXT PRIMARY KEY, value_json TEXT, "
    "updated_at_ms INTEGER) STRICT"
)
SHARED_ROW = (
    "INSERT INTO config_machine_state VALUES ('auth.sharedStore', '{\"location\":\"state-db\"}', 1)"
)


def era_d_agent(sd, agent):
    make_db(sd.agent_dir(agent) / "openclaw-agent.sqlite", *AGENT_TABLES)


def era_d_shared(sd, agent):
    make_db(sd.path / "state" / "openclaw.sqlite", MACHINE_STATE, SHARED_ROW)


def all_files(sd):
    return sorted(p.relative_to(sd.path) for p in sd.path.rglob("*") if p.is_file())


@pytest.mark.parametrize("setup", [era_d_agent, era_d_shared], ids=["agent-db", "shared-db"])
@pytest.mark.parametrize("agent", ["main", "work"])
def test_era_d_is_refused_and_never_gets_a_json_store(sd, setup, agent):
    """Reads and writes raise StoreUnsupported; no auth-profiles.json or auth-state.json appears."""
    setup(sd, agent)
    before = all_files(sd)
    store = sd.store()
    with pytest.raises(StoreUnsupported):
        store.view_sync(agent)
    with pytest.raises(StoreUnsupported):
        store.put_profile_sync(agent, "openai:manual", API_KEY)
    with pytest.raises(StoreUnsupported):
        store.update_state_sync(agent, lambda state: state)
    assert all_files(sd) == before


def test_era_d_agent_db_in_an_overridden_agent_dir(sd, tmp_path):
    """Detection looks in the agentDir openclaw.json names."""
    custom = tmp_path / "work-agent"
    make_db(custom / "openclaw-agent.sqlite", *AGENT_TABLES)
    sd.write_config({"agents": {"list": [{"id": "work", "agentDir": str(custom)}]}})
    with pytest.raises(StoreUnsupported):
        sd.store().put_profile_sync("work", "openai:manual", API_KEY)
    assert sorted(p.name for p in custom.iterdir()) == ["openclaw-agent.sqlite"]


@pytest.mark.parametrize(
    "statements",
    [
        (),
        (MACHINE_STATE,),
        (MACHINE_STATE, "INSERT INTO config_machine_state VALUES ('gateway.port', '1', 1)"),
        ("CREATE TABLE kv (k TEXT)",),
    ],
    ids=["empty-db", "no-rows", "other-rows", "other-tables"],
)
def test_state_db_without_shared_store_row_is_not_era_d(sd, statements):
    """2026.6.1 has a state/openclaw.sqlite too: without the auth.sharedStore row it is JSON."""
    make_db(sd.path / "state" / "openclaw.sqlite", *statements)
    store = sd.store()
    path = store.put_profile_sync("main", "openai:manual", API_KEY)
    assert (sqlite_store_path(sd.layout, "main"), path.exists()) == (None, True)


def test_agent_db_without_the_store_table_is_not_era_d(sd):
    """An openclaw-agent.sqlite lacking auth_profile_store does not make the agent era D."""
    make_db(sd.agent_dir("main") / "openclaw-agent.sqlite", "CREATE TABLE sessions (id TEXT)")
    assert sqlite_store_path(sd.layout, "main") is None


@pytest.mark.parametrize(
    ("setup", "where"),
    [
        (era_d_agent, "agents/main/agent/openclaw-agent.sqlite"),
        (era_d_shared, "state/openclaw.sqlite"),
    ],
    ids=["agent-db", "shared-db"],
)
def test_sqlite_store_path(sd, setup, where):
    """The database holding main's profiles is named."""
    setup(sd, "main")
    assert sqlite_store_path(sd.layout, "main") == sd.path / where


def test_era_d_refusal_message_names_the_database(sd):
    """The error tells which SQLite file made the store unsupported."""
    era_d_agent(sd, "main")
    with pytest.raises(StoreUnsupported) as info:
        sd.store().view_sync("main")
    assert str(sd.agent_dir("main") / "openclaw-agent.sqlite") in info.value.message


def test_a_locked_era_d_database_is_still_refused(sd):
    """Detection fails closed: a database that cannot be read right now is not 'no SQLite'."""
    db = sd.agent_dir("main") / "openclaw-agent.sqlite"
    make_db(db, "PRAGMA journal_mode=DELETE", *AGENT_TABLES)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as writer:
        writer.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreUnsupported):
                sd.store().put_profile_sync("main", "openai:manual", API_KEY)
        finally:
            writer.execute("ROLLBACK")
    assert not sd.profiles_path("main").exists()


@pytest.mark.parametrize(
    ("doc", "has_state", "era"),
    [
        (None, False, Era.NONE),
        (None, True, Era.JSON),
        ('{"version": 1, "profiles": {}}', False, Era.JSON),
        ('{"version": 1, "profiles": {}, "lastGood": {}}', False, Era.JSON_INLINE),
        ('{"version": 1, "profiles": {}, "order": {}}', True, Era.JSON),
    ],
    ids=["nothing", "state-only", "era-c", "era-a-b", "inline-and-state-file"],
)
def test_json_era(doc, has_state, era):
    """Inline state keys without auth-state.json mean eras A/B; else era C."""
    assert json_era(parse_profiles(doc) if doc else None, has_state) == era
