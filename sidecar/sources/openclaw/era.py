"""Which layout a store uses (store spec §1): OpenClaw's JSON files (eras A-C) or SQLite (era D)."""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from enum import StrEnum
from pathlib import Path

from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import ProfilesDoc


class Era(StrEnum):
    NONE = "none"  # nothing stored yet
    JSON_INLINE = "json-inline"  # eras A/B: state keys inside auth-profiles.json
    JSON = "json"  # era C: auth-profiles.json + auth-state.json
    SQLITE = "sqlite"  # era D: OpenClaw 2026.6.5 and later


def json_era(doc: ProfilesDoc | None, has_state_file: bool) -> Era:
    if doc is None:
        return Era.JSON if has_state_file else Era.NONE
    return Era.JSON_INLINE if doc.has_inline_state() and not has_state_file else Era.JSON


def is_sqlite_install(layout: Layout) -> bool:
    """2026.8+: the shared store lives in the state database (``auth.sharedStore`` row). The file
    alone proves nothing: 2026.6.1 creates ``state/openclaw.sqlite`` too."""
    return _query_has_row(
        layout.state_sqlite_path(),
        "SELECT 1 FROM config_machine_state WHERE state_key = 'auth.sharedStore'",
    )


def is_sqlite_agent(layout: Layout, agent: str) -> bool:
    """2026.6.5+: the agent's database has the ``auth_profile_store`` table."""
    return _query_has_row(
        layout.agent_sqlite_path(agent),
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'auth_profile_store'",
    )


def sqlite_store_path(layout: Layout, agent: str) -> Path | None:
    """The SQLite database holding ``agent``'s profiles, if the agent is in era D."""
    if is_sqlite_agent(layout, agent):
        return layout.agent_sqlite_path(agent)
    if is_sqlite_install(layout):
        return layout.state_sqlite_path()
    return None


def _query_has_row(path: Path, sql: str) -> bool:
    if not path.is_file():
        return False
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    try:
        # closing(): a sqlite3 connection's own context manager only ends the transaction.
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as conn:
            return conn.execute(sql).fetchone() is not None
    except sqlite3.OperationalError as exc:
        # Fail closed: only "the table is not there" proves this is not an era-D store; a busy,
        # locked or unreadable database may well be one, and must never get a JSON store beside.
        return "no such table" not in str(exc)
    except sqlite3.DatabaseError:
        return True
