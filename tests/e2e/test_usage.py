"""Usage end to end: requests of two agents through the real sidecar to a fake upstream that
reports known usage and window headers, as JSON and as SSE; the usage database and /metrics
hold exactly those numbers per agent, and still do after a restart."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.usage import db, queries
from sidecar.usage.tokens import Tokens
from tests.e2e.conftest import Running, SidecarFactory, provider_tables
from tests.e2e.sidecar import run_cli
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

T = TypeVar("T")
DEADLINE_S = 10.0  # the recorder writes every second; a safety net, not an ordering sleep
KINDS = ("input", "output", "cached", "cache_write", "reasoning")
UNIFIED = {
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": "1800003600",
    "anthropic-ratelimit-unified-5h-status": "allowed",
    "anthropic-ratelimit-unified-7d-utilization": "0.18",
    "anthropic-ratelimit-unified-7d-reset": "1800500000",
}
OPENAI_LIMITS = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "400",
    "x-ratelimit-reset-requests": "6m0s",
}
MESSAGES = {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}

# (agent, path, request body, usage the upstream reports, headers it adds, tokens expected)
REQUESTS: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, str], Tokens]] = [
    (
        "personal",
        "/agents/personal/anthropic/v1/messages",
        {**MESSAGES, "model": "claude-usage-a"},
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 2000,
            "output_tokens": 55,
        },
        UNIFIED,
        Tokens(input=2310, output=55, cached=2000, cache_write=300),
    ),
    (
        "personal",
        "/agents/personal/anthropic/v1/messages",
        {**MESSAGES, "model": "claude-usage-b", "stream": True},
        {
            "input_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 20,
        },
        {},
        Tokens(input=7, output=20),
    ),
    (
        "work",
        "/agents/work/openai/v1/chat/completions",
        {**CHAT, "model": "gpt-usage-a"},
        {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 16},
        },
        OPENAI_LIMITS,
        Tokens(input=100, output=40, cached=64, reasoning=16),
    ),
    (
        "work",
        "/agents/work/openai/v1/chat/completions",
        {**CHAT, "model": "gpt-usage-b", "stream": True, "stream_options": {"include_usage": True}},
        {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
        {},
        Tokens(input=11, output=5),
    ),
    (
        "work",
        "/agents/work/openai/v1/responses",
        {"model": "gpt-usage-c", "input": "hi", "stream": True},
        {
            "input_tokens": 30,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 9,
            "output_tokens_details": {"reasoning_tokens": 4},
            "total_tokens": 39,
        },
        {},
        Tokens(input=30, output=9, reasoning=4),
    ),
]


def expected_by_agent() -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for agent, *_, tokens in REQUESTS:
        row = totals.setdefault(agent, dict.fromkeys(KINDS, 0))
        for kind in KINDS:
            row[kind] += getattr(tokens, kind)
    return totals


def until(observe: Callable[[], T], done: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + DEADLINE_S
    value = observe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = observe()
    return value


def metrics(http: httpx.Client, sidecar: Running) -> dict[str, dict[tuple[str, ...], float]]:
    """Each sample of /metrics by name, keyed by its label values in sorted label order."""
    found: dict[str, dict[tuple[str, ...], float]] = {}
    text = http.get(sidecar.url() + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(v for _, v in sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[key] = sample.value
    return found


def tokens_by_agent(samples: dict[str, dict[tuple[str, ...], float]]) -> dict[str, dict[str, int]]:
    """openclaw_sidecar_tokens_total added up by agent and kind (labels: agent, kind, model,
    profile, provider)."""
    totals: dict[str, dict[str, int]] = {}
    for (agent, kind, *_), value in samples.get("openclaw_sidecar_tokens_total", {}).items():
        row = totals.setdefault(agent, dict.fromkeys(KINDS, 0))
        row[kind] += int(value)
    return totals


WINDOWS = {
    "openclaw_sidecar_window_utilization": {
        ("5h", "personal", "anthropic:personal", "anthropic"): 0.42,
        ("7d", "personal", "anthropic:personal", "anthropic"): 0.18,
        ("requests", "work", "openai:work", "openai"): 0.2,
    },
    "openclaw_sidecar_window_reset_timestamp_seconds": {
        ("5h", "personal", "anthropic:personal", "anthropic"): 1800003600.0,
        ("7d", "personal", "anthropic:personal", "anthropic"): 1800500000.0,
    },
}


def windows(samples: dict[str, dict[tuple[str, ...], float]]) -> dict[str, Any]:
    """The window gauges, labels (window, owner, profile, provider); OpenAI's relative reset
    is left out (it depends on when the answer came)."""
    keys = {name: set(values) for name, values in WINDOWS.items()}
    return {
        name: {
            (k[3], k[0], k[1], k[2]): v
            for k, v in samples.get(name, {}).items()
            if (k[3], k[0], k[1], k[2]) in keys[name]
        }
        for name in WINDOWS
    }


def send_all(http: httpx.Client, sidecar: Running) -> None:
    for _, path, body, usage, reply_headers, _ in REQUESTS:
        headers = {
            "x-fake-usage": json.dumps(usage),
            "x-fake-reply-headers": json.dumps(reply_headers),
        }
        response = http.post(sidecar.url() + path, json=body, headers=headers)
        assert response.status_code == 200, response.text
        response.read()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("usage-data")


def start(factory: SidecarFactory, fake: FakeUpstream, data_dir: Path) -> Running:
    return factory.start(
        [{"host": "127.0.0.1"}],
        provider_tables(fake.url),
        extra={"usage": {"dir": str(data_dir)}},
    )


def summary(path: Path) -> list[queries.Summary]:
    conn = db.open_for_reading(path)
    assert conn is not None
    try:
        return queries.summarize(conn, since_ms=0, until_ms=2**62, by="agent")
    finally:
        conn.close()


def cli_json(sidecar: Running, *args: str) -> Any:
    """A command's --json output, run with the sidecar's config and environment."""
    config = sidecar.workdir / f"sidecar-{sidecar.sidecar.ports[0]}.toml"
    done = run_cli([*args, "--json", "--config", str(config)], sidecar.env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def usage_rows(sidecar: Running) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cli_json(sidecar, "usage", "--since", "1h")["rows"]
    return rows


def expected_rows() -> list[dict[str, Any]]:
    counts = {"personal": 2, "work": 3}
    return [
        {
            "key": agent,
            "requests": counts[agent],
            "errors": 0,
            "withUsage": counts[agent],
            "tokens": {
                "input": t["input"],
                "output": t["output"],
                "cached": t["cached"],
                "cacheWrite": t["cache_write"],
                "reasoning": t["reasoning"],
                "total": t["input"] + t["output"],
            },
        }
        for agent, t in sorted(expected_by_agent().items())
    ]


def status_windows(sidecar: Running) -> dict[str, list[tuple[str, float, int | None]]]:
    """status --json: each profile's windows as (name, utilization, resetsAt)."""
    doc = cli_json(sidecar, "status")
    return {
        p["profileId"]: [(w["name"], w["utilization"], w["resetsAt"]) for w in p["windows"]]
        for a in doc["agents"]
        for p in a["profiles"]
        if p["windows"] and a["agent"] == p["owner"]
    }


def test_usage_of_two_agents_is_recorded_exactly_and_survives_a_restart(
    sidecar_factory: SidecarFactory, fake: FakeUpstream, http: httpx.Client, data_dir: Path
) -> None:
    """JSON and SSE answers of two agents: the database, `usage --json`, /metrics' token
    counters and window gauges and `status` hold exactly what the upstream reported, before
    and after a restart."""
    first = start(sidecar_factory, fake, data_dir)
    send_all(http, first)
    expected = expected_by_agent()
    samples = until(lambda: metrics(http, first), lambda s: tokens_by_agent(s) == expected)
    assert tokens_by_agent(samples) == expected
    assert windows(samples) == WINDOWS
    assert first.sidecar.stop() == 0  # SIGTERM: what is still in memory is written

    path = data_dir / db.FILE_NAME
    counts = {"personal": 2, "work": 3}
    assert summary(path) == [
        queries.Summary(agent, counts[agent], 0, counts[agent], Tokens(**totals))
        for agent, totals in sorted(expected.items())
    ]
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT agent, owner, profile, provider, model, status FROM requests ORDER BY id"
        ).fetchall()
    assert rows == [
        ("personal", "personal", "anthropic:personal", "anthropic", "claude-usage-a", 200),
        ("personal", "personal", "anthropic:personal", "anthropic", "claude-usage-b", 200),
        ("work", "work", "openai:work", "openai", "gpt-usage-a", 200),
        ("work", "work", "openai:work", "openai", "gpt-usage-b", 200),
        ("work", "work", "openai:work", "openai", "gpt-usage-c", 200),
    ]

    assert usage_rows(first) == expected_rows()
    requests_window = status_windows(first)["openai:work"]
    assert status_windows(first) == {
        "anthropic:personal": [("5h", 0.42, 1_800_003_600_000), ("7d", 0.18, 1_800_500_000_000)],
        "openai:work": [("requests", 0.2, requests_window[0][2])],
    }

    second = start(sidecar_factory, fake, data_dir)
    samples = metrics(http, second)
    assert (tokens_by_agent(samples), windows(samples)) == (expected, WINDOWS)
    assert usage_rows(second) == expected_rows()
