"""The usage database: the sidecar's own SQLite file (WAL), never OpenClaw's store. Where it
lives, its schema, and the writes; ``queries`` holds the reads.

Its folder: ``[usage] dir``, else ``$OPENCLAW_SIDECAR_DATA_DIR``, else
``$XDG_STATE_HOME/openclaw-sidecar``, else ``~/.local/state/openclaw-sidecar``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Window

DATA_DIR_ENV: Final = "OPENCLAW_SIDECAR_DATA_DIR"
FILE_NAME: Final = "usage.sqlite3"
SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_S: Final = 2.0  # a writer waits this long for another; then the batch waits

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    agent TEXT NOT NULL,
    owner TEXT,
    profile TEXT,
    provider TEXT NOT NULL,
    model TEXT,
    status INTEGER NOT NULL,
    error TEXT,
    duration_ms REAL NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS requests_at ON requests (at_ms);
CREATE TABLE IF NOT EXISTS windows (
    owner TEXT NOT NULL,
    profile TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    utilization REAL,
    reset_at_ms INTEGER,
    limit_value INTEGER,
    remaining INTEGER,
    window_minutes INTEGER,
    status TEXT,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (owner, profile, name)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    profile TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events (at_ms);
"""


def data_dir(configured: Path | None, environ: Mapping[str, str]) -> Path:
    """The sidecar's own data folder (see the module's docstring)."""
    if configured is not None:
        return configured
    if environ.get(DATA_DIR_ENV):
        return Path(environ[DATA_DIR_ENV]).expanduser()
    state_home = environ.get("XDG_STATE_HOME")
    if state_home and Path(state_home).is_absolute():  # XDG: a relative one is ignored
        return Path(state_home) / "openclaw-sidecar"
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".local" / "state" / "openclaw-sidecar"


def database_path(configured: Path | None, environ: Mapping[str, str]) -> Path:
    return data_dir(configured, environ) / FILE_NAME


@dataclass(frozen=True)
class RequestRow:
    """One request, as the ``requests`` table holds it."""

    at_ms: int  # when it started, epoch ms
    agent: str
    owner: str | None  # the agent whose store holds the profile
    profile: str | None
    provider: str
    model: str | None
    status: int
    error: str | None
    duration_ms: float
    tokens: Tokens | None  # None: the answer said nothing of its usage


@dataclass(frozen=True)
class WindowRow:
    owner: str
    profile: str
    provider: str
    window: Window
    seen_at_ms: int


@dataclass(frozen=True)
class EventRow:
    at_ms: int
    kind: str  # "refresh"
    provider: str
    profile: str
    outcome: str  # refreshed, failed


def open_for_writing(path: Path) -> sqlite3.Connection:
    """The database, created (folder 0700) with its schema when missing, in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint, never torn
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def open_for_reading(path: Path) -> sqlite3.Connection | None:
    """The database for queries, or None when nothing was ever recorded there. Never creates
    it; WAL lets it read while a sidecar writes."""
    try:
        if not path.is_file():
            return None
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except OSError as exc:  # another user's database (a container's uid): one kind of error
        raise sqlite3.OperationalError(f"cannot open {path}: {exc.strerror}") from exc
    conn.execute("PRAGMA query_only=1")
    return conn


def _tokens(t: Tokens | None) -> tuple[int | None, ...]:
    if t is None:
        return (None,) * 5
    return (t.input, t.output, t.cached, t.cache_write, t.reasoning)


def write(
    conn: sqlite3.Connection,
    requests: Sequence[RequestRow],
    windows: Sequence[WindowRow],
    events: Sequence[EventRow],
) -> None:
    """One transaction for a batch: all of it is written, or none."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT INTO requests (at_ms, agent, owner, profile, provider, model, status, error,"
            " duration_ms, input_tokens, output_tokens, cached_tokens, cache_write_tokens,"
            " reasoning_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_request_values(r) for r in requests],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO windows (owner, profile, name, kind, provider, utilization,"
            " reset_at_ms, limit_value, remaining, window_minutes, status, seen_at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_window_values(w) for w in windows],
        )
        conn.executemany(
            "INSERT INTO events (at_ms, kind, provider, profile, outcome) VALUES (?, ?, ?, ?, ?)",
            [(e.at_ms, e.kind, e.provider, e.profile, e.outcome) for e in events],
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
        conn.execute("ROLLBACK")


def _request_values(r: RequestRow) -> tuple[object, ...]:
    fields = (r.at_ms, r.agent, r.owner, r.profile, r.provider, r.model, r.status, r.error)
    return (*fields, round(r.duration_ms, 3), *_tokens(r.tokens))


def _window_values(row: WindowRow) -> tuple[object, ...]:
    w = row.window
    fields = (w.name, w.kind, row.provider, w.utilization, w.reset_at, w.limit, w.remaining)
    return (row.owner, row.profile, *fields, w.window_minutes, w.status, row.seen_at_ms)


def prune(conn: sqlite3.Connection, before_ms: int) -> int:
    """Forgets what is older than ``before_ms`` (the retention); returns the requests removed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        removed = conn.execute("DELETE FROM requests WHERE at_ms < ?", (before_ms,)).rowcount
        conn.execute("DELETE FROM events WHERE at_ms < ?", (before_ms,))
        conn.execute("DELETE FROM windows WHERE seen_at_ms < ?", (before_ms,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return removed
