"""What the sidecar knows of one provider: ``ProviderSpec`` (what routing and injection use) and
``CatalogEntry`` (a spec with what it was read from, for listings and docs). Pure values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProviderKind = Literal["openai", "openai-codex", "anthropic", "generic"]
CredentialType = Literal["api_key", "token", "oauth"]
ErrorStyle = Literal["openai", "anthropic"]
# How a provider's OAuth logins are refreshed, as OpenClaw refreshes them (providers/flows.py);
# "none": OpenClaw cannot refresh them either, the user signs in again.
RefreshStyle = Literal["openai", "anthropic", "xai", "chutes", "google", "copilot", "none"]
# How an endpoint value read from a profile is checked before a credential is sent to it.
FieldCheck = Literal["url", "id", "ghe-tenant"]


@dataclass(frozen=True)
class EndpointField:
    """One placeholder of an endpoint template, read from a profile at ``path`` (dotted)."""

    placeholder: str
    path: str
    check: FieldCheck


@dataclass(frozen=True)
class Endpoint:
    """A per-user endpoint: from the profile where OpenClaw keeps it (``template`` filled from
    ``fields``), else the spec's ``base_url`` (the catalog's default or the config's), else an
    error naming ``config_key``. ``openclaw_default`` (a local server's usual address) is only
    ever shown, never used."""

    config_key: str
    template: str | None = None
    fields: tuple[EndpointField, ...] = ()
    openclaw_default: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    name: str
    kind: ProviderKind
    base_url: str  # "" when the endpoint is per user and not configured
    # How an api_key is sent: bearer | x-api-key | header:<Name> | authorization:<Scheme>, or
    # none (OpenClaw sends no credential to it: nothing is sent).
    auth: str = "bearer"
    error_style: ErrorStyle = "openai"
    token_url: str | None = None
    authorize_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    redirect_uri: str | None = None
    token_auth: str | None = None  # how a token / OAuth access token is sent, if not as ``auth``
    profiles_from: str | None = None  # whose profiles serve this route, if not its own
    endpoint: Endpoint | None = None
    refresh: RefreshStyle | None = None  # None: no refresh method the sidecar knows
    issuer: str | None = None  # an OIDC issuer whose discovery names the token endpoint (xAI)
    client_id_env: tuple[str, ...] = ()  # where OpenClaw reads the client id, if not above
    client_secret_env: tuple[str, ...] = ()  # where OpenClaw reads the client secret
    relogin: str | None = None  # OpenClaw's command to sign in again, when it has a special one
    oauth_base_url: str | None = None  # where OAuth logins' requests go, if not base_url


def refresh_style(spec: ProviderSpec) -> RefreshStyle | None:
    """The refresh flavour: the spec's, else (a provider of the config with a token endpoint and
    a client) the RFC 6749 form of its kind."""
    if spec.refresh is not None:
        return spec.refresh
    if spec.token_url and spec.client_id:
        return "anthropic" if spec.kind == "anthropic" else "openai"
    return None


def can_refresh(spec: ProviderSpec) -> bool:
    """Whether the sidecar refreshes this provider's OAuth logins."""
    return refresh_style(spec) not in (None, "none")


@dataclass(frozen=True, kw_only=True)
class CatalogEntry:
    """A built-in provider and where each fact was read (``scripts/gen_provider_catalog.py``)."""

    spec: ProviderSpec
    label: str
    api: str  # OpenClaw's API style: openai-completions, anthropic-messages, ...
    credentials: tuple[str, ...]  # the profile types OpenClaw stores for it
    openclaw: tuple[str, ...]  # e.g. "2026.9.6 bundled (xai)", "2026.9.6 external (deepseek)"
    api_from: str
    base_url_from: str
    auth_from: str
    note: str = ""
