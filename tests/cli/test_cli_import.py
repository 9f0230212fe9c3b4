"""`openclaw-sidecar import claude-cli | codex-cli` as a subprocess on sample credential files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.token_server import make_jwt

REPO = Path(__file__).resolve().parents[2]
EXP = 1_767_225_600
ACCESS = make_jwt(
    {
        "exp": EXP,
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1", "chatgpt_plan_type": "pro"},
        "https://api.openai.com/profile": {"email": "alice@example.com"},
    }
)
CLAUDE = {
    "claudeAiOauth": {
        "accessToken": "sk-ant-oat01-" + "a" * 90,
        "refreshToken": "sk-ant-ort01-" + "r" * 90,
        "expiresAt": 1_767_225_600_000,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
    }
}
CODEX = {
    "OPENAI_API_KEY": None,
    "tokens": {"access_token": ACCESS, "refresh_token": "rt_" + "x" * 40, "account_id": "acct-1"},
    "last_refresh": "2026-01-01T00:00:00Z",
}
SECRETS = ("a" * 90, "r" * 90, ACCESS, "x" * 40, "sk-proj-" + "k" * 40)


def run(home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    drop = {"OPENCLAW_HOME", "OPENCLAW_SIDECAR_CONFIG", "OPENCLAW_AGENT_DIR", "CODEX_HOME"}
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ |= {"HOME": str(home), "OPENCLAW_STATE_DIR": str(home / "state"), **extra_env}
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "import", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert all(secret not in result.stdout + result.stderr for secret in SECRETS)
    return result


def write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def profiles_path(home: Path, agent: str = "main") -> Path:
    return home / "state" / "agents" / agent / "agent" / "auth-profiles.json"


def profiles(home: Path, agent: str = "main") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(profiles_path(home, agent).read_text())["profiles"]
    return doc


def test_import_claude_cli(tmp_path: Path) -> None:
    """Claude Code's file becomes anthropic:claude-cli (0600), with the ownership warning."""
    credentials = write(tmp_path / ".claude" / ".credentials.json", CLAUDE)
    result = run(tmp_path, "claude-cli")
    assert result.returncode == 0
    assert profiles(tmp_path) == {
        "anthropic:claude-cli": {
            "type": "oauth",
            "provider": "anthropic",
            "access": "sk-ant-oat01-" + "a" * 90,
            "refresh": "sk-ant-ort01-" + "r" * 90,
            "expires": 1_767_225_600_000,
        }
    }
    assert stat.S_IMODE(profiles_path(tmp_path).stat().st_mode) == 0o600
    assert result.stdout == (
        "Stored anthropic:claude-cli (oauth, provider anthropic) for agent main in "
        f"{profiles_path(tmp_path)}\n"
    )
    assert result.stderr == (
        "Refresh tokens are single-use: once the sidecar refreshes this login, the copy in "
        f"{credentials} is dead and Claude Code will be logged out. The sidecar owns this "
        "login now.\nPoint Claude Code at the sidecar instead: `openclaw-sidecar wire "
        f"claude-code --state-dir {tmp_path / 'state'} --apply` writes it into its "
        "settings.json; or for one run:\n  ANTHROPIC_BASE_URL=http://127.0.0.1:18801/anthropic "
        "ANTHROPIC_API_KEY=openclaw-sidecar-placeholder claude\n"
    )


def test_import_codex_cli_from_codex_home(tmp_path: Path) -> None:
    """``$CODEX_HOME/auth.json`` becomes openai-codex:codex-cli of the agent, with its URL."""
    write(tmp_path / "codex" / "auth.json", CODEX)
    result = run(tmp_path, "codex-cli", "--agent", "work", CODEX_HOME=str(tmp_path / "codex"))
    assert result.returncode == 0
    assert profiles(tmp_path, "work") == {
        "openai-codex:codex-cli": {
            "type": "oauth",
            "provider": "openai-codex",
            "access": ACCESS,
            "refresh": "rt_" + "x" * 40,
            "expires": EXP * 1000,
            "accountId": "acct-1",
            "chatgptPlanType": "pro",
            "email": "alice@example.com",
        }
    }
    assert "the Codex CLI will be logged out" in result.stderr
    assert result.stderr.endswith(
        "Point the Codex CLI at the sidecar instead: `openclaw-sidecar wire codex --provider "
        f"openai-codex --agent work --state-dir {tmp_path / 'state'} --apply` writes a model "
        "provider into its config.toml (Codex ignores OPENAI_BASE_URL and OPENAI_API_KEY)\n"
    )


def test_import_codex_cli_api_key(tmp_path: Path) -> None:
    """A Codex file holding only OPENAI_API_KEY becomes an openai:codex-cli api_key profile."""
    write(tmp_path / ".codex" / "auth.json", {"OPENAI_API_KEY": "sk-proj-" + "k" * 40})
    result = run(tmp_path, "codex-cli")
    assert result.returncode == 0
    assert profiles(tmp_path) == {
        "openai:codex-cli": {"type": "api_key", "provider": "openai", "key": "sk-proj-" + "k" * 40}
    }
    assert result.stdout.startswith("Stored openai:codex-cli (api_key, provider openai) ")
    assert result.stderr == (
        "An API key is not refreshed, so the Codex CLI keeps working with it.\n"
        "Point the Codex CLI at the sidecar too: `openclaw-sidecar wire codex --state-dir "
        f"{tmp_path / 'state'} --apply` writes a model provider into its config.toml (Codex "
        "ignores OPENAI_BASE_URL and OPENAI_API_KEY)\n"
    )


def test_import_with_path_and_profile_id(tmp_path: Path) -> None:
    """``--path`` reads another file and ``--profile-id`` names the profile."""
    path = write(tmp_path / "elsewhere.json", CLAUDE)
    result = run(tmp_path, "claude-cli", "--path", str(path), "--profile-id", "anthropic:laptop")
    assert result.returncode == 0
    assert list(profiles(tmp_path)) == ["anthropic:laptop"]
    assert f"the copy in {path} is dead" in result.stderr


def test_import_keeps_other_profiles(tmp_path: Path) -> None:
    """An import adds its profile beside the agent's others."""
    write(tmp_path / ".claude" / ".credentials.json", CLAUDE)
    write(tmp_path / ".codex" / "auth.json", CODEX)
    assert run(tmp_path, "claude-cli").returncode == 0
    assert run(tmp_path, "codex-cli").returncode == 0
    assert sorted(profiles(tmp_path)) == ["anthropic:claude-cli", "openai-codex:codex-cli"]


@pytest.mark.parametrize(
    ("args", "content", "code", "message"),
    [
        (
            ["claude-cli"],
            None,
            1,
            "{home}/.claude/.credentials.json: no such file; sign in with `claude` first, or "
            "give the file with --path",
        ),
        (
            ["claude-cli"],
            '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-' + "a" * 90,
            1,
            "{home}/.claude/.credentials.json: not a JSON file; sign in with `claude` first, "
            "or give the file with --path",
        ),
        (
            ["claude-cli"],
            json.dumps({"claudeAiOauth": {"accessToken": "a" * 90}}),
            1,
            "{home}/.claude/.credentials.json: claudeAiOauth.expiresAt is not a time in "
            "milliseconds; sign in with `claude` first, or give the file with --path",
        ),
        (
            ["claude-cli", "--profile-id", "laptop"],
            json.dumps(CLAUDE),
            2,
            "--profile-id 'laptop': use <provider>:<name>",
        ),
    ],
)
def test_import_refuses(
    tmp_path: Path, args: list[str], content: str | None, code: int, message: str
) -> None:
    """A missing or broken file, or a bad argument: one line on stderr, nothing stored."""
    if content is not None:
        (tmp_path / ".claude").mkdir()
        (tmp_path / ".claude" / ".credentials.json").write_text(content)
    result = run(tmp_path, *args)
    assert (result.returncode, result.stdout) == (code, "")
    assert result.stderr == f"openclaw-sidecar: {message.format(home=tmp_path)}\n"
    assert not profiles_path(tmp_path).exists()


def test_import_help_has_examples(tmp_path: Path) -> None:
    """``import --help`` names both sources, the warning and examples."""
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    assert "{claude-cli,codex-cli}" in result.stdout
    assert "examples:\n  openclaw-sidecar import claude-cli\n" in result.stdout
    assert "Refresh tokens are single-use" in result.stdout
