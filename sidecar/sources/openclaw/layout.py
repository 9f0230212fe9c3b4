"""Where OpenClaw keeps things: state dir, agent dirs and the files inside them (store spec §2)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.errors import InvalidAgent

DEFAULT_AGENT = "main"
AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

PROFILES_FILE = "auth-profiles.json"
STATE_FILE = "auth-state.json"
LEGACY_AUTH_FILE = "auth.json"
LOCK_SUFFIX = ".lock"


def is_valid_agent_id(agent: str) -> bool:
    # fullmatch: "$" would accept a trailing newline.
    return AGENT_ID.fullmatch(agent) is not None


def check_agent_id(agent: str) -> str:
    if not is_valid_agent_id(agent):
        raise InvalidAgent(
            f"invalid agent id {agent[:80]!r}: use 1-64 of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return agent


def resolve_home(environ: Mapping[str, str]) -> Path:
    """OpenClaw's home: ``$OPENCLAW_HOME``, else ``$HOME``."""
    home = environ.get("OPENCLAW_HOME") or environ.get("HOME")
    return Path(home) if home else Path.home()


def expand_user(raw: str, home: Path) -> Path:
    """``~`` expands to OpenClaw's home, not to the password database's."""
    if raw == "~":
        return home
    if raw.startswith("~/"):
        return home / raw[2:]
    return Path(raw)


def resolve_state_dir(environ: Mapping[str, str]) -> Path:
    """``$OPENCLAW_STATE_DIR``; else ``~/.openclaw`` if it exists; else ``~/.clawdbot`` if that
    exists (the pre-rename name); else ``~/.openclaw``."""
    home = resolve_home(environ)
    explicit = environ.get("OPENCLAW_STATE_DIR")
    if explicit:
        return expand_user(explicit, home)
    current, legacy = home / ".openclaw", home / ".clawdbot"
    if not current.exists() and legacy.exists():
        return legacy
    return current


def refresh_lock_name(provider: str, profile_id: str) -> str:
    """2026.4-2026.6.1 name of the per-profile refresh lock: sha256(provider + NUL + id)."""
    digest = hashlib.sha256(f"{provider}\0{profile_id}".encode()).hexdigest()
    return f"sha256-{digest}.lock"


@dataclass(frozen=True)
class Layout:
    """Every path the sidecar may touch, derived from the state dir and ``openclaw.json``."""

    state_dir: Path
    config_path: Path
    oauth_dir: Path
    agent_dir_overrides: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        state_dir: Path | None = None,
        agent_dirs: Mapping[str, Path] | None = None,
    ) -> Layout:
        home = resolve_home(environ)
        state = state_dir if state_dir is not None else resolve_state_dir(environ)
        config = environ.get("OPENCLAW_CONFIG_PATH")
        oauth = environ.get("OPENCLAW_OAUTH_DIR")
        return cls(
            state_dir=state,
            config_path=expand_user(config, home) if config else state / "openclaw.json",
            oauth_dir=expand_user(oauth, home) if oauth else state / "credentials",
            agent_dir_overrides=dict(agent_dirs or {}),
        )

    def with_agent_dirs(self, agent_dirs: Mapping[str, Path]) -> Layout:
        return Layout(self.state_dir, self.config_path, self.oauth_dir, dict(agent_dirs))

    def agents(self, configured: tuple[str, ...] = ()) -> list[str]:
        """Every agent: ``main``, those ``openclaw.json`` lists and the folders under
        ``agents/`` (only valid ids), ``main`` first."""
        found = {DEFAULT_AGENT, *configured}
        with contextlib.suppress(OSError):
            found.update(p.name for p in self.agents_root.iterdir() if p.is_dir())
        valid = sorted(a for a in found if is_valid_agent_id(a))
        return [DEFAULT_AGENT, *(a for a in valid if a != DEFAULT_AGENT)]

    @property
    def agents_root(self) -> Path:
        return self.state_dir / "agents"

    def default_agent_dir(self, agent: str) -> Path:
        return self.agents_root / check_agent_id(agent) / "agent"

    def agent_dir(self, agent: str) -> Path:
        """The agent's folder. ``main`` is always the default path: it is the store every other
        agent inherits from, whatever ``openclaw.json`` says (store spec §2)."""
        check_agent_id(agent)
        if agent == DEFAULT_AGENT:
            return self.default_agent_dir(agent)
        return self.agent_dir_overrides.get(agent) or self.default_agent_dir(agent)

    def profiles_path(self, agent: str) -> Path:
        return self.agent_dir(agent) / PROFILES_FILE

    def state_path(self, agent: str) -> Path:
        return self.agent_dir(agent) / STATE_FILE

    def legacy_auth_path(self, agent: str) -> Path:
        return self.agent_dir(agent) / LEGACY_AUTH_FILE

    def legacy_oauth_path(self) -> Path:
        return self.oauth_dir / "oauth.json"

    def store_lock_path(self, agent: str) -> Path:
        # OpenClaw locks the realpath, so a symlinked agent dir shares one lock.
        return Path(os.path.realpath(self.agent_dir(agent))) / (PROFILES_FILE + LOCK_SUFFIX)

    def refresh_lock_dir(self) -> Path:
        return self.state_dir / "locks" / "oauth-refresh"

    def refresh_lock_path(self, provider: str, profile_id: str) -> Path:
        return self.refresh_lock_dir() / refresh_lock_name(provider, profile_id)

    def agent_sqlite_path(self, agent: str) -> Path:
        return self.agent_dir(agent) / "openclaw-agent.sqlite"

    def state_sqlite_path(self) -> Path:
        return self.state_dir / "state" / "openclaw.sqlite"
