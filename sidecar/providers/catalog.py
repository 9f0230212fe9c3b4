"""The built-in providers: base URL, API style, how a credential is sent, error style, and the
OAuth client of the providers the sidecar can sign in to and refresh. ``[providers.X]`` in the
config overrides or adds entries (``sidecar.config.parse``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

ProviderKind = Literal["openai", "openai-codex", "anthropic", "generic"]
ErrorStyle = Literal["openai", "anthropic"]


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    name: str
    kind: ProviderKind
    base_url: str
    auth: str = "bearer"  # how an api_key is sent: bearer | x-api-key | header:<Name>
    error_style: ErrorStyle = "openai"
    token_url: str | None = None
    authorize_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    redirect_uri: str | None = None


BUILTIN_PROVIDERS: Final[Mapping[str, ProviderSpec]] = MappingProxyType(
    {
        "openai": ProviderSpec(name="openai", kind="openai", base_url="https://api.openai.com"),
        "openai-codex": ProviderSpec(
            name="openai-codex",
            kind="openai-codex",
            base_url="https://chatgpt.com/backend-api/codex",
            token_url="https://auth.openai.com/oauth/token",  # noqa: S106 -- a URL
            authorize_url="https://auth.openai.com/oauth/authorize",
            client_id="app_EMoamEEZ73f0CkXaXp7hrann",
            scope="openid profile email offline_access",
            redirect_uri="http://localhost:1455/auth/callback",
        ),
        "anthropic": ProviderSpec(
            name="anthropic",
            kind="anthropic",
            base_url="https://api.anthropic.com",
            auth="x-api-key",
            error_style="anthropic",
            token_url="https://platform.claude.com/v1/oauth/token",  # noqa: S106 -- a URL
            authorize_url="https://claude.ai/oauth/authorize",
            client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            scope="org:create_api_key user:profile user:inference",
            redirect_uri="https://console.anthropic.com/oauth/code/callback",
        ),
        "openrouter": ProviderSpec(
            name="openrouter", kind="generic", base_url="https://openrouter.ai/api"
        ),
    }
)
