"""The recorder and the database: requests written in batches off the request path and read
back by the queries, kept across a reopen, pruned past retention; a locked database or a full
one delays the rows (or drops the oldest past the cap) and never raises."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sidecar.usage import db, queries, recorder
from sidecar.usage.db import EventRow, WindowRow
from sidecar.usage.recorder import Recorder, retention_ms
from sidecar.usage.tap import NO_TAP, Tap
from sidecar.usage.tokens import Found, Tokens
from sidecar.usage.windows import Window

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000_000
HOUR = 3_600_000


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Ended:
    agent: str = "work"
    owner: str | None = "main"
    profile: str | None = "anthropic:main"
    provider: str = "anthropic"
    status: int = 200
    error: str | None = None
    usage: Tap = NO_TAP


@dataclass
class Seen:
    """A fake ``UsageMetrics``: what it was told, in order."""

    tokens: list[tuple[str, str, str, str, Tokens]] = field(default_factory=list)
    windows: list[tuple[str, str, str, Window]] = field(default_factory=list)
    dropped: int = 0

    def on_tokens(self, agent: str, profile: str, provider: str, model: str, t: Tokens) -> None:
        self.tokens.append((agent, profile, provider, model, t))

    def on_window(self, owner: str, profile: str, provider: str, window: Window) -> None:
        self.windows.append((owner, profile, provider, window))

    def on_dropped(self, rows: int) -> None:
        self.dropped += rows


@dataclass
class Kept:
    body: bytes
    replayable: bool = True

    def kept(self) -> bytes:
        return self.body


def answered(rec: Recorder, model: str | None = "claude-a", tokens: int = 10) -> Tap:
    """A tap fed one whole Anthropic answer with ``tokens`` in and out, and a 5h window."""
    headers = [
        (b"content-type", b"application/json"),
        (b"anthropic-ratelimit-unified-5h-utilization", b"0.25"),
        (b"anthropic-ratelimit-unified-5h-reset", b"1800003600"),
    ]
    usage = {"input_tokens": tokens, "output_tokens": tokens}
    body = json.dumps({"type": "message", "model": "from-answer", "usage": usage})
    request = Kept(json.dumps({"model": model}).encode()) if model else None
    t = rec.observe(headers, request)
    t.feed(body.encode())
    return t


def make(tmp_path: Path, clock: Clock | None = None, **kw: object) -> tuple[Recorder, Seen]:
    seen = Seen()
    rec = Recorder(
        tmp_path / "data" / db.FILE_NAME,
        clock=clock or Clock(),
        retention_ms=retention_ms(30),
        metrics=seen,
        **kw,  # type: ignore[arg-type]
    )
    return rec, seen


def read(path: Path) -> sqlite3.Connection:
    conn = db.open_for_reading(path)
    assert conn is not None
    return conn


async def test_requests_are_written_and_summarized(tmp_path: Path) -> None:
    """Rows, tokens, windows and refresh events reach the database; summaries add them up."""
    rec, seen = make(tmp_path)
    await rec.start()
    rec.record(Ended(usage=answered(rec)), 0.25)
    rec.record(Ended(agent="personal", usage=answered(rec, model=None, tokens=3)), 0.5)
    rec.record(Ended(agent="personal", owner=None, profile=None, provider="-", status=404), 0.001)
    rec.event("anthropic", "anthropic:main", "refreshed")
    await rec.flush()
    conn = read(rec.path)
    by_agent = queries.summarize(conn, since_ms=NOW - HOUR, until_ms=NOW + 1, by="agent")
    assert by_agent == [
        queries.Summary("personal", 2, 1, 1, Tokens(input=3, output=3)),
        queries.Summary("work", 1, 0, 1, Tokens(input=10, output=10)),
    ]
    assert [s.key for s in queries.summarize(conn, since_ms=0, until_ms=NOW + 1, by="model")] == [
        "-",
        "claude-a",
        "from-answer",
    ]
    window = Window("5h", "anthropic-unified", 0.25, 1_800_003_600_000)
    assert queries.latest_windows(conn) == [
        WindowRow("main", "anthropic:main", "anthropic", window, NOW)
    ]
    assert queries.recent_events(conn) == [
        EventRow(NOW, "refresh", "anthropic", "anthropic:main", "refreshed")
    ]
    assert [(f.agent, f.status) for f in queries.recent_failures(conn)] == [("personal", 404)]
    assert seen.tokens == [
        ("work", "anthropic:main", "anthropic", "claude-a", Tokens(input=10, output=10)),
        ("personal", "anthropic:main", "anthropic", "from-answer", Tokens(input=3, output=3)),
    ]
    assert seen.windows == [("main", "anthropic:main", "anthropic", window)] * 2


async def test_a_restart_keeps_the_rows_and_gives_metrics_the_totals(tmp_path: Path) -> None:
    """A new recorder on the same file starts its metrics from what is kept."""
    rec, _ = make(tmp_path)
    rec.record(Ended(usage=answered(rec)), 0.1)
    rec.record(Ended(usage=answered(rec)), 0.1)
    await rec.flush()
    rec.close()
    again, seen = make(tmp_path)
    await again.start()
    window = Window("5h", "anthropic-unified", 0.25, 1_800_003_600_000)
    assert (seen.tokens, seen.windows) == (
        [("work", "anthropic:main", "anthropic", "claude-a", Tokens(input=20, output=20))],
        [("main", "anthropic:main", "anthropic", window)],
    )
    again.close()


async def test_retention_forgets_old_rows(tmp_path: Path) -> None:
    """Rows older than the retention are deleted hourly, and at start."""
    clock = Clock(NOW - retention_ms(30) - HOUR)
    rec, _ = make(tmp_path, clock)
    rec.record(Ended(agent="old"), 0.1)
    await rec.flush()
    clock.now = NOW - 1
    rec.record(Ended(agent="new"), 0.1)
    await rec.flush()
    conn = read(rec.path)
    assert conn.execute("SELECT agent FROM requests").fetchall() == [("new",)]
    rec.close()
    later, _ = make(tmp_path, Clock(NOW + retention_ms(30)))
    await later.start()
    assert conn.execute("SELECT agent FROM requests").fetchall() == []
    later.close()


async def test_a_locked_database_delays_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holding the database: a warning, the rows wait and are written later."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.01)
    rec, _ = make(tmp_path)
    await rec.start()
    other = sqlite3.connect(rec.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    rec.record(Ended(), 0.1)
    with capture_logs() as logs:
        await rec.flush()
        rec.record(Ended(agent="second"), 0.1)
        await rec.flush()  # still locked: one warning for the spell
        other.execute("COMMIT")
        await rec.flush()
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("usage_write_failed", "warning"),
        ("usage_write_resumed", "info"),
    ]
    assert "database is locked" in logs[0]["reason"]
    conn = read(rec.path)
    assert conn.execute("SELECT agent FROM requests ORDER BY id").fetchall() == [
        ("work",),
        ("second",),
    ]


async def test_a_full_database_drops_the_oldest_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_FULL: rows wait up to the cap, the oldest are dropped (and counted) after it."""
    monkeypatch.setattr(recorder, "MAX_PENDING", 3)
    opened = db.open_for_writing

    def full(path: Path) -> sqlite3.Connection:
        conn = opened(path)
        conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
        return conn

    monkeypatch.setattr(db, "open_for_writing", full)
    rec, seen = make(tmp_path)
    await rec.start()
    with capture_logs() as logs:
        for i in range(5):
            rec.record(Ended(agent=f"a{i}", error="x" * 8000), 0.1)  # larger than a page
            await rec.flush()
    assert [e["event"] for e in logs] == ["usage_write_failed"]
    assert "full" in logs[0]["reason"]
    assert (seen.dropped, [r.agent for r in rec._unwritten.requests]) == (2, ["a2", "a3", "a4"])
    monkeypatch.setattr(db, "open_for_writing", opened)  # space again: the waiting rows go in
    await rec.flush()
    conn = read(rec.path)
    assert conn.execute("SELECT agent FROM requests ORDER BY id").fetchall() == [
        ("a2",),
        ("a3",),
        ("a4",),
    ]


async def test_an_unusable_folder_never_raises(tmp_path: Path) -> None:
    """A data folder that cannot be created: start and flush warn, recording goes on."""
    (tmp_path / "data").write_text("a file where the folder should be")
    rec, _ = make(tmp_path)
    with capture_logs() as logs:
        await rec.start()
        rec.record(Ended(), 0.1)
        await rec.flush()
    assert [e["event"] for e in logs] == ["usage_write_failed"]
    assert len(rec._unwritten.requests) == 1


async def test_past_the_cap_new_requests_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer stuck, the rows waiting stay bounded: past the cap, new ones go."""
    monkeypatch.setattr(recorder, "MAX_PENDING", 2)
    rec, seen = make(tmp_path)
    for _ in range(5):
        rec.record(Ended(), 0.1)
    assert (len(rec._fresh.requests), seen.dropped) == (2, 3)


def test_data_dir() -> None:
    """[usage] dir, else $OPENCLAW_SIDECAR_DATA_DIR, else $XDG_STATE_HOME, else ~/.local/state."""
    home = {"HOME": "/home/u"}
    assert [
        db.data_dir(Path("/srv/usage"), {**home, "OPENCLAW_SIDECAR_DATA_DIR": "/x"}),
        db.data_dir(None, {**home, "OPENCLAW_SIDECAR_DATA_DIR": "/x", "XDG_STATE_HOME": "/s"}),
        db.data_dir(None, {**home, "XDG_STATE_HOME": "/s"}),
        db.data_dir(None, {**home, "XDG_STATE_HOME": "relative"}),
        db.data_dir(None, home),
    ] == [
        Path("/srv/usage"),
        Path("/x"),
        Path("/s/openclaw-sidecar"),
        Path("/home/u/.local/state/openclaw-sidecar"),
        Path("/home/u/.local/state/openclaw-sidecar"),
    ]


async def test_the_database_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    """Folder 0700, file 0600, WAL; reading never creates it."""
    path = tmp_path / "data" / db.FILE_NAME
    assert db.open_for_reading(path) is None
    assert not path.exists()
    conn = db.open_for_writing(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)


class Broken(Tap):
    def found(self) -> Found:
        raise KeyError("a shape no parser foresaw")


async def test_an_answer_that_breaks_a_parser_is_recorded_without_usage(tmp_path: Path) -> None:
    """The request is still written (without tokens), with a warning; the writer goes on."""
    rec, _ = make(tmp_path)
    with capture_logs() as logs:
        rec.record(Ended(usage=Broken([], None, NOW)), 0.1)
        await rec.flush()
    assert [e["event"] for e in logs] == ["usage_unreadable"]
    conn = read(rec.path)
    assert conn.execute("SELECT agent, input_tokens FROM requests").fetchall() == [("work", None)]
