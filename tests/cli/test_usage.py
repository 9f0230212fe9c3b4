"""`openclaw-sidecar usage`: spans, grouping, the table and the JSON document, an empty or
missing database, and a database that cannot be read."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from sidecar.cli import build_parser
from sidecar.cli.common import UsageError
from sidecar.cli.usage import since_ms, usage_report, usage_table
from sidecar.errors import StoreError
from sidecar.sources.openclaw.clock import now_ms
from sidecar.usage import db
from sidecar.usage.db import RequestRow
from sidecar.usage.queries import Summary
from sidecar.usage.tokens import Tokens

HOUR = 3_600_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30m", 1_800_000), ("24h", 86_400_000), ("7d", 604_800_000), ("2w", 1_209_600_000)],
)
def test_since(text: str, ms: int) -> None:
    """Spans back from now in minutes, hours, days or weeks."""
    assert since_ms(text) == ms


@pytest.mark.parametrize("text", ["", "0h", "1y", "h", "-1d", "1.5h", "9999999d"])
def test_a_bad_since_is_a_usage_error(text: str) -> None:
    """Anything else names the option and what it takes."""
    with pytest.raises(UsageError, match="give a span such as 30m, 24h, 7d or 2w"):
        since_ms(text)


ROWS = [
    Summary("anthropic:main", 3, 1, 2, Tokens(1200, 300, 1000, 0, 0), owner="main"),
    Summary("openai:work", 12, 0, 12, Tokens(45_000, 2_000, 0, 0, 500), owner="work"),
]


def test_the_table_aligns_numbers_and_ends_with_the_total() -> None:
    """One line per group, numbers right-aligned with thousands separators, the total last."""
    doc = usage_report(ROWS, by="profile", agent=None, since=0, until=HOUR, database=Path("/d"))
    lines = usage_table(doc).splitlines()
    assert lines[1:] == [
        "profile         owner  requests  errors   input  output  cached  reasoning   total",
        "anthropic:main  main          3       1   1,200     300   1,000          0   1,500",
        "openai:work     work         12       0  45,000   2,000       0        500  47,000",
        "total                        15       1  46,200   2,300   1,000        500  48,500",
    ]
    assert lines[0].startswith("since ")


def test_no_rows_says_where_it_looked() -> None:
    """An empty report names the database it read."""
    doc = usage_report([], by="agent", agent=None, since=0, until=HOUR, database=Path("/d/u"))
    assert usage_table(doc).endswith(" in /d/u\n")
    assert doc["total"] == {
        "key": "total",
        "requests": 0,
        "errors": 0,
        "withUsage": 0,
        "tokens": {
            "input": 0,
            "output": 0,
            "cached": 0,
            "cacheWrite": 0,
            "reasoning": 0,
            "total": 0,
        },
    }


def row(agent: str, at_ms: int, tokens: Tokens | None, status: int = 200) -> RequestRow:
    return RequestRow(
        at_ms, agent, agent, f"openai:{agent}", "openai", "gpt", status, None, 5, tokens
    )


def run(*args: str, out: io.StringIO | None = None) -> str:
    """The command in-process, as ``main`` runs it but without configuring logging (which is
    global: later tests capture log lines)."""
    parsed = build_parser().parse_args(["usage", *args])
    out = out or io.StringIO()
    assert parsed.run(parsed, out) == 0
    return out.getvalue()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(db.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.delenv("OPENCLAW_SIDECAR_CONFIG", raising=False)
    return tmp_path / "data"


def test_the_command_reads_what_serve_wrote(data_dir: Path) -> None:
    """--json by agent over the span asked, one agent with --agent; older rows left out."""
    now = now_ms()
    conn = db.open_for_writing(data_dir / db.FILE_NAME)
    db.write(
        conn,
        [
            row("work", now - 2 * HOUR, Tokens(10, 5)),
            row("work", now - HOUR, None, status=429),
            row("personal", now - HOUR, Tokens(7, 3, reasoning=1)),
            row("work", now - 48 * HOUR, Tokens(1000, 1000)),
        ],
        [],
        [],
    )
    doc = json.loads(run("--json", "--since", "1d"))
    assert [(r["key"], r["requests"], r["errors"], r["tokens"]["total"]) for r in doc["rows"]] == [
        ("personal", 1, 0, 10),
        ("work", 2, 1, 15),
    ]
    assert (doc["by"], doc["database"], doc["total"]["tokens"]["reasoning"]) == (
        "agent",
        str(data_dir / db.FILE_NAME),
        1,
    )
    days = json.loads(run("--json", "--since", "3d", "--agent", "work", "--by", "day"))["rows"]
    assert (len(days), sum(d["requests"] for d in days)) == (2, 3)


def test_no_database_is_an_empty_report(data_dir: Path) -> None:
    """Before serve recorded anything: an empty report, exit 0, and no file created."""
    assert run().startswith("no requests recorded since ")
    assert not data_dir.exists()


def test_an_unreadable_database_is_an_error_naming_it(data_dir: Path) -> None:
    """A file that is not a database: an error naming it (main writes it as one line)."""
    data_dir.mkdir()
    (data_dir / db.FILE_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError) as caught:
        run()
    assert caught.value.message.startswith(f"cannot read the usage database {data_dir}")
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
