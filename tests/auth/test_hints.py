"""The commands hints name: each parses, and the command it names accepts that provider for the
route (a ChatGPT/Codex backend is never offered an API key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import server
from sidecar.auth import hints
from sidecar.cli import build_parser
from sidecar.cli.paste import check_api_key_provider, check_provider
from sidecar.config import parse_settings
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec

CONFIGURED = parse_settings(
    {
        "providers": {
            "my-llm": {"base_url": "https://llm.example.com/v1"},
            "my-oauth": {
                "base_url": "https://llm.example.com/v1",
                "token_url": "https://auth.example.com/token",
                "authorize_url": "https://auth.example.com/authorize",
                "client_id": "c",
                "redirect_uri": "http://localhost:1456/callback",
            },
        }
    },
    source="test",
).providers
ROUTES = [
    (spec, agent, pin)
    for spec in CONFIGURED.values()
    for agent in ("main", "work")
    for pin in (None, f"{spec.name}:pinned")
]


def accepts(argv: tuple[str, ...], spec: ProviderSpec) -> None:
    """What the named command would refuse before doing anything, checked without running it:
    its arguments, and its provider checks."""
    args = build_parser().parse_args(argv)
    assert args.config == "/etc/sidecar.toml"  # the install the hint is for
    if args.command in ("paste-api-key", "paste-token"):
        provider = check_provider(args.provider, CONFIGURED, force=args.force)
        if args.command == "paste-api-key":
            check_api_key_provider(CONFIGURED[provider])
    elif args.command == "login":
        auth = server.auth_lookup(CONFIGURED)(args.provider)
        assert auth is not None
        assert (bool(auth.authorize_url), bool(auth.redirect_uri)) == (True, True)
    else:
        assert (args.command, args.source, spec.name) == ("import", "codex-cli", "openai-codex")


@pytest.mark.parametrize(("spec", "agent", "pin"), ROUTES, ids=repr)
def test_every_command_named_works_for_the_route(
    spec: ProviderSpec, agent: str, pin: str | None
) -> None:
    """Each command of the hint for a route without a profile is one the CLI accepts for that
    provider, agent and pinned profile."""
    where = ("--config", "/etc/sidecar.toml")
    commands = hints.add_commands(spec, agent, profile_id=pin, where=where)
    assert commands
    for argv in commands:
        accepts(argv, spec)
        assert ("--agent" in argv) == (agent != "main")
        assert ("--profile-id" in argv) == (pin is not None)


def test_the_codex_backend_is_offered_a_sign_in_only() -> None:
    """openai-codex: login or import codex-cli, never an API key (the issue's case)."""
    text = hints.add_profile(BUILTIN_PROVIDERS["openai-codex"], "main")
    assert text == (
        "add one with `openclaw-sidecar login --provider openai-codex` or "
        "`openclaw-sidecar import codex-cli`"
    )


@pytest.mark.parametrize(
    ("environ", "config", "state_dir", "expected"),
    [
        ({"HOME": "/home/a"}, None, "/home/a/.openclaw", ()),
        ({"HOME": "/home/a", "OPENCLAW_STATE_DIR": "/srv/s"}, None, "/srv/s",
         ("--state-dir", "/srv/s")),
        ({"HOME": "/home/a"}, "/etc/c.toml", "/home/a/.openclaw", ("--config", "/etc/c.toml")),
        ({"HOME": "/home/a"}, "/etc/c.toml", "/srv/s",
         ("--config", "/etc/c.toml", "--state-dir", "/srv/s")),
    ],
)  # fmt: skip
def test_install_args(
    environ: dict[str, str], config: str | None, state_dir: str, expected: tuple[str, ...]
) -> None:
    """The config file when there is one; the state dir when a plain shell would not find it."""
    config_file = Path(config) if config else None
    assert hints.install_args(config_file, Path(state_dir), environ) == expected


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openrouter"])
def test_a_token_is_renewed_in_place(provider: str) -> None:
    """The command for an expired token replaces that profile of that agent, and parses."""
    text = hints.renew_token(provider, "work", f"{provider}:x", ("--config", "/etc/sidecar.toml"))
    argv = text.strip("`").split("openclaw-sidecar ", 1)[1].split()
    assert argv == [
        "paste-token", "--provider", provider, "--agent", "work", "--profile-id", f"{provider}:x",
        "--replace", "--config", "/etc/sidecar.toml",
    ]  # fmt: skip
    accepts(tuple(argv), CONFIGURED[provider])
    assert text.startswith("`claude setup-token | ") == (provider == "anthropic")


def test_a_shell_quotes_what_needs_it() -> None:
    """A command's arguments are quoted for a shell."""
    assert (
        hints.command("status", "--state-dir", "/a b")
        == "`openclaw-sidecar status --state-dir '/a b'`"
    )
