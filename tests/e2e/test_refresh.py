"""OAuth refresh through the real ``serve`` process: single flight under 200 concurrent requests,
refresh-and-replay on an upstream 401, Anthropic's JSON refresh, the failure answers, falling
through to the next profile, and the background refresher."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.e2e.refresh_support import (
    ANTHROPIC_ID,
    ANTHROPIC_PREFIX,
    CODEX_ID,
    MESSAGES,
    MESSAGES_BODY,
    RESPONSES,
    RESPONSES_BODY,
    Sidecars,
    bearers,
    events,
    expect_oauth,
    in_flight_of,
    oauth_profile,
    provider_tables,
    read_profiles,
    read_state,
    state_path,
    wait_until,
    write_profiles,
)
from tests.fakes.token_server import ANTHROPIC_CLIENT_ID, OPENAI_CLIENT_ID, FakeTokenServer
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

CONCURRENT = 200
SETUP_TOKEN = "sk-ant-oat01-" + "S" * 80


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sidecars(
    tmp_path: Path, token_server: FakeTokenServer, upstream: FakeUpstream
) -> Iterator[Sidecars]:
    """Real sidecars on one state dir, in front of upstreams that check OAuth tokens."""
    expect_oauth(upstream, SETUP_TOKEN)
    pool = Sidecars(tmp_path, provider_tables(token_server, upstream))
    yield pool
    pool.stop_all()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain client with a safety-net timeout."""
    with httpx.Client(timeout=10.0) as client:
        yield client


def seed_codex(
    sidecars: Sidecars, tokens: FakeTokenServer, expires_in: int, **extra: Any
) -> dict[str, Any]:
    """A Codex OAuth profile whose access token expires in ``expires_in`` seconds."""
    grant = tokens.seed(access_expires_in=expires_in)
    profile = oauth_profile(grant, **extra)
    write_profiles(sidecars.state_dir, {CODEX_ID: profile})
    return profile


def error_of(response: httpx.Response) -> tuple[int, str | None, dict[str, Any]]:
    """Status, the sidecar's error-code header, and the JSON body."""
    return response.status_code, response.headers.get("x-openclaw-sidecar-error"), response.json()


@pytest.mark.anyio
async def test_200_concurrent_requests_with_an_expired_token_make_one_token_call(
    sidecars: Sidecars, token_server: FakeTokenServer, upstream: FakeUpstream
) -> None:
    """200 requests that all find the token expired share one refresh and all succeed."""
    old = seed_codex(sidecars, token_server, -60, displayName="Alice", chatgptPlanType="plus")
    sidecar = sidecars.start()
    token_server.set_mode("hold")  # park the refresh until every request waits on it
    limits = httpx.Limits(max_connections=CONCURRENT + 10)
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=sidecar.url(), limits=limits, timeout=30) as client:

        async def one() -> None:
            response = await client.post(RESPONSES, json=RESPONSES_BODY)
            statuses.append(response.status_code)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(CONCURRENT):
                    tg.start_soon(one)
                assert await anyio.to_thread.run_sync(token_server.held.wait, 10)
                while in_flight_of(await client.get("/metrics")) < CONCURRENT:
                    pass
                token_server.release()
    assert (statuses, token_server.calls) == ([200] * CONCURRENT, 1)
    issued = token_server.exchanges[0]
    assert set(bearers(upstream)) == {issued["issued_access"]}
    assert len(bearers(upstream)) == CONCURRENT
    stored = read_profiles(sidecars.state_dir)[CODEX_ID]
    assert stored == {
        **old,
        "access": issued["issued_access"],
        "refresh": issued["issued_refresh"],
        "expires": stored["expires"],
        "idToken": stored["idToken"],
    }
    assert stored["expires"] > time.time() * 1000 + 3_000_000


def test_the_wait_for_a_refresh_is_logged_and_measured_per_request(
    sidecars: Sidecars, token_server: FakeTokenServer, http: httpx.Client
) -> None:
    """credential_ms in each request's log line, and openclaw_sidecar_credential_seconds in
    /metrics: a request that waited on a 300 ms token call says so; the next one did not wait."""
    seed_codex(sidecars, token_server, -60)
    sidecar = sidecars.start()
    token_server.set_mode("slow", delay_ms=300)
    for _ in range(2):
        assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    wait_until("both log lines", lambda: len(events(sidecar, "request_completed")) == 2)
    waited, cached = (e["credential_ms"] for e in events(sidecar, "request_completed"))
    assert (waited >= 300, cached < 100) == (True, True), (waited, cached)
    metrics = http.get(sidecar.url() + "/metrics").text
    count = 'openclaw_sidecar_credential_seconds_count{agent="main",provider="openai-codex"} 2.0'
    assert count in metrics
    within = 'openclaw_sidecar_credential_seconds_bucket{agent="main",le="0.25",'
    within += 'provider="openai-codex"}'
    assert f"{within} 1.0" in metrics  # the cached one; the other waited longer


def test_a_revoked_token_is_refreshed_once_and_the_request_replayed(
    sidecars: Sidecars, token_server: FakeTokenServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """An upstream 401 for a still-unexpired token: one refresh, one replay, then success."""
    old = seed_codex(sidecars, token_server, 3600)
    sidecar = sidecars.start()
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert token_server.registry.revoke(old["access"]) == 1
    response = http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY)
    assert (response.status_code, token_server.calls) == (200, 1)
    new = token_server.exchanges[0]["issued_access"]
    assert bearers(upstream) == [old["access"], old["access"], new]
    assert upstream.requests[2].body == upstream.requests[1].body
    assert read_profiles(sidecars.state_dir)[CODEX_ID]["access"] == new
    assert len(events(sidecar, "request_replayed")) == 1


def test_a_body_over_the_replay_limit_gets_the_401_passed_through(
    sidecars: Sidecars, token_server: FakeTokenServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """A body larger than replay_body_limit_bytes is not replayed; the 401 reaches the client."""
    old = seed_codex(sidecars, token_server, 3600)
    sidecar = sidecars.start(replay_body_limit_bytes=1024)
    token_server.registry.revoke(old["access"])
    big = {**RESPONSES_BODY, "input": "x" * 4096}
    response = http.post(sidecar.url() + RESPONSES, json=big)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"  # the upstream's own answer
    assert bearers(upstream) == [old["access"]]
    skipped = events(sidecar, "replay_skipped")
    assert [(e["profile"], e["reason"]) for e in skipped] == [
        (CODEX_ID, "request body larger than refresh.replay_body_limit_bytes")
    ]
    small = http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY)
    assert (small.status_code, token_server.calls) == (200, 1)


def test_an_anthropic_oauth_profile_refreshes_with_a_json_body_and_early_expiry(
    sidecars: Sidecars, token_server: FakeTokenServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """Anthropic refreshes take a JSON body and the expiry is stored five minutes early."""
    grant = token_server.seed(style="anthropic", access_expires_in=-60)
    write_profiles(sidecars.state_dir, {ANTHROPIC_ID: oauth_profile(grant, provider="anthropic")})
    sidecar = sidecars.start()
    before = int(time.time() * 1000)
    response = http.post(sidecar.url() + MESSAGES, json=MESSAGES_BODY)
    after = int(time.time() * 1000)
    assert (response.status_code, token_server.calls) == (200, 1)
    call = token_server.exchanges[0]
    assert (call["endpoint"], call["body_format"], call["params"]) == (
        "anthropic",
        "json",
        {
            "grant_type": "refresh_token",
            "client_id": ANTHROPIC_CLIENT_ID,
            "refresh_token": grant.refresh_token,
        },
    )
    stored = read_profiles(sidecars.state_dir)[ANTHROPIC_ID]
    assert (stored["access"], stored["refresh"]) == (call["issued_access"], call["issued_refresh"])
    lifetime_ms = token_server.registry.access_lifetime * 1000
    assert before + lifetime_ms - 300_000 <= stored["expires"] <= after + lifetime_ms - 300_000
    assert bearers(upstream, ANTHROPIC_PREFIX) == [call["issued_access"]]


def test_the_codex_refresh_is_a_form_post_with_the_client_id(
    sidecars: Sidecars, token_server: FakeTokenServer, http: httpx.Client
) -> None:
    """The Codex refresh is a form body of grant_type, refresh_token and client_id."""
    old = seed_codex(sidecars, token_server, -60)
    sidecar = sidecars.start()
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    call = token_server.exchanges[0]
    assert (call["endpoint"], call["body_format"], call["params"]) == (
        "openai",
        "form",
        {
            "grant_type": "refresh_token",
            "refresh_token": old["refresh"],
            "client_id": OPENAI_CLIENT_ID,
        },
    )


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        (RESPONSES, RESPONSES_BODY, "openai"),
        (MESSAGES, MESSAGES_BODY, "anthropic"),
    ],
)
def test_a_token_endpoint_that_is_down_gives_503_and_keeps_the_old_token(
    sidecars: Sidecars,
    token_server: FakeTokenServer,
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    shape: str,
) -> None:
    """Token endpoint down: 503 refresh_unavailable in the provider's shape, store unchanged,
    and no failure counted against the login (OpenClaw 2026.9.6 marks no timeout before the
    provider was reached)."""
    provider = "anthropic" if shape == "anthropic" else "openai-codex"
    grant = token_server.seed(
        style="openai" if shape == "openai" else "anthropic", access_expires_in=-60
    )
    pid = CODEX_ID if shape == "openai" else ANTHROPIC_ID
    written = write_profiles(sidecars.state_dir, {pid: oauth_profile(grant, provider=provider)})
    before = written.read_bytes()
    sidecar = sidecars.start()
    token_server.set_mode("down")
    status, code, payload = error_of(http.post(sidecar.url() + path, json=body))
    assert (status, code) == (503, "refresh_unavailable")
    if shape == "openai":
        error = payload["error"]
        assert (error["type"], error["code"]) == ("api_error", "refresh_unavailable")
    else:
        assert (payload["type"], payload["error"]["type"]) == ("error", "overloaded_error")
    assert "the old token is kept" in str(payload)
    assert written.read_bytes() == before
    assert sidecar.stop() == 0  # flushes the usage it recorded
    assert not state_path(sidecars.state_dir).exists()


def test_a_token_endpoint_slower_than_the_timeout_gives_503(
    sidecars: Sidecars, token_server: FakeTokenServer, http: httpx.Client
) -> None:
    """A token endpoint that answers after [refresh] timeout_seconds gives 503 in time."""
    seed_codex(sidecars, token_server, -60)
    before = read_profiles(sidecars.state_dir)
    sidecar = sidecars.start(timeout_seconds=1)
    token_server.set_mode("slow", delay_ms=4000)
    started = time.monotonic()
    status, code, payload = error_of(http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY))
    elapsed = time.monotonic() - started
    assert (status, code) == (503, "refresh_unavailable")
    assert "did not answer within 1 s" in payload["error"]["message"]
    assert 1 <= elapsed < 3.5
    assert read_profiles(sidecars.state_dir) == before
    # The token call goes on after the request's 503: the provider's late rotation is saved.
    wait_until("the late answer saved", lambda: read_profiles(sidecars.state_dir) != before, 15)
    saved = read_profiles(sidecars.state_dir)[CODEX_ID]["refresh"]
    assert token_server.registry.refresh_tokens[saved].status == "active"


def test_a_rejected_refresh_gives_401_reauth_required_naming_the_command(
    sidecars: Sidecars, token_server: FakeTokenServer, http: httpx.Client
) -> None:
    """A refused refresh token gives 401 reauth_required whose message says what to run."""
    seed_codex(sidecars, token_server, -60)
    sidecar = sidecars.start()
    token_server.set_mode("reject")
    status, code, payload = error_of(http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY))
    assert (status, code) == (401, "reauth_required")
    assert "openclaw-sidecar login --provider openai-codex" in payload["error"]["message"]


def test_a_failing_oauth_profile_falls_through_to_the_next_and_is_recorded(
    sidecars: Sidecars, token_server: FakeTokenServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """The OAuth profile's refresh is refused; the request succeeds with the next profile and
    the failure lands in usageStats."""
    grant = token_server.seed(style="anthropic", access_expires_in=-60)
    token = {"type": "token", "provider": "anthropic", "token": SETUP_TOKEN}
    profiles = {ANTHROPIC_ID: oauth_profile(grant, provider="anthropic"), "anthropic:setup": token}
    write_profiles(sidecars.state_dir, profiles)
    sidecar = sidecars.start()
    token_server.set_mode("reject")
    response = http.post(sidecar.url() + MESSAGES, json=MESSAGES_BODY)
    assert (response.status_code, token_server.calls) == (200, 1)
    assert bearers(upstream, ANTHROPIC_PREFIX) == [SETUP_TOKEN]
    assert sidecar.stop() == 0  # flushes the usage it recorded
    state = read_state(sidecars.state_dir)
    failed = state["usageStats"][ANTHROPIC_ID]
    assert (failed["errorCount"], failed["failureCounts"]) == (1, {"auth_permanent": 1})
    assert failed["disabledReason"] == "auth_permanent"
    assert state["lastGood"] == {"anthropic": "anthropic:setup"}
    assert read_profiles(sidecars.state_dir) == profiles


def test_the_background_refresher_refreshes_a_profile_in_use_before_it_is_due(
    sidecars: Sidecars, token_server: FakeTokenServer, http: httpx.Client
) -> None:
    """A profile used once is refreshed by the background pass, with no request waiting."""
    sidecar = sidecars.start(background_interval_seconds=1)
    # Usable for 4 s more (OpenClaw's 5-minute margin), so due within the 2 s lookahead soon.
    old = seed_codex(sidecars, token_server, 304)
    # serve read the empty store at start; its view is re-checked within a second.
    wait_until("the profile to be seen", lambda: ready_profiles(http, sidecar.url()) == 1)
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert token_server.calls == 0  # the request itself did not refresh
    assert token_server.registry.wait_arrivals(1, timeout=10)
    wait_until("the token call to finish", lambda: token_server.calls == 1)
    wait_until(
        "the refreshed token on disk",
        lambda: read_profiles(sidecars.state_dir)[CODEX_ID]["refresh"] != old["refresh"],
    )
    assert in_flight_of(http.get(sidecar.url() + "/metrics")) == 0
    call = token_server.exchanges[0]
    assert call["time"] * 1000 < old["expires"] - 300_000  # before a request would wait on it
    stored = read_profiles(sidecars.state_dir)[CODEX_ID]
    assert stored["refresh"] == call["issued_refresh"]
    assert stored["expires"] > old["expires"]
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert token_server.calls == 1


def ready_profiles(http: httpx.Client, url: str) -> int:
    """How many profiles /readyz says the default agent has."""
    return int(http.get(url + "/readyz").json().get("profiles", 0))
