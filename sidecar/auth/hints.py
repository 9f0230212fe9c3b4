"""The commands that errors and warnings tell the user to run to add or renew a profile. Each
carries the --config / --state-dir that make it write where the sidecar reads."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from sidecar.store.layout import resolve_state_dir

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


def command(*args: str) -> str:
    """One command, quoted for a shell, in backticks."""
    return f"`openclaw-sidecar {shlex.join(args)}`"


def first_profile(where: Where = ()) -> str:
    """How to add a first profile to an install that has none."""
    return (
        f"add one with {command('login', '--provider', 'openai-codex', *where)} (a ChatGPT "
        f"sign-in), {command('import', 'claude-cli', *where)} (Claude Code's login) or "
        f"{command('paste-api-key', '--provider', 'openai', *where)} (an API key, read from stdin)"
    )
