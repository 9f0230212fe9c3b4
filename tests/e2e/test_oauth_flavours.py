"""Each OAuth flavour through the real ``serve`` process, against fake token servers that behave
like the real ones: an expired token costs one token call and the request succeeds, concurrent
requests share that call, a rejected refresh token is ``reauth_required``, plus what is
particular to each flavour (optional fields, where its traffic goes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.refresh_support import (
    CODEX_ID,
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
