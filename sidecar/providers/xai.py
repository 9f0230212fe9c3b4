"""xAI's OAuth as OpenClaw 2026.9.6 refreshes it (``extensions/xai/xai-oauth.js``
``refreshXaiOAuthCredential``; 2026.6.1 ``xai-oauth-*.js`` the same but for the legacy-endpoint
rule): the token endpoint is the profile's ``tokenEndpoint`` when OpenClaw would trust it, else
the one OIDC discovery at the issuer names; a form with Accept and OpenClaw's User-Agent; the
refresh token optional in the answer, the expiry from ``expires_in`` or the access token's
``exp``, the identity from the id token's claims. Pure: a flow of ``providers/flows.py``."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from sidecar.errors import RefreshUnavailable
from sidecar.providers import oauth
from sidecar.providers.answers import json_object, lifetime_ms, string
from sidecar.providers.conversation import ModelCall
from sidecar.providers.grants import (
    Answer,
    Grant,
    Login,
    ProviderAuth,
    RefreshFlow,
    TokenRequest,
    failure,
    malformed,
    require_refresh,
)
from sidecar.secret import Secret

ISSUER: Final = "https://auth.x.ai"
# OpenClaw names itself to xAI as openclaw/<version> (extensions/xai/src/xai-user-agent.ts) and
# sends the same version to the Grok CLI proxy; the sidecar sends the version it matches.
CLIENT_VERSION: Final = "2026.9.6"
USER_AGENT: Final = f"openclaw/{CLIENT_VERSION}"
# What 2026.9.6 adds to an OAuth login's requests to the Grok CLI proxy (extensions/xai/stream.ts
# createXaiGrokOAuthHeadersWrapper); it also sends x-grok-model-override, the request's model
# (model_override below).
OAUTH_HEADERS: Final = (
    ("x-xai-token-auth", "xai-grok-cli"),
    ("x-grok-client-version", CLIENT_VERSION),
)
_DISCOVERY: Final = "/.well-known/openid-configuration"
# 2026.9.6 rediscovers rather than use <issuer>/oauth/token (isLegacyXaiOAuthTokenEndpoint).
_LEGACY_TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 (a path, not a secret)
_MAX_EXP_S: Final = 10**11  # an exp beyond this is not seconds since the epoch


def model_override(call: ModelCall | None) -> tuple[tuple[str, str], ...]:
    """``x-grok-model-override``: the model a model call asks for, as 2026.9.6's
    ``createXaiGrokOAuthHeadersWrapper`` sends ``model.id`` on every model request of an OAuth
    login to the Grok CLI proxy (the Responses API, or chat completions). Nothing when the body
    names no model the sidecar can read, or one that cannot go in a header: OpenClaw always
    knows its model, and the sidecar does not guess one."""
    if call is None or call.api == "messages" or call.model is None:
        return ()
    if not all(" " <= char <= "~" for char in call.model):
        return ()
    return (("x-grok-model-override", call.model),)


def refresh_flow(auth: ProviderAuth, login: Login) -> RefreshFlow:
    """Discovery when the profile names no endpoint it may use, then the refresh grant."""
    refresh = require_refresh(auth, login.refresh)
    issuer = (auth.issuer or ISSUER).rstrip("/")
    endpoint = _stored_endpoint(login, issuer)
    if endpoint is None:
        answer = yield TokenRequest(issuer + _DISCOVERY, _headers(), b"", "GET")
        endpoint = _discovered(auth, answer, issuer)
    params = [("client_id", auth.client_id), ("refresh_token", refresh)]
    body = oauth.token_form("refresh_token", params)
    headers = (("Content-Type", "application/x-www-form-urlencoded"), *_headers())
    answer = yield TokenRequest(endpoint, headers, body)
    return _grant(auth, answer, login, endpoint, issuer)


def is_trusted(endpoint: str, issuer: str) -> bool:
    """OpenClaw's ``isTrustedXaiOAuthEndpoint``: https on x.ai or a subdomain of it. When the
    config names another issuer (a test's fake on loopback), that issuer's origin instead: the
    refresh token goes where the operator pointed xAI's OAuth, and nowhere else."""
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    if issuer != ISSUER:
        return _origin(endpoint) == _origin(issuer)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "x.ai" or host.endswith(".x.ai"))


def _stored_endpoint(login: Login, issuer: str) -> str | None:
    """The profile's ``tokenEndpoint`` unless it is the legacy one or not trusted."""
    stored = login.fields.get("tokenEndpoint")
    if not isinstance(stored, str) or not stored.strip():
        return None
    stored = stored.strip()
    parts = urlsplit(stored)
    if f"{parts.scheme}://{parts.netloc}{parts.path}" == issuer + _LEGACY_TOKEN_PATH:
        return None
    return stored if is_trusted(stored, issuer) else None


def _discovered(auth: ProviderAuth, answer: Answer, issuer: str) -> str:
    data = json_object(answer.body)
    where = f"xAI's OIDC discovery at {issuer}"
    if not 200 <= answer.status < 300 or data is None:
        raise RefreshUnavailable(f"{where} answered {answer.status}; try again later")
    endpoint = string(data, "token_endpoint")
    if endpoint is None:
        raise RefreshUnavailable(f"{where} named no token endpoint; try again later")
    if not is_trusted(endpoint, issuer):
        raise RefreshUnavailable(f"{where} named a token endpoint off x.ai; nothing was sent")
    return endpoint


def _grant(auth: ProviderAuth, answer: Answer, login: Login, endpoint: str, issuer: str) -> Grant:
    data = json_object(answer.body)
    if not 200 <= answer.status < 300:
        raise failure(auth, answer.status, data)
    if data is None:
        raise malformed(auth, "is not a JSON object")
    access = string(data, "access_token")
    if access is None:
        raise malformed(auth, "has no access_token")
    id_token = string(data, "id_token")
    expires = _expires(data, access, answer.now_ms)
    if expires is None:
        raise malformed(auth, "has no positive expires_in and its access token no exp")
    claims = oauth.decode_claims(id_token or access)
    name = string(claims, "name")
    return Grant(
        Secret(access),
        Secret(string(data, "refresh_token") or login.refresh),
        expires,
        id_token=Secret(id_token) if id_token else None,
        account_id=string(claims, "sub"),
        email=string(claims, "email"),
        extra=(("tokenEndpoint", endpoint), ("issuer", issuer))
        + ((("displayName", name),) if name else ()),
    )


def _expires(data: dict[str, object], access: str, now_ms: int) -> int | None:
    """``expires_in`` from now, else the access token's ``exp`` (``deriveExpiresFromJwt``)."""
    lifetime = lifetime_ms(data.get("expires_in"))
    if lifetime is not None:
        return now_ms + lifetime
    exp = oauth.decode_claims(access).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not 0 < exp < _MAX_EXP_S:
        return None
    return int(exp) * 1000


def _headers() -> tuple[tuple[str, str], ...]:
    return (("Accept", "application/json"), ("User-Agent", USER_AGENT))


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        return (parts.scheme, (parts.hostname or "").lower(), parts.port)
    except ValueError:
        return ("", "", None)
