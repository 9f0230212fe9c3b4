"""`openclaw-sidecar providers [--json]` as a subprocess, on a small store and config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sidecar.providers.catalog import CATALOG
from sidecar.providers.clients import CLIENT_URL_RULE

REPO = Path(__file__).resolve().parents[2]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    drop = {"OPENCLAW_HOME", "OPENCLAW_SIDECAR_CONFIG", "OPENCLAW_AGENT_DIR"}
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ |= {"HOME": str(home), "OPENCLAW_STATE_DIR": str(home / "state")}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "providers", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def write_profiles(home: Path, agent: str, profiles: dict[str, Any]) -> None:
    path = home / "state" / "agents" / agent / "agent" / "auth-profiles.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "profiles": profiles}))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_profiles(
        tmp_path,
        "main",
        {
            "z-ai:work": {"type": "api_key", "provider": "z-ai", "key": "zk-SECRET-1"},
            "openai:me": {
                "type": "oauth",
                "provider": "openai",
                "access": "at-SECRET-2",
                "refresh": "rt-SECRET-3",
                "expires": 4_102_444_800_000,
            },
        },
    )
    (tmp_path / "sidecar.toml").write_text(
        "[[listeners]]\nport = 18900\n"
        '[providers.my-llm]\nbase_url = "https://llm.example.com/v1"\n'
        '[providers.vllm]\nbase_url = "http://gpu-box:8000/v1"\n'
    )
    return tmp_path


def rows(home: Path) -> dict[str, dict[str, Any]]:
    done = run(home, "--json", "--config", str(home / "sidecar.toml"))
    assert (done.returncode, done.stderr) == (0, "")
    assert "SECRET" not in done.stdout
    doc = json.loads(done.stdout)
    assert (doc["client_url_rule"], doc["sidecar"]) == (CLIENT_URL_RULE, "http://127.0.0.1:18900")
    return {row["id"]: row for row in doc["providers"]}


def test_lists_the_catalog_and_the_configs_providers(home: Path) -> None:
    """Every catalog entry, plus the config's own providers, one row each."""
    assert set(rows(home)) == set(CATALOG) | {"my-llm"}


def test_a_custom_provider_shows_its_client_base_url_beside_its_base_url(home: Path) -> None:
    """A base_url ending in /v1 is shown beside a client base URL without it: the rule's case."""
    assert rows(home)["my-llm"] == {
        "id": "my-llm",
        "label": "my-llm",
        "source": "config",
        "api": None,
        "base_url": "https://llm.example.com/v1",
        "endpoint": None,
        "auth": {
            "api_key": "Authorization: Bearer",
            "token": "Authorization: Bearer",
            "oauth": "Authorization: Bearer",
        },
        "refresh": False,
        "refresh_style": None,
        "profiles": {},
        "client_base_url": "http://127.0.0.1:18900/my-llm",
        "openclaw": [],
    }


def test_profiles_are_matched_as_the_proxy_matches_them(home: Path) -> None:
    """A z-ai key serves zai and its endpoint variants; a ChatGPT login stored as openai serves
    openai-codex, not openai."""
    found = {name: row["profiles"] for name, row in rows(home).items() if row["profiles"]}
    assert found == {
        "zai": {"main": ["z-ai:work"]},
        "zai-cn": {"main": ["z-ai:work"]},
        "zai-coding-cn": {"main": ["z-ai:work"]},
        "zai-coding-global": {"main": ["z-ai:work"]},
        "openai-codex": {"main": ["openai:me"]},
    }


def test_refresh_auth_and_endpoints(home: Path) -> None:
    """What each row says of refresh, headers and per-user endpoints."""
    listed = rows(home)
    refreshed = {name: row["refresh_style"] for name, row in listed.items() if row["refresh"]}
    assert refreshed == {
        "anthropic": "anthropic",
        "chutes": "chutes",
        "github-copilot": "copilot",
        "google": "google",
        "google-gemini-cli": "google",
        "openai-codex": "openai",
        "xai": "xai",
    }
    assert listed["minimax-portal"]["refresh_style"] == "none"
    assert listed["google"]["auth"]["api_key"] == "x-goog-api-key"
    assert listed["fal"]["auth"]["api_key"] == "Authorization: Key"
    assert listed["vllm"]["source"] == "catalog+config"
    assert listed["vllm"]["endpoint"]["missing"] is None
    assert listed["ollama"]["endpoint"] == {
        "template": None,
        "profile_fields": [],
        "config_key": "providers.ollama.base_url",
        "missing": "provider 'ollama' needs its own endpoint: set base_url in [providers.ollama] "
        'of the sidecar config, e.g. "http://127.0.0.1:11434" (OpenClaw\'s default)',
    }


def test_table(home: Path) -> None:
    """The table starts with the rule, then one line per provider with its client base URL."""
    done = run(home, "--config", str(home / "sidecar.toml"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Client URL rule: {CLIENT_URL_RULE}"
    assert lines[2].split() == [
        "PROVIDER", "CLIENT", "BASE", "URL", "UPSTREAM", "API", "KEY", "AS", "REFRESH", "PROFILES"
    ]  # fmt: skip
    mine = next(line for line in lines if line.startswith("my-llm "))
    assert mine.split() == [
        "my-llm",
        "http://127.0.0.1:18900/my-llm",
        "https://llm.example.com/v1",
        "Authorization:",
        "Bearer",
        "no",
        "-",
    ]
    assert len(lines) == 3 + len(CATALOG) + 1


def test_an_unreadable_store_still_lists_the_providers(tmp_path: Path) -> None:
    """A store that does not parse leaves the profiles unknown, named, and the rest listed."""
    path = tmp_path / "state" / "agents" / "main" / "agent" / "auth-profiles.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    done = run(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert "auth-profiles.json" in doc["store_error"]
    assert len(doc["providers"]) == len(CATALOG)
