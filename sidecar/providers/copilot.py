"""GitHub Copilot, in OpenClaw's two models. Pure: requests, answers, base URLs and headers.

- **2026.6.1's exchange** (``oauth-*.js`` ``refreshGitHubCopilotToken``; an OAuth profile holds
  the GitHub token in ``refresh`` and a short-lived Copilot token in ``access``): the refresh
  exchanges the GitHub token at ``https://api.<domain>/copilot_internal/v2/token`` (the
  profile's ``enterpriseUrl``, else github.com) for a Copilot token whose ``proxy-ep`` names the
  API host (``getGitHubCopilotBaseUrl``).
- **2026.9.6's GitHub token** (``runtime-auth-*.mjs`` ``resolveCopilotRuntimeAuth``; a token
  profile holds the GitHub token): the GitHub token itself is sent, to the base URL that
  ``https://api.<domain>/copilot_internal/user`` names (``endpoints.api``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from sidecar.errors import ReauthRequired, RefreshUnavailable
from sidecar.providers.answers import json_object, string
from sidecar.providers.conversation import ModelCall, contains_type, role_of
from sidecar.providers.grants import (
    Answer,
    Grant,
    Login,
    ProviderAuth,
    RefreshFlow,
    TokenRejected,
    TokenRequest,
    malformed,
    openclaw_login,
    require_refresh,
)
from sidecar.secret import Secret

PUBLIC_DOMAIN: Final = "github.com"
DEFAULT_API: Final = "https://api.{domain}"  # GitHub's REST API for a domain
DEFAULT_BASE_URL: Final = "https://api.individual.githubcopilot.com"
LOGIN: Final = "openclaw models auth login --provider github-copilot"
# A GitHub token goes to GitHub or a data-residency tenant only (2026.9.6 domain.ts).
_TENANT: Final = re.compile(r"[a-z0-9-]+\.ghe\.com")
_PROXY_EP: Final = re.compile(r"(?:^|;)\s*proxy-ep=([^;\s]+)", re.IGNORECASE)
# The IDE identity both versions send (copilot-dynamic-headers COPILOT_EDITOR_VERSION, ...).
IDE_HEADERS: Final = (
    ("user-agent", "GitHubCopilotChat/0.35.0"),
    ("editor-version", "vscode/1.107.0"),
    ("editor-plugin-version", "copilot-chat/0.35.0"),
)
# The request headers OpenClaw adds (a client's own win): 2026.6.1 with an exchanged Copilot
# token (buildCopilotDynamicHeaders), 2026.9.6 with the GitHub token (buildCopilotRuntimeHeaders,
# and @openclaw/ai's Openai-Intent). Both also send X-Initiator from the conversation
# (conversation_headers below).
EXCHANGED_HEADERS: Final = (
    *IDE_HEADERS,
    ("copilot-integration-id", "vscode-chat"),
    ("openai-organization", "github-copilot"),
)
GITHUB_TOKEN_HEADERS: Final = (
    *IDE_HEADERS,
    ("openai-organization", "github-copilot"),
    ("copilot-integration-id", "copilot-developer-cli"),
    ("openai-intent", "conversation-edits"),
)
# OpenClaw stores the Copilot token's expiry five minutes early (resolveExpiresAtFromEpochSeconds
# with bufferMs 300 s).
_EARLY_MS: Final = 300_000
_MAX_EPOCH_S: Final = 10**11


def domain_of(enterprise_url: object) -> str:
    """The GitHub domain of an ``enterpriseUrl`` (a host or URL, OpenClaw's ``normalizeDomain``),
    github.com when there is none; ``ValueError`` for a host that is neither github.com nor a
    ``*.ghe.com`` tenant (2026.9.6 refuses those; 2026.6.1 sent the token anywhere)."""
    if not isinstance(enterprise_url, str) or not enterprise_url.strip():
        return PUBLIC_DOMAIN
    host = _host(enterprise_url.strip())
    if host == PUBLIC_DOMAIN or _TENANT.fullmatch(host):
        return host
    raise ValueError("not github.com or a *.ghe.com tenant")


def api_base(auth: ProviderAuth, domain: str) -> str:
    """GitHub's API for ``domain`` (``[providers.github-copilot] issuer`` names another)."""
    return (auth.issuer or DEFAULT_API).replace("{domain}", domain).rstrip("/")


# --- 2026.6.1: the exchange -------------------------------------------------------------------


def refresh_flow(auth: ProviderAuth, login: Login) -> RefreshFlow:
    """2026.6.1's refresh of an OAuth profile: GET a Copilot token with the GitHub token."""
    github_token = require_refresh(auth, login.refresh)
    domain = _domain(auth, login)
    headers = (
        ("Accept", "application/json"),
        ("Authorization", f"Bearer {github_token}"),
        ("User-Agent", "GitHubCopilotChat/0.35.0"),
        ("Editor-Version", "vscode/1.107.0"),
        ("Editor-Plugin-Version", "copilot-chat/0.35.0"),
        ("Copilot-Integration-Id", "vscode-chat"),
    )
    url = api_base(auth, domain) + "/copilot_internal/v2/token"
    answer = yield TokenRequest(url, headers, b"", "GET")
    return _exchanged(auth, answer, github_token)


def _domain(auth: ProviderAuth, login: Login) -> str:
    try:
        return domain_of(login.fields.get("enterpriseUrl"))
    except ValueError:
        raise RefreshUnavailable(
            f"profile {login.profile_id} has an enterpriseUrl that is not github.com or a "
            "*.ghe.com tenant, so its GitHub token is not sent there (as OpenClaw 2026.9.6 "
            f"refuses it); sign in again with `{openclaw_login(login.provider, auth)}`"
        ) from None


def _exchanged(auth: ProviderAuth, answer: Answer, github_token: str) -> Grant:
    if answer.status in (401, 403):
        reason = _refused(answer.status)
        raise TokenRejected(_reauth(reason), reason)
    if not 200 <= answer.status < 300:
        raise RefreshUnavailable(
            f"GitHub's Copilot token endpoint answered {answer.status}; try again later"
        )
    data = json_object(answer.body)
    if data is None:
        raise malformed(auth, "is not a JSON object")
    token = string(data, "token")
    if token is None:
        raise malformed(auth, "has no token")
    expires_at = _epoch_seconds(data.get("expires_at"))
    if expires_at is None:
        raise malformed(auth, "has no expires_at")
    return Grant(Secret(token), Secret(github_token), expires_at * 1000 - _EARLY_MS)


def base_url_from_token(token: str, domain: str) -> str | None:
    """2026.6.1's ``getBaseUrlFromToken``: the ``proxy-ep`` of a Copilot token, ``proxy.``
    made ``api.``, when it is a host 2026.9.6 trusts (``isTrustedCopilotApiHost``); None
    otherwise (then the tenant's ``copilot-api.<domain>`` or the public API)."""
    found = _PROXY_EP.search(token)
    if found is None:
        return None
    host = re.sub(r"^proxy\.", "api.", _host(found.group(1).strip()))
    return f"https://{host}" if host and is_trusted_host(host, domain) else None


# --- 2026.9.6: the GitHub token and its API's base URL ----------------------------------------


def user_request(auth: ProviderAuth, github_token: str, domain: str) -> TokenRequest:
    """2026.9.6's lookup of the account's Copilot API (``copilotUserUrl``)."""
    headers = (("Accept", "application/json"), ("Authorization", f"Bearer {github_token}"))
    return TokenRequest(api_base(auth, domain) + "/copilot_internal/user", headers, b"", "GET")


def base_url_from_user(answer: Answer, domain: str) -> str | None:
    """``parseCopilotApiBaseUrl``: the trusted ``endpoints.api``, None when the answer names
    none (the tenant's or public default then); a refused token is ``ReauthRequired``, an
    untrusted URL or another failure ``RefreshUnavailable``."""
    if answer.status in (401, 403):
        reason = _refused(answer.status)
        raise ReauthRequired(_reauth(reason))
    data = json_object(answer.body) if 200 <= answer.status < 300 else None
    if data is None:
        raise RefreshUnavailable(
            f"GitHub's Copilot user endpoint answered {answer.status}; try again later"
        )
    endpoints = data.get("endpoints")
    api = endpoints.get("api") if isinstance(endpoints, Mapping) else None
    if api is None or api == "":
        return None
    url = _trusted_api_url(api, domain)
    if url is None:
        raise RefreshUnavailable(
            "GitHub's Copilot user endpoint named an API off GitHub's Copilot hosts; nothing "
            "was sent there"
        )
    return url


def _trusted_api_url(api: object, domain: str) -> str | None:
    if not isinstance(api, str):
        return None
    try:
        parts = urlsplit(api.strip())
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    plain = not (parts.username or parts.password or parts.query or parts.fragment)
    if parts.scheme != "https" or not plain or not is_trusted_host(host, domain):
        return None
    return api.strip().rstrip("/")


# --- shared ---------------------------------------------------------------------------------


def fallback_base_url(domain: str) -> str | None:
    """2026.9.6's ``copilotApiBaseFallback`` for a tenant; None for github.com (then the
    catalog's or the config's base URL, the public API by default)."""
    return None if domain == PUBLIC_DOMAIN else f"https://copilot-api.{domain}"


def is_trusted_host(host: str, domain: str) -> bool:
    """2026.9.6's ``isTrustedCopilotApiHost``: GitHub's Copilot hosts, or the tenant's own."""
    if host == "copilot-proxy.githubusercontent.com" or host.endswith(".githubcopilot.com"):
        return True
    return domain != PUBLIC_DOMAIN and (host == domain or host.endswith(f".{domain}"))


def request_headers(cred_type: str) -> tuple[tuple[str, str], ...]:
    """The headers OpenClaw adds to a Copilot request: an OAuth login's Copilot token is
    2026.6.1's model, a GitHub token (a token profile) 2026.9.6's."""
    return EXCHANGED_HEADERS if cred_type == "oauth" else GITHUB_TOKEN_HEADERS


# Each API's image part, the wire form of OpenClaw's internal "image" content.
_IMAGES: Final = {
    "chat": frozenset({"image_url"}),
    "responses": frozenset({"input_image"}),
    "messages": frozenset({"image"}),
}
_TOOL_RESULT: Final = frozenset({"tool_result"})


def conversation_headers(call: ModelCall | None) -> tuple[tuple[str, str], ...]:
    """The per-request headers OpenClaw adds to a Copilot model call (2026.9.6
    ``extensions/github-copilot/stream.ts`` ``wrapCopilotProviderStream`` with
    ``projectCopilotRequestFacts`` in nested mode; 2026.6.1's ``inferCopilotInitiator`` is the
    same), for chat completions, responses and anthropic messages alike: ``x-initiator``, and
    ``copilot-vision-request: true`` when the conversation sends an image. None for any other
    request."""
    if call is None:
        return ()
    headers: tuple[tuple[str, str], ...] = (("x-initiator", initiator(call.turns)),)
    if _has_images(call):
        headers += (("copilot-vision-request", "true"),)
    return headers


def initiator(turns: tuple[object, ...]) -> str:
    """``agent`` when the last turn is not the user's own words (another role, a Responses
    item without one such as a tool's output, or a user turn carrying a ``tool_result``);
    ``user`` when it is, and when there is no turn to read: OpenClaw's answer for an empty
    conversation, which is also what a body the sidecar does not hold reads as."""
    last = turns[-1] if turns else None
    if last is None:
        return "user"
    if role_of(last) == "user" and not contains_type(_content(last), _TOOL_RESULT):
        return "user"
    return "agent"


def _has_images(call: ModelCall) -> bool:
    """OpenClaw's ``hasImages``: an image in a user turn or a tool's result."""
    images = _IMAGES[call.api]
    return any(
        _is_user_or_tool(turn) and contains_type(_content(turn), images) for turn in call.turns
    )


def _is_user_or_tool(turn: object) -> bool:
    kind = turn.get("type") if isinstance(turn, Mapping) else None
    return role_of(turn) in ("user", "tool") or kind == "function_call_output"


def _content(turn: object) -> object:
    if not isinstance(turn, Mapping):
        return None
    return turn.get("content", turn.get("output"))


def _refused(status: int) -> str:
    # GitHub's {"message": "Bad credentials"}: the GitHub token is revoked; a 403: the account
    # has no Copilot. Only a new sign-in helps either way.
    return "bad_credentials" if status == 401 else "copilot_not_enabled"


def _reauth(reason: str) -> str:
    return f"GitHub refused the Copilot sign-in ({reason}); sign in again with OpenClaw: `{LOGIN}`"


def _host(raw: str) -> str:
    try:
        return (urlsplit(raw if "://" in raw else f"https://{raw}").hostname or "").lower()
    except ValueError:
        return ""


def _epoch_seconds(value: object) -> int | None:
    """``expires_at`` as epoch seconds (a number or a string of digits)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if 0 < value < _MAX_EPOCH_S else None
