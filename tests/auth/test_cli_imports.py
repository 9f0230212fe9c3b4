"""Reading Claude Code's and the Codex CLI's credential files into OpenClaw profiles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sidecar.auth.cli_imports import (
    Imported,
    ImportFailed,
    Source,
    claude_profile,
    codex_profile,
    default_path,
    ownership_notice,
    read,
)
from tests.fakes.token_server import make_jwt

EXP = 1_767_225_600
ACCESS = make_jwt(
    {
        "exp": EXP,
        "https://api.openai.com/auth": {
            "chatgpt_account_id": "acct-claims",
            "chatgpt_plan_type": "pro",
        },
        "https://api.openai.com/profile": {"email": "alice@example.com"},
    }
)
BARE_ACCESS = make_jwt({"exp": EXP})
ID_TOKEN = make_jwt(
    {"email": "id@example.com", "https://api.openai.com/auth": {"chatgpt_plan_type": "plus"}}
)
CLAUDE = {
    "accessToken": "sk-ant-oat01-access",
    "refreshToken": "sk-ant-ort01-refresh",
    "expiresAt": 1_767_225_600_000,
    "scopes": ["user:inference"],
    "subscriptionType": "max",
}


EMPTY = "missing or empty"
NOT_MS = "claudeAiOauth.expiresAt is not a time in milliseconds"
NEITHER = "it holds neither a ChatGPT login (tokens) nor an OPENAI_API_KEY"
NO_EXP = "tokens.access_token carries no expiry (exp claim)"


def codex(**tokens: Any) -> dict[str, Any]:
    base = {"access_token": ACCESS, "refresh_token": "rt_1", "id_token": ID_TOKEN}
    return {"OPENAI_API_KEY": None, "tokens": {**base, **tokens}, "last_refresh": "2026-01-01"}


@pytest.mark.parametrize(
    ("doc", "fields"),
    [
        (
            {"claudeAiOauth": CLAUDE},
            {
                "type": "oauth",
                "provider": "anthropic",
                "access": "sk-ant-oat01-access",
                "refresh": "sk-ant-ort01-refresh",
                "expires": 1_767_225_600_000,
            },
        ),
    ],
)
def test_claude_profile(doc: object, fields: dict[str, object]) -> None:
    """Claude Code's login becomes anthropic:claude-cli with expiresAt as expires (ms)."""
    assert claude_profile(doc) == Imported("anthropic:claude-cli", fields)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "it holds no Claude login (claudeAiOauth)"),
        ({"claudeAiOauth": "x"}, "it holds no Claude login (claudeAiOauth)"),
        (
            {"claudeAiOauth": {**CLAUDE, "accessToken": ""}},
            "claudeAiOauth.accessToken is " + EMPTY,
        ),
        (
            {"claudeAiOauth": {**CLAUDE, "refreshToken": 7}},
            "claudeAiOauth.refreshToken is " + EMPTY,
        ),
        ({"claudeAiOauth": {**CLAUDE, "expiresAt": "soon"}}, NOT_MS),
        ({"claudeAiOauth": {**CLAUDE, "expiresAt": True}}, NOT_MS),
        ({"claudeAiOauth": {**CLAUDE, "expiresAt": 0}}, NOT_MS),
    ],
)
def test_claude_profile_refuses(doc: object, message: str) -> None:
    """A Claude file without a whole login is refused, naming the field."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        claude_profile(doc)


@pytest.mark.parametrize(
    ("doc", "profile_id", "fields"),
    [
        (
            codex(account_id="acct-file"),
            "openai-codex:codex-cli",
            {
                "type": "oauth",
                "provider": "openai-codex",
                "access": ACCESS,
                "refresh": "rt_1",
                "expires": EXP * 1000,
                "accountId": "acct-file",
                "chatgptPlanType": "pro",
                "email": "alice@example.com",
                "idToken": ID_TOKEN,
            },
        ),
        (
            codex(access_token=BARE_ACCESS, id_token=None),
            "openai-codex:codex-cli",
            {
                "type": "oauth",
                "provider": "openai-codex",
                "access": BARE_ACCESS,
                "refresh": "rt_1",
                "expires": EXP * 1000,
            },
        ),
        (
            codex(access_token=BARE_ACCESS),
            "openai-codex:codex-cli",
            {
                "type": "oauth",
                "provider": "openai-codex",
                "access": BARE_ACCESS,
                "refresh": "rt_1",
                "expires": EXP * 1000,
                "chatgptPlanType": "plus",
                "email": "id@example.com",
                "idToken": ID_TOKEN,
            },
        ),
        (
            {**codex(), "OPENAI_API_KEY": "sk-proj-abc"},
            "openai-codex:codex-cli",
            {
                "type": "oauth",
                "provider": "openai-codex",
                "access": ACCESS,
                "refresh": "rt_1",
                "expires": EXP * 1000,
                "accountId": "acct-claims",
                "chatgptPlanType": "pro",
                "email": "alice@example.com",
                "idToken": ID_TOKEN,
            },
        ),
        (
            {"OPENAI_API_KEY": " sk-proj-abc\n", "tokens": None},
            "openai:codex-cli",
            {"type": "api_key", "provider": "openai", "key": "sk-proj-abc"},
        ),
    ],
)
def test_codex_profile(doc: object, profile_id: str, fields: dict[str, object]) -> None:
    """Codex's ChatGPT login (expiry, account, plan, email from the JWTs), else its API key."""
    assert codex_profile(doc) == Imported(profile_id, fields)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("x", "it is not a JSON object"),
        ({}, NEITHER),
        ({"OPENAI_API_KEY": " ", "tokens": {}}, NEITHER),
        (codex(refresh_token=""), "tokens.refresh_token is missing or empty"),
        (codex(access_token="not-a-jwt"), NO_EXP),
        (codex(access_token=make_jwt({"exp": "x"})), NO_EXP),
    ],
)
def test_codex_profile_refuses(doc: object, message: str) -> None:
    """A Codex file without a usable login or key is refused, naming the field."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        codex_profile(doc)


@pytest.mark.parametrize(
    ("source", "environ", "path"),
    [
        ("claude-cli", {"HOME": "/h"}, "/h/.claude/.credentials.json"),
        ("claude-cli", {"HOME": "/h", "CODEX_HOME": "/c"}, "/h/.claude/.credentials.json"),
        ("codex-cli", {"HOME": "/h"}, "/h/.codex/auth.json"),
        ("codex-cli", {"HOME": "/h", "CODEX_HOME": "/c"}, "/c/auth.json"),
        ("codex-cli", {"HOME": "/h", "CODEX_HOME": ""}, "/h/.codex/auth.json"),
    ],
)
def test_default_path(source: Source, environ: dict[str, str], path: str) -> None:
    """Each CLI's own credential file, under $HOME or $CODEX_HOME."""
    assert default_path(source, environ) == Path(path)


def test_read_a_file(tmp_path: Path) -> None:
    """``read`` parses the file and hands it to the source's reader."""
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"claudeAiOauth": CLAUDE}))
    assert read("claude-cli", path).profile_id == "anthropic:claude-cli"


@pytest.mark.parametrize(
    ("source", "content", "message"),
    [
        (
            "claude-cli",
            None,
            "{path}: no such file; sign in with `claude` first, or give the file with --path",
        ),
        (
            "codex-cli",
            b'{"tokens": {"access_token": "sk-secret',
            "{path}: not a JSON file; "
            "sign in with `codex login` first, or give the file with --path",
        ),
        (
            "codex-cli",
            b"\xff",
            "{path}: not a JSON file; sign in with `codex login` first, or "
            "give the file with --path",
        ),
        (
            "codex-cli",
            b'{"tokens": {"access_token": "sk-secret"}}',
            "{path}: tokens.access_"
            "token carries no expiry (exp claim); sign in with `codex login` first, or give the "
            "file with --path",
        ),
    ],
)
def test_read_refuses(tmp_path: Path, source: Source, content: bytes | None, message: str) -> None:
    """A missing or broken file: ImportFailed naming the file, never quoting its secrets."""
    path = tmp_path / "creds.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFailed) as caught:
        read(source, path)
    assert caught.value.message == message.format(path=path)
    assert "sk-secret" not in caught.value.message


def test_read_refuses_an_unreadable_path(tmp_path: Path) -> None:
    """A directory where the file should be: the OS's reason, naming the path."""
    (tmp_path / "creds").mkdir()
    with pytest.raises(ImportFailed, match=r"creds: cannot read it \(Is a directory\)$"):
        read("claude-cli", tmp_path / "creds")


@pytest.mark.parametrize(
    ("source", "doc", "lines"),
    [
        (
            "claude-cli",
            {"claudeAiOauth": CLAUDE},
            [
                "Refresh tokens are single-use: once the sidecar refreshes this login, the copy "
                "in /f is dead and Claude Code will be logged out. The sidecar owns this login "
                "now.",
            ],
        ),
        (
            "codex-cli",
            codex(),
            [
                "Refresh tokens are single-use: once the sidecar refreshes this login, the copy "
                "in /f is dead and the Codex CLI will be logged out. The sidecar owns this login "
                "now.",
            ],
        ),
        (
            "codex-cli",
            {"OPENAI_API_KEY": "sk-proj-abc"},
            ["An API key is not refreshed, so the Codex CLI keeps working with it."],
        ),
    ],
)
def test_ownership_notice(source: Source, doc: object, lines: list[str]) -> None:
    """The notice warns about single-use refresh tokens (how to point the CLI at the sidecar
    is `wire`'s, tests/cli/test_cli_import.py)."""
    imported = claude_profile(doc) if source == "claude-cli" else codex_profile(doc)
    assert ownership_notice(source, imported, Path("/f")).splitlines() == lines
