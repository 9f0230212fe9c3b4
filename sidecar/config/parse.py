"""``parse_settings``: pure validation of the parsed TOML; every error names its dotted key.

Parsing goes on past a bad value: tables collect the problems of all their keys (and lists of
tables those of all their items) and raise them together, so one run reports every mistake.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard, TypeVar, get_args
from urllib.parse import urlsplit

from sidecar.config.settings import (
    HEADER_NAME,
    HOSTNAME,
    NAME_PATTERN,
    RESERVED_PROVIDER_NAMES,
    ClientSettings,
    FleetSettings,
    Listener,
    LogSettings,
    RefreshSettings,
    Settings,
    UpstreamSettings,
    UsageSettings,
)
from sidecar.errors import ConfigError
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.providers.spec import RefreshStyle

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


def _count(value: object, key: str) -> int:
    if not (_is_number(value) and isinstance(value, int) and value >= 1):
        raise ConfigError(f"{key}: must be an integer, 1 or more")
    return value


def _days(value: object, key: str) -> int:
    if not (_is_number(value) and isinstance(value, int) and 1 <= value <= 36500):
        raise ConfigError(f"{key}: must be a whole number of days, 1 or more")
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
T = TypeVar("T")


def _table(value: object, key: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must be a table")
    return value


def _fields(
    value: object, key: str, fields: Fields, required: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The table's keys parsed by ``fields``. Every problem is raised at once: the unknown keys
    (named together), each bad value in the file's order, then each missing ``required`` key
    (with what it must be)."""
    table = _table(value, key)
    prefix = f"{key}." if key else ""
    problems: list[str] = []
    unknown = sorted(str(name) for name in table if name not in fields)
    if unknown:
        named = ", ".join(prefix + name for name in unknown)
        problems.append(f"{named}: unknown key; expected one of {', '.join(sorted(fields))}")
    parsed: dict[str, Any] = {}
    for name, raw in table.items():
        if name in fields:
            try:
                parsed[name] = fields[name](raw, prefix + name)
            except ConfigError as exc:
                problems += exc.problems
    missing = (name for name in required or {} if name not in table)
    problems += [f"{prefix}{name}: missing; {(required or {})[name]}" for name in missing]
    if problems:
        raise ConfigError.of(problems)
    return parsed


def _parse_all(items: Iterable[tuple[object, str]], parse: Callable[[object, str], T]) -> list[T]:
    """``parse`` on every (value, key), going on past failures: all problems raised together."""
    parsed: list[T] = []
    problems: list[str] = []
    for value, key in items:
        try:
            parsed.append(parse(value, key))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError.of(problems)
    return parsed


_LISTENER_FIELDS: Fields = {
    "host": parse_host,
    "port": parse_port,
    "agent": _name,
    "client_token_file": _path,
    "tls_cert_file": _path,
    "tls_key_file": _path,
    "plaintext": _bool,
    "inherit": _bool,
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
    "refresh": _choice(*get_args(RefreshStyle)),
    "issuer": _url,
    "oauth_base_url": _base_url,
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
_CLIENT_FIELDS: Fields = {
    "head_timeout_seconds": _seconds,
    "max_connections": _count,
}
_LOG_FIELDS: Fields = {"level": _choice("debug", "info", "warning", "error")}
_FLEET_FIELDS: Fields = {"url_file": _path, "key_file": _path, "prefix": _name}
_USAGE_FIELDS: Fields = {"enabled": _bool, "dir": _path, "retention_days": _days}


def _fleet(value: object, key: str) -> FleetSettings:
    required = {"url_file": "must be a path string", "key_file": "must be a path string"}
    return FleetSettings(**_fields(value, key, _FLEET_FIELDS, required))


def _listener(value: object, key: str) -> Listener:
    required = {"port": "must be an integer 1-65535"}
    return Listener(**_fields(value, key, _LISTENER_FIELDS, required))


def _listeners(value: object, key: str) -> tuple[Listener, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: must be a non-empty array of tables ([[listeners]])")
    items = ((item, f"{key}[{i}]") for i, item in enumerate(value))
    listeners = tuple(_parse_all(items, _listener))
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
    problems: list[str] = []
    for i, listener in enumerate(listeners):
        address = (listener.host, listener.port)
        if address in seen:
            problems.append(
                f"listeners[{i}].port: {listener.host}:{listener.port} "
                f"is already used by listeners[{seen[address]}]"
            )
        seen.setdefault(address, i)
        problem = _tls_pair_problem(i, listener) or _exposure_problem(i, listener)
        problems += [problem] if problem else []
    if problems:
        raise ConfigError.of(problems)


def _tls_pair_problem(i: int, listener: Listener) -> str | None:
    if (listener.tls_cert_file is None) != (listener.tls_key_file is None):
        missing = "tls_key_file" if listener.tls_key_file is None else "tls_cert_file"
        return f"listeners[{i}].{missing}: TLS needs both a certificate and its key"
    return None


def _exposure_problem(i: int, listener: Listener) -> str | None:
    """A listener other hosts can reach needs caller auth first, then TLS (or plaintext)."""
    if is_loopback(listener.host):
        return None
    if listener.client_token_file is None:
        return (
            f"listeners[{i}].host: {listener.host} is not a loopback address, so this "
            "listener needs a client_token_file: credentials must not be offered to the "
            "network without caller auth"
        )
    if listener.tls_cert_file is None and not listener.plaintext:
        return (
            f"listeners[{i}].host: {listener.host} is not a loopback address, so this "
            f"listener needs listeners[{i}].tls_cert_file and listeners[{i}].tls_key_file "
            "(or plaintext = true, only inside a container or pod no other host reaches)"
        )
    return None


def _provider(value: object, name: str) -> ProviderSpec:
    key = f"providers.{name}"
    problems: list[str] = []
    try:
        _name(name, key)
    except ConfigError as exc:
        problems += exc.problems
    if name in RESERVED_PROVIDER_NAMES:
        problems.append(f"{key}: the name {name!r} is reserved for the sidecar's own paths")
    builtin = BUILTIN_PROVIDERS.get(name)
    required = {} if builtin else {"base_url": "a new provider needs its base URL"}
    try:
        values = _fields(value, key, _PROVIDER_FIELDS, required)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError.of(problems)
    if builtin is not None:
        return replace(builtin, **values)
    kind = values.setdefault("kind", "generic")
    values.setdefault("auth", "x-api-key" if kind == "anthropic" else "bearer")
    values.setdefault("error_style", "anthropic" if kind == "anthropic" else "openai")
    return ProviderSpec(name=name, **values)


def _providers(value: object, key: str) -> Mapping[str, ProviderSpec]:
    tables = _table(value, key)
    specs = _parse_all(((table, str(name)) for name, table in tables.items()), _provider)
    return MappingProxyType({**BUILTIN_PROVIDERS, **{spec.name: spec for spec in specs}})


_TOP_FIELDS: Fields = {
    "state_dir": _path,
    "default_agent": _name,
    "listeners": _listeners,
    "providers": _providers,
    "refresh": lambda value, key: RefreshSettings(**_fields(value, key, _REFRESH_FIELDS)),
    "upstream": lambda value, key: UpstreamSettings(**_fields(value, key, _UPSTREAM_FIELDS)),
    "clients": lambda value, key: ClientSettings(**_fields(value, key, _CLIENT_FIELDS)),
    "log": lambda value, key: LogSettings(**_fields(value, key, _LOG_FIELDS)),
    "usage": lambda value, key: UsageSettings(**_fields(value, key, _USAGE_FIELDS)),
    "fleet": _fleet,
}


# Every table of the file and its keys ("providers.*": each [providers.X]); the README's
# configuration section documents each key (tests/config/test_config.py holds it to that).
TABLES: Mapping[str, Fields] = MappingProxyType(
    {
        "": _TOP_FIELDS,
        "listeners": _LISTENER_FIELDS,
        "providers.*": _PROVIDER_FIELDS,
        "refresh": _REFRESH_FIELDS,
        "upstream": _UPSTREAM_FIELDS,
        "clients": _CLIENT_FIELDS,
        "log": _LOG_FIELDS,
        "usage": _USAGE_FIELDS,
        "fleet": _FLEET_FIELDS,
    }
)


def config_keys() -> list[str]:
    """Every key the parser accepts, dotted: ``state_dir``, ``listeners.port``,
    ``providers.*.base_url``."""
    return [
        f"{table}.{name}" if table else name for table, fields in TABLES.items() for name in fields
    ]


def parse_settings(doc: Mapping[str, object], *, source: str) -> Settings:
    """Validates a parsed TOML document completely; errors name ``source`` and the key."""
    try:
        return Settings(**_fields(doc, "", _TOP_FIELDS))
    except ConfigError as exc:
        raise ConfigError.of(exc.problems, where=source) from None
