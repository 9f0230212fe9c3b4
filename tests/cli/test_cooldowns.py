"""``openclaw-sidecar cooldowns`` as a subprocess: the resting profiles with reason and end
(main's, an agent's own, one inherited from main, a model-scoped one), ``--json``, and ``clear``,
which ends one in its owner's store the way OpenClaw resets it and keeps its use history."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.sidecar import cli_env, run_cli

KEY = "sk-cooldowns-0123456789abcdefghij"


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), cli_env(state_dir, state_dir.parent))


def store_key(state_dir: Path, agent: str, profile_id: str) -> None:
    args = ["paste-api-key", "--provider", "openai", "--agent", agent, "--profile-id", profile_id]
    assert run_cli(args, cli_env(state_dir, state_dir.parent), stdin=KEY + "\n").returncode == 0


def write_usage(state_dir: Path, agent: str, usage: dict[str, Any]) -> Path:
    path = state_dir / "agents" / agent / "agent" / "auth-state.json"
    path.write_text(json.dumps({"version": 1, "usageStats": usage}, indent=2) + "\n")
    return path


def seeded(tmp_path: Path) -> tuple[Path, int]:
    """main: a rate-limited key, a billing-disabled key, a key whose window ended, a rested one
    of another model; work: its own key in a cooldown (and main's, inherited)."""
    state = tmp_path / "state"
    for pid in ("openai:limited", "openai:unpaid", "openai:over", "openai:scoped"):
        store_key(state, "main", pid)
    store_key(state, "work", "openai:work")
    now = int(time.time() * 1000)
    write_usage(
        state,
        "main",
        {
            "openai:limited": {
                "lastUsed": now - 60_000,
                "errorCount": 1,
                "failureCounts": {"rate_limit": 1},
                "lastFailureAt": now - 1_000,
                "cooldownUntil": now + 120_000,
                "cooldownReason": "rate_limit",
            },
            "openai:unpaid": {"disabledUntil": now + 3_600_000, "disabledReason": "billing"},
            "openai:over": {"cooldownUntil": now - 1, "cooldownReason": "rate_limit"},
            "openai:scoped": {
                "cooldownUntil": now + 60_000,
                "cooldownReason": "rate_limit",
                "cooldownModel": "gpt-5",
            },
        },
    )
    write_usage(
        state, "work", {"openai:work": {"cooldownUntil": now + 30_000, "cooldownReason": "timeout"}}
    )
    return state, now


def test_the_resting_profiles_with_reason_and_end(tmp_path: Path) -> None:
    """--json: every agent's resting profiles, soonest end first, a window that ended not
    listed; an agent's listing includes what it inherits from main (owner main)."""
    state, now = seeded(tmp_path)
    done = cli(state, "cooldowns", "--json")
    assert (done.returncode, done.stderr) == (0, "")
    found = [
        (
            e["agent"],
            e["profileId"],
            e["owner"],
            e["kind"],
            e["reason"],
            e["model"],
            e["until"] - now,
        )
        for e in json.loads(done.stdout)["cooldowns"]
    ]
    main = [
        ("main", "openai:scoped", "main", "cooldown", "rate_limit", "gpt-5", 60_000),
        ("main", "openai:limited", "main", "cooldown", "rate_limit", None, 120_000),
        ("main", "openai:unpaid", "main", "disabled", "billing", None, 3_600_000),
    ]
    work = [("work", "openai:work", "work", "cooldown", "timeout", None, 30_000)]
    inherited = [("work", *e[1:]) for e in main]  # owner main: main's store holds them
    assert found == main + work + inherited


def test_the_table_and_one_agent(tmp_path: Path) -> None:
    """Without --json: one line per profile naming reason, end and what is left."""
    state, _ = seeded(tmp_path)
    done = cli(state, "cooldowns", "--agent", "work")
    lines = done.stdout.splitlines()
    assert done.returncode == 0
    assert [line.split()[2] for line in lines] == [
        "openai:work",
        "openai:scoped",
        "openai:limited",
        "openai:unpaid",
    ]
    assert ("timeout" in lines[0], "(owner main)" in lines[1], "model gpt-5" in lines[1]) == (
        True,
        True,
        True,
    )


def test_clear_ends_the_window_as_openclaw_resets_it(tmp_path: Path) -> None:
    """clear: the window and its counts go, lastUsed and lastFailureAt stay; the list no
    longer shows it. An inherited profile is cleared in main's store."""
    state, now = seeded(tmp_path)
    done = cli(state, "cooldowns", "clear", "--profile-id", "openai:limited", "--agent", "work")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "openai:limited: cooldown (rate_limit) ended (in main's store); it is usable now\n"
    )
    stored = json.loads((state / "agents/main/agent/auth-state.json").read_text())
    assert stored["usageStats"]["openai:limited"] == {
        "lastUsed": now - 60_000,
        "errorCount": 0,
        "lastFailureAt": now - 1_000,
    }
    listed = json.loads(cli(state, "cooldowns", "--agent", "main", "--json").stdout)
    assert [e["profileId"] for e in listed["cooldowns"]] == ["openai:scoped", "openai:unpaid"]


def test_clear_names_what_is_wrong(tmp_path: Path) -> None:
    """No --profile-id: a usage error (exit 2); an unknown profile: one line, exit 1."""
    state, _ = seeded(tmp_path)
    missing = cli(state, "cooldowns", "clear")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "needs --profile-id" in missing.stderr
    unknown = cli(state, "cooldowns", "clear", "--profile-id", "openai:nobody")
    assert (unknown.returncode, len(unknown.stderr.splitlines())) == (1, 1)
    assert "has no profile 'openai:nobody'" in unknown.stderr
