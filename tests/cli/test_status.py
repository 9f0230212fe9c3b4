"""`openclaw-sidecar status` as a subprocess: an error is one line on stderr and a non-zero exit,
and ``--check`` fails when there is nothing to serve."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.sidecar import cli_env, run_cli

KEY = "sk-status-0123456789abcdefghij"
ADD = "add one with `openclaw-sidecar login --provider openai-codex"


def status(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["status", *args], cli_env(state_dir, state_dir.parent))


def store_key(state_dir: Path, agent: str = "main") -> None:
    env = cli_env(state_dir, state_dir.parent)
    args = ["paste-api-key", "--provider", "openai", "--agent", agent]
    assert run_cli(args, env, stdin=KEY + "\n").returncode == 0


def one_line(text: str) -> str:
    assert len(text.splitlines()) == 1, text
    return text


def test_a_missing_state_dir_is_one_line_on_stderr(tmp_path: Path) -> None:
    """status on a state dir that does not exist: nothing on stdout, one line naming the dir
    and how to add a first profile, exit 1; --check and --json alike."""
    missing = tmp_path / "nowhere"
    for args in ([], ["--check"], ["--json"]):
        result = status(missing, *args)
        assert (result.returncode, result.stdout) == (1, ""), args
        line = one_line(result.stderr)
        assert line.startswith(f"openclaw-sidecar: the state dir {missing} does not exist")
        assert f"{ADD} --state-dir {missing}`" in line
    assert not missing.exists()


def test_an_unreadable_store_is_one_line_on_stderr(tmp_path: Path) -> None:
    """An agent whose store does not parse: the readable agents on stdout, one line on
    stderr naming the agent and the file, exit 1."""
    state = tmp_path / "state"
    store_key(state)
    broken = state / "agents" / "work" / "agent" / "auth-profiles.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{")
    result = status(state)
    assert result.returncode == 1
    assert "openai:manual" in result.stdout
    assert "agent work" not in result.stdout
    line = one_line(result.stderr)
    assert line.startswith(f"openclaw-sidecar: agent work: {broken} is not a valid OpenClaw")
    as_json = status(state, "--json")
    assert as_json.returncode == 1
    assert [e["agent"] for e in json.loads(as_json.stdout)["errors"]] == ["work"]
    one_line(as_json.stderr)


def test_check_fails_with_no_profiles(tmp_path: Path) -> None:
    """--check on a state dir without a single profile: exit 1 and one line saying how to add
    one; plain status still shows the (empty) table and succeeds."""
    state = tmp_path / "state"
    (state / "agents" / "main" / "agent").mkdir(parents=True)
    checked = status(state, "--check")
    assert checked.returncode == 1
    line = one_line(checked.stderr)
    assert line.startswith(f"openclaw-sidecar: no profiles in {state}: {ADD}")
    plain = status(state)
    assert (plain.returncode, plain.stderr) == (0, "")
    assert "no profiles" in plain.stdout


def test_check_passes_with_a_profile(tmp_path: Path) -> None:
    """--check with one API key stored: exit 0, nothing on stderr."""
    state = tmp_path / "state"
    store_key(state)
    result = status(state, "--check")
    assert (result.returncode, result.stderr) == (0, "")
    assert "openai:manual" in result.stdout
