"""Each OAuth flavour through the real ``serve`` process, against fake token servers that behave
like the real ones: an expired token costs one token call and the request succeeds, concurrent
requests share that call, a rejected refresh token is ``reauth_required``, plus what is
particular to each flavour (optional fields, where its traffic goes)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
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
    in_flight_of,
    oauth_profile,
    provider_tables,
    read_profiles,
    write_profiles,
)
from tests.e2e.sidecar import run_cli
from tests.fakes.flavour_server import (
    CHUTES_CLIENT_ID,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    XAI_CLIENT_ID,
    XAI_TOKEN_PATH,
    FlavourServer,
    Seeded,
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


def error_of(response: httpx.Response) -> tuple[int, str | None, dict[str, Any]]:
    """Status, the sidecar's error-code header, and the JSON body."""
    return response.status_code, response.headers.get("x-openclaw-sidecar-error"), response.json()


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


# --- the flavours' fakes ------------------------------------------------------------------------

XAI_RESPONSES = "/xai/responses"
CONCURRENT = 40


@pytest.fixture
def flavours(token_server: FakeTokenServer) -> Iterator[FlavourServer]:
    """xAI, Chutes, Google and GitHub's fakes, issuing tokens the fake upstream checks."""
    with FlavourServer(token_server.registry) as server:
        yield server


@pytest.fixture
def flavoured(
    tmp_path: Path, flavours: FlavourServer, upstream: FakeUpstream
) -> Iterator[Sidecars]:
    """Sidecars whose OAuth providers refresh at the fakes and send to prefixes of the fake
    upstream, which takes only valid access tokens there."""
    for prefix in ("/grok", "/xai-api", "/chutes", "/gemini", "/copilot"):
        upstream.expect(prefix, oauth=True)
    tables = {
        "xai": {
            "base_url": upstream.url + "/xai-api/v1",
            "oauth_base_url": upstream.url + "/grok/v1",
            "issuer": flavours.url + "/xai",
        },
        "chutes": {
            "base_url": upstream.url + "/chutes/v1",
            "token_url": flavours.url + "/idp/token",
        },
        "google-gemini-cli": {
            "base_url": upstream.url + "/gemini",
            "token_url": flavours.url + "/google/token",
        },
        "github-copilot": {
            "base_url": upstream.url + "/copilot",
            "issuer": flavours.url + "/github",
        },
    }
    pool = Sidecars(tmp_path, tables)
    yield pool
    pool.stop_all()


def flavour_profile(provider: str, seeded: Seeded, **extra: Any) -> dict[str, Any]:
    """An OAuth profile as OpenClaw writes it for ``seeded``."""
    return {
        "type": "oauth",
        "provider": provider,
        "access": seeded.access,
        "refresh": seeded.refresh,
        "expires": seeded.expires_ms,
        "email": seeded.identity.email,
        **seeded.extra,
        **extra,
    }


async def held_requests(
    sidecar_url: str, path: str, body: Mapping[str, Any], server: FlavourServer, count: int
) -> list[int]:
    """``count`` requests while ``server`` holds its token calls, released once all of them
    wait on the refresh; their statuses."""
    server.set_mode("hold")
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=count + 5)
    async with httpx.AsyncClient(base_url=sidecar_url, limits=limits, timeout=30) as client:

        async def one() -> None:
            statuses.append((await client.post(path, json=body)).status_code)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(one)
                assert await anyio.to_thread.run_sync(server.held.wait, 10)
                while in_flight_of(await client.get("/metrics")) < count:
                    pass
                server.release()
    return statuses


# --- xai ----------------------------------------------------------------------------------------

XAI_ID = "xai:ada@example.com"
XAI_LEGACY = {
    "tokenEndpoint": "https://auth.x.ai/oauth2/token",
    "issuer": "https://auth.x.ai",
    "authFlow": "device-code",
}


def test_an_expired_xai_login_is_refreshed_where_discovery_says_and_sent_to_the_grok_proxy(
    flavoured: Sidecars, flavours: FlavourServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """Expired: discovery at the configured issuer (the stored x.ai endpoint is not that
    issuer's), one grant, the request goes to the Grok CLI proxy with OpenClaw's headers; the
    rotated token, the endpoint and the identity are stored; the next refresh skips discovery."""
    seeded = flavours.seed("xai", expires_in=-60)
    old = flavour_profile("xai", seeded, **XAI_LEGACY)
    write_profiles(flavoured.state_dir, {XAI_ID: old})
    sidecar = flavoured.start()
    response = http.post(sidecar.url() + XAI_RESPONSES, json=RESPONSES_BODY)
    assert response.status_code == 200
    assert [(c["flavour"], c["method"]) for c in flavours.calls] == [
        ("xai-discovery", "GET"),
        ("xai", "POST"),
    ]
    grant_call = flavours.calls[1]
    assert grant_call["params"] == {
        "grant_type": "refresh_token",
        "client_id": XAI_CLIENT_ID,
        "refresh_token": seeded.refresh,
    }
    assert grant_call["headers"]["user-agent"] == "openclaw/2026.9.6"
    (sent,) = upstream.requests
    assert sent.path == "/grok/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {grant_call['issued_access']}"
    assert (sent.headers["x-xai-token-auth"], sent.headers["x-grok-client-version"]) == (
        "xai-grok-cli",
        "2026.9.6",
    )
    stored = read_profiles(flavoured.state_dir)[XAI_ID]
    endpoint = flavours.url + XAI_TOKEN_PATH
    assert stored == {
        **old,
        "access": grant_call["issued_access"],
        "refresh": grant_call["issued_refresh"],
        "expires": stored["expires"],
        "idToken": stored["idToken"],
        "accountId": seeded.identity.account_id,
        "displayName": "Ada L",
        "tokenEndpoint": endpoint,
        "issuer": flavours.url + "/xai",
    }
    flavours.registry.revoke(stored["access"])  # a 401 upstream: refreshed and replayed
    assert http.post(sidecar.url() + XAI_RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert [c["flavour"] for c in flavours.calls] == ["xai-discovery", "xai", "xai"]
    assert flavours.calls[2]["params"]["refresh_token"] == grant_call["issued_refresh"]


@pytest.mark.anyio
async def test_concurrent_requests_on_an_expired_xai_login_make_one_grant(
    flavoured: Sidecars, flavours: FlavourServer
) -> None:
    """Forty requests that all find the xAI login expired share one refresh (stored endpoint:
    no discovery) and all succeed."""
    seeded = flavours.seed("xai", expires_in=-60)
    endpoint = {"tokenEndpoint": flavours.url + XAI_TOKEN_PATH}
    write_profiles(flavoured.state_dir, {XAI_ID: flavour_profile("xai", seeded, **endpoint)})
    sidecar = flavoured.start()
    statuses = await held_requests(
        sidecar.url(), XAI_RESPONSES, RESPONSES_BODY, flavours, CONCURRENT
    )
    assert (statuses, [c["flavour"] for c in flavours.calls]) == ([200] * CONCURRENT, ["xai"])


def test_a_rejected_xai_refresh_token_is_reauth_required_naming_openclaw_s_login(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """xAI refuses the refresh token (invalid_grant): 401 reauth_required, OpenClaw's login."""
    seeded = flavours.seed("xai", expires_in=-60)
    write_profiles(flavoured.state_dir, {XAI_ID: flavour_profile("xai", seeded)})
    sidecar = flavoured.start()
    flavours.set_mode("reject")
    status, code, payload = error_of(http.post(sidecar.url() + XAI_RESPONSES, json=RESPONSES_BODY))
    assert (status, code) == (401, "reauth_required")
    assert payload["error"]["message"] == (
        "xai refused the sign-in (invalid_grant); sign in again with OpenClaw: "
        "`openclaw models auth login --provider xai`"
    )


def test_an_xai_answer_without_a_refresh_token_keeps_the_old_one(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """The refresh token is optional in xAI's answer: the stored one stays."""
    seeded = flavours.seed("xai", expires_in=-60)
    write_profiles(flavoured.state_dir, {XAI_ID: flavour_profile("xai", seeded)})
    sidecar = flavoured.start()
    flavours.set_mode("omit", fields=("refresh_token", "id_token"))
    assert http.post(sidecar.url() + XAI_RESPONSES, json=RESPONSES_BODY).status_code == 200
    assert read_profiles(flavoured.state_dir)[XAI_ID]["refresh"] == seeded.refresh


def test_an_xai_api_key_still_goes_to_api_x_ai(
    flavoured: Sidecars, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """Only OAuth logins go to the Grok CLI proxy; an API key goes to xAI's API, as it is."""
    upstream.expect("/xai-api", ["xai-key-0123456789"])
    key = {"type": "api_key", "provider": "xai", "key": "xai-key-0123456789"}
    write_profiles(flavoured.state_dir, {"xai:key": key})
    sidecar = flavoured.start()
    assert http.post(sidecar.url() + XAI_RESPONSES, json=RESPONSES_BODY).status_code == 200
    (sent,) = upstream.requests
    assert (sent.path, "x-xai-token-auth" in sent.headers) == ("/xai-api/v1/responses", False)


# --- chutes -----------------------------------------------------------------------------------

CHUTES_ID = "chutes:ada@example.com"
CHUTES_CHAT = "/chutes/chat/completions"
CHAT_BODY: Mapping[str, Any] = {"model": "deepseek-ai/DeepSeek-V3", "messages": []}


def test_an_expired_chutes_login_makes_one_call_and_keeps_its_client(
    flavoured: Sidecars, flavours: FlavourServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """Expired: one form post with the profile's clientId, the request succeeds, the rotated
    token stored with the expiry five minutes early and clientId kept."""
    seeded = flavours.seed("chutes", expires_in=-60)
    old = flavour_profile("chutes", seeded)
    write_profiles(flavoured.state_dir, {CHUTES_ID: old})
    sidecar = flavoured.start()
    before = int(time.time() * 1000)
    assert http.post(sidecar.url() + CHUTES_CHAT, json=CHAT_BODY).status_code == 200
    (call,) = flavours.calls
    assert (call["params"], call["headers"]["content-type"]) == (
        {
            "grant_type": "refresh_token",
            "client_id": CHUTES_CLIENT_ID,
            "refresh_token": seeded.refresh,
        },
        "application/x-www-form-urlencoded",
    )
    stored = read_profiles(flavoured.state_dir)[CHUTES_ID]
    assert stored == {
        **old,
        "access": call["issued_access"],
        "refresh": call["issued_refresh"],
        "expires": stored["expires"],
    }
    assert before + 3_300_000 - 5_000 <= stored["expires"] <= before + 3_300_000 + 30_000
    assert bearers(upstream, "/chutes") == [call["issued_access"]]


def test_a_chutes_login_without_client_id_uses_the_environment_s_client_and_secret(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """No clientId in the profile: $CHUTES_CLIENT_ID, and $CHUTES_CLIENT_SECRET, as OpenClaw
    reads them; the client id is stored with the new token."""
    flavours.chutes_secret = "cs_fake_secret"
    seeded = flavours.seed("chutes", expires_in=-60)
    profile = flavour_profile("chutes", seeded)
    del profile["clientId"]
    write_profiles(flavoured.state_dir, {CHUTES_ID: profile})
    env = {"CHUTES_CLIENT_ID": CHUTES_CLIENT_ID, "CHUTES_CLIENT_SECRET": "cs_fake_secret"}
    sidecar = flavoured.start(env=env)
    assert http.post(sidecar.url() + CHUTES_CHAT, json=CHAT_BODY).status_code == 200
    assert flavours.calls[0]["params"]["client_secret"] == "cs_fake_secret"
    assert read_profiles(flavoured.state_dir)[CHUTES_ID]["clientId"] == CHUTES_CLIENT_ID


@pytest.mark.anyio
async def test_concurrent_requests_on_an_expired_chutes_login_make_one_call(
    flavoured: Sidecars, flavours: FlavourServer
) -> None:
    """Forty requests on an expired Chutes login share one token call and all succeed."""
    seeded = flavours.seed("chutes", expires_in=-60)
    write_profiles(flavoured.state_dir, {CHUTES_ID: flavour_profile("chutes", seeded)})
    sidecar = flavoured.start()
    statuses = await held_requests(sidecar.url(), CHUTES_CHAT, CHAT_BODY, flavours, CONCURRENT)
    assert (statuses, len(flavours.calls)) == ([200] * CONCURRENT, 1)


def test_a_rejected_chutes_refresh_token_is_reauth_required(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """Chutes refuses the refresh token: 401 reauth_required naming OpenClaw's login."""
    seeded = flavours.seed("chutes", expires_in=-60)
    write_profiles(flavoured.state_dir, {CHUTES_ID: flavour_profile("chutes", seeded)})
    sidecar = flavoured.start()
    flavours.set_mode("reject")
    status, code, payload = error_of(http.post(sidecar.url() + CHUTES_CHAT, json=CHAT_BODY))
    assert (status, code) == (401, "reauth_required")
    assert "`openclaw models auth login --provider chutes`" in payload["error"]["message"]


def test_a_chutes_answer_without_a_refresh_token_keeps_the_old_one(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """The refresh token is optional in Chutes' answer (newRefresh || refreshToken)."""
    seeded = flavours.seed("chutes", expires_in=-60)
    write_profiles(flavoured.state_dir, {CHUTES_ID: flavour_profile("chutes", seeded)})
    sidecar = flavoured.start()
    flavours.set_mode("omit", fields=("refresh_token",))
    assert http.post(sidecar.url() + CHUTES_CHAT, json=CHAT_BODY).status_code == 200
    assert read_profiles(flavoured.state_dir)[CHUTES_ID]["refresh"] == seeded.refresh


# --- google ---------------------------------------------------------------------------------------

GEMINI_ID = "google-gemini-cli:ada@example.com"
# The fake upstream answers OpenAI-style paths only; what is proven here is the credential.
GEMINI = "/google-gemini-cli/v1/chat/completions"
GEMINI_BODY: Mapping[str, Any] = {"model": "gemini-2.5-pro", "messages": []}
GOOGLE_ENV = {
    "GEMINI_CLI_OAUTH_CLIENT_ID": GOOGLE_CLIENT_ID,
    "GEMINI_CLI_OAUTH_CLIENT_SECRET": GOOGLE_CLIENT_SECRET,
}


def test_an_expired_gemini_cli_login_makes_one_call_and_keeps_its_project(
    flavoured: Sidecars, flavours: FlavourServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """Expired: one form post with the client from the environment, the request succeeds;
    Google sends no new refresh token, so the old one stays, with email and projectId."""
    seeded = flavours.seed("google", expires_in=-60)
    old = flavour_profile("google-gemini-cli", seeded, projectId="proj-1")
    write_profiles(flavoured.state_dir, {GEMINI_ID: old})
    sidecar = flavoured.start(env=GOOGLE_ENV)
    assert http.post(sidecar.url() + GEMINI, json=GEMINI_BODY).status_code == 200
    (call,) = flavours.calls
    assert call["params"] == {
        "grant_type": "refresh_token",
        "client_id": GOOGLE_CLIENT_ID,
        "refresh_token": seeded.refresh,
        "client_secret": GOOGLE_CLIENT_SECRET,
    }
    assert (call["headers"]["accept"], call["headers"]["user-agent"]) == (
        "*/*",
        "google-api-nodejs-client/9.15.1",
    )
    stored = read_profiles(flavoured.state_dir)[GEMINI_ID]
    assert stored == {**old, "access": call["issued_access"], "expires": stored["expires"]}
    assert bearers(upstream, "/gemini") == [call["issued_access"]]
    assert upstream.requests[0].path == "/gemini/v1/chat/completions"


@pytest.mark.anyio
async def test_concurrent_requests_on_an_expired_gemini_cli_login_make_one_call(
    flavoured: Sidecars, flavours: FlavourServer
) -> None:
    """Forty requests on an expired Gemini CLI login share one token call and all succeed."""
    seeded = flavours.seed("google", expires_in=-60)
    profile = flavour_profile("google-gemini-cli", seeded, projectId="proj-1")
    write_profiles(flavoured.state_dir, {GEMINI_ID: profile})
    sidecar = flavoured.start(env=GOOGLE_ENV)
    statuses = await held_requests(sidecar.url(), GEMINI, GEMINI_BODY, flavours, CONCURRENT)
    assert (statuses, len(flavours.calls)) == ([200] * CONCURRENT, 1)


def test_a_revoked_google_refresh_token_is_reauth_required(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """Google's invalid_grant ("Token has been expired or revoked."): 401 reauth_required."""
    seeded = flavours.seed("google", expires_in=-60)
    profile = flavour_profile("google-gemini-cli", seeded)
    write_profiles(flavoured.state_dir, {GEMINI_ID: profile})
    sidecar = flavoured.start(env=GOOGLE_ENV)
    flavours.set_mode("reject")
    status, code, payload = error_of(http.post(sidecar.url() + GEMINI, json=GEMINI_BODY))
    assert (status, code) == (401, "reauth_required")
    assert "--provider google-gemini-cli`" in payload["error"]["message"]


def test_a_gemini_cli_login_without_the_client_says_which_variables_to_set(
    flavoured: Sidecars, flavours: FlavourServer, http: httpx.Client
) -> None:
    """No OAuth client in the sidecar's environment: 503 naming the variables, no call."""
    seeded = flavours.seed("google", expires_in=-60)
    write_profiles(flavoured.state_dir, {GEMINI_ID: flavour_profile("google-gemini-cli", seeded)})
    sidecar = flavoured.start()
    status, code, payload = error_of(http.post(sidecar.url() + GEMINI, json=GEMINI_BODY))
    assert (status, code, flavours.calls) == (503, "refresh_unavailable", [])
    assert "$OPENCLAW_GEMINI_OAUTH_CLIENT_ID or $GEMINI_CLI_OAUTH_CLIENT_ID" in str(payload)


# --- github-copilot -----------------------------------------------------------------------------

COPILOT_ID = "github-copilot:github"
COPILOT_CHAT = "/github-copilot/chat/completions"


@pytest.fixture
def copilot_fake(flavours: FlavourServer) -> FlavourServer:
    """Copilot tokens whose proxy-ep is no GitHub host, so requests go to the configured base
    URL (the fake upstream); tests/providers/test_copilot.py proves the proxy-ep rule."""
    flavours.proxy_ep = "proxy.copilot.test"
    return flavours


def test_an_expired_copilot_token_is_exchanged_once_with_openclaw_s_headers(
    flavoured: Sidecars, copilot_fake: FlavourServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """2026.6.1's model (an OAuth profile): the GitHub token is exchanged once for a Copilot
    token, which is sent with the vscode-chat identity; the GitHub token stays."""
    seeded = copilot_fake.seed("copilot", expires_in=-60)
    old = flavour_profile("github-copilot", seeded)
    write_profiles(flavoured.state_dir, {COPILOT_ID: old})
    sidecar = flavoured.start()
    assert http.post(sidecar.url() + COPILOT_CHAT, json=CHAT_BODY).status_code == 200
    (call,) = copilot_fake.calls
    assert (call["method"], call["path"], call["headers"]["authorization"]) == (
        "GET",
        "/github/copilot_internal/v2/token",
        f"Bearer {seeded.refresh}",
    )
    assert call["headers"]["copilot-integration-id"] == "vscode-chat"
    stored = read_profiles(flavoured.state_dir)[COPILOT_ID]
    assert stored == {**old, "access": call["issued_access"], "expires": stored["expires"]}
    (sent,) = upstream.requests
    assert sent.headers["authorization"] == f"Bearer {call['issued_access']}"
    assert {k: sent.headers[k] for k in ("copilot-integration-id", "editor-version")} == {
        "copilot-integration-id": "vscode-chat",
        "editor-version": "vscode/1.107.0",
    }


@pytest.mark.anyio
async def test_concurrent_requests_on_an_expired_copilot_token_make_one_exchange(
    flavoured: Sidecars, copilot_fake: FlavourServer
) -> None:
    """Forty requests on an expired Copilot token share one exchange and all succeed."""
    seeded = copilot_fake.seed("copilot", expires_in=-60)
    write_profiles(flavoured.state_dir, {COPILOT_ID: flavour_profile("github-copilot", seeded)})
    sidecar = flavoured.start()
    statuses = await held_requests(sidecar.url(), COPILOT_CHAT, CHAT_BODY, copilot_fake, CONCURRENT)
    assert (statuses, len(copilot_fake.calls)) == ([200] * CONCURRENT, 1)


def test_a_revoked_github_token_is_reauth_required(
    flavoured: Sidecars, copilot_fake: FlavourServer, http: httpx.Client
) -> None:
    """GitHub's 401 "Bad credentials" for the GitHub token: 401 reauth_required."""
    seeded = copilot_fake.seed("copilot", expires_in=-60)
    write_profiles(flavoured.state_dir, {COPILOT_ID: flavour_profile("github-copilot", seeded)})
    sidecar = flavoured.start()
    copilot_fake.set_mode("reject")
    status, code, payload = error_of(http.post(sidecar.url() + COPILOT_CHAT, json=CHAT_BODY))
    assert (status, code) == (401, "reauth_required")
    assert payload["error"]["message"] == (
        "GitHub refused the Copilot sign-in (bad_credentials); sign in again with OpenClaw: "
        "`openclaw models auth login --provider github-copilot`"
    )


def test_a_github_token_profile_is_sent_as_is_to_its_account_s_api(
    flavoured: Sidecars, copilot_fake: FlavourServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """2026.9.6's model (a token profile): the GitHub token itself, to the API its account
    names (looked up once for both requests), with the copilot-developer-cli identity."""
    github = copilot_fake.seed_github_token()
    upstream.expect("/copilot", [github])
    profile = {"type": "token", "provider": "github-copilot", "token": github}
    write_profiles(flavoured.state_dir, {COPILOT_ID: profile})
    sidecar = flavoured.start()
    for _ in range(2):
        assert http.post(sidecar.url() + COPILOT_CHAT, json=CHAT_BODY).status_code == 200
    assert [(c["flavour"], c["path"]) for c in copilot_fake.calls] == [
        ("copilot-user", "/github/copilot_internal/user")
    ]
    sent = upstream.requests[0]
    assert sent.headers["authorization"] == f"Bearer {github}"
    assert (sent.headers["copilot-integration-id"], sent.headers["openai-intent"]) == (
        "copilot-developer-cli",
        "conversation-edits",
    )


def test_a_refused_github_token_profile_is_reauth_required(
    flavoured: Sidecars, copilot_fake: FlavourServer, upstream: FakeUpstream, http: httpx.Client
) -> None:
    """The account lookup refuses the GitHub token: 401 reauth_required, nothing sent on."""
    profile = {"type": "token", "provider": "github-copilot", "token": "gho_revoked_0123456789"}
    write_profiles(flavoured.state_dir, {COPILOT_ID: profile})
    sidecar = flavoured.start()
    status, code, _ = error_of(http.post(sidecar.url() + COPILOT_CHAT, json=CHAT_BODY))
    assert (status, code, upstream.requests) == (401, "reauth_required", [])
