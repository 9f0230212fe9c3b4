"""Refresh flows, one per flavour, in the manner of httpx's auth flows: a generator yields each
request to make (``TokenRequest``), receives its ``Answer`` and returns the ``Grant``, so a
multi-step refresh (discovery, then the token call) is tested without a socket. The refresher
(``auth/refresh.py``) makes the calls. Pure: no I/O, no clock, no environment.

Each flavour does what OpenClaw does for that provider (docs/providers.md, "OAuth flavours").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from sidecar.errors import RefreshUnavailable
from sidecar.providers import copilot, oauth, xai
from sidecar.providers.answers import json_object
from sidecar.providers.grants import (
    Answer,
    Grant,
    Login,
    ProviderAuth,
    RefreshFlow,
    TokenRequest,
    failure,
    malformed,
    openclaw_login,
    parse_token_response,
    refresh_request,
    require_refresh,
    tokens,
)
from sidecar.providers.spec import ProviderSpec, refresh_style
from sidecar.secret import Secret

_FORM: Final = "application/x-www-form-urlencoded"
# OpenClaw stores a Chutes expiry five minutes early but never less than 30 s ahead (2026.6.1
# chutes-oauth DEFAULT_EXPIRES_BUFFER_MS, minRemainingMs).
_EARLY_MS: Final = 300_000
_CHUTES_FLOOR_MS: Final = 30_000
# What 2026.6.1 sends to Google's token endpoint (extensions/google/oauth.token requestTokenGrant,
# which also stores the expiry five minutes early: TOKEN_EXPIRY_BUFFER_MS).
_GOOGLE_HEADERS: Final = (
    ("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8"),
    ("Accept", "*/*"),
    ("User-Agent", "google-api-nodejs-client/9.15.1"),
)


def provider_auth(spec: ProviderSpec, environ: Mapping[str, str]) -> ProviderAuth | None:
    """How ``spec``'s OAuth logins are refreshed, the client id and secret taken from the
    environment where OpenClaw takes them (the first variable set); None when the sidecar has
    no refresh method for it."""
    style = refresh_style(spec)
    if style is None:
        return None
    return ProviderAuth(
        provider=spec.name,
        style=style,
        token_url=spec.token_url or "",
        client_id=spec.client_id or _first(environ, spec.client_id_env) or "",
        authorize_url=spec.authorize_url,
        redirect_uri=spec.redirect_uri,
        scope=spec.scope,
        issuer=spec.issuer,
        client_secret=_secret(_first(environ, spec.client_secret_env)),
        relogin=spec.relogin,
        client_id_env=spec.client_id_env,
    )


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """OpenClaw's ``resolveEnv``: the first of ``names`` set to something other than space."""
    return next((environ[n].strip() for n in names if environ.get(n, "").strip()), None)


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def refresh_flow(auth: ProviderAuth | None, login: Login) -> RefreshFlow:
    """The flow that refreshes ``login``; ``RefreshUnavailable`` naming what to run when its
    provider has no refresh method (``auth`` None) or none at all (flavour "none")."""
    flow = _FLOWS.get(auth.style) if auth is not None else None
    if auth is None or flow is None:
        raise RefreshUnavailable(no_refresh_message(auth, login.provider, login.profile_id))
    return flow(auth, login)


def no_refresh_message(auth: ProviderAuth | None, provider: str, profile_id: str) -> str:
    """Why an expired login cannot be refreshed here, and the command that signs in again."""
    login = openclaw_login(provider, auth, profile_id)
    if auth is not None and auth.style == "none":
        return (
            f"the {provider} login in profile {profile_id} has expired, and OpenClaw cannot "
            f"refresh {provider} logins either: sign in again with `{login}`"
        )
    return (
        f"the {provider} login in profile {profile_id} has expired, and the sidecar has no "
        f"refresh method for {provider} (OpenClaw's plugin for it refreshes it): sign in again "
        f"with `{login}`, or run OpenClaw once, which refreshes it"
    )


def _rfc6749(auth: ProviderAuth, login: Login) -> RefreshFlow:
    """OpenAI (Codex) and Anthropic: one refresh-token grant (``grants``)."""
    answer = yield refresh_request(auth, login.refresh)
    return parse_token_response(
        auth, answer.status, answer.body, answer.now_ms, previous_refresh=login.refresh
    )


def _chutes(auth: ProviderAuth, login: Login) -> RefreshFlow:
    """Chutes (2026.6.1 ``refreshChutesTokens``): the profile's ``clientId``, else
    ``$CHUTES_CLIENT_ID``; ``$CHUTES_CLIENT_SECRET`` when set; a form with only its
    Content-Type; the refresh token optional in the answer; ``clientId`` kept."""
    client_id = _field(login.fields, "clientId") or auth.client_id
    if not client_id:
        raise RefreshUnavailable(_no_client(auth, login, "has no clientId"))
    params = [("client_id", client_id), ("refresh_token", require_refresh(auth, login.refresh))]
    if auth.client_secret:
        params.append(("client_secret", auth.client_secret.reveal()))
    body = oauth.token_form("refresh_token", params)
    answer = yield TokenRequest(auth.token_url, (("Content-Type", _FORM),), body)
    grant = _grant(auth, answer, login, early_ms=_EARLY_MS, floor_ms=_CHUTES_FLOOR_MS)
    return replace(grant, extra=(("clientId", client_id),))


def _google(auth: ProviderAuth, login: Login) -> RefreshFlow:
    """Google (Gemini CLI) OAuth as 2026.6.1 refreshes it (``refreshTokensForGeminiCli``): the
    client from the environment, a form to oauth2.googleapis.com, the refresh token optional in
    the answer (Google sends none); ``email`` and ``projectId`` stay as they are."""
    if not auth.client_id:
        raise RefreshUnavailable(_no_client(auth, login, "needs the Gemini CLI's OAuth client"))
    refresh = require_refresh(auth, login.refresh)
    params = [("client_id", auth.client_id), ("refresh_token", refresh)]
    if auth.client_secret:
        params.append(("client_secret", auth.client_secret.reveal()))
    body = oauth.token_form("refresh_token", params)
    answer = yield TokenRequest(auth.token_url, _GOOGLE_HEADERS, body)
    return _grant(auth, answer, login, early_ms=_EARLY_MS)


def _grant(
    auth: ProviderAuth, answer: Answer, login: Login, *, early_ms: int, floor_ms: int = 0
) -> Grant:
    """An RFC 6749 answer whose refresh token is optional, its expiry stored ``early_ms`` early
    (never less than ``floor_ms`` ahead)."""
    data = json_object(answer.body)
    if not 200 <= answer.status < 300:
        raise failure(auth, answer.status, data)
    if data is None:
        raise malformed(auth, "is not a JSON object")
    access, refresh, lifetime = tokens(auth, data, login.refresh)
    expires = max(answer.now_ms + lifetime - early_ms, answer.now_ms + floor_ms)
    return Grant(Secret(access), Secret(refresh), expires)


def _no_client(auth: ProviderAuth, login: Login, what: str) -> str:
    names = " or ".join(f"${name}" for name in auth.client_id_env) or "its client id"
    return (
        f"cannot refresh profile {login.profile_id}: the {auth.provider} login {what}; set "
        f"{names} in the sidecar's environment as OpenClaw reads it, or sign in again with "
        f"`{openclaw_login(login.provider, auth, login.profile_id)}`"
    )


def _field(fields: Mapping[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


_FLOWS: Final[Mapping[str, Callable[[ProviderAuth, Login], RefreshFlow]]] = {
    "openai": _rfc6749,
    "anthropic": _rfc6749,
    "xai": xai.refresh_flow,
    "chutes": _chutes,
    "google": _google,
    "copilot": copilot.refresh_flow,
}
