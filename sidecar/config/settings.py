"""The validated configuration, as frozen dataclasses, and the built-in providers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from sidecar.secret import Secret

ProviderKind = Literal["openai", "openai-codex", "anthropic", "generic"]
ErrorStyle = Literal["openai", "anthropic"]
LogLevel = Literal["debug", "info", "warning", "error"]
UpstreamTransport = Literal["aiohttp", "httpx"]

CONFIG_ENV: Final = "OPENCLAW_SIDECAR_CONFIG"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 18801
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Provider names are the first path segment, so they must not shadow the app's own paths.
RESERVED_PROVIDER_NAMES: Final = frozenset({"agents", "healthz", "readyz", "metrics"})
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 token
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


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


@dataclass(frozen=True, kw_only=True)
class Listener:
    host: str = DEFAULT_HOST
    port: int
    agent: str | None = None
    client_token_file: Path | None = None
    client_token: Secret | None = None  # read by load_settings; its repr is masked
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Plain HTTP on a non-loopback address: only inside a container or pod whose port no other
    # host can reach (the compose and Kubernetes examples); a central sidecar uses TLS.
    plaintext: bool = False
    # OpenClaw's read-through from main (store spec §7) on this port; unset: off on a port bound
    # to an agent (isolation by port), on for a shared one (OpenClaw's own behaviour).
    inherit: bool | None = None

    @property
    def reads_through(self) -> bool:
        """Whether an agent served here also gets the profiles it would inherit from main."""
        return self.agent is None if self.inherit is None else self.inherit


@dataclass(frozen=True, kw_only=True)
class RefreshSettings:
    margin_seconds: float = 300
    background_interval_seconds: float = 60
    timeout_seconds: float = 30
    replay_body_limit_bytes: int = 1_048_576


@dataclass(frozen=True, kw_only=True)
class UpstreamSettings:
    connect_timeout_seconds: float = 10
    read_timeout_seconds: float = 600
    # httpx's API over aiohttp's connection pool: ~5x the throughput of httpx's own pool in
    # bench/ (docs/benchmarks.md); "httpx" keeps httpx's own transport.
    transport: UpstreamTransport = "aiohttp"


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    level: LogLevel = "info"


@dataclass(frozen=True, kw_only=True)
class FleetSettings:
    url_file: Path
    key_file: Path
    prefix: str = "openclaw-sidecar"


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


@dataclass(frozen=True, kw_only=True)
class Settings:
    listeners: tuple[Listener, ...] = (Listener(port=DEFAULT_PORT),)
    providers: Mapping[str, ProviderSpec] = field(default_factory=lambda: BUILTIN_PROVIDERS)
    state_dir: Path | None = None
    default_agent: str = "main"
    refresh: RefreshSettings = RefreshSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    log: LogSettings = LogSettings()
    fleet: FleetSettings | None = None
