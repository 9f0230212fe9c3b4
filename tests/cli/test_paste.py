"""`openclaw-sidecar paste-token | paste-api-key` as a subprocess: a secret typed on a terminal is
not echoed, provider ids are checked the way OpenClaw checks them, a key that cannot be one is
refused, and an existing profile is replaced only with --replace."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli.common import UsageError
from sidecar.cli.paste import check_provider, check_secret
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from tests.e2e.sidecar import cli_env, run_cli

KEY = "sk-paste-0123456789abcdefghijKLMN"
OTHER = "sk-other-0123456789abcdefghijKLMN"
SAFETY_S = 20.0


def profiles(state: Path, agent: str = "main") -> dict[str, Any]:
    path = state / "agents" / agent / "agent" / "auth-profiles.json"
    doc: dict[str, Any] = json.loads(path.read_text())["profiles"]
    return doc


def paste(state: Path, *args: str, stdin: str = KEY + "\n") -> subprocess.CompletedProcess[str]:
    result = run_cli(list(args), cli_env(state, state.parent), stdin=stdin)
    assert KEY not in result.stdout + result.stderr
    return result


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refusal (exit 2, nothing on stdout), without the prefix."""
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.removeprefix("openclaw-sidecar: ").rstrip("\n")


# --- the terminal -------------------------------------------------------------------------------


def read_until(fd: int, wanted: bytes | None) -> bytes:
    """What the terminal shows until ``wanted`` appears (or, for None, until the program
    closes it); the deadline is only a safety net."""
    seen = b""
    deadline = time.monotonic() + SAFETY_S
    while wanted is None or wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out; the terminal showed {seen!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            chunk = b""
        if not chunk:
            assert wanted is None, f"closed early; the terminal showed {seen!r}"
            return seen
        seen += chunk
    return seen


def test_a_secret_typed_on_a_terminal_is_not_echoed(tmp_path: Path) -> None:
    """With a terminal on stdin the key is read with echo off: the prompt shows, the key does
    not, and the key is stored."""
    state = tmp_path / "state"
    controller, terminal = os.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "sidecar", "paste-api-key", "--provider", "openai"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=cli_env(state, tmp_path),
        start_new_session=True,  # no controlling terminal but this one on stdin
    ) as proc:
        os.close(terminal)
        try:
            shown = read_until(controller, b"press Enter")
            os.write(controller, KEY.encode() + b"\n")
            shown += read_until(controller, None)
        finally:
            os.close(controller)
    assert proc.returncode == 0, shown
    assert KEY.encode() not in shown
    assert b"Stored openai:manual (api_key)" in shown
    assert profiles(state)["openai:manual"]["key"] == KEY


def test_a_piped_secret_is_read_without_a_prompt(tmp_path: Path) -> None:
    """From a pipe the key is read as is, with no prompt, and stored."""
    state = tmp_path / "state"
    result = paste(state, "paste-api-key", "--provider", "openai")
    assert (result.returncode, result.stderr) == (0, "")
    assert profiles(state)["openai:manual"] == {"type": "api_key", "provider": "openai", "key": KEY}


# --- provider ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["My LLM!", "my/llm", "_x", "ä", "x" * 65, ""])
@pytest.mark.parametrize("force", [False, True])
def test_a_provider_id_must_be_an_id(provider: str, force: bool) -> None:
    """A provider id that is not 1-64 of a-z, 0-9, '-', '_' after OpenClaw's lowercasing is
    refused, --force or not."""
    with pytest.raises(UsageError) as caught:
        check_provider(provider, BUILTIN_PROVIDERS, force=force)
    assert caught.value.message.startswith(f"--provider {provider!r}: not a provider id")


@pytest.mark.parametrize("command", ["paste-api-key", "paste-token"])
def test_a_bad_provider_id_is_refused_before_the_secret(tmp_path: Path, command: str) -> None:
    """The command refuses 'My LLM!' on one line without reading stdin or creating files."""
    state = tmp_path / "state"
    line = refused(paste(state, command, "--provider", "My LLM!", "--force"))
    assert line.startswith("--provider 'My LLM!': not a provider id")
    assert not state.exists()


def test_an_unknown_provider_needs_config_or_force(tmp_path: Path) -> None:
    """A provider that is neither built in nor configured is refused, naming the way out; the
    config's [providers.X] makes it known, and --force stores it anyway."""
    state = tmp_path / "state"
    line = refused(paste(state, "paste-api-key", "--provider", "my-llm"))
    assert line.startswith("--provider my-llm: not a provider the sidecar knows (`openclaw-")
    assert "[providers.my-llm]" in line
    assert "--force" in line
    config = tmp_path / "sidecar.toml"
    config.write_text('[providers.my-llm]\nbase_url = "https://llm.example.com/v1"\n')
    configured = paste(state, "paste-api-key", "--provider", "my-llm", "--config", str(config))
    assert configured.returncode == 0, configured.stderr
    forced = paste(state, "paste-api-key", "--provider", "other-llm", "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(profiles(state)) == ["my-llm:manual", "other-llm:manual"]


def test_a_provider_id_is_lowercased_like_openclaw(tmp_path: Path) -> None:
    """' OpenAI ' is provider openai, as OpenClaw normalises it."""
    state = tmp_path / "state"
    assert paste(state, "paste-api-key", "--provider", " OpenAI ").returncode == 0
    assert profiles(state)["openai:manual"]["provider"] == "openai"


def test_an_api_key_for_the_codex_backend_is_refused(tmp_path: Path) -> None:
    """openai-codex takes only a ChatGPT sign-in: paste-api-key names the commands that work."""
    state = tmp_path / "state"
    line = refused(paste(state, "paste-api-key", "--provider", "openai-codex"))
    assert "`openclaw-sidecar login --provider openai-codex`" in line
    assert "`openclaw-sidecar import codex-cli`" in line


# --- the secret ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "force", "problem"),
    [
        ("abc", False, "the API key is 3 characters long, too short to be one"),
        ("sk-a b-0123456789abcdef", False, "the API key has spaces or characters"),
        ("sk-ä-0123456789abcdef", False, "the API key has spaces or characters"),
        ("sk-\x7f-0123456789abcdef", True, "the API key has spaces or characters"),
        ("abc", True, None),
        (KEY, False, None),
    ],
)
def test_a_key_that_cannot_be_one_is_refused(secret: str, force: bool, problem: str | None) -> None:
    """A too short key (unless --force), or one that could not go in an HTTP header, is
    refused, and the message does not quote it."""
    if problem is None:
        check_secret("API key", secret, force=force)
        return
    with pytest.raises(UsageError) as caught:
        check_secret("API key", secret, force=force)
    assert caught.value.message.startswith(problem)
    assert secret not in caught.value.message


def test_a_short_key_is_refused_on_one_line(tmp_path: Path) -> None:
    """paste-api-key with a 3-character key: one line, exit 2, nothing stored."""
    state = tmp_path / "state"
    result = paste(state, "paste-api-key", "--provider", "openai", stdin="abc\n")
    assert refused(result).startswith("the API key is 3 characters long")
    assert not (state / "agents").exists()


# --- replacing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["paste-api-key", "paste-token"])
def test_replacing_a_profile_needs_replace(tmp_path: Path, command: str) -> None:
    """A second paste to the same profile id is refused (the stored one is kept) until
    --replace is given."""
    state = tmp_path / "state"
    args = [command, "--provider", "openrouter", "--agent", "work"]
    assert paste(state, *args).returncode == 0
    line = refused(paste(state, *args, stdin=OTHER + "\n"))
    assert line.startswith("agent work already has profile openrouter:manual")
    assert "--replace" in line
    secret = "key" if command == "paste-api-key" else "token"
    assert profiles(state, "work")["openrouter:manual"][secret] == KEY
    assert paste(state, *args, "--replace", stdin=OTHER + "\n").returncode == 0
    assert profiles(state, "work")["openrouter:manual"][secret] == OTHER
