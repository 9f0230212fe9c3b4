"""Refresh flows (sidecar.providers.flows): the client each flavour takes from the catalog and
the environment, the requests it makes and what an answer means, and the message for a login
nobody here can refresh. xAI's flow: tests/providers/test_xai.py."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sidecar.errors import RefreshUnavailable
from sidecar.providers import flows
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.providers.grants import Answer, Grant, Login, ProviderAuth, TokenRejected, TokenRequest
from sidecar.secret import Secret
from tests.providers.flow_support import NOW, answer, drive

CHUTES_URL = "https://api.chutes.ai/idp/token"
FORM = "application/x-www-form-urlencoded"


def auth_of(provider: str, **environ: str) -> ProviderAuth:
    auth = flows.provider_auth(BUILTIN_PROVIDERS[provider], environ)
    assert auth is not None
    return auth


def login(provider: str, **fields: Any) -> Login:
    return Login(f"{provider}:ada", provider, "rt-old", {"type": "oauth", **fields})


# --- chutes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "fields", "body"),
    [
        ({}, {"clientId": "cid_profile"}, "client_id=cid_profile"),
        ({"CHUTES_CLIENT_ID": "cid_env"}, {"clientId": "cid_profile"}, "client_id=cid_profile"),
        ({"CHUTES_CLIENT_ID": " cid_env "}, {}, "client_id=cid_env"),
        ({"CHUTES_CLIENT_ID": "cid_env"}, {"clientId": " "}, "client_id=cid_env"),
        (
            {"CHUTES_CLIENT_ID": "cid_env", "CHUTES_CLIENT_SECRET": "cs_1"},
            {},
            "client_id=cid_env&refresh_token=rt-old&client_secret=cs_1",
        ),
    ],
)
def test_chutes_takes_the_profile_s_client_else_the_environment_s(
    environ: dict[str, str], fields: dict[str, Any], body: str
) -> None:
    """The client id is the profile's clientId, else $CHUTES_CLIENT_ID; $CHUTES_CLIENT_SECRET
    is added when set; a form with only its Content-Type (2026.6.1 refreshChutesTokens)."""
    request = next(flows.refresh_flow(auth_of("chutes", **environ), login("chutes", **fields)))
    assert (request.url, request.headers, request.method) == (
        CHUTES_URL,
        (("Content-Type", FORM),),
        "POST",
    )
    assert request.body.decode().startswith("grant_type=refresh_token&" + body)
    assert "refresh_token=rt-old" in request.body.decode()


def test_chutes_without_a_client_names_what_to_set() -> None:
    """No clientId and no $CHUTES_CLIENT_ID: refresh_unavailable naming both ways out."""
    with pytest.raises(RefreshUnavailable) as caught:
        next(flows.refresh_flow(auth_of("chutes"), login("chutes")))
    assert caught.value.message == (
        "cannot refresh profile chutes:ada: the chutes login has no clientId; set "
        "$CHUTES_CLIENT_ID in the sidecar's environment as OpenClaw reads it, or sign in again "
        "with `openclaw models auth login --provider chutes --profile-id chutes:ada`"
    )


@pytest.mark.parametrize(
    ("given", "grant"),
    [
        (
            answer(access_token="cpk_a", refresh_token="crt_new", expires_in=3600),
            Grant(Secret("cpk_a"), Secret("crt_new"), NOW + 3_300_000, extra=(("clientId", "c"),)),
        ),
        (  # no new refresh token: the old one stays
            answer(access_token="cpk_a", expires_in=3600),
            Grant(Secret("cpk_a"), Secret("rt-old"), NOW + 3_300_000, extra=(("clientId", "c"),)),
        ),
        (  # five minutes early, but never less than 30 s ahead (minRemainingMs)
            answer(access_token="cpk_a", expires_in=60),
            Grant(Secret("cpk_a"), Secret("rt-old"), NOW + 30_000, extra=(("clientId", "c"),)),
        ),
    ],
)
def test_chutes_answers(given: Answer, grant: Grant) -> None:
    """Expiry stored five minutes early, the refresh token optional, clientId kept."""
    assert (
        drive(flows.refresh_flow(auth_of("chutes"), login("chutes", clientId="c")), [given])[1]
        == grant
    )


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            answer(400, error="invalid_grant", error_description="rt-old revoked"),
            TokenRejected,
            "chutes refused the sign-in (invalid_grant); sign in again with OpenClaw: "
            "`openclaw models auth login --provider chutes`",
        ),
        (
            answer(401, error="invalid_client"),
            RefreshUnavailable,
            "the chutes token endpoint answered 401 (invalid_client); try again later",
        ),
        (
            answer(422, detail="rt-old"),
            RefreshUnavailable,
            "the chutes token endpoint answered 422 (no error code); try again later",
        ),
        (
            answer(refresh_token="r", expires_in=60),
            RefreshUnavailable,
            "the chutes token endpoint's answer has no access_token; nothing was stored, try "
            "again later",
        ),
    ],
)
def test_chutes_failures(given: Answer, error: type[Exception], message: str) -> None:
    """A refused grant asks for OpenClaw's login; anything else keeps the old token."""
    flow = flows.refresh_flow(auth_of("chutes"), login("chutes", clientId="c"))
    next(flow)
    with pytest.raises(error) as caught:
        flow.send(given)
    assert (type(caught.value), str(caught.value)) == (error, message)


# --- no refresh here ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "provider", "message"),
    [
        (
            None,
            "radius",
            "the radius login in profile radius:ada has expired, and the sidecar has no refresh "
            "method for radius (OpenClaw's plugin for it refreshes it): sign in again with "
            "`openclaw models auth login --provider radius --profile-id radius:ada`, or run "
            "OpenClaw once, which refreshes it",
        ),
        (
            auth_of("qwen-oauth"),
            "qwen-portal",
            "the qwen-portal login in profile qwen-portal:ada has expired, and OpenClaw cannot "
            "refresh qwen-portal logins either: sign in again with `openclaw onboard "
            "--auth-choice qwen-api-key`",
        ),
    ],
)
def test_a_login_nobody_here_refreshes_names_the_command(
    auth: ProviderAuth | None, provider: str, message: str
) -> None:
    """No flow: refresh_unavailable naming the provider and what to run."""
    with pytest.raises(RefreshUnavailable) as caught:
        flows.refresh_flow(auth, login(provider))
    assert caught.value.message == message


def test_the_rfc6749_flow_is_one_request() -> None:
    """OpenAI and Anthropic: the grant of ``grants.refresh_request``, and its answer."""
    auth = auth_of("openai-codex")
    requests, grant = drive(
        flows.refresh_flow(auth, login("openai-codex")),
        [answer(access_token="a", expires_in=10)],
    )
    assert [(r.method, r.url) for r in requests] == [
        ("POST", "https://auth.openai.com/oauth/token")
    ]
    assert grant == Grant(Secret("a"), Secret("rt-old"), NOW + 10_000)
    assert isinstance(requests[0], TokenRequest)
    assert dataclasses.replace(requests[0], method="POST") == requests[0]


# --- google -------------------------------------------------------------------------------------

GOOGLE_HEADERS = (
    ("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8"),
    ("Accept", "*/*"),
    ("User-Agent", "google-api-nodejs-client/9.15.1"),
)


@pytest.mark.parametrize("provider", ["google-gemini-cli", "google"])
@pytest.mark.parametrize(
    ("environ", "body"),
    [
        (
            {"GEMINI_CLI_OAUTH_CLIENT_ID": "cli-id", "GEMINI_CLI_OAUTH_CLIENT_SECRET": "cli-s"},
            b"grant_type=refresh_token&client_id=cli-id&refresh_token=rt-old&client_secret=cli-s",
        ),
        (
            {
                "OPENCLAW_GEMINI_OAUTH_CLIENT_ID": "oc-id",
                "GEMINI_CLI_OAUTH_CLIENT_ID": "cli-id",
                "OPENCLAW_GEMINI_OAUTH_CLIENT_SECRET": "oc-s",
            },
            b"grant_type=refresh_token&client_id=oc-id&refresh_token=rt-old&client_secret=oc-s",
        ),
        (
            {"OPENCLAW_GEMINI_OAUTH_CLIENT_ID": "oc-id"},
            b"grant_type=refresh_token&client_id=oc-id&refresh_token=rt-old",
        ),
    ],
)
def test_google_takes_its_client_from_the_environment(
    provider: str, environ: dict[str, str], body: bytes
) -> None:
    """OpenClaw 2026.6.1's order: $OPENCLAW_GEMINI_OAUTH_CLIENT_ID, then
    $GEMINI_CLI_OAUTH_CLIENT_ID (the secret likewise), sent as google-api-nodejs-client does."""
    request = next(flows.refresh_flow(auth_of(provider, **environ), login(provider)))
    assert request == TokenRequest("https://oauth2.googleapis.com/token", GOOGLE_HEADERS, body)


def test_google_without_a_client_names_the_variables() -> None:
    """No client in the environment: refresh_unavailable naming the variables OpenClaw reads."""
    with pytest.raises(RefreshUnavailable) as caught:
        next(flows.refresh_flow(auth_of("google-gemini-cli"), login("google-gemini-cli")))
    assert caught.value.message == (
        "cannot refresh profile google-gemini-cli:ada: the google-gemini-cli login needs the "
        "Gemini CLI's OAuth client; set $OPENCLAW_GEMINI_OAUTH_CLIENT_ID or "
        "$GEMINI_CLI_OAUTH_CLIENT_ID in the sidecar's environment as OpenClaw reads it, or sign "
        "in again with `openclaw models auth login --provider google-gemini-cli --profile-id "
        "google-gemini-cli:ada`"
    )


def test_a_google_answer_keeps_the_refresh_token_and_the_identity() -> None:
    """Google sends no new refresh token: the old one stays; email and projectId are not in
    the grant, so the merge keeps them; the expiry is stored five minutes early."""
    auth = auth_of("google-gemini-cli", GEMINI_CLI_OAUTH_CLIENT_ID="cli-id")
    stored = login("google-gemini-cli", email="ada@example.com", projectId="proj-1")
    given = answer(access_token="ya29.a", expires_in=3599, scope="x", token_type="Bearer")
    _, grant = drive(flows.refresh_flow(auth, stored), [given])
    assert grant.fields() == {"access": "ya29.a", "refresh": "rt-old", "expires": NOW + 3_299_000}
    assert {**stored.fields, **grant.fields()}["projectId"] == "proj-1"


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            answer(
                400, error="invalid_grant", error_description="Token has been expired or revoked."
            ),
            TokenRejected,
            "google-gemini-cli refused the sign-in (invalid_grant); sign in again with OpenClaw: "
            "`openclaw models auth login --provider google-gemini-cli`",
        ),
        (
            answer(
                401, error="invalid_client", error_description="The OAuth client was not found."
            ),
            RefreshUnavailable,
            "the google-gemini-cli token endpoint answered 401 (invalid_client); try again later",
        ),
    ],
)
def test_google_failures(given: Answer, error: type[Exception], message: str) -> None:
    """Google's error shapes: a revoked token asks for a login, a wrong client does not."""
    auth = auth_of("google-gemini-cli", GEMINI_CLI_OAUTH_CLIENT_ID="cli-id")
    flow = flows.refresh_flow(auth, login("google-gemini-cli"))
    next(flow)
    with pytest.raises(error) as caught:
        flow.send(given)
    assert (type(caught.value), str(caught.value)) == (error, message)
