"""Each OAuth flavour through the real ``serve`` process, against fake token servers that behave
like the real ones: an expired token costs one token call and the request succeeds, concurrent
requests share that call, a rejected refresh token is ``reauth_required``, plus what is
particular to each flavour (optional fields, where its traffic goes)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.refresh_support import (
    CODEX_ID,
    MESSAGES_BODY,
    RESPONSES,
    RESPONSES_BODY,
    Sidecars,
    bearers,
    expect_oauth,
    oauth_profile,
    provider_tables,
    read_profiles,
    write_profiles,
)
from tests.e2e.sidecar import run_cli
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def sidecars(
    tmp_path: Path, token_server: FakeTokenServer, upstream: FakeUpstream
) -> Iterator[Sidecars]:
    """Real sidecars on one state dir, in front of upstreams that check OAuth tokens."""
    expect_oauth(upstream)
    pool = Sidecars(tmp_path, provider_tables(token_server, upstream))
    yield pool
    pool.stop_all()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain client with a safety-net timeout."""
    with httpx.Client(timeout=10.0) as client:
        yield client


# --- openai-codex -------------------------------------------------------------------------------


def test_a_codex_answer_without_a_refresh_token_keeps_the_old_one(
    sidecars: Sidecars, token_server: FakeTokenServer, http: httpx.Client
) -> None:
    """OpenClaw 2026.9.6 keeps the stored refresh token when the answer brings none; so does the
    sidecar, and the next refresh works with it."""
    grant = token_server.seed(access_expires_in=-60)
    write_profiles(sidecars.state_dir, {CODEX_ID: oauth_profile(grant)})
    sidecar = sidecars.start()
    token_server.set_mode("missing_fields", fields=["refresh_token"], times=1)
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    stored = read_profiles(sidecars.state_dir)[CODEX_ID]
    issued = token_server.exchanges[0]
    assert (stored["access"], stored["refresh"]) == (issued["issued_access"], grant.refresh_token)
    token_server.registry.revoke(stored["access"])
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert [e["refresh_token"] for e in token_server.exchanges] == [grant.refresh_token] * 2


def test_a_codex_profile_without_account_id_sends_the_token_s_account(
    sidecars: Sidecars, token_server: FakeTokenServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """No accountId in the profile: chatgpt-account-id is the access token's claim, which the
    Codex backend checks against the token."""
    grant = token_server.seed(account_id="acct_from_claim")
    profile = oauth_profile(grant)
    del profile["accountId"]
    write_profiles(sidecars.state_dir, {CODEX_ID: profile})
    sidecar = sidecars.start()
    assert http.post(sidecar.url() + RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert bearers(upstream) == [grant.access_token]
    assert upstream.requests[0].headers.get("chatgpt-account-id") == "acct_from_claim"


# --- logins nobody here can refresh ---------------------------------------------------------------

MINIMAX = "/minimax-portal/v1/messages"
RADIUS = "/radius/chat/completions"
UNREFRESHED = "unrefreshed-access-token-0123456789"


@pytest.fixture
def unrefreshable(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Sidecars]:
    """minimax-portal (OpenClaw cannot refresh it either) and radius (only OpenClaw's external
    plugin can) at prefixes of the fake upstream, which accepts only ``UNREFRESHED``."""
    upstream.expect("/mm", [UNREFRESHED])
    upstream.expect("/rd", [UNREFRESHED])
    tables = {
        "minimax-portal": {"base_url": upstream.url + "/mm"},
        "radius": {"base_url": upstream.url + "/rd"},
    }
    pool = Sidecars(tmp_path, tables)
    yield pool
    pool.stop_all()


def unrefreshable_profile(provider: str, expires_in_s: int) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": provider,
        "access": UNREFRESHED,
        "refresh": "rt-nobody-can-use",
        "expires": int(time.time() * 1000) + expires_in_s * 1000,
    }


@pytest.mark.parametrize("provider", ["minimax-portal", "radius"])
def test_a_login_nobody_here_refreshes_is_served_until_it_expires(
    unrefreshable: Sidecars,
    token_server: FakeTokenServer,
    upstream: FakeUpstream,
    http: httpx.Client,
    provider: str,
) -> None:
    """Two minutes left (inside the five-minute margin a refresh would start in): the login
    is served as it is, no token call is made, and the upstream's own 401 is passed on."""
    path = MINIMAX if provider == "minimax-portal" else RADIUS
    write_profiles(
        unrefreshable.state_dir, {f"{provider}:me": unrefreshable_profile(provider, 120)}
    )
    sidecar = unrefreshable.start()
    body = MESSAGES_BODY if provider == "minimax-portal" else RESPONSES_BODY
    assert http.post(sidecar.url() + path, json=body).status_code == 200
    assert (token_server.calls, len(upstream.requests)) == (0, 1)
    upstream.clear_expectations()
    upstream.expect("/mm", ["another-token"])
    upstream.expect("/rd", ["another-token"])
    refused = http.post(sidecar.url() + path, json=body)
    assert (refused.status_code, refused.headers.get("x-openclaw-sidecar-error")) == (401, None)
    assert (token_server.calls, len(upstream.requests)) == (0, 2)  # no refresh, no replay


@pytest.mark.parametrize(
    ("provider", "command", "why"),
    [
        (
            "minimax-portal",
            "openclaw models auth login --provider minimax-portal",
            "OpenClaw cannot refresh minimax-portal logins either",
        ),
        (
            "radius",
            "openclaw models auth login --provider radius --profile-id radius:me",
            "the sidecar has no refresh method for radius",
        ),
    ],
)
def test_an_expired_login_nobody_here_refreshes_is_refresh_unavailable_naming_the_command(
    unrefreshable: Sidecars,
    upstream: FakeUpstream,
    http: httpx.Client,
    provider: str,
    command: str,
    why: str,
) -> None:
    """Expired: 503 refresh_unavailable naming the provider and the command to run, nothing
    sent upstream; `status` shows who refreshes it and the same command."""
    path = MINIMAX if provider == "minimax-portal" else RADIUS
    pid = f"{provider}:me"
    write_profiles(unrefreshable.state_dir, {pid: unrefreshable_profile(provider, -60)})
    sidecar = unrefreshable.start()
    body = MESSAGES_BODY if provider == "minimax-portal" else RESPONSES_BODY
    response = http.post(sidecar.url() + path, json=body)
    assert (response.status_code, response.headers["x-openclaw-sidecar-error"]) == (
        503,
        "refresh_unavailable",
    )
    message = response.json()["error"]["message"]
    assert (f"profile {pid} has expired" in message, why in message) == (True, True)
    assert f"`{command}`" in message
    assert upstream.requests == []
    shown = run_cli(["status", "--json"], sidecar.env)
    (entry,) = json.loads(shown.stdout)["agents"][0]["profiles"]
    assert (entry["status"], entry["refresh"]) == (
        "expired",
        "none" if provider == "minimax-portal" else "openclaw",
    )
    assert entry["action"] == message
    table = run_cli(["status"], sidecar.env).stdout
    assert f"{pid}: {message}" in table
