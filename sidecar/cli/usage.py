"""``usage``: requests, errors and tokens from the usage database, grouped by agent, profile,
model, provider or day, as a table or as stable JSON (README, "Usage")."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO, cast

from sidecar.cli.common import UsageError, settings_of
from sidecar.errors import StoreError
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import check_agent_id
from sidecar.usage import db, queries
from sidecar.usage.queries import By, Summary

_SINCE: Final = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNIT_MS: Final = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
COLUMNS: Final = ("requests", "errors", "input", "output", "cached", "reasoning", "total")


def since_ms(text: str) -> int:
    """``--since``: a span back from now (``30m``, ``24h``, ``7d``, ``2w``) in milliseconds."""
    found = _SINCE.fullmatch(text.strip())
    if found is None:
        raise UsageError(f"--since {text!r}: give a span such as 30m, 24h, 7d or 2w")
    return int(found.group(1)) * _UNIT_MS[found.group(2)]


def summary_entry(s: Summary) -> dict[str, Any]:
    t = s.tokens
    entry: dict[str, Any] = {
        "key": s.key,
        "requests": s.requests,
        "errors": s.errors,
        "withUsage": s.with_usage,
        "tokens": {
            "input": t.input,
            "output": t.output,
            "cached": t.cached,
            "cacheWrite": t.cache_write,
            "reasoning": t.reasoning,
            "total": t.total,
        },
    }
    if s.owner is not None:
        entry["owner"] = s.owner
    return entry


def usage_report(
    rows: list[Summary], *, by: str, agent: str | None, since: int, until: int, database: Path
) -> dict[str, Any]:
    """The ``--json`` document (version 1; fields may be added, never renamed or removed)."""
    return {
        "version": 1,
        "generatedAt": until,
        "since": since,
        "until": until,
        "by": by,
        "agent": agent,
        "database": str(database),
        "rows": [summary_entry(s) for s in rows],
        "total": summary_entry(queries.total(rows)),
    }


def _cells(entry: dict[str, Any]) -> list[str]:
    t = entry["tokens"]
    values = [entry["requests"], entry["errors"], t["input"], t["output"], t["cached"]]
    return [f"{v:,}" for v in [*values, t["reasoning"], t["total"]]]


def usage_table(doc: dict[str, Any]) -> str:
    """The document as an aligned table, the total last."""
    by = doc["by"]
    names = [by, *(["owner"] if by == "profile" else []), *COLUMNS]
    rows = [
        [e["key"], *([e.get("owner", "-")] if by == "profile" else []), *_cells(e)]
        for e in doc["rows"]
    ]
    if not rows:
        return f"no requests recorded since {_when(doc['since'])} in {doc['database']}\n"
    rows.append(["total", *([""] if by == "profile" else []), *_cells(doc["total"])])
    widths = [max(len(str(r[i])) for r in [names, *rows]) for i in range(len(names))]
    text = [f"since {_when(doc['since'])}" + (f", agent {doc['agent']}" if doc["agent"] else "")]
    for row in [names, *rows]:
        cells = [
            str(c).ljust(w) if i < len(names) - len(COLUMNS) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text) + "\n"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def cmd_usage(args: argparse.Namespace, out: TextIO) -> int:
    """The report on stdout; nothing recorded yet is an empty report, not an error."""
    settings = settings_of(args)
    path = db.database_path(settings.usage.dir, os.environ)
    agent = check_agent_id(args.agent) if args.agent else None
    until = now_ms()
    since = until - since_ms(args.since)
    rows = _summaries(path, since=since, until=until + 1, by=cast(By, args.by), agent=agent)
    doc = usage_report(rows, by=args.by, agent=agent, since=since, until=until, database=path)
    out.write(json.dumps(doc, indent=2) + "\n" if args.json else usage_table(doc))
    return 0


def _summaries(path: Path, *, since: int, until: int, by: By, agent: str | None) -> list[Summary]:
    try:
        conn = db.open_for_reading(path)
        if conn is None:
            return []
        try:
            return queries.summarize(conn, since_ms=since, until_ms=until, by=by, agent=agent)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot read the usage database {path}: {exc}; it is the sidecar's own "
            "(moving it aside starts a new one)"
        ) from exc
