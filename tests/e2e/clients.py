"""The real Claude Code and Codex CLIs that scripts/install-clients.sh installs, and how a test
runs them: no config but what the test writes, no network but loopback (tests/interop/netns.py)."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

INSTALL_HINT = "scripts/install-clients.sh"


def clients_dir() -> Path:
    env = os.environ.get("CLIENTS_LAB_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "openclaw-sidecar" / "clients"


def _arch() -> str:
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x64"


def claude_code() -> list[str] | None:
    """Claude Code's native binary (its npm package's platform dependency), or None."""
    path = (
        clients_dir() / "node_modules" / "@anthropic-ai" / f"claude-code-linux-{_arch()}" / "claude"
    )
    return [str(path)] if os.access(path, os.X_OK) else None


def codex() -> list[str] | None:
    """``node codex.js`` (it starts the bundled Rust binary), or None."""
    script = clients_dir() / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"
    node = shutil.which("node")
    return [node, str(script)] if node and script.is_file() else None


def base_env(home: Path) -> dict[str, str]:
    """A client's whole environment: nothing of the test runner's (no OPENAI_*, no proxy)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TERM": "dumb",
        "LANG": "C.UTF-8",
    }
