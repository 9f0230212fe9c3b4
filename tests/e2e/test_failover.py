"""Failover through the real ``serve`` (issue #19 §1): main holds two OpenAI keys (main's first
in its ``auth-state.json`` order, then a backup), and the fake upstream rate-limits, overloads
or refuses the first. The client makes one call and gets the backup's answer; the first key's
cooldown is in the store; the next request goes straight to the backup; a stream fails over only
before its first byte."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import (
    PREFIXES,
    Canaries,
    Profile,
    Running,
    SidecarFactory,
    canary,
    provider_tables,
)
from tests.e2e.refresh_support import read_state
from tests.e2e.sidecar import run_cli
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
CHAT_PATH = "/openai/v1/chat/completions"
FIRST, BACKUP = "openai:main", "openai:backup"
T = TypeVar("T")


def until(observe: Callable[[], T], done: Callable[[T], bool], seconds: float = 10) -> T:
    deadline = time.monotonic() + seconds
    value = observe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.02)
        value = observe()
    return value


def order_first_then_backup(state_dir: Path, canaries: Canaries) -> None:
    """OpenClaw's stored order for openai: main's key, then the backup."""
    path = state_dir / "agents" / "main" / "agent" / "auth-state.json"
    path.write_text(json.dumps({"version": 1, "order": {"openai": [FIRST, BACKUP]}}, indent=2))


@pytest.fixture
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """A fresh sidecar per test (cooldowns are the state under test)."""
    backup = Profile("main", "openai", BACKUP, canary("sk-backup"))
    return sidecar_factory.start(
        [{"host": "127.0.0.1"}],
        provider_tables(fake.url),
        extra_profiles=[backup],
        prepare=order_first_then_backup,
    )


def keys_used(sidecar: Running, fake: FakeUpstream) -> list[str]:
    """The profile whose key each request to the openai prefix carried, in order."""
    by_key = {sidecar.canaries.keys[p]: p for p in (FIRST, BACKUP)}
    prefix = PREFIXES["openai"]
    return [
        by_key[r.headers["authorization"].removeprefix("Bearer ")]
        for r in fake.requests
        if r.path.startswith(prefix)
    ]


def usage_of(sidecar: Running, profile: str) -> dict[str, Any]:
    try:
        stats: dict[str, Any] = read_state(sidecar.state_dir).get("usageStats", {})
    except FileNotFoundError:
        return {}
    return dict(stats.get(profile, {}))


def completed(sidecar: Running) -> list[dict[str, Any]]:
    return [e for e in sidecar.sidecar.log_events() if e.get("event") == "request_completed"]


def failovers(sidecar: Running, http: httpx.Client) -> list[str]:
    text = http.get(sidecar.url() + "/metrics").text
    lines = text.splitlines()
    return [line for line in lines if line.startswith("openclaw_sidecar_failovers_total")]


def test_a_rate_limited_key_fails_over_in_the_same_request(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """One client call, one 200 from the backup; the first key's cooldown is in the store (its
    window from the failure), and the next request goes to the backup without trying it."""
    fake.limit(sidecar.canaries.keys[FIRST])
    response = http.post(sidecar.url() + CHAT_PATH, json=CHAT)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]
    assert keys_used(sidecar, fake) == [FIRST, BACKUP]
    usage = until(lambda: usage_of(sidecar, FIRST), lambda u: "cooldownUntil" in u)
    assert (usage["cooldownReason"], usage["cooldownUntil"] - usage["lastFailureAt"]) == (
        "rate_limit",
        30_000,
    )
    again = http.post(sidecar.url() + CHAT_PATH, json=CHAT)
    assert (again.status_code, keys_used(sidecar, fake)) == (200, [FIRST, BACKUP, BACKUP])
    lines = until(lambda: completed(sidecar), lambda found: len(found) == 2)
    tried = [line.get("tried") for line in lines]
    assert tried == [[{"profile": FIRST, "status": 429, "reason": "rate_limit"}], None]
    assert failovers(sidecar, http) == [
        'openclaw_sidecar_failovers_total{agent="main",provider="openai",reason="rate_limit"} 1.0'
    ]


def test_a_providers_reset_ends_the_cooldown_and_the_key_comes_back(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The 429 says Retry-After: 1: the first key's cooldown ends 1 s after the failure (not
    the ladder's 30 s); the backup serves meanwhile, and once the second has passed the first
    key is used again."""
    fake.limit(sidecar.canaries.keys[FIRST], headers={"retry-after": "1"})
    assert http.post(sidecar.url() + CHAT_PATH, json=CHAT).status_code == 200
    usage = until(lambda: usage_of(sidecar, FIRST), lambda u: "cooldownUntil" in u)
    assert usage["cooldownUntil"] - usage["lastFailureAt"] == 1_000
    fake.unlimit()
    assert http.post(sidecar.url() + CHAT_PATH, json=CHAT).status_code == 200
    wait = usage["cooldownUntil"] / 1000 - time.time()
    time.sleep(max(0.0, wait) + 0.05)  # the provider's window itself: real time is the point
    assert http.post(sidecar.url() + CHAT_PATH, json=CHAT).status_code == 200
    assert keys_used(sidecar, fake) == [FIRST, BACKUP, BACKUP, FIRST]


@pytest.mark.parametrize(("kind", "status"), [("overloaded", 503), ("billing", 429)])
def test_an_overloaded_or_unpaid_key_fails_over_too(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, kind: str, status: int
) -> None:
    """An overload (no cooldown: it is the provider's, not the key's) and a billing refusal
    (the key disabled) fail over the same way."""
    fake.limit(sidecar.canaries.keys[FIRST], kind)
    response = http.post(sidecar.url() + CHAT_PATH, json=CHAT)
    assert (response.status_code, keys_used(sidecar, fake)) == (200, [FIRST, BACKUP])
    (line,) = until(lambda: completed(sidecar), bool)
    assert line["tried"] == [{"profile": FIRST, "status": status, "reason": kind}]


def test_a_stream_refused_before_its_first_byte_fails_over(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """A streamed chat whose first key is rate-limited: the client's one stream is the
    backup's, complete."""
    fake.limit(sidecar.canaries.keys[FIRST])
    with http.stream("POST", sidecar.url() + CHAT_PATH, json={**CHAT, "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data:")]
    assert (r.status_code, lines[-1], keys_used(sidecar, fake)) == (
        200,
        "data: [DONE]",
        [FIRST, BACKUP],
    )


def test_a_stream_that_broke_after_sending_is_not_replayed(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The upstream drops the stream after two events: the client keeps those two, the stream
    ends, and no other key is tried."""
    fake.set_mode("reset", after=2, times=1)
    with http.stream("POST", sidecar.url() + CHAT_PATH, json={**CHAT, "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data:")]
    assert (r.status_code, len(lines), keys_used(sidecar, fake)) == (200, 2, [FIRST])


def test_a_pinned_request_gets_its_own_429(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """``@openai:main`` never moves: its 429 comes back as the upstream sent it."""
    fake.limit(sidecar.canaries.keys[FIRST], headers={"retry-after": "1"})
    response = http.post(sidecar.url() + f"/openai@{FIRST}/v1/chat/completions", json=CHAT)
    assert (response.status_code, response.headers["retry-after"]) == (429, "1")
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert keys_used(sidecar, fake) == [FIRST]


def test_every_key_cooling_is_one_429_all_profiles_cooling_without_an_upstream_call(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """Both keys rate-limited: the request that finds them so gets the upstream's last 429;
    the next one gets the sidecar's 429 all_profiles_cooling with a Retry-After no longer than
    the first window, and no upstream request is made."""
    for profile in (FIRST, BACKUP):
        fake.limit(sidecar.canaries.keys[profile])
    first = http.post(sidecar.url() + CHAT_PATH, json=CHAT)
    assert (first.status_code, keys_used(sidecar, fake)) == (429, [FIRST, BACKUP])
    assert "x-openclaw-sidecar-error" not in first.headers  # the provider's own answer
    second = http.post(sidecar.url() + CHAT_PATH, json=CHAT)
    assert (second.status_code, second.headers["x-openclaw-sidecar-error"]) == (
        429,
        "all_profiles_cooling",
    )
    assert 1 <= int(second.headers["retry-after"]) <= 30
    assert second.json()["error"]["code"] == "all_profiles_cooling"
    assert keys_used(sidecar, fake) == [FIRST, BACKUP]


def test_cooldowns_lists_the_rested_key_and_clear_brings_it_back(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """`cooldowns --json` shows the first key resting (rate_limit, its end); `cooldowns clear`
    ends it in the store, and the running sidecar uses it again within a second."""
    fake.limit(sidecar.canaries.keys[FIRST], times=1)
    assert http.post(sidecar.url() + CHAT_PATH, json=CHAT).status_code == 200
    usage = until(lambda: usage_of(sidecar, FIRST), lambda u: "cooldownUntil" in u)
    listed = run_cli(["cooldowns", "--agent", "main", "--json"], sidecar.env)
    assert [
        (e["profileId"], e["reason"], e["until"]) for e in json.loads(listed.stdout)["cooldowns"]
    ] == [(FIRST, "rate_limit", usage["cooldownUntil"])]
    cleared = run_cli(["cooldowns", "clear", "--profile-id", FIRST], sidecar.env)
    assert (cleared.returncode, cleared.stderr) == (0, "")

    def next_key() -> str:
        assert http.post(sidecar.url() + CHAT_PATH, json=CHAT).status_code == 200
        return keys_used(sidecar, fake)[-1]

    assert until(next_key, lambda key: key == FIRST, seconds=5) == FIRST
