"""The commands that errors and warnings tell the user to run to add or renew a profile. Each
carries the --config / --state-dir that make it write where the sidecar reads."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from sidecar.providers.catalog import ProviderSpec
from sidecar.sources.openclaw.layout import DEFAULT_AGENT, resolve_state_dir

Where = Sequence[str]


def install_args(
    config_file: Path | None, state_dir: Path, environ: Mapping[str, str]
) -> tuple[str, ...]:
    """What makes a command read this install: the config file (its providers and state dir),
    and the state dir unless a plain shell finds it anyway (OpenClaw's rule without
    ``$OPENCLAW_STATE_DIR``, which a service may set and the user's shell not)."""
    args: tuple[str, ...] = ("--config", str(config_file)) if config_file is not None else ()
    plain = {k: v for k, v in environ.items() if k != "OPENCLAW_STATE_DIR"}
    if state_dir != resolve_state_dir(plain):
        args += ("--state-dir", str(state_dir))
    return args


def command(*args: str, stdin_from: str | None = None) -> str:
    """One command, quoted for a shell, in backticks; ``stdin_from`` is piped into it."""
    pipe = f"{stdin_from} | " if stdin_from else ""
    return f"`{pipe}openclaw-sidecar {shlex.join(args)}`"


def _agent_args(agent: str) -> tuple[str, ...]:
    return ("--agent", agent) if agent != DEFAULT_AGENT else ()


def first_profile(where: Where = ()) -> str:
    """How to add a first profile to an install that has none."""
    return (
        f"add one with {command('login', '--provider', 'openai-codex', *where)} (a ChatGPT "
        f"sign-in), {command('import', 'claude-cli', *where)} (Claude Code's login) or "
        f"{command('paste-api-key', '--provider', 'openai', *where)} (an API key, read from stdin)"
    )


def add_commands(
    spec: ProviderSpec, agent: str, *, profile_id: str | None = None, where: Where = ()
) -> list[tuple[str, ...]]:
    """The commands (after ``openclaw-sidecar``) that store a profile serving ``spec``'s route
    for ``agent``: a ChatGPT/Codex backend takes only a sign-in (an API key is refused there),
    every other provider an API key, and a sign-in too when it has a browser login."""
    tail = (*_agent_args(agent), *(("--profile-id", profile_id) if profile_id else ()), *where)
    found: list[tuple[str, ...]] = []
    if spec.kind != "openai-codex":
        found.append(("paste-api-key", "--provider", spec.name, *tail))
    if spec.authorize_url and spec.redirect_uri:
        found.append(("login", "--provider", spec.name, *tail))
    if spec.name == "openai-codex":  # import stores openai-codex:codex-cli
        found.append(("import", "codex-cli", *tail))
    return found or [("paste-token", "--provider", spec.name, *tail)]


def add_profile(
    spec: ProviderSpec, agent: str, *, profile_id: str | None = None, where: Where = ()
) -> str:
    """``add one with `A` or `B```: the commands of ``add_commands``."""
    found = [command(*c) for c in add_commands(spec, agent, profile_id=profile_id, where=where)]
    listed = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}"
    return f"add one with {listed}"


def renew_token(provider: str, agent: str, profile_id: str, where: Where = ()) -> str:
    """The command that stores a new token in place of ``profile_id``'s expired one (an
    Anthropic setup token comes from ``claude setup-token``)."""
    args = ("--provider", provider, *_agent_args(agent), "--profile-id", profile_id, "--replace")
    source = "claude setup-token" if provider == "anthropic" else None
    return command("paste-token", *args, *where, stdin_from=source)
