"""The validated configuration, as frozen dataclasses (providers: ``sidecar.providers.catalog``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.secret import Secret

LogLevel = Literal["debug", "info", "warning", "error"]
UpstreamTransport = Literal["aiohttp", "httpx"]

CONFIG_ENV: Final = "OPENCLAW_SIDECAR_CONFIG"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 18801
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Provider names are the first path segment, so they must not shadow the app's own paths.
RESERVED_PROVIDER_NAMES: Final = frozenset({"agents", "healthz", "readyz", "metrics", "ui"})
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 token
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


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
class ClientSettings:
    """What each listener allows its clients (sidecar/proxy/admission.py)."""

    # A client that has not sent its whole request head this long after connecting (or after the
    # first byte of a later request on the connection) gets a 408 and is closed: a slow client
    # must not hold a connection for ever. Loopback clients send a head in microseconds.
    head_timeout_seconds: float = 10
    # Open connections per listener; one more is answered 503 and closed at once.
    max_connections: int = 1024


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    level: LogLevel = "info"


@dataclass(frozen=True, kw_only=True)
class UsageSettings:
    """The usage database, in the sidecar's own data folder (sidecar/usage/)."""

    enabled: bool = True
    # None: $OPENCLAW_SIDECAR_DATA_DIR, else $XDG_STATE_HOME/openclaw-sidecar, else
    # ~/.local/state/openclaw-sidecar (sidecar.usage.db.data_dir).
    dir: Path | None = None
    retention_days: int = 30


@dataclass(frozen=True, kw_only=True)
class FleetSettings:
    url_file: Path
    key_file: Path
    prefix: str = "openclaw-sidecar"


@dataclass(frozen=True, kw_only=True)
class Settings:
    listeners: tuple[Listener, ...] = (Listener(port=DEFAULT_PORT),)
    providers: Mapping[str, ProviderSpec] = field(default_factory=lambda: BUILTIN_PROVIDERS)
    state_dir: Path | None = None
    default_agent: str = "main"
    refresh: RefreshSettings = RefreshSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    clients: ClientSettings = ClientSettings()
    log: LogSettings = LogSettings()
    usage: UsageSettings = UsageSettings()
    fleet: FleetSettings | None = None
    # Not a key: the file these settings were read from, named in the commands that hints
    # suggest so that they read the same providers and state dir.
    config_file: Path | None = None
