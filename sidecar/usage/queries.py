"""The reads of the usage database: summaries for ``usage``, the latest windows for ``status``,
``/metrics`` and the page, series and recent failures for the page. Each takes an open
connection (``db.open_for_reading``) and returns plain values."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final, Literal

from sidecar.usage.db import EventRow, WindowRow
from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Kind, Window

By = Literal["agent", "profile", "model", "day", "provider"]
BY_CHOICES: Final = ("agent", "profile", "model", "day", "provider")

_KEYS: Final[dict[str, str]] = {
    "agent": "agent",
    "profile": "COALESCE(profile, '-')",
    "model": "COALESCE(model, '-')",
    "provider": "provider",
    # Days in the local time of the process asking, as a person reading the table counts them.
    "day": "strftime('%Y-%m-%d', at_ms / 1000, 'unixepoch', 'localtime')",
}
_SUMS: Final = (
    "COUNT(*), SUM(status >= 400 OR error IS NOT NULL), SUM(input_tokens IS NOT NULL),"
    " COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
    " COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cache_write_tokens), 0),"
    " COALESCE(SUM(reasoning_tokens), 0)"
)


@dataclass(frozen=True)
class Summary:
    """Requests, errors and tokens of one group (an agent, a profile, a model or a day)."""

    key: str
    requests: int
    errors: int
    with_usage: int  # requests whose answer reported its tokens
    tokens: Tokens
    owner: str | None = None  # by profile: the agent whose store holds it


def _summary(key: str, values: tuple[int, ...], owner: str | None = None) -> Summary:
    requests, errors, with_usage, *t = values
    return Summary(key, requests, errors or 0, with_usage or 0, Tokens(*t), owner)


def summarize(
    conn: sqlite3.Connection,
    *,
    since_ms: int,
    until_ms: int,
    by: By,
    agent: str | None = None,
) -> list[Summary]:
    """One row per group, in the key's order (days oldest first)."""
    where = "at_ms >= ? AND at_ms < ?" + (" AND agent = ?" if agent else "")
    args: tuple[object, ...] = (since_ms, until_ms, *((agent,) if agent else ()))
    key = _KEYS[by]
    owner = "COALESCE(owner, '-')" if by == "profile" else "NULL"
    rows = conn.execute(
        f"SELECT {key}, {owner}, {_SUMS} FROM requests WHERE {where}"  # noqa: S608 -- fixed SQL
        f" GROUP BY {key}, {owner} ORDER BY {key}, {owner}",
        args,
    ).fetchall()
    return [_summary(row[0], tuple(row[2:]), row[1]) for row in rows]


def total(summaries: list[Summary]) -> Summary:
    """Every group added up."""
    return Summary(
        "total",
        sum(s.requests for s in summaries),
        sum(s.errors for s in summaries),
        sum(s.with_usage for s in summaries),
        Tokens(
            *(sum(getattr(s.tokens, f) for s in summaries) for f in Tokens.__dataclass_fields__)
        ),
    )


@dataclass(frozen=True)
class TokenTotal:
    agent: str
    profile: str
    provider: str
    model: str
    tokens: Tokens


def token_totals(conn: sqlite3.Connection) -> list[TokenTotal]:
    """Tokens of everything kept, by agent, profile, provider and model (``/metrics``' start)."""
    rows = conn.execute(
        "SELECT agent, COALESCE(profile, '-'), provider, COALESCE(model, '-'),"
        " SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(cache_write_tokens),"
        " SUM(reasoning_tokens) FROM requests WHERE input_tokens IS NOT NULL"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    ).fetchall()
    return [TokenTotal(row[0], row[1], row[2], row[3], Tokens(*row[4:])) for row in rows]


def latest_windows(conn: sqlite3.Connection) -> list[WindowRow]:
    """Each profile's windows as its latest answer described them."""
    rows = conn.execute(
        "SELECT owner, profile, provider, name, kind, utilization, reset_at_ms, limit_value,"
        " remaining, window_minutes, status, seen_at_ms FROM windows"
        " ORDER BY owner, profile, kind, name"
    ).fetchall()
    return [_window_row(row) for row in rows]


def windows_by_profile(rows: list[WindowRow]) -> dict[tuple[str, str], list[WindowRow]]:
    """``latest_windows``' rows by (owner, profile id)."""
    found: dict[tuple[str, str], list[WindowRow]] = {}
    for row in rows:
        found.setdefault((row.owner, row.profile), []).append(row)
    return found


def _window_row(row: tuple[object, ...]) -> WindowRow:
    owner, profile, provider, name, kind, util, reset, limit, remaining, minutes, status, seen = row
    window = Window(
        name=str(name),
        kind=_kind(kind),
        utilization=util if isinstance(util, float | int) else None,
        reset_at=reset if isinstance(reset, int) else None,
        limit=limit if isinstance(limit, int) else None,
        remaining=remaining if isinstance(remaining, int) else None,
        window_minutes=minutes if isinstance(minutes, int) else None,
        status=status if isinstance(status, str) else None,
    )
    return WindowRow(str(owner), str(profile), str(provider), window, int(str(seen)))


def _kind(value: object) -> Kind:
    for kind in ("anthropic-unified", "anthropic", "openai", "codex"):
        if value == kind:
            return kind
    return "openai"


@dataclass(frozen=True)
class Bucket:
    agent: str
    start_ms: int
    requests: int
    tokens: int


def series(conn: sqlite3.Connection, *, since_ms: int, bucket_ms: int) -> list[Bucket]:
    """Requests and tokens per agent in buckets of ``bucket_ms`` since ``since_ms``."""
    rows = conn.execute(
        "SELECT agent, (at_ms / ?) * ? AS bucket, COUNT(*),"
        " COALESCE(SUM(input_tokens), 0) + COALESCE(SUM(output_tokens), 0)"
        " FROM requests WHERE at_ms >= ? GROUP BY agent, bucket ORDER BY agent, bucket",
        (bucket_ms, bucket_ms, since_ms),
    ).fetchall()
    return [Bucket(*row) for row in rows]


@dataclass(frozen=True)
class Failure:
    at_ms: int
    agent: str
    profile: str | None
    provider: str
    model: str | None
    status: int
    error: str | None


def recent_failures(conn: sqlite3.Connection, limit: int = 20) -> list[Failure]:
    rows = conn.execute(
        "SELECT at_ms, agent, profile, provider, model, status, error FROM requests"
        " WHERE status >= 400 OR error IS NOT NULL ORDER BY at_ms DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [Failure(*row) for row in rows]


def recent_events(conn: sqlite3.Connection, limit: int = 20) -> list[EventRow]:
    rows = conn.execute(
        "SELECT at_ms, kind, provider, profile, outcome FROM events"
        " ORDER BY at_ms DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [EventRow(*row) for row in rows]
