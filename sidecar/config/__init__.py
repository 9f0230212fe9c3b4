"""Settings: the validated configuration, as frozen dataclasses.

``parse_settings`` is pure (the TOML already parsed) and checks everything; ``load_settings``
finds and reads the file and the listeners' client-token files.
"""

from sidecar.config.load import load_settings, read_client_token, with_overrides
from sidecar.config.parse import check_listeners, config_keys, is_loopback, parse_settings
from sidecar.config.settings import (
    CONFIG_ENV,
    DEFAULT_HOST,
    DEFAULT_PORT,
    NAME_PATTERN,
    RESERVED_PROVIDER_NAMES,
    FleetSettings,
    Listener,
    LogLevel,
    LogSettings,
    RefreshSettings,
    Settings,
    UpstreamSettings,
    UsageSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "NAME_PATTERN",
    "RESERVED_PROVIDER_NAMES",
    "FleetSettings",
    "Listener",
    "LogLevel",
    "LogSettings",
    "RefreshSettings",
    "Settings",
    "UpstreamSettings",
    "UsageSettings",
    "check_listeners",
    "config_keys",
    "is_loopback",
    "load_settings",
    "parse_settings",
    "read_client_token",
    "with_overrides",
]
