"""How a profile's credential is sent to its provider: the headers to set, fill or merge
(store spec §9), and what the provider's request quirks add (``providers/quirks.py``). Pure:
the proxy applies an ``Injection`` to the outgoing request (``sidecar.proxy.headers``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from sidecar.errors import StoreError
from sidecar.providers import copilot, xai
from sidecar.providers.catalog import ProviderSpec
from sidecar.providers.grants import chatgpt_account_id
from sidecar.providers.quirks import NO_QUIRK, request_quirk
from sidecar.providers.spec import CredentialType

__all__ = ["ANTHROPIC_BETA", "CredentialType", "Injection", "credential_injection"]

ANTHROPIC_BETA: Final = "anthropic-beta"
ANTHROPIC_OAUTH_BETA: Final = "oauth-2025-04-20"
# What the Codex CLI sends; the ChatGPT backend expects both (store spec §9).
CODEX_DEFAULTS: Final = (("openai-beta", "responses=experimental"), ("originator", "codex_cli_rs"))


@dataclass(frozen=True, repr=False)
class Injection:
    """Headers to add upstream: ``set`` replaces, ``set_if_absent`` only fills a gap."""

    set: tuple[tuple[str, str], ...] = ()
    set_if_absent: tuple[tuple[str, str], ...] = ()
    merge_beta: str | None = None  # a flag appended to anthropic-beta
    body: bytes | None = None  # sent instead of the client's body (None: the client's)

    def __repr__(self) -> str:
        # The values (and a body written here) hold the credential: only the names are shown.
        names = [name for name, _ in self.set + self.set_if_absent]
        body = "" if self.body is None else f", body=<{len(self.body)} bytes>"
        return f"Injection(headers={names!r}, merge_beta={self.merge_beta!r}{body})"


def credential_injection(
    provider: ProviderSpec,
    cred_type: CredentialType,
    secret: str,
    *,
    account_id: str | None,
    url: str = "",
    body: bytes | None = None,
) -> Injection:
    """The headers that carry a profile's credential to ``provider`` (store spec §9), and what
    its request quirks add for a request to ``url`` whose body, when the proxy holds it, is
    ``body``."""
    injection = _headers(provider, cred_type, secret, account_id)
    quirk = request_quirk(provider, cred_type, secret, url, body)
    if quirk is NO_QUIRK:
        return injection
    return replace(
        injection, set_if_absent=injection.set_if_absent + quirk.headers, body=quirk.body
    )


def _headers(
    provider: ProviderSpec, cred_type: CredentialType, secret: str, account_id: str | None
) -> Injection:
    _check_header_value(secret, provider.name, "credential")
    bearer = ("authorization", f"Bearer {secret}")
    if provider.kind == "openai-codex" or (provider.kind == "openai" and cred_type == "oauth"):
        # A profile without accountId: the access token's claim, where OpenClaw reads it.
        account_id = account_id or chatgpt_account_id(secret)
        if account_id is not None:
            _check_header_value(account_id, provider.name, "account id")
        account = (("chatgpt-account-id", account_id),) if account_id else ()
        return Injection(set=(bearer, *account), set_if_absent=CODEX_DEFAULTS)
    if provider.kind == "anthropic" and cred_type != "api_key":
        return Injection(set=(bearer,), merge_beta=ANTHROPIC_OAUTH_BETA)
    if provider.kind == "generic" or cred_type == "api_key":
        auth = provider.auth
        if cred_type != "api_key" and provider.token_auth is not None:
            auth = provider.token_auth  # e.g. Anthropic-style APIs: keys x-api-key, tokens Bearer
        extra = _quirk_headers(provider, cred_type)
        return Injection(set=_auth_headers(auth, secret), set_if_absent=extra)
    return Injection(set=(bearer,))


def _quirk_headers(
    provider: ProviderSpec, cred_type: CredentialType
) -> tuple[tuple[str, str], ...]:
    """Headers OpenClaw adds for a provider (a client's own win): GitHub Copilot's identity,
    per model; xAI's Grok CLI headers on an OAuth login's requests."""
    if provider.name == "github-copilot":
        return copilot.request_headers(cred_type)
    if provider.name == "xai" and cred_type == "oauth":
        return xai.OAUTH_HEADERS
    return ()


def _auth_headers(auth: str, secret: str) -> tuple[tuple[str, str], ...]:
    """``bearer``, ``x-api-key``, ``header:<Name>`` (the bare secret), ``authorization:<Scheme>``
    (e.g. fal's ``Authorization: Key <secret>``), or ``none``: a provider OpenClaw sends no
    credential to (Apple's on-device models), so the secret goes nowhere."""
    if auth == "none":
        return ()
    if auth == "x-api-key":
        return (("x-api-key", secret),)
    if auth.startswith("header:"):
        return ((auth.removeprefix("header:").lower(), secret),)
    if auth.startswith("authorization:"):
        return (("authorization", f"{auth.removeprefix('authorization:')} {secret}"),)
    return (("authorization", f"Bearer {secret}"),)


_HEADER_SAFE: Final = re.compile(r"[ -~]+")  # space to tilde: no CR, LF, NUL, tab or DEL


def _check_header_value(value: str, provider: str, what: str) -> None:
    # A CR or LF here would let a stored value inject headers of its own.
    # Printable ASCII only, matched in C: a subscription's access token is 1-2 KB, and a
    # generator over its characters cost ~100 us a request.
    if _HEADER_SAFE.fullmatch(value) is None:
        raise StoreError(
            f"the stored {what} for provider {provider!r} is empty or holds characters that "
            "cannot go in an HTTP header; store the profile again"
        )
