"""`openclaw-sidecar serve` says at start what it serves: one `serving` line (state dir, layout,
agents and their profiles, listeners and their agents) before any `listening` line, and a
warning naming the command to run when there is nothing to serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sidecar import Sidecar, cli_env, free_port, render_config, run_cli, start_sidecar

pytestmark = pytest.mark.e2e

KEY = "sk-serve-0123456789abcdefghij"
ADD = "add one with `openclaw-sidecar login --provider openai-codex"


@pytest.fixture
def started() -> Iterator[list[Sidecar]]:
    """Sidecars a test started, stopped at its end."""
    running: list[Sidecar] = []
    yield running
    for sidecar in running:
        sidecar.stop()


def serve(
    started: list[Sidecar], tmp_path: Path, state_dir: Path, listeners: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Starts serve on ``listeners`` (ports picked here); its log lines up to `listening`."""
    ports = [free_port() for _ in listeners]
    tables = [dict(listener, port=port) for listener, port in zip(listeners, ports, strict=True)]
    sidecar = start_sidecar(render_config(tables, {}), ports, state_dir=state_dir, workdir=tmp_path)
    started.append(sidecar)
    return sidecar.log_events()


def before_listening(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = next(i for i, e in enumerate(events) if e["event"] == "listening")
    return events[:first]


def store(state_dir: Path, agent: str, provider: str = "openai") -> None:
    args = ["paste-api-key", "--provider", provider, "--agent", agent]
    done = run_cli(args, cli_env(state_dir, state_dir.parent), stdin=KEY + "\n")
    assert done.returncode == 0, done.stderr


def test_serve_says_what_it_serves(started: list[Sidecar], tmp_path: Path) -> None:
    """The serving line names the state dir and layout, each agent with its profile count,
    and each listener with the agents it serves; no warning."""
    state = tmp_path / "state"
    store(state, "main")
    store(state, "main", "anthropic")
    store(state, "work")
    events = serve(started, tmp_path, state, [{"host": "127.0.0.1"}, {"agent": "work"}])
    early = before_listening(events)
    (serving,) = [e for e in early if e["event"] == "serving"]
    address = [f"127.0.0.1:{port}" for port in started[0].ports]
    assert {k: v for k, v in serving.items() if k not in ("timestamp", "config")} == {
        "event": "serving",
        "level": "info",
        "state_dir": str(state),
        "layout": "json",
        "profiles": {"main": 2, "work": 1},
        "default_agent": "main",
        "listeners": [
            {"address": address[0], "agents": ["main", "work"]},
            {"address": address[1], "agents": ["work"]},
        ],
    }
    assert [e for e in events if e["level"] == "warning"] == []


def test_a_missing_state_dir_is_a_warning(started: list[Sidecar], tmp_path: Path) -> None:
    """serve on a state dir that does not exist starts, warning before it listens, with the
    commands that add a first profile there."""
    missing = tmp_path / "nowhere"
    early = before_listening(serve(started, tmp_path, missing, [{}]))
    (warning,) = [e for e in early if e["level"] == "warning"]
    assert warning["event"] == "state_dir_missing"
    assert warning["state_dir"] == str(missing)
    assert warning["hint"].startswith(ADD)
    assert f"--state-dir {missing}" in warning["hint"]


def test_no_profiles_is_a_warning(started: list[Sidecar], tmp_path: Path) -> None:
    """serve on a state dir without a single profile warns before it listens, saying how to
    add one."""
    state = tmp_path / "state"
    (state / "agents" / "main" / "agent").mkdir(parents=True)
    early = before_listening(serve(started, tmp_path, state, [{}]))
    (warning,) = [e for e in early if e["level"] == "warning"]
    assert (warning["event"], warning["state_dir"]) == ("no_profiles", str(state))
    assert warning["hint"].startswith(ADD)
    (serving,) = [e for e in early if e["event"] == "serving"]
    assert serving["profiles"] == {"main": 0}
