"""Operations on the real process: /healthz, /readyz (503 with a reason for a corrupt store),
/metrics (request counts by agent and provider, no secret), one log line per request, and a
profile added by the CLI while the sidecar runs used without a restart."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import (
    PREFIXES,
    Profile,
    Running,
    SidecarFactory,
    canary,
    openai_style,
    provider_tables,
    seed,
    sidecar_error,
)
from tests.e2e.sidecar import cli_env
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

T = TypeVar("T")
# The store is re-checked at most once a second (its cache interval); this is only a safety net.
DEADLINE_S = 10.0
CHAT: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "claude-fake",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
CORRUPT = b"{ this is not json"


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """A shared listener in front of the fake."""
    return sidecar_factory.start([{"host": "127.0.0.1"}], provider_tables(fake.url))


@pytest.fixture(scope="module")
def corrupt(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """A sidecar whose main store stopped parsing after it started."""
    running = sidecar_factory.start([{"host": "127.0.0.1"}], provider_tables(fake.url))
    profiles = running.state_dir / "agents" / "main" / "agent" / "auth-profiles.json"
    profiles.write_bytes(CORRUPT)
    return running


def until(observe: Callable[[], T], done: Callable[[T], bool]) -> T:
    """Observe (each call a real request or read) until ``done``; the deadline is a safety net
    for a change the sidecar notices on its own schedule, not an ordering sleep."""
    deadline = time.monotonic() + DEADLINE_S
    value = observe()
    while not done(value) and time.monotonic() < deadline:
        value = observe()
    return value


def request_counts(http: httpx.Client, sidecar: Running) -> dict[tuple[str, str, str], float]:
    """openclaw_sidecar_requests_total by (agent, provider, status), from /metrics."""
    text = http.get(sidecar.url() + "/metrics").text
    counts: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("openclaw_sidecar_requests_total{"):
            labels, _, value = line.removeprefix("openclaw_sidecar_requests_total").rpartition(" ")
            fields = dict(
                item.split("=", 1) for item in labels.strip("{}").split(",") if "=" in item
            )
            key = tuple(fields[name].strip('"') for name in ("agent", "provider", "status"))
            counts[(key[0], key[1], key[2])] = float(value)
    return counts


def delta(
    after: dict[tuple[str, str, str], float], before: dict[tuple[str, str, str], float]
) -> dict[tuple[str, str, str], float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_healthz(sidecar: Running, http: httpx.Client) -> None:
    """/healthz says the process is alive, on GET and HEAD."""
    response = http.get(sidecar.url() + "/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert http.head(sidecar.url() + "/healthz").status_code == 200


def test_readyz(sidecar: Running, http: httpx.Client) -> None:
    """/readyz reports the default agent's store readable, with its profile count."""
    response = http.get(sidecar.url() + "/readyz")
    body = response.json()
    assert (response.status_code, body) == (
        200,
        {"status": "ready", "agent": "main", "store": body["store"], "profiles": 3},
    )
    assert isinstance(body["store"], str)


def test_readyz_corrupt_store(corrupt: Running, http: httpx.Client) -> None:
    """A store that does not parse: /readyz is 503 with the reason, /healthz still 200, a
    request is 500 store_unreadable, and the file is left byte for byte as it was."""
    profiles = corrupt.state_dir / "agents" / "main" / "agent" / "auth-profiles.json"
    # serve read the store once at start (its `serving` line): the change shows within the
    # store's check interval.
    response = until(lambda: http.get(corrupt.url() + "/readyz"), lambda r: r.status_code != 200)
    body = response.json()
    assert (response.status_code, body["status"], body["code"]) == (
        503,
        "unready",
        "store_unreadable",
    )
    assert str(profiles) in body["reason"]
    assert http.get(corrupt.url() + "/healthz").status_code == 200
    failed = http.post(corrupt.url() + "/openai/v1/chat/completions", json=CHAT)
    assert sidecar_error(failed) == openai_style(500, "store_unreadable", "api_error")
    assert profiles.read_bytes() == CORRUPT


def test_metrics_count_requests_by_agent_and_provider(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """/metrics is Prometheus text; requests are counted by agent, provider and status."""
    keys = sidecar.canaries.keys
    fake.expect(PREFIXES["openai"], [keys["openai:main"]])
    fake.expect(PREFIXES["anthropic"], [keys["anthropic:work"]])
    before = request_counts(http, sidecar)
    for _ in range(2):
        assert http.post(sidecar.url() + "/openai/v1/chat/completions", json=CHAT).is_success
    anthropic = http.post(
        sidecar.url() + "/agents/work/anthropic/v1/messages",
        json=MESSAGE,
        headers={"anthropic-version": "2023-06-01"},
    )
    assert anthropic.is_success
    missing = http.post(sidecar.url() + "/openrouter/v1/chat/completions", json=CHAT)
    assert missing.status_code == 404
    expected = {
        ("main", "openai", "200"): 2.0,
        ("work", "anthropic", "200"): 1.0,
        ("main", "openrouter", "404"): 1.0,
    }
    # Counted as each exchange ends, just after its last byte went out.
    after = until(lambda: request_counts(http, sidecar), lambda c: delta(c, before) == expected)
    assert delta(after, before) == expected
    page = http.get(sidecar.url() + "/metrics")
    assert page.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE openclaw_sidecar_request_seconds histogram" in page.text
    assert sidecar.canaries.found_in(page.text) == []


def test_one_log_line_per_request(sidecar: Running, fake: FakeUpstream, http: httpx.Client) -> None:
    """Each proxied request logs request_completed with method, path (never the query), agent,
    provider, profile and status."""
    fake.expect(PREFIXES["openai"], [sidecar.canaries.keys["openai:personal"]])
    marker = {"X-OpenClaw-Agent": "personal"}
    url = sidecar.url() + "/openai/v1/chat/completions?api-version=sk-query-0123456789abcdef"
    response = http.post(url, json=CHAT, headers=marker)
    assert response.status_code == 200

    def personal_lines() -> list[dict[str, Any]]:
        return [
            {k: e[k] for k in ("method", "path", "agent", "provider", "profile", "status", "error")}
            for e in sidecar.sidecar.log_events()
            if e.get("event") == "request_completed" and e.get("agent") == "personal"
        ]

    lines = until(personal_lines, lambda found: len(found) >= 1)
    assert lines == [
        {
            "method": "POST",
            "path": "/openai/v1/chat/completions",
            "agent": "personal",
            "provider": "openai",
            "profile": "openai:personal",
            "status": 200,
            "error": None,
        }
    ]
    assert "sk-query" not in sidecar.sidecar.logs()


def test_profile_added_while_running_is_used(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """A profile stored by the CLI while the sidecar runs is used without a restart."""
    url = sidecar.url() + "/openai@openai:added/v1/chat/completions"
    before = http.post(url, json=CHAT)
    assert sidecar_error(before) == openai_style(404, "no_profile", "not_found_error")
    secret = sidecar.canaries.add("openai:added", canary("sk"))
    fake.expect(PREFIXES["openai"], [secret])
    env = cli_env(sidecar.state_dir, sidecar.workdir)
    seed(env, Profile("main", "openai", "openai:added", secret))
    after = until(lambda: http.post(url, json=CHAT), lambda r: r.status_code != 404)
    assert after.status_code == 200
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {secret}"]


def test_an_idle_keep_alive_connection_outlives_the_clients_expiry(sidecar: Running) -> None:
    """A connection left idle longer than httpx keeps one (5 s, uvicorn's default timeout too)
    is still open: a client reusing it at its expiry never races the sidecar closing it."""
    conn = http.client.HTTPConnection("127.0.0.1", sidecar.sidecar.ports[0], timeout=5)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b'{"status":"ok"}'
        first = conn.sock.getsockname()
        time.sleep(6.5)
        conn.request("GET", "/healthz")  # RemoteDisconnected if the sidecar had closed it
        assert conn.getresponse().read() == b'{"status":"ok"}'
        assert conn.sock.getsockname() == first  # the same connection, not a new one
    finally:
        conn.close()
