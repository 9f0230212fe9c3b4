"""Token-endpoint requests and answers per provider style, as pure values (openclaw-store §9).

The HTTP call lives with the refresher and the login command; this module builds what they
send and decides what an answer means: a ``Grant``, ``TokenRejected`` or ``RefreshUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sidecar.errors import ReauthRequired, RefreshUnavailable
from sidecar.providers import oauth
from sidecar.providers.answers import error_code, is_rejection, json_object, lifetime_ms, shown_code
from sidecar.providers.answers import string as _string
from sidecar.providers.spec import RefreshStyle
from sidecar.secret import Secret

Style = RefreshStyle


@dataclass(frozen=True)
class ProviderAuth:
    """How one provider's OAuth client talks to its token (and, for login, authorize) endpoint:
    ``style`` is its refresh flavour (``providers/flows.py``); ``client_id`` and
    ``client_secret`` may come from the environment, as OpenClaw reads them."""

    provider: str
    style: Style
    token_url: str
    client_id: str
    authorize_url: str | None = None
    redirect_uri: str | None = None
    scope: str | None = None
    issuer: str | None = None
    client_secret: Secret | None = None
    relogin: str | None = None  # OpenClaw's command to sign in again, if not the usual one
    client_id_env: tuple[str, ...] = ()  # where OpenClaw reads the client id (for messages)


OPENAI_CODEX: Final = ProviderAuth(
    provider="openai-codex",
    style="openai",
    token_url="https://auth.openai.com/oauth/token",  # noqa: S106 (a URL, not a password)
    client_id="app_EMoamEEZ73f0CkXaXp7hrann",
    authorize_url="https://auth.openai.com/oauth/authorize",
    redirect_uri="http://localhost:1455/auth/callback",
    scope="openid profile email offline_access",
)
# Spec §9 names only Anthropic's token endpoint: its logins arrive by `paste-token`.
ANTHROPIC: Final = ProviderAuth(
    provider="anthropic",
    style="anthropic",
    token_url="https://platform.claude.com/v1/oauth/token",  # noqa: S106 (a URL)
    client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
)


class TokenRejected(ReauthRequired):
    """The provider refused the grant for good; ``reason`` is its error code, so a refresher
    that sees ``refresh_token_reused`` can re-read the store for a fresher copy first."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenRequest:
    """One request to a token (or discovery) endpoint; ``body`` and ``headers`` may hold a
    secret, so the repr leaves the body out and names only the headers. ``headers`` are all the
    headers it needs, each once (a strict server refuses a repeat)."""

    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    method: Literal["GET", "POST"] = "POST"

    def __repr__(self) -> str:
        names = [name for name, _ in self.headers]
        return f"TokenRequest({self.method} {self.url!r}, headers={names!r})"


@dataclass(frozen=True)
class Login:
    """The stored login being refreshed: its profile id, provider, refresh token and every field
    of the profile (``clientId``, ``tokenEndpoint``, ``enterpriseUrl``, ...)."""

    profile_id: str
    provider: str
    refresh: str = field(repr=False)
    fields: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered, and when (the clock is data, not a call)."""

    status: int
    body: bytes = field(repr=False)
    now_ms: int


_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"


def require_refresh(auth: ProviderAuth, refresh_token: str) -> str:
    """The refresh token; a profile without one (e.g. after ``fleet push``) can only be signed
    in again."""
    if not refresh_token:
        raise TokenRejected(reauth_message(auth, "no_refresh_token"), "no_refresh_token")
    return refresh_token


def refresh_request(auth: ProviderAuth, refresh_token: str) -> TokenRequest:
    """The refresh-token grant (RFC 6749 §6): a form for OpenAI, a JSON body for Anthropic."""
    refresh = require_refresh(auth, refresh_token)
    fields = (("refresh_token", refresh), ("client_id", auth.client_id))
    return _request(auth, "refresh_token", fields)


def code_request(
    auth: ProviderAuth, code: str, verifier: Secret, state: str | None
) -> TokenRequest:
    """The authorization-code grant with PKCE (RFC 6749 §4.1.3, RFC 7636 §4.5).

    Anthropic's endpoint also wants the login's ``state`` back; OpenAI's takes no state.
    """
    if not code or not verifier:
        raise ValueError("an authorization code and its PKCE verifier are both required")
    fields = [("code", code)]
    if state is not None and auth.style == "anthropic":
        fields.append(("state", state))
    fields.append(("client_id", auth.client_id))
    if auth.redirect_uri is not None:
        fields.append(("redirect_uri", auth.redirect_uri))
    fields.append(("code_verifier", verifier.reveal()))
    return _request(auth, "authorization_code", tuple(fields))


def _request(
    auth: ProviderAuth, grant_type: str, fields: tuple[tuple[str, str], ...]
) -> TokenRequest:
    if auth.style == "openai":
        content_type, body = _FORM, oauth.token_form(grant_type, fields)
    else:
        content_type = _JSON
        body = json.dumps({"grant_type": grant_type, **dict(fields)}).encode()
    headers = (("Content-Type", content_type), ("Accept", _JSON))
    return TokenRequest(auth.token_url, headers, body)


@dataclass(frozen=True)
class Grant:
    """What a token endpoint granted, with what the tokens say about the account."""

    access: Secret
    refresh: Secret
    expires_ms: int
    id_token: Secret | None = None
    account_id: str | None = None
    plan: str | None = None
    email: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # other profile fields a flavour keeps (no secret)

    def fields(self) -> dict[str, object]:
        """OpenClaw ``oauth`` profile fields to merge over the old credential (``{**old, **new}``).

        Fields the provider did not return are absent, so the merge keeps the old values.
        """
        optional = {
            "idToken": self.id_token.reveal() if self.id_token else None,
            "accountId": self.account_id,
            "chatgptPlanType": self.plan,
            "email": self.email,
        }
        known = {key: value for key, value in optional.items() if value is not None}
        required = {"access": self.access.reveal(), "refresh": self.refresh.reveal()}
        return {**required, "expires": self.expires_ms, **known, **dict(self.extra)}


# A refresh, as a generator: yields each request, receives its answer, returns the Grant.
RefreshFlow = Generator[TokenRequest, Answer, Grant]

# Anthropic: store expiry five minutes early, as OpenClaw does (spec §9).
_ANTHROPIC_MARGIN_MS: Final = 300_000
_AUTH_CLAIMS: Final = "https://api.openai.com/auth"
_PROFILE_CLAIMS: Final = "https://api.openai.com/profile"


def parse_token_response(
    auth: ProviderAuth,
    status: int,
    body: bytes,
    now_ms: int,
    *,
    previous_refresh: str | None = None,
) -> Grant:
    """A Grant from a 2xx answer, else the error it means; no message contains the body's text.

    ``previous_refresh`` stands in when the answer holds no new refresh token (RFC 6749 §6
    allows that): Anthropic's, and OpenAI's since OpenClaw 2026.9.6 (``readOpenAITokenResponse``
    keeps the existing one; 2026.6.1 required a new one).
    """
    data = json_object(body)
    if not 200 <= status < 300:
        raise failure(auth, status, data)
    if data is None:
        raise malformed(auth, "is not a JSON object")
    access, refresh, lifetime = tokens(auth, data, previous_refresh)
    if auth.style == "openai":
        return _openai_grant(access, refresh, now_ms + lifetime, _string(data, "id_token"))
    expires_ms = now_ms + lifetime - _ANTHROPIC_MARGIN_MS
    return Grant(Secret(access), Secret(refresh), expires_ms, email=_anthropic_email(data))


def tokens(
    auth: ProviderAuth, data: dict[str, object], previous_refresh: str | None
) -> tuple[str, str, int]:
    """The access token, refresh token (the previous one when the answer has none) and lifetime
    a success must carry; never invented."""
    access = _string(data, "access_token")
    if access is None:
        raise malformed(auth, "has no access_token")
    refresh = _string(data, "refresh_token") or previous_refresh or None
    if refresh is None:
        raise malformed(auth, "has no refresh_token")
    lifetime = lifetime_ms(data.get("expires_in"))
    if lifetime is None:
        raise malformed(auth, "has no positive expires_in")
    return access, refresh, lifetime


def _openai_grant(access: str, refresh: str, expires_ms: int, id_token: str | None) -> Grant:
    """Account, plan and email come from the access token's claims, else the id token's."""
    claims = (oauth.decode_claims(access), oauth.decode_claims(id_token or ""))
    return Grant(
        Secret(access),
        Secret(refresh),
        expires_ms,
        id_token=Secret(id_token) if id_token else None,
        account_id=_claim(claims, _AUTH_CLAIMS, "chatgpt_account_id"),
        plan=_claim(claims, _AUTH_CLAIMS, "chatgpt_plan_type"),
        email=_claim(claims, _PROFILE_CLAIMS, "email") or _string(claims[1], "email"),
    )


def chatgpt_account_id(access: str) -> str | None:
    """The ChatGPT account a Codex access token names (its ``chatgpt_account_id`` claim), as
    OpenClaw's Codex transport reads it for the ``chatgpt-account-id`` header (2026.9.6
    ``resolveOpenAICodexAccountId``)."""
    return _claim((oauth.decode_claims(access),), _AUTH_CLAIMS, "chatgpt_account_id")


def _claim(claims: tuple[dict[str, object], ...], namespace: str, key: str) -> str | None:
    for claim_set in claims:
        scope = claim_set.get(namespace)
        value = _string(scope, key) if isinstance(scope, dict) else None
        if value is not None:
            return value
    return None


def _anthropic_email(data: dict[str, object]) -> str | None:
    account = data.get("account")
    return _string(account, "email_address") if isinstance(account, dict) else None


def failure(
    auth: ProviderAuth, status: int, data: dict[str, object] | None
) -> TokenRejected | RefreshUnavailable:
    """What an error answer means: a rejection (sign in again) or a failure to try again."""
    code = error_code(data)
    if code is not None and is_rejection(status, code):
        return TokenRejected(reauth_message(auth, code), code)
    return RefreshUnavailable(
        f"the {auth.provider} token endpoint answered {status} ({shown_code(code)}); "
        "try again later"
    )


def reauth_message(auth: ProviderAuth, reason: str) -> str:
    """A refused sign-in, and the command that signs in again: the sidecar's own login where it
    has one, Claude's setup token for Anthropic, else OpenClaw's login."""
    refused = f"{auth.provider} refused the sign-in ({reason})"
    if auth.style == "openai":
        login = "openai-codex" if auth.provider == "openai" else auth.provider  # store spec §3
        return f"{refused}; sign in again with: openclaw-sidecar login --provider {login}"
    if auth.style == "anthropic":
        return (
            f"{refused}; get a new token with `claude setup-token` and store it with: "
            f"openclaw-sidecar paste-token --provider {auth.provider}"
        )
    return f"{refused}; sign in again with OpenClaw: `{openclaw_login(auth.provider, auth)}`"


def openclaw_login(provider: str, auth: ProviderAuth | None, profile_id: str | None = None) -> str:
    """The command OpenClaw gives to sign in again after a refresh fails (2026.9.6
    ``buildOAuthRefreshFailureLoginCommand``), or the provider's own (``relogin``)."""
    if auth is not None and auth.relogin:
        return auth.relogin
    pinned = f" --profile-id {profile_id}" if profile_id else ""
    return f"openclaw models auth login --provider {provider}{pinned}"


def malformed(auth: ProviderAuth, what: str) -> RefreshUnavailable:
    """A 2xx answer without what a grant needs: a provider fault, nothing is stored."""
    return RefreshUnavailable(
        f"the {auth.provider} token endpoint's answer {what}; nothing was stored, try again later"
    )
