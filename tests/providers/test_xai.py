"""xAI's refresh flow (OpenClaw 2026.9.6 ``refreshXaiOAuthCredential``): where the token
endpoint comes from, what is sent, what an answer means."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl

import pytest

from sidecar.errors import RefreshUnavailable
from sidecar.providers import flows
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.providers.conversation import model_call
from sidecar.providers.grants import Answer, Grant, Login, TokenRejected, TokenRequest
from sidecar.providers.xai import is_trusted, model_override
from sidecar.secret import Secret
from tests.providers.flow_support import NOW, answer, drive, jwt

AUTH = flows.provider_auth(BUILTIN_PROVIDERS["xai"], {})
assert AUTH is not None
CLIENT = "b1a00492-073a-47ea-816f-4c329264a828"
DISCOVERY = "https://auth.x.ai/.well-known/openid-configuration"
TOKEN_ENDPOINT = "https://auth.x.ai/oauth2/token"
ACCESS = jwt({"sub": "u-access", "email": "access@x.example", "exp": 1_767_240_000})
ID_TOKEN = jwt({"sub": "u-1", "email": "ada@x.example", "name": "Ada L"})
HEADERS = (("Accept", "application/json"), ("User-Agent", "openclaw/2026.9.6"))
FORM = ("Content-Type", "application/x-www-form-urlencoded")


def login(**fields: Any) -> Login:
    return Login("xai:ada", "xai", "rt-old", {"type": "oauth", "provider": "xai", **fields})


def discovered(endpoint: str = TOKEN_ENDPOINT) -> Answer:
    return answer(issuer="https://auth.x.ai", token_endpoint=endpoint)


def granted(**fields: object) -> Answer:
    return answer(**{"access_token": ACCESS, "expires_in": 21600, **fields})


def test_without_a_stored_endpoint_discovery_names_it_then_the_grant_is_a_form() -> None:
    """Discovery at the issuer, then a form of grant_type, client_id and refresh_token with
    Accept and OpenClaw's User-Agent; the Grant keeps the endpoint and the issuer."""
    requests, grant = drive(
        flows.refresh_flow(AUTH, login()),
        [discovered(), granted(refresh_token="rt-new", id_token=ID_TOKEN)],
    )
    assert requests == [
        TokenRequest(DISCOVERY, HEADERS, b"", "GET"),
        TokenRequest(
            TOKEN_ENDPOINT,
            (FORM, *HEADERS),
            f"grant_type=refresh_token&client_id={CLIENT}&refresh_token=rt-old".encode(),
        ),
    ]
    assert grant == Grant(
        Secret(ACCESS),
        Secret("rt-new"),
        NOW + 21_600_000,
        id_token=Secret(ID_TOKEN),
        account_id="u-1",
        email="ada@x.example",
        extra=(
            ("tokenEndpoint", TOKEN_ENDPOINT),
            ("issuer", "https://auth.x.ai"),
            ("displayName", "Ada L"),
        ),
    )


@pytest.mark.parametrize(
    ("stored", "discovers"),
    [
        (TOKEN_ENDPOINT, False),
        ("https://accounts.x.ai/token", False),
        ("https://auth.x.ai/oauth/token", True),  # the legacy endpoint: 2026.9.6 rediscovers
        ("https://auth.x.ai/oauth/token?x=1", True),
        ("http://auth.x.ai/oauth2/token", True),
        ("https://auth.x.ai.evil.example/token", True),
        ("https://user:pw@auth.x.ai/oauth2/token", True),
        ("", True),
        (7, True),
    ],
)
def test_the_stored_endpoint_is_used_when_openclaw_would_trust_it(
    stored: object, discovers: bool
) -> None:
    """The profile's tokenEndpoint, unless it is the legacy one or not https on x.ai."""
    flow = flows.refresh_flow(AUTH, login(tokenEndpoint=stored))
    first = next(flow)
    assert (first.method, first.url) == (("GET", DISCOVERY) if discovers else ("POST", stored))


@pytest.mark.parametrize(
    ("endpoint", "issuer", "trusted"),
    [
        ("https://x.ai/token", "https://auth.x.ai", True),
        ("https://auth.x.ai/oauth2/token", "https://auth.x.ai", True),
        ("https://auth.x.ai:8443/oauth2/token", "https://auth.x.ai", True),
        ("http://auth.x.ai/oauth2/token", "https://auth.x.ai", False),
        ("https://notx.ai/token", "https://auth.x.ai", False),
        ("https://auth.x.ai:bad/", "https://auth.x.ai", False),
        ("http://127.0.0.1:9/xai/oauth2/token", "http://127.0.0.1:9/xai", True),
        ("http://127.0.0.1:10/xai/oauth2/token", "http://127.0.0.1:9/xai", False),
        ("https://auth.x.ai/oauth2/token", "http://127.0.0.1:9/xai", False),
    ],
)
def test_trusted_endpoints(endpoint: str, issuer: str, trusted: bool) -> None:
    """https on x.ai, or the configured issuer's own origin when the config names one."""
    assert is_trusted(endpoint, issuer) is trusted


def test_a_configured_issuer_is_where_discovery_and_the_grant_go() -> None:
    """[providers.xai] issuer: discovery there, and only an endpoint on its origin is used."""
    auth = dataclasses.replace(AUTH, issuer="http://127.0.0.1:9/xai")
    flow = flows.refresh_flow(auth, login(tokenEndpoint=TOKEN_ENDPOINT))
    assert next(flow).url == "http://127.0.0.1:9/xai/.well-known/openid-configuration"
    second = flow.send(discovered("http://127.0.0.1:9/xai/oauth2/token"))
    assert second.url == "http://127.0.0.1:9/xai/oauth2/token"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (discovered("https://evil.example/token"), "named a token endpoint off x.ai"),
        (answer(issuer="https://auth.x.ai"), "named no token endpoint"),
        (answer(503, error="server_error"), "answered 503"),
        (Answer(200, b"<html>", NOW), "answered 200"),
    ],
)
def test_discovery_that_names_no_usable_endpoint_sends_nothing(given: Answer, message: str) -> None:
    """Discovery without a trusted token endpoint: refresh_unavailable, no grant request."""
    flow = flows.refresh_flow(AUTH, login())
    next(flow)
    with pytest.raises(RefreshUnavailable, match=message):
        flow.send(given)


@pytest.mark.parametrize(
    ("given", "refresh", "expires"),
    [
        (granted(), "rt-old", NOW + 21_600_000),  # no refresh token: the stored one stays
        (answer(access_token=ACCESS, refresh_token="rt-2"), "rt-2", 1_767_240_000_000),
        (answer(access_token=ACCESS, expires_in="60"), "rt-old", 1_767_240_000_000),
    ],
)
def test_optional_fields_of_the_answer(given: Answer, refresh: str, expires: int) -> None:
    """The refresh token is optional; without expires_in the access token's exp is the
    expiry (deriveExpiresFromJwt); the identity comes from the access token then."""
    _, grant = drive(flows.refresh_flow(AUTH, login(tokenEndpoint=TOKEN_ENDPOINT)), [given])
    assert (grant.refresh.reveal(), grant.expires_ms) == (refresh, expires)
    assert (grant.account_id, grant.email) == ("u-access", "access@x.example")


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            answer(400, error="invalid_grant", error_description="rt-old is revoked"),
            TokenRejected,
            "xai refused the sign-in (invalid_grant); sign in again with OpenClaw: "
            "`openclaw models auth login --provider xai`",
        ),
        (
            Answer(403, b"<!DOCTYPE html><title>Just a moment...</title>", NOW),
            RefreshUnavailable,
            "the xai token endpoint answered 403 (no error code); try again later",
        ),
        (
            answer(access_token="opaque"),
            RefreshUnavailable,
            "the xai token endpoint's answer has no positive expires_in and its access token "
            "no exp; nothing was stored, try again later",
        ),
        (
            answer(expires_in=60),
            RefreshUnavailable,
            "the xai token endpoint's answer has no access_token; nothing was stored, try again "
            "later",
        ),
    ],
)
def test_failures(given: Answer, error: type[Exception], message: str) -> None:
    """A refused grant asks for OpenClaw's login; a challenge page or a broken answer keeps
    the old token; no message holds the provider's text."""
    flow = flows.refresh_flow(AUTH, login(tokenEndpoint=TOKEN_ENDPOINT))
    next(flow)
    with pytest.raises(error) as caught:
        flow.send(given)
    assert (type(caught.value), str(caught.value)) == (error, message)


def test_a_login_without_a_refresh_token_is_rejected_before_any_call() -> None:
    """No refresh token: only a new sign-in helps, nothing is sent."""
    with pytest.raises(TokenRejected, match="no_refresh_token"):
        next(flows.refresh_flow(AUTH, dataclasses.replace(login(), refresh="")))


def test_the_form_holds_the_refresh_token_once() -> None:
    """The form body: exactly grant_type, client_id, refresh_token."""
    flow = flows.refresh_flow(AUTH, login(tokenEndpoint=TOKEN_ENDPOINT))
    assert parse_qsl(next(flow).body.decode()) == [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT),
        ("refresh_token", "rt-old"),
    ]


# --- x-grok-model-override ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/responses", b'{"model": "grok-4", "input": "hi"}',
         (("x-grok-model-override", "grok-4"),)),
        ("/v1/chat/completions", b'{"model": "grok-code-fast-1", "messages": []}',
         (("x-grok-model-override", "grok-code-fast-1"),)),
        # No model to read: the body not held, not JSON, without a model.
        ("/v1/responses", None, ()),
        ("/v1/responses", b"not json", ()),
        ("/v1/responses", b'{"input": "hi"}', ()),
        # A model that cannot go in a header is not sent as one.
        ("/v1/responses", b'{"model": "grok\\r\\nx-evil: 1"}', ()),
        ("/v1/responses", '{"model": "grök"}'.encode(), ()),
        # Not a model call OpenClaw's Grok wrapper sends (a listing, Anthropic's shape).
        ("/v1/models", None, ()),
        ("/v1/messages", b'{"model": "grok-4", "messages": []}', ()),
    ],
)  # fmt: skip
def test_the_model_override_is_the_model_the_call_asks_for(
    path: str, body: bytes | None, expected: tuple[tuple[str, str], ...]
) -> None:
    """2026.9.6 createXaiGrokOAuthHeadersWrapper sends model.id; the sidecar the body's model,
    and nothing it cannot read or put in a header."""
    assert model_override(model_call(path, body)) == expected
