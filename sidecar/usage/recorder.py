"""The recorder: each request's answer is read as the request ends (after its last byte went to
the client) into a row of plain values, and the rows are written to the usage database in
batches by a background task, in a worker thread. A locked database or a full disk costs a
warning and, past ``MAX_PENDING`` waiting rows, the oldest rows; never a request."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import anyio
import anyio.to_thread

from sidecar.log import get_logger
from sidecar.usage import db, queries
from sidecar.usage.db import EventRow, RequestRow, WindowRow
from sidecar.usage.tap import NO_TAP, KeptBody, Tap
from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Window

log = get_logger("sidecar.usage")

BATCH: Final = 256  # this many waiting requests wake the writer before its interval
MAX_PENDING: Final = 20_000  # rows kept while the database cannot be written
PRUNE_EVERY_MS: Final = 3600 * 1000


class UsageMetrics(Protocol):
    """What ``/metrics`` learns from the recorder (``proxy.metrics.Metrics``)."""

    def on_tokens(self, agent: str, profile: str, provider: str, model: str, t: Tokens) -> None:
        """Adds one answer's (or, at start, the database's) tokens."""

    def on_window(self, owner: str, profile: str, provider: str, window: Window) -> None:
        """A profile's window as its latest answer described it."""

    def on_dropped(self, rows: int) -> None:
        """Rows given up for good (the database could not be written for too long)."""


class Finished(Protocol):
    """A request as it ended (``proxy.forward.Exchange``)."""

    agent: str
    owner: str | None
    profile: str | None
    provider: str
    status: int
    error: str | None
    usage: Tap


class UsageSink(Protocol):
    """The proxy's view of the recorder: a tap as an answer starts, a row as its request ends
    (after the answer's last byte went out); the database is written in the background."""

    def observe(self, headers: Sequence[tuple[bytes, bytes]], request: KeptBody | None) -> Tap:
        """The tap for an answer that starts now."""

    def record(self, ended: Finished, seconds: float) -> None:
        """A request has ended."""


class _NoUsage:
    """Usage not recorded (``[usage] enabled = false``)."""

    def observe(self, headers: Sequence[tuple[bytes, bytes]], request: KeptBody | None) -> Tap:
        return NO_TAP

    def record(self, ended: Finished, seconds: float) -> None:
        return None


NO_USAGE: Final[UsageSink] = _NoUsage()


@dataclass
class _Batch:
    requests: list[RequestRow] = field(default_factory=list)
    windows: list[WindowRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.requests) + len(self.windows) + len(self.events)

    def extend(self, other: _Batch) -> None:
        self.requests += other.requests
        self.windows += other.windows
        self.events += other.events


class Recorder:
    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], int],
        retention_ms: int,
        metrics: UsageMetrics | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self.path = path
        self.clock = clock
        self.retention_ms = retention_ms
        self.metrics = metrics
        self.interval_s = interval_s
        self._fresh = _Batch()  # rows of the requests ended since the last write
        self._unwritten = _Batch()  # rows the database could not take yet
        self._conn: sqlite3.Connection | None = None
        self._failing = False
        self._pruned_at = 0
        self._wake = anyio.Event()
        self._writing = anyio.Lock()

    # --- the request path: after the answer, never before it ------------------------------------

    def observe(self, headers: Sequence[tuple[bytes, bytes]], request: KeptBody | None) -> Tap:
        """The tap for an answer that starts now (see ``tap.Tap``)."""
        return Tap(headers, request, self.clock())

    def record(self, ended: Finished, seconds: float) -> None:
        """A request has ended: its answer is read now, while its bytes are fresh in the cache,
        into a row of plain values written with the next batch. Kept until a flush instead,
        the answers (taps, headers, chunks) were walked by the collector and read cold, and
        reading them 16 at a time held the loop for ~0.4 ms."""
        fresh = self._fresh
        if len(fresh.requests) >= MAX_PENDING:
            self._drop(1)
            return
        ms = seconds * 1000
        at_ms = self.clock() - round(ms)
        tap = ended.usage
        tap.end()
        try:
            row, windows = _request_row(ended, tap, at_ms, ms), _window_rows(ended, tap)
        except Exception as exc:  # an answer no parser foresaw: the request without usage
            log.warning("usage_unreadable", agent=ended.agent, reason=type(exc).__name__)
            row, windows = _request_row(ended, NO_TAP, at_ms, ms), []
        fresh.requests.append(row)
        if windows:
            fresh.windows += windows
        self._count(row, windows)
        if len(fresh.requests) >= BATCH:
            self._wake.set()

    def event(self, provider: str, profile: str, outcome: str) -> None:
        """A token refresh's outcome (``Refresher``'s ``on_refresh``)."""
        self._fresh.events.append(EventRow(self.clock(), "refresh", provider, profile, outcome))

    # --- the background ------------------------------------------------------------------------

    async def start(self) -> None:
        """Opens the database, forgets what is past retention, and gives ``/metrics`` the
        totals kept, so a restart does not zero them."""
        await anyio.to_thread.run_sync(self._start)

    async def run(self) -> None:
        while True:
            with anyio.move_on_after(self.interval_s):
                await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self.flush()
            except Exception:  # a bug here must not stop serve: logged, and the next batch tried
                log.exception("usage_writer_failed")

    async def flush(self) -> None:
        """Writes everything noted so far (also at shutdown)."""
        async with self._writing:
            fresh, self._fresh = self._fresh, _Batch()
            if fresh or self._unwritten:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._write, fresh)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- in the worker thread --------------------------------------------------------------------

    def _start(self) -> None:
        try:
            conn = self._connection()
            self._prune(conn)
            if self.metrics is not None:
                for t in queries.token_totals(conn):
                    self.metrics.on_tokens(t.agent, t.profile, t.provider, t.model, t.tokens)
                for w in queries.latest_windows(conn):
                    self.metrics.on_window(w.owner, w.profile, w.provider, w.window)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def _write(self, fresh: _Batch) -> None:
        batch = self._unwritten
        self._unwritten = _Batch()
        batch.extend(fresh)
        try:
            conn = self._connection()
            db.write(conn, batch.requests, batch.windows, batch.events)
            if self.clock() - self._pruned_at > PRUNE_EVERY_MS:
                self._prune(conn)
        except (sqlite3.Error, OSError, OverflowError) as exc:
            self._failed(exc)
            self._keep(batch)
            return
        if self._failing:
            self._failing = False
            log.info("usage_write_resumed", path=str(self.path), requests=len(batch.requests))

    def _count(self, row: RequestRow, windows: list[WindowRow]) -> None:
        if self.metrics is None:
            return
        if row.tokens is not None:
            self.metrics.on_tokens(
                row.agent, row.profile or "-", row.provider, row.model or "-", row.tokens
            )
        for w in windows:
            self.metrics.on_window(w.owner, w.profile, w.provider, w.window)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = db.open_for_writing(self.path)
        return self._conn

    def _prune(self, conn: sqlite3.Connection) -> None:
        now = self.clock()
        db.prune(conn, now - self.retention_ms)
        self._pruned_at = now

    def _failed(self, exc: Exception) -> None:
        """Warned once per spell of failures; the connection is opened again next time."""
        self.close()
        if not self._failing:
            self._failing = True
            log.warning(
                "usage_write_failed",
                path=str(self.path),
                reason=f"{type(exc).__name__}: {exc}",
                hint="requests are served as usual; usage is kept in memory and written "
                "when the database can be written again",
            )

    def _keep(self, batch: _Batch) -> None:
        over = len(batch.requests) - MAX_PENDING
        if over > 0:  # the oldest requests go first; windows and events are few
            batch.requests = batch.requests[over:]
            self._drop(over)
        self._unwritten = batch

    def _drop(self, rows: int) -> None:
        if self.metrics is not None:
            self.metrics.on_dropped(rows)


def _request_row(e: Finished, tap: Tap, at_ms: int, duration_ms: float) -> RequestRow:
    """What the request was, with what its answer said."""
    found = tap.found() if tap is not NO_TAP else None
    model = tap.request_model() or (found.model if found else None)
    return RequestRow(
        at_ms,
        e.agent,
        e.owner,
        e.profile,
        e.provider,
        model,
        e.status,
        e.error,
        duration_ms,
        found.tokens if found else None,
    )


def _window_rows(e: Finished, tap: Tap) -> list[WindowRow]:
    if e.owner is None or e.profile is None or tap is NO_TAP:
        return []
    return [WindowRow(e.owner, e.profile, e.provider, w, tap.at_ms) for w in tap.windows()]


def retention_ms(days: float) -> int:
    return int(days * 24 * 3600 * 1000)
