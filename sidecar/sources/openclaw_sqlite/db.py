"""The two SQLite databases of OpenClaw 2026.6.5+ (store spec §12), at the level of rows: kept
read-only connections that notice other writers by ``PRAGMA data_version``, and short
``BEGIN IMMEDIATE`` write transactions that never create a database, a table or a schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from sidecar.errors import StoreError, StoreLocked, StoreReadOnly

T = TypeVar("T")
# OpenClaw's own busy_timeout: a writer that holds the database longer makes its CLI fail.
BUSY_TIMEOUT_S = 5.0


class Kind(Enum):
    """Which of the two row layouts a database has."""

    SHARED = "shared"  # state/openclaw.sqlite, config_machine_state (2026.8+ main store)
    AGENT = "agent"  # agents/<id>/agent/openclaw-agent.sqlite

    @property
    def max_user_version(self) -> int:
        return 18 if self is Kind.SHARED else 23  # as written by 2026.9.6


# (table, key column, key, value column, time column) of the profiles and the state rows.
_ROWS = {
    (Kind.SHARED, "store"): (
        "config_machine_state",
        "state_key",
        "authProfiles.store",
        "value_json",
        "updated_at_ms",
    ),
    (Kind.SHARED, "state"): (
        "config_machine_state",
        "state_key",
        "authProfiles.state",
        "value_json",
        "updated_at_ms",
    ),
    (Kind.AGENT, "store"): (
        "auth_profile_store",
        "store_key",
        "primary",
        "store_json",
        "updated_at",
    ),
    (Kind.AGENT, "state"): (
        "auth_profile_state",
        "state_key",
        "primary",
        "state_json",
        "updated_at",
    ),
}


@dataclass(frozen=True)
class Target:
    """The database holding one agent's own profiles (``owner``: main for the shared store)."""

    owner: str
    path: Path
    kind: Kind


@dataclass(frozen=True)
class Rows:
    """The two JSON cells of one store, as text, and when the profiles row was written."""

    store: str | None
    state: str | None
    store_updated_ms: int | None
    user_version: int


def uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path))}?mode={mode}"


def dump_compact(doc: Mapping[str, Any]) -> str:
    """OpenClaw's cell format: ``JSON.stringify(doc)`` (compact, key order kept)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def _cell(conn: sqlite3.Connection, kind: Kind, which: str) -> tuple[str | None, int | None]:
    table, key_col, key, value_col, time_col = _ROWS[(kind, which)]
    if not _has_table(conn, table):
        return None, None
    sql = f"SELECT {value_col}, {time_col} FROM {table} WHERE {key_col} = ?"  # noqa: S608
    row = conn.execute(sql, (key,)).fetchone()
    if row is None:
        return None, None
    value, updated = row
    return (value if isinstance(value, str) else None), (
        updated if isinstance(updated, int) else None
    )


def read_rows(conn: sqlite3.Connection, kind: Kind) -> Rows:
    """Both cells in one read transaction (a consistent pair)."""
    conn.execute("BEGIN")
    try:
        store, updated = _cell(conn, kind, "store")
        state, _ = _cell(conn, kind, "state")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.execute("COMMIT")
    return Rows(store, state, updated, version)


def put_cell(
    conn: sqlite3.Connection, kind: Kind, which: str, value: str | None, now_ms: int
) -> None:
    """Upsert (or, for ``None``, delete) one cell; OpenClaw deletes an empty state row."""
    table, key_col, key, value_col, time_col = _ROWS[(kind, which)]
    if not _has_table(conn, table):
        raise StoreReadOnly(f"{table} is missing: this is not a schema the sidecar writes")
    if value is None:
        conn.execute(f"DELETE FROM {table} WHERE {key_col} = ?", (key,))  # noqa: S608
        return
    conn.execute(
        f"INSERT INTO {table} ({key_col}, {value_col}, {time_col}) VALUES (?, ?, ?) "  # noqa: S608
        f"ON CONFLICT({key_col}) DO UPDATE SET {value_col} = excluded.{value_col}, "
        f"{time_col} = excluded.{time_col}",
        (key, value, now_ms),
    )


def check_writable(path: Path, kind: Kind, version: int) -> None:
    if version > kind.max_user_version:
        raise StoreReadOnly(
            f"{path} has user_version {version}, newer than the {kind.max_user_version} of "
            "OpenClaw 2026.9.6: it is served read-only; upgrade openclaw-sidecar to write it"
        )


@contextlib.contextmanager
def _translated(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreLocked(f"{path} stayed locked by another writer; retry") from exc
        if "readonly" in text or "unable to open" in text:
            raise StoreReadOnly(f"cannot write {path} ({text}); the store was not changed") from exc
        raise StoreError(f"cannot use {path}: {text}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable SQLite database ({exc})") from exc


def transact(path: Path, kind: Kind, work: Callable[[sqlite3.Connection, Rows], T]) -> T:
    """One ``BEGIN IMMEDIATE`` transaction on an existing database (``mode=rw`` never creates
    one): read the rows, let ``work`` write, commit. Held for milliseconds."""
    if not path.is_file():
        raise StoreReadOnly(f"{path} does not exist; the sidecar never creates OpenClaw's database")
    with (
        _translated(path),
        contextlib.closing(
            sqlite3.connect(uri(path, "rw"), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        ) as conn,
    ):
        conn.execute("BEGIN IMMEDIATE")
        try:
            store, updated = _cell(conn, kind, "store")
            state, _ = _cell(conn, kind, "state")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            check_writable(path, kind, version)
            result = work(conn, Rows(store, state, updated, version))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result


class Readers:
    """One kept read-only connection per database file, reopened when the file is replaced.
    ``version`` is cheap (``PRAGMA data_version`` changes when another connection commits)."""

    def __init__(self) -> None:
        self._conns: dict[Path, tuple[int, sqlite3.Connection, threading.Lock]] = {}
        self._guard = threading.Lock()

    def _get(self, path: Path) -> tuple[sqlite3.Connection, threading.Lock] | None:
        try:
            inode = os.stat(path).st_ino
        except OSError:
            return None
        with self._guard:
            entry = self._conns.get(path)
            if entry is not None and entry[0] == inode:
                return entry[1], entry[2]
            if entry is not None:
                entry[1].close()
            conn = sqlite3.connect(
                uri(path, "ro"),
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,  # used from anyio's worker threads, one at a time
            )
            self._conns[path] = (inode, conn, threading.Lock())
            return conn, self._conns[path][2]

    def version(self, path: Path) -> tuple[int, int] | None:
        """(inode, data_version), or None when the database does not exist."""
        with _translated(path):
            got = self._get(path)
            if got is None:
                return None
            conn, lock = got
            with lock:
                return os.stat(path).st_ino, int(conn.execute("PRAGMA data_version").fetchone()[0])

    def read(self, path: Path, kind: Kind) -> Rows | None:
        with _translated(path):
            got = self._get(path)
            if got is None:
                return None
            conn, lock = got
            with lock:
                return read_rows(conn, kind)

    def close(self) -> None:
        with self._guard:
            for _, conn, _ in self._conns.values():
                conn.close()
            self._conns.clear()
