"""``status`` and the listeners of the config: which ports serve each agent and whether they add
the profiles it inherits from main (``inherit``), and a port bound to an agent that does not
exist reported as an error (``--check`` exits 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli import main

CONFIG = """
[[listeners]]
port = 18801

[[listeners]]
port = 18803
agent = "work"

[[listeners]]
port = 18804
agent = "work"
inherit = true
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main with an API key, work with a token of its own."""
    state_dir = tmp_path / "state"
    for agent, pid, entry in (
        ("main", "openai:main", {"type": "api_key", "provider": "openai", "key": "sk-m"}),
        ("work", "anthropic:work", {"type": "token", "provider": "anthropic", "token": "t-w"}),
    ):
        path = state_dir / "agents" / agent / "agent" / "auth-profiles.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"version": 1, "profiles": {pid: entry}}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPENCLAW_STATE_DIR", str(state_dir))
    monkeypatch.delenv("OPENCLAW_SIDECAR_CONFIG", raising=False)
    return state_dir


def run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: str, *args: str
) -> tuple[int, str]:
    """``status --config`` (a file holding ``config``) with ``args``: exit code and stdout."""
    path = tmp_path / "config.toml"
    path.write_text(config)
    code = main(["status", "--config", str(path), *args])
    return code, capsys.readouterr().out


def test_json_names_the_ports_serving_each_agent(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """work: the shared port (with main's profiles, OpenClaw's read-through), its bound port
    (its own only) and the bound port with ``inherit = true``; main: only the shared one."""
    code, out = run(capsys, tmp_path, CONFIG, "--json")
    doc: dict[str, Any] = json.loads(out)
    listeners = {a["agent"]: a["listeners"] for a in doc["agents"]}
    shared = {"host": "127.0.0.1", "port": 18801, "agent": None}
    assert (code, doc["errors"], listeners) == (
        0,
        [],
        {
            "main": [{**shared, "inherit": False}],
            "work": [
                {**shared, "inherit": True},
                {"host": "127.0.0.1", "port": 18803, "agent": "work", "inherit": False},
                {"host": "127.0.0.1", "port": 18804, "agent": "work", "inherit": True},
            ],
        },
    )


def test_the_table_says_what_each_port_serves(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per port under the agent, before its profiles."""
    _, out = run(capsys, tmp_path, CONFIG, "--agent", "work")
    assert out.splitlines()[:4] == [
        "agent work  (store: json)",
        "  port 127.0.0.1:18801 (shared): its own and main's profiles",
        "  port 127.0.0.1:18803 (bound to it): its own profiles only",
        "  port 127.0.0.1:18804 (bound to it): its own and main's profiles",
    ]


def test_a_port_bound_to_an_agent_that_does_not_exist_is_an_error(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request on it would be 404 unknown_agent: an error, and ``--check`` exits 1."""
    config = '[[listeners]]\nport = 18805\nagent = "ghost"\n'
    code, out = run(capsys, tmp_path, config, "--json", "--check")
    (error,) = json.loads(out)["errors"]
    assert (code, error["agent"], error["code"]) == (1, "ghost", "unknown_agent")
    assert "paste-api-key --agent ghost" in error["message"]
