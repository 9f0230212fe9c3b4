"""``parse_settings``: pure validation of the parsed TOML; every error names its dotted key."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from sidecar.config.settings import (
    HEADER_NAME,
    HOSTNAME,
    NAME_PATTERN,
    RESERVED_PROVIDER_NAMES,
    FleetSettings,
    Listener,
    LogSettings,
    RefreshSettings,
    Settings,
    UpstreamSettings,
)
from sidecar.errors import ConfigError
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec

# ---- values: each parser takes (value, dotted key) and raises ConfigError naming the key


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value or not value.isprintable():
        raise ConfigError(f"{key}: must be a non-empty string of printable characters")
    return value


def _name(value: object, key: str) -> str:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise ConfigError(f"{key}: must match ^[a-z0-9][a-z0-9_-]{{0,63}}$")
    return value


def _path(value: object, key: str) -> Path:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(f"{key}: must be a path string")
    return Path(value).expanduser()


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false")
    return value


def parse_port(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{key}: must be an integer 1-65535")
    return value


def parse_host(value: object, key: str) -> str:
    if isinstance(value, str) and (_is_ip(value) or HOSTNAME.fullmatch(value)):
        return value
    raise ConfigError(f"{key}: must be an IP address or a host name")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(value: object, key: str, *, below: float | None = None) -> float:
    if not (_is_number(value) and value > 0 and (below is None or value < below)):
        limit = "" if below is None else f" and below {below:g}"
        raise ConfigError(f"{key}: must be a number of seconds above 0{limit}")
    return float(value)


def _margin(value: object, key: str) -> float:
    if not (_is_number(value) and value >= 0):
        raise ConfigError(f"{key}: must be a number of seconds, 0 or more")
    return float(value)


def _byte_count(value: object, key: str) -> int:
    if not (_is_number(value) and isinstance(value, int) and value >= 0):
        raise ConfigError(f"{key}: must be an integer number of bytes, 0 or more")
    return value


def _choice(*choices: str) -> Callable[[object, str], str]:
    def parse(value: object, key: str) -> str:
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}")
        return str(value)

    return parse


def _url(value: object, key: str) -> str:
    problem = "must be an http(s) URL with a host and no query, fragment or credentials"
    if not isinstance(value, str) or not value.isprintable() or " " in value:
        raise ConfigError(f"{key}: {problem}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"{key}: {problem}") from exc
    bad = parts.query or parts.fragment or "@" in parts.netloc or "?" in value or "#" in value
    if parts.scheme not in ("http", "https") or not parts.hostname or bad:
        raise ConfigError(f"{key}: {problem}")
    return value


def _base_url(value: object, key: str) -> str:
    return _url(value, key).rstrip("/")


def _auth(value: object, key: str) -> str:
    if isinstance(value, str) and (value in ("bearer", "x-api-key") or _is_header_auth(value)):
        return value
    raise ConfigError(f"{key}: must be bearer, x-api-key, header:<Name> or authorization:<Scheme>")


def _is_header_auth(value: str) -> bool:
    prefix, _, name = value.partition(":")
    return prefix in ("header", "authorization") and HEADER_NAME.fullmatch(name) is not None


# ---- tables

Fields = Mapping[str, Callable[[object, str], Any]]


def _table(value: object, key: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must be a table")
    return value


def _fields(value: object, key: str, fields: Fields) -> dict[str, Any]:
    """The table's keys parsed by ``fields``; unknown keys are refused, naming each."""
    table = _table(value, key)
    unknown = sorted(str(name) for name in table if name not in fields)
    if unknown:
        named = ", ".join(f"{key}.{name}" if key else name for name in unknown)
        raise ConfigError(f"{named}: unknown key; expected one of {', '.join(sorted(fields))}")
    prefix = f"{key}." if key else ""
    return {
        name: parse(table[name], prefix + name) for name, parse in fields.items() if name in table
    }


_LISTENER_FIELDS: Fields = {
    "host": parse_host,
    "port": parse_port,
    "agent": _name,
    "client_token_file": _path,
    "tls_cert_file": _path,
    "tls_key_file": _path,
    "plaintext": _bool,
}
_PROVIDER_FIELDS: Fields = {
    "kind": _choice("openai", "openai-codex", "anthropic", "generic"),
    "base_url": _base_url,
    "auth": _auth,
    "error_style": _choice("openai", "anthropic"),
    "token_url": _url,
    "authorize_url": _url,
    "client_id": _text,
    "scope": _text,
    "redirect_uri": _url,
}
_REFRESH_FIELDS: Fields = {
    "margin_seconds": _margin,
    "background_interval_seconds": _seconds,
    # Below OpenClaw's own 120 s, well inside the refresh lock's 180 s stale time (store §5).
    "timeout_seconds": lambda value, key: _seconds(value, key, below=120),
    "replay_body_limit_bytes": _byte_count,
}
_UPSTREAM_FIELDS: Fields = {
    "connect_timeout_seconds": _seconds,
    "read_timeout_seconds": _seconds,
    "transport": _choice("aiohttp", "httpx"),
}
_LOG_FIELDS: Fields = {"level": _choice("debug", "info", "warning", "error")}
_FLEET_FIELDS: Fields = {"url_file": _path, "key_file": _path, "prefix": _name}


def _fleet(value: object, key: str) -> FleetSettings:
    values = _fields(value, key, _FLEET_FIELDS)
    for required in ("url_file", "key_file"):
        if required not in values:
            raise ConfigError(f"{key}.{required}: missing; must be a path string")
    return FleetSettings(**values)


def _listener(value: object, key: str) -> Listener:
    values = _fields(value, key, _LISTENER_FIELDS)
    if "port" not in values:
        raise ConfigError(f"{key}.port: missing; must be an integer 1-65535")
    return Listener(**values)


def _listeners(value: object, key: str) -> tuple[Listener, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: must be a non-empty array of tables ([[listeners]])")
    listeners = tuple(_listener(item, f"{key}[{i}]") for i, item in enumerate(value))
    check_listeners(listeners)
    return listeners


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listeners(listeners: tuple[Listener, ...]) -> None:
    """Refuses duplicate addresses and network-facing listeners without caller auth."""
    seen: dict[tuple[str, int], int] = {}
    for i, listener in enumerate(listeners):
        address = (listener.host, listener.port)
        if address in seen:
            raise ConfigError(
                f"listeners[{i}].port: {listener.host}:{listener.port} "
                f"is already used by listeners[{seen[address]}]"
            )
        seen[address] = i
        _check_tls(i, listener)
        if is_loopback(listener.host):
            continue
        if listener.client_token_file is None:
            raise ConfigError(
                f"listeners[{i}].host: {listener.host} is not a loopback address, so this "
                "listener needs a client_token_file: credentials must not be offered to the "
                "network without caller auth"
            )
        if listener.tls_cert_file is None and not listener.plaintext:
            raise ConfigError(
                f"listeners[{i}].host: {listener.host} is not a loopback address, so this "
                f"listener needs listeners[{i}].tls_cert_file and listeners[{i}].tls_key_file "
                "(or plaintext = true, only inside a container or pod no other host reaches)"
            )


def _check_tls(i: int, listener: Listener) -> None:
    if (listener.tls_cert_file is None) != (listener.tls_key_file is None):
        missing = "tls_key_file" if listener.tls_key_file is None else "tls_cert_file"
        raise ConfigError(f"listeners[{i}].{missing}: TLS needs both a certificate and its key")


def _provider(name: str, value: object) -> ProviderSpec:
    key = f"providers.{name}"
    _name(name, key)
    if name in RESERVED_PROVIDER_NAMES:
        raise ConfigError(f"{key}: the name {name!r} is reserved for the sidecar's own paths")
    values = _fields(value, key, _PROVIDER_FIELDS)
    builtin = BUILTIN_PROVIDERS.get(name)
    if builtin is not None:
        return replace(builtin, **values)
    if "base_url" not in values:
        raise ConfigError(f"{key}.base_url: missing; a new provider needs its base URL")
    kind = values.setdefault("kind", "generic")
    values.setdefault("auth", "x-api-key" if kind == "anthropic" else "bearer")
    values.setdefault("error_style", "anthropic" if kind == "anthropic" else "openai")
    return ProviderSpec(name=name, **values)


def _providers(value: object, key: str) -> Mapping[str, ProviderSpec]:
    merged = dict(BUILTIN_PROVIDERS)
    for name, table in _table(value, key).items():
        merged[name] = _provider(str(name), table)
    return MappingProxyType(merged)


_TOP_FIELDS: Fields = {
    "state_dir": _path,
    "default_agent": _name,
    "listeners": _listeners,
    "providers": _providers,
    "refresh": lambda value, key: RefreshSettings(**_fields(value, key, _REFRESH_FIELDS)),
    "upstream": lambda value, key: UpstreamSettings(**_fields(value, key, _UPSTREAM_FIELDS)),
    "log": lambda value, key: LogSettings(**_fields(value, key, _LOG_FIELDS)),
    "fleet": _fleet,
}


def parse_settings(doc: Mapping[str, object], *, source: str) -> Settings:
    """Validates a parsed TOML document completely; errors name ``source`` and the key."""
    try:
        return Settings(**_fields(doc, "", _TOP_FIELDS))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
