"""Tests for sidecar.config: validation names the file and key; loading reads files."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sidecar.config import (
    FleetSettings,
    Listener,
    LogSettings,
    RefreshSettings,
    Settings,
    UpstreamSettings,
    config_keys,
    load_settings,
    parse_settings,
    read_client_token,
    with_overrides,
)
from sidecar.config.settings import ClientSettings
from sidecar.errors import ConfigError
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.secret import Secret

SOURCE = "/etc/sidecar.toml"
AUTH_RULE = (
    "providers.my-llm.auth: must be bearer, x-api-key, header:<Name> or authorization:<Scheme>"
)


def test_empty_document_gives_the_defaults() -> None:
    """An empty config is the documented default: one loopback listener, built-ins, main."""
    assert parse_settings({}, source=SOURCE) == Settings(
        listeners=(Listener(host="127.0.0.1", port=18801),),
        providers=BUILTIN_PROVIDERS,
        state_dir=None,
        default_agent="main",
        refresh=RefreshSettings(
            margin_seconds=300,
            background_interval_seconds=60,
            timeout_seconds=30,
            replay_body_limit_bytes=1_048_576,
        ),
        upstream=UpstreamSettings(connect_timeout_seconds=10, read_timeout_seconds=600),
        clients=ClientSettings(head_timeout_seconds=10, max_connections=1024),
        log=LogSettings(level="info"),
        fleet=None,
    )


def test_builtin_providers() -> None:
    """The first four built-ins keep the base URLs and OAuth endpoints of store spec §9 (the
    rest of the catalog: tests/providers/test_catalog.py)."""
    first = ("openai", "openai-codex", "anthropic", "openrouter")
    assert {name: BUILTIN_PROVIDERS[name] for name in first} == {
        "openai": ProviderSpec(name="openai", kind="openai", base_url="https://api.openai.com"),
        "openai-codex": ProviderSpec(
            name="openai-codex",
            kind="openai-codex",
            base_url="https://chatgpt.com/backend-api/codex",
            token_url="https://auth.openai.com/oauth/token",
            authorize_url="https://auth.openai.com/oauth/authorize",
            client_id="app_EMoamEEZ73f0CkXaXp7hrann",
            scope="openid profile email offline_access",
            redirect_uri="http://localhost:1455/auth/callback",
            refresh="openai",
        ),
        "anthropic": ProviderSpec(
            name="anthropic",
            kind="anthropic",
            base_url="https://api.anthropic.com",
            auth="x-api-key",
            error_style="anthropic",
            token_url="https://platform.claude.com/v1/oauth/token",
            authorize_url="https://claude.ai/oauth/authorize",
            client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            scope="org:create_api_key user:profile user:inference",
            redirect_uri="https://console.anthropic.com/oauth/code/callback",
            refresh="anthropic",
        ),
        "openrouter": ProviderSpec(
            name="openrouter", kind="generic", base_url="https://openrouter.ai/api"
        ),
    }


def test_product_example_parses() -> None:
    """The example in product.md parses to the settings it describes."""
    doc: dict[str, object] = {
        "state_dir": "/srv/openclaw",
        "listeners": [
            {"host": "127.0.0.1", "port": 18801},
            {"port": 18802, "agent": "personal"},
            {"port": 18803, "agent": "work", "client_token_file": "/run/secrets/work-token"},
        ],
        "providers": {
            "anthropic": {
                "base_url": "https://api.anthropic.com",
                "token_url": "https://platform.claude.com/v1/oauth/token",
            },
            "my-llm": {"base_url": "https://llm.example.com/v1", "auth": "bearer"},
        },
    }
    settings = parse_settings(doc, source=SOURCE)
    assert settings.state_dir == Path("/srv/openclaw")
    assert settings.listeners == (
        Listener(port=18801),
        Listener(port=18802, agent="personal"),
        Listener(port=18803, agent="work", client_token_file=Path("/run/secrets/work-token")),
    )
    assert dict(settings.providers) == {
        **BUILTIN_PROVIDERS,
        "my-llm": ProviderSpec(
            name="my-llm", kind="generic", base_url="https://llm.example.com/v1", auth="bearer"
        ),
    }


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"base_url": "http://127.0.0.1:9000/"},
            replace(BUILTIN_PROVIDERS["anthropic"], base_url="http://127.0.0.1:9000"),
        ),
        (
            {"token_url": "http://127.0.0.1:9001/token", "client_id": "test-client"},
            replace(
                BUILTIN_PROVIDERS["anthropic"],
                token_url="http://127.0.0.1:9001/token",
                client_id="test-client",
            ),
        ),
        (
            {"auth": "header:X-Custom-Key", "error_style": "openai"},
            replace(
                BUILTIN_PROVIDERS["anthropic"], auth="header:X-Custom-Key", error_style="openai"
            ),
        ),
    ],
)
def test_builtin_provider_overridden_field_by_field(
    table: dict[str, object], expected: ProviderSpec
) -> None:
    """A [providers.<built-in>] table replaces only the fields it names."""
    settings = parse_settings({"providers": {"anthropic": table}}, source=SOURCE)
    assert settings.providers["anthropic"] == expected


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"base_url": "https://llm.example.com/v1"},
            ProviderSpec(name="new", kind="generic", base_url="https://llm.example.com/v1"),
        ),
        (
            {"base_url": "https://claude-proxy.example.com", "kind": "anthropic"},
            ProviderSpec(
                name="new",
                kind="anthropic",
                base_url="https://claude-proxy.example.com",
                auth="x-api-key",
                error_style="anthropic",
            ),
        ),
        (
            {"base_url": "https://x.example.com", "auth": "x-api-key"},
            ProviderSpec(
                name="new", kind="generic", base_url="https://x.example.com", auth="x-api-key"
            ),
        ),
    ],
)
def test_new_provider_defaults(table: dict[str, object], expected: ProviderSpec) -> None:
    """A new provider is generic with bearer auth unless its table says otherwise."""
    settings = parse_settings({"providers": {"new": table}}, source=SOURCE)
    assert settings.providers["new"] == expected


def test_providers_mapping_is_immutable() -> None:
    """The providers mapping of Settings cannot be changed after parsing."""
    settings = parse_settings(
        {"providers": {"x": {"base_url": "https://x.example"}}}, source=SOURCE
    )
    with pytest.raises(TypeError):
        settings.providers["y"] = BUILTIN_PROVIDERS["openai"]  # type: ignore[index]


def test_sections_parse() -> None:
    """The [refresh], [upstream], [clients], [log] and [fleet] tables fill their settings."""
    doc: dict[str, object] = {
        "default_agent": "work",
        "refresh": {
            "margin_seconds": 0,
            "background_interval_seconds": 5,
            "timeout_seconds": 119.5,
            "replay_body_limit_bytes": 0,
        },
        "upstream": {"connect_timeout_seconds": 1, "read_timeout_seconds": 2.5},
        "clients": {"head_timeout_seconds": 2.5, "max_connections": 64},
        "log": {"level": "debug"},
        "fleet": {"url_file": "/run/redis-url", "key_file": "/run/fleet-key", "prefix": "oc"},
    }
    settings = parse_settings(doc, source=SOURCE)
    assert (settings.default_agent, settings.refresh, settings.upstream, settings.log) == (
        "work",
        RefreshSettings(
            margin_seconds=0,
            background_interval_seconds=5,
            timeout_seconds=119.5,
            replay_body_limit_bytes=0,
        ),
        UpstreamSettings(connect_timeout_seconds=1, read_timeout_seconds=2.5),
        LogSettings(level="debug"),
    )
    assert settings.fleet == FleetSettings(
        url_file=Path("/run/redis-url"), key_file=Path("/run/fleet-key"), prefix="oc"
    )
    assert settings.clients == ClientSettings(head_timeout_seconds=2.5, max_connections=64)


def test_home_is_expanded_in_paths() -> None:
    """A leading ~ in state_dir and client_token_file is the user's home."""
    doc = {"state_dir": "~/.openclaw", "listeners": [{"port": 1, "client_token_file": "~/t"}]}
    settings = parse_settings(doc, source=SOURCE)
    assert (settings.state_dir, settings.listeners[0].client_token_file) == (
        Path.home() / ".openclaw",
        Path.home() / "t",
    )


def test_non_loopback_listener_with_token_file_is_allowed() -> None:
    """A listener on the network is fine once callers must present a token."""
    doc = {
        "listeners": [
            {"host": "0.0.0.0", "port": 8080, "client_token_file": "/t", "plaintext": True}
        ]
    }
    assert parse_settings(doc, source=SOURCE).listeners == (
        Listener(host="0.0.0.0", port=8080, client_token_file=Path("/t"), plaintext=True),
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"listner": []}, "listner: unknown key; expected one of clients, default_agent, fleet, "
         "listeners, log, providers, refresh, state_dir, upstream, usage"),
        ({"listeners": [{"port": 1, "hots": "x", "agnet": "a"}]},
         "listeners[0].agnet, listeners[0].hots: unknown key; "
         "expected one of agent, client_token_file, host, inherit, plaintext, port, "
         "tls_cert_file, tls_key_file"),
        ({"listeners": [{"port": 1}, {"port": 0}]},
         "listeners[1].port: must be an integer 1-65535"),
        ({"listeners": [{"port": 70000}]}, "listeners[0].port: must be an integer 1-65535"),
        ({"listeners": [{"port": True}]}, "listeners[0].port: must be an integer 1-65535"),
        ({"listeners": [{"port": "80"}]}, "listeners[0].port: must be an integer 1-65535"),
        ({"listeners": [{"host": "x"}]}, "listeners[0].port: missing; must be an integer 1-65535"),
        ({"listeners": []}, "listeners: must be a non-empty array of tables ([[listeners]])"),
        ({"listeners": {"port": 1}},
         "listeners: must be a non-empty array of tables ([[listeners]])"),
        ({"listeners": [3]}, "listeners[0]: must be a table"),
        ({"listeners": [{"port": 1, "host": "bad host"}]},
         "listeners[0].host: must be an IP address or a host name"),
        ({"listeners": [{"port": 1, "agent": "Main"}]},
         "listeners[0].agent: must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
        ({"listeners": [{"port": 1, "agent": "a" * 65}]},
         "listeners[0].agent: must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
        ({"listeners": [{"port": 1, "agent": "main\n"}]},
         "listeners[0].agent: must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
        ({"listeners": [{"port": 1, "client_token_file": 5}]},
         "listeners[0].client_token_file: must be a path string"),
        ({"listeners": [{"port": 1, "client_token_file": ""}]},
         "listeners[0].client_token_file: must be a path string"),
        ({"listeners": [{"port": 1}, {"port": 1, "agent": "x"}]},
         "listeners[1].port: 127.0.0.1:1 is already used by listeners[0]"),
        ({"listeners": [{"port": 1, "host": "0.0.0.0"}]},
         "listeners[0].host: 0.0.0.0 is not a loopback address, so this listener needs a "
         "client_token_file: credentials must not be offered to the network without caller auth"),
        ({"default_agent": "../x"}, "default_agent: must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
        ({"state_dir": 1}, "state_dir: must be a path string"),
        ({"providers": {"my-llm": {"base_url": "https://x", "auth": "basic"}}},
         AUTH_RULE),
        ({"providers": {"my-llm": {"base_url": "https://x", "auth": "header:"}}},
         AUTH_RULE),
        ({"providers": {"my-llm": {"base_url": "https://x", "auth": "header:a b"}}},
         AUTH_RULE),
        ({"providers": {"my-llm": {}}},
         "providers.my-llm.base_url: missing; a new provider needs its base URL"),
        ({"providers": {"My LLM": {"base_url": "https://x"}}},
         "providers.My LLM: must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
        ({"providers": {"agents": {"base_url": "https://x"}}},
         "providers.agents: the name 'agents' is reserved for the sidecar's own paths"),
        ({"providers": {"x": {"base_url": "https://x", "kind": "azure"}}},
         "providers.x.kind: must be one of openai, openai-codex, anthropic, generic"),
        ({"providers": {"x": {"base_url": "https://x", "error_style": "google"}}},
         "providers.x.error_style: must be one of openai, anthropic"),
        ({"providers": {"x": {"base_url": "https://x", "colour": "red"}}},
         "providers.x.colour: unknown key; expected one of auth, authorize_url, base_url, "
         "client_id, error_style, issuer, kind, oauth_base_url, redirect_uri, refresh, scope, "
         "token_url"),
        ({"providers": {"x": {"base_url": "https://x", "refresh": "github"}}},
         "providers.x.refresh: must be one of openai, anthropic, xai, chutes, google, copilot, "
         "none"),
        ({"providers": "openai"}, "providers: must be a table"),
        ({"providers": {"openai": {"client_id": ""}}},
         "providers.openai.client_id: must be a non-empty string of printable characters"),
        ({"providers": {"openai": {"scope": "a\nb"}}},
         "providers.openai.scope: must be a non-empty string of printable characters"),
        ({"listeners": [{"port": 1, "host": "myhost.internal"}]},
         "listeners[0].host: myhost.internal is not a loopback address, so this listener needs "
         "a client_token_file: credentials must not be offered to the network without caller "
         "auth"),
        ({"refresh": {"timeout_seconds": 120}},
         "refresh.timeout_seconds: must be a number of seconds above 0 and below 120"),
        ({"refresh": {"timeout_seconds": 0}},
         "refresh.timeout_seconds: must be a number of seconds above 0 and below 120"),
        ({"refresh": {"margin_seconds": -1}},
         "refresh.margin_seconds: must be a number of seconds, 0 or more"),
        ({"refresh": {"replay_body_limit_bytes": 1.5}},
         "refresh.replay_body_limit_bytes: must be an integer number of bytes, 0 or more"),
        ({"upstream": {"read_timeout_seconds": "600"}},
         "upstream.read_timeout_seconds: must be a number of seconds above 0"),
        ({"log": {"level": "verbose"}}, "log.level: must be one of debug, info, warning, error"),
        ({"clients": {"head_timeout_seconds": 0}},
         "clients.head_timeout_seconds: must be a number of seconds above 0"),
        ({"clients": {"max_connections": 0}},
         "clients.max_connections: must be an integer, 1 or more"),
        ({"clients": {"max_connections": 8.0}},
         "clients.max_connections: must be an integer, 1 or more"),
        ({"clients": {"max_connections": True}},
         "clients.max_connections: must be an integer, 1 or more"),
        ({"clients": {"max_conections": 8}},
         "clients.max_conections: unknown key; expected one of head_timeout_seconds, "
         "max_connections"),
        ({"fleet": {"url_file": "/u"}}, "fleet.key_file: missing; must be a path string"),
        ({"fleet": {"url_file": "/u", "key_file": "/k", "prefix": ""}},
         "fleet.prefix: must match ^[a-z0-9][a-z0-9_-]{0,63}$"),
    ],
)  # fmt: skip
def test_invalid_config_names_file_and_key(doc: dict[str, object], message: str) -> None:
    """Each invalid value is refused with the file, the dotted key and what is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(doc, source=SOURCE)
    assert caught.value.message == f"{SOURCE}: {message}"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example",
        "https://",
        "x.example",
        "https://x.example/v1?key=1",
        "https://x.example/#frag",
        "https://user:pass@x.example",
        "https://x.example:99999",
        "https://x.example/a b",
        7,
    ],
)
def test_invalid_urls_are_refused(url: object) -> None:
    """URLs must be http(s) with a host and no query, fragment or credentials."""
    with pytest.raises(ConfigError) as caught:
        parse_settings({"providers": {"openai": {"token_url": url}}}, source=SOURCE)
    assert caught.value.message == (
        f"{SOURCE}: providers.openai.token_url: must be an http(s) URL with a host and no "
        "query, fragment or credentials"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    """Loopback listeners are allowed without a client token file."""
    settings = parse_settings({"listeners": [{"host": host, "port": 5}]}, source=SOURCE)
    assert settings.listeners == (Listener(host=host, port=5),)


def test_load_without_file_gives_the_default() -> None:
    """No --config and no $OPENCLAW_SIDECAR_CONFIG: the embedded default."""
    assert load_settings(None, {}) == Settings()


def test_load_reads_the_env_file_and_tokens(tmp_path: Path) -> None:
    """$OPENCLAW_SIDECAR_CONFIG names the file; token files are read into masked Secrets."""
    token_file = tmp_path / "token"
    token_file.write_text("  s3cret-token\n", encoding="utf-8")
    config = tmp_path / "sidecar.toml"
    config.write_text(
        f'[[listeners]]\nport = 18803\nagent = "work"\nclient_token_file = "{token_file}"\n',
        encoding="utf-8",
    )
    settings = load_settings(None, {"OPENCLAW_SIDECAR_CONFIG": str(config)})
    assert settings.listeners == (
        Listener(
            port=18803,
            agent="work",
            client_token_file=token_file,
            client_token=Secret("s3cret-token"),
        ),
    )
    assert "s3cret" not in repr(settings)


def test_explicit_path_wins_over_env(tmp_path: Path) -> None:
    """--config is used even when $OPENCLAW_SIDECAR_CONFIG is set."""
    config = tmp_path / "a.toml"
    config.write_text('default_agent = "ops"\n', encoding="utf-8")
    environ = {"OPENCLAW_SIDECAR_CONFIG": str(tmp_path / "missing.toml")}
    assert load_settings(config, environ).default_agent == "ops"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "{path}: config file not found"),
        (b"[[listeners]\n", "{path}: not valid TOML: Expected ']]' at the end of an array "
         "declaration (at line 1, column 12)"),
        (b"\xff\xfe", "{path}: the config file is not UTF-8 text"),
        (b"[log]\nlevel = 'loud'\n",
         "{path}: log.level: must be one of debug, info, warning, error"),
    ],
)  # fmt: skip
def test_load_errors_name_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    """A missing, unparsable or invalid config file is a ConfigError naming the file."""
    path = tmp_path / "sidecar.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert caught.value.message == message.format(path=path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read {file}: No such file or directory"),
        (b"", "{file} is empty"),
        (b" \n\t", "{file} is empty"),
        (b"two words", "{file} must hold one token of printable ASCII, no spaces"),
        ("tökén".encode(), "{file} must hold one token of printable ASCII, no spaces"),
        (b"\xff\xfe", "{file} is not UTF-8 text"),
    ],
)
def test_bad_token_files_fail_at_load(tmp_path: Path, content: bytes | None, problem: str) -> None:
    """An unreadable, empty or malformed client token file stops start-up, naming the key."""
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_bytes(content)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[listeners]]\nport = 1\n[[listeners]]\nport = 2\nclient_token_file = "{token_file}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    detail = problem.format(file=token_file)
    assert caught.value.message == f"{config}: listeners[1].client_token_file: {detail}"


def test_unreadable_token_file(tmp_path: Path) -> None:
    """A token path that cannot be read as a file is a ConfigError naming the key."""
    with pytest.raises(ConfigError) as caught:
        read_client_token(Listener(port=1, client_token_file=tmp_path), 2)
    assert caught.value.message == (
        f"listeners[2].client_token_file: cannot read {tmp_path}: Is a directory"
    )


def test_unreadable_config_file(tmp_path: Path) -> None:
    """A config path that cannot be read is a ConfigError naming the file."""
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, {})
    assert caught.value.message == f"{tmp_path}: cannot read the config file: Is a directory"


def test_read_client_token_strips_whitespace(tmp_path: Path) -> None:
    """read_client_token returns the file's token without surrounding whitespace."""
    token_file = tmp_path / "t"
    token_file.write_text("\n abc123 \n", encoding="utf-8")
    assert read_client_token(Listener(port=1, client_token_file=token_file), 0) == "abc123"


def test_read_client_token_without_file() -> None:
    """A listener without a token file has no token to read."""
    with pytest.raises(ConfigError) as caught:
        read_client_token(Listener(port=1), 3)
    assert caught.value.message == "listeners[3].client_token_file: not set"


@pytest.mark.parametrize(
    ("overrides", "expected_listeners", "expected_dir"),
    [
        ({}, (Listener(port=18801), Listener(port=18802, agent="b")), None),
        (
            {"host": "::1", "port": 9000},
            (Listener(host="::1", port=9000), Listener(port=18802, agent="b")),
            None,
        ),
        ({"port": 9000}, (Listener(port=9000), Listener(port=18802, agent="b")), None),
        (
            {"state_dir": Path("~/s")},
            (Listener(port=18801), Listener(port=18802, agent="b")),
            Path.home() / "s",
        ),
    ],
)
def test_with_overrides(
    overrides: dict[str, object],
    expected_listeners: tuple[Listener, ...],
    expected_dir: Path | None,
) -> None:
    """--host/--port replace the first listener's address; --state-dir the state dir."""
    settings = Settings(listeners=(Listener(port=18801), Listener(port=18802, agent="b")))
    result = with_overrides(settings, **overrides)  # type: ignore[arg-type]
    assert (result.listeners, result.state_dir) == (expected_listeners, expected_dir)


def test_with_overrides_on_empty_listeners_creates_one() -> None:
    """With no listener at all, --port creates the single default listener."""
    result = with_overrides(Settings(listeners=()), port=9999)
    assert result.listeners == (Listener(port=9999),)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host": "0.0.0.0"},
         "command line: listeners[0].host: 0.0.0.0 is not a loopback address, so this listener "
         "needs a client_token_file: credentials must not be offered to the network without "
         "caller auth"),
        ({"port": 18802}, "command line: listeners[1].port: 127.0.0.1:18802 is already used by "
         "listeners[0]"),
        ({"port": 0}, "command line: --port: must be an integer 1-65535"),
        ({"host": "a b"}, "command line: --host: must be an IP address or a host name"),
    ],
)  # fmt: skip
def test_with_overrides_is_validated(overrides: dict[str, object], message: str) -> None:
    """Overrides from the command line are checked like the file's values."""
    settings = Settings(listeners=(Listener(port=18801), Listener(port=18802, agent="b")))
    with pytest.raises(ConfigError) as caught:
        with_overrides(settings, **overrides)  # type: ignore[arg-type]
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("listener", "message"),
    [
        ({"host": "0.0.0.0", "client_token_file": "/t"},
         "listeners[0].host: 0.0.0.0 is not a loopback address, so this listener needs "
         "listeners[0].tls_cert_file and listeners[0].tls_key_file (or plaintext = true, only "
         "inside a container or pod no other host reaches)"),
        ({"host": "0.0.0.0", "client_token_file": "/t", "tls_cert_file": "/c"},
         "listeners[0].tls_key_file: TLS needs both a certificate and its key"),
        ({"tls_key_file": "/k"},
         "listeners[0].tls_cert_file: TLS needs both a certificate and its key"),
        ({"host": "0.0.0.0", "tls_cert_file": "/c", "tls_key_file": "/k"},
         "listeners[0].host: 0.0.0.0 is not a loopback address, so this listener needs a "
         "client_token_file: credentials must not be offered to the network without caller auth"),
        ({"plaintext": "yes"}, "listeners[0].plaintext: must be true or false"),
        ({"agent": "work", "inherit": "yes"}, "listeners[0].inherit: must be true or false"),
    ],
)  # fmt: skip
def test_a_network_listener_needs_tls_and_a_client_token(
    listener: dict[str, object], message: str
) -> None:
    """A non-loopback listener without TLS (or the explicit in-container plaintext) or without a
    client token is refused at start-up, naming the keys."""
    with pytest.raises(ConfigError) as caught:
        parse_settings({"listeners": [{"port": 8443, **listener}]}, source="c.toml")
    assert caught.value.message == f"c.toml: {message}"


@pytest.mark.parametrize(
    ("listener", "inherit", "reads_through"),
    [
        ({"agent": "work"}, None, False),
        ({"agent": "work", "inherit": True}, True, True),
        ({"agent": "work", "inherit": False}, False, False),
        ({}, None, True),
        ({"inherit": False}, False, False),
    ],
)
def test_inherit_is_off_on_a_bound_listener_unless_asked_for(
    listener: dict[str, object], inherit: bool | None, reads_through: bool
) -> None:
    """Isolation by port: a bound listener serves only its agent's own profiles until
    ``inherit = true``; a shared one keeps OpenClaw's read-through unless ``inherit = false``."""
    (parsed,) = parse_settings({"listeners": [{"port": 1, **listener}]}, source="c").listeners
    assert (parsed.inherit, parsed.reads_through) == (inherit, reads_through)


def test_a_network_listener_with_tls_and_a_token_is_accepted() -> None:
    """TLS files and a client token make a 0.0.0.0 listener valid."""
    doc = {"listeners": [{"host": "0.0.0.0", "port": 8443, "client_token_file": "/t",
                          "tls_cert_file": "/c", "tls_key_file": "/k"}]}  # fmt: skip
    assert parse_settings(doc, source="c.toml").listeners == (
        Listener(host="0.0.0.0", port=8443, client_token_file=Path("/t"),
                 tls_cert_file=Path("/c"), tls_key_file=Path("/k")),
    )  # fmt: skip


def test_unreadable_tls_files_fail_at_start_up(tmp_path: Path) -> None:
    """A TLS file that cannot be read is refused before binding, naming the key."""
    token = tmp_path / "token"
    token.write_text("t0ken")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[listeners]]\nport = 8443\ntls_cert_file = "{tmp_path}/missing.crt"\n'
        f'tls_key_file = "{tmp_path}/missing.key"\n'
    )
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.tls_cert_file: cannot read"):
        load_settings(config, {})


def test_every_config_error_is_reported_at_once() -> None:
    """A config with several mistakes names each of them, numbered, in one message: unknown
    keys first, then the others in the file's order."""
    doc = {
        "colour": "red",
        "listeners": [{"port": 0}, {"host": "bad host"}],
        "providers": {"My LLM": {"base_url": "ftp://x"}, "new": {}},
        "refresh": {"timeout_seconds": 0, "margin_seconds": -1},
        "log": {"level": "loud"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(doc, source=SOURCE)
    problems = [
        "colour: unknown key; expected one of clients, default_agent, fleet, listeners, log, "
        "providers, refresh, state_dir, upstream, usage",
        "listeners[0].port: must be an integer 1-65535",
        "listeners[1].host: must be an IP address or a host name",
        "listeners[1].port: missing; must be an integer 1-65535",
        "providers.My LLM: must match ^[a-z0-9][a-z0-9_-]{0,63}$",
        "providers.My LLM.base_url: must be an http(s) URL with a host and no query, fragment "
        "or credentials",
        "providers.new.base_url: missing; a new provider needs its base URL",
        "refresh.timeout_seconds: must be a number of seconds above 0 and below 120",
        "refresh.margin_seconds: must be a number of seconds, 0 or more",
        "log.level: must be one of debug, info, warning, error",
    ]
    numbered = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
    assert caught.value.message == f"{SOURCE}: {len(problems)} errors: {numbered}"
    assert "\n" not in caught.value.message
    assert caught.value.problems == tuple(problems)


def test_every_listener_problem_is_reported_at_once() -> None:
    """Duplicate addresses and a network listener without caller auth are all named."""
    doc = {"listeners": [{"port": 1}, {"port": 1}, {"port": 2, "host": "0.0.0.0"}]}
    with pytest.raises(ConfigError) as caught:
        parse_settings(doc, source=SOURCE)
    assert caught.value.problems == (
        "listeners[1].port: 127.0.0.1:1 is already used by listeners[0]",
        "listeners[2].host: 0.0.0.0 is not a loopback address, so this listener needs a "
        "client_token_file: credentials must not be offered to the network without caller auth",
    )


def test_every_unreadable_file_is_reported_at_once(tmp_path: Path) -> None:
    """Load names each missing client token file and TLS file, not only the first."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[[listeners]]\nport = 1\nclient_token_file = "/nonexistent/a"\n'
        '[[listeners]]\nport = 2\nclient_token_file = "/nonexistent/b"\n'
        'tls_cert_file = "/nonexistent/cert"\ntls_key_file = "/nonexistent/key"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    assert caught.value.problems == (
        "listeners[1].tls_cert_file: cannot read /nonexistent/cert",
        "listeners[1].tls_key_file: cannot read /nonexistent/key",
        "listeners[0].client_token_file: cannot read /nonexistent/a: No such file or directory",
        "listeners[1].client_token_file: cannot read /nonexistent/b: No such file or directory",
    )
    assert caught.value.message.startswith(f"{config}: 4 errors: (1) listeners[1].tls_cert_file")


def _documented_keys(doc: Mapping[str, Any]) -> set[str]:
    """The dotted keys a TOML document uses, named as ``config_keys`` names them."""
    keys: set[str] = set()
    for name, value in doc.items():
        keys.add(name)
        tables = (
            value.values() if name == "providers" else value if isinstance(value, list) else [value]
        )
        prefix = "providers.*" if name == "providers" else name
        keys |= {f"{prefix}.{key}" for table in tables if isinstance(table, dict) for key in table}
    return keys


def test_every_config_key_is_documented() -> None:
    """Each key the parser accepts appears in the README's configuration examples, and every
    example there is a valid configuration."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented: set[str] = set()
    for block in re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL):
        doc = tomllib.loads(block)
        parse_settings(doc, source="README.md")
        documented |= _documented_keys(doc)
    assert sorted(set(config_keys()) - documented) == []


def test_every_table_of_the_file_is_listed_for_the_docs() -> None:
    """Each top-level key that holds a table is in TABLES, so its keys are held to the README."""
    from sidecar.config.parse import _TOP_FIELDS, TABLES

    scalars = {"state_dir", "default_agent"}
    tables = {name.removesuffix(".*") for name in TABLES if name}
    assert set(_TOP_FIELDS) - scalars == tables
