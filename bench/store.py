"""A benchmark state dir and config for ``openclaw-sidecar serve``: N api_key profiles per agent,
written as OpenClaw's auth-profiles.json, and a TOML config pointing providers at loopback."""

from __future__ import annotations

import json
from pathlib import Path

# Round-robin providers, so that an agent with N profiles has about N/3 openai candidates.
PROVIDERS = ("openai", "anthropic", "openrouter")


def agent_names(count: int) -> list[str]:
    return ["main"] + [f"agent{i:03d}" for i in range(1, count)]


def profiles_doc(count: int) -> dict[str, object]:
    profiles: dict[str, object] = {
        "openai:bench": {"type": "api_key", "provider": "openai", "key": "sk-bench-" + "0" * 32}
    }
    for i in range(1, count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        profiles[f"{provider}:bench{i:04d}"] = {
            "type": "api_key",
            "provider": provider,
            "key": f"sk-bench-{i:04d}" + "x" * 28,
        }
    return {"version": 1, "profiles": profiles}


def write_state(state_dir: Path, *, profiles: int = 1, agents: int = 1) -> list[str]:
    """Every agent gets its own store of ``profiles`` profiles; returns the agent names."""
    names = agent_names(agents)
    for name in names:
        agent_dir = state_dir / "agents" / name / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        (agent_dir / "auth-profiles.json").write_text(json.dumps(profiles_doc(profiles), indent=2))
    return names


def write_config(
    path: Path,
    *,
    state_dir: Path,
    port: int,
    upstream: str,
    log_level: str = "info",
    transport: str = "aiohttp",
    usage: bool = True,
) -> Path:
    path.write_text(
        f'state_dir = "{state_dir}"\n\n'
        f'[[listeners]]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[providers.openai]\nbase_url = "{upstream}"\n\n'
        f'[upstream]\ntransport = "{transport}"\n\n'
        f'[log]\nlevel = "{log_level}"\n\n'
        # The run's own usage database (recording is part of what is measured), not ~/.local.
        f'[usage]\ndir = "{path.parent / (path.stem + "-usage")}"\n'
        f"enabled = {'true' if usage else 'false'}\n"
    )
    return path
