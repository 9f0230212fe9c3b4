"""``load_settings``: find and read the TOML file and the listeners' client-token files."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sidecar.config.parse import check_listeners, parse_host, parse_port, parse_settings
from sidecar.config.settings import CONFIG_ENV, DEFAULT_PORT, TOKEN_PATTERN, Listener, Settings
from sidecar.errors import ConfigError
from sidecar.secret import Secret

# ---- I/O


def read_client_token(listener: Listener, index: int) -> str:
    """The caller token in the listener's ``client_token_file``, whitespace stripped."""
    key = f"listeners[{index}].client_token_file"
    path = listener.client_token_file
    if path is None:
        raise ConfigError(f"{key}: not set")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None
    if not token:
        raise ConfigError(f"{key}: {path} is empty")
    if TOKEN_PATTERN.fullmatch(token) is None:
        raise ConfigError(f"{key}: {path} must hold one token of printable ASCII, no spaces")
    return token


def _unreadable_tls_files(settings: Settings) -> list[str]:
    return [
        f"listeners[{i}].{name}: cannot read {path}"
        for i, listener in enumerate(settings.listeners)
        for name in ("tls_cert_file", "tls_key_file")
        if (path := getattr(listener, name)) is not None and not os.access(path, os.R_OK)
    ]


def _with_client_token(listener: Listener, index: int) -> Listener:
    if listener.client_token_file is None:
        return listener
    return replace(listener, client_token=Secret(read_client_token(listener, index)))


def _with_client_tokens(settings: Settings, problems: list[str]) -> Settings:
    """The listeners with their client tokens read; each file that fails adds a problem."""
    listeners = []
    for i, listener in enumerate(settings.listeners):
        try:
            listeners.append(_with_client_token(listener, i))
        except ConfigError as exc:
            problems += exc.problems
    return replace(settings, listeners=tuple(listeners))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Settings from ``path``, else ``$OPENCLAW_SIDECAR_CONFIG``, else the built-in default."""
    chosen = path
    if chosen is None and environ.get(CONFIG_ENV):
        chosen = Path(environ[CONFIG_ENV])
    if chosen is None:
        return Settings()
    settings = parse_settings(_read_toml(chosen), source=str(chosen))
    problems = _unreadable_tls_files(settings)
    settings = _with_client_tokens(settings, problems)
    if problems:
        raise ConfigError.of(problems, where=str(chosen))
    return replace(settings, config_file=chosen)


def with_overrides(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    state_dir: Path | None = None,
) -> Settings:
    """Applies the CLI's --host/--port (to the first listener) and --state-dir."""
    listeners = settings.listeners
    if host is not None or port is not None:
        first = listeners[0] if listeners else Listener(port=DEFAULT_PORT)
        try:
            first = replace(
                first,
                host=first.host if host is None else parse_host(host, "--host"),
                port=first.port if port is None else parse_port(port, "--port"),
            )
            listeners = (first, *listeners[1:])
            check_listeners(listeners)
        except ConfigError as exc:
            raise ConfigError.of(exc.problems, where="command line") from None
    new_dir = settings.state_dir if state_dir is None else state_dir.expanduser()
    return replace(settings, listeners=listeners, state_dir=new_dir)
