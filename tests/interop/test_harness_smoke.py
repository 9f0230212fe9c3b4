"""Smoke tests: the interop harness drives a real OpenClaw 2026.6.1 CLI."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from tests.interop.openclaw import OpenClaw, installed, require

VERSION = "2026.6.1"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None,
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]

TOKEN = "sk-ant-oat01-" + "SMOKE0123456789" * 6


@pytest.fixture
def oc(tmp_path: Path) -> OpenClaw:
    require(VERSION)
    return OpenClaw(VERSION, tmp_path / "sandbox")


def test_paste_token_then_status_json(oc: OpenClaw) -> None:
    oc.paste_token("anthropic", "anthropic:work", secret=TOKEN)

    path = oc.store_path()
    raw = path.read_bytes()
    doc = json.loads(raw)
    assert doc == {
        "version": 1,
        "profiles": {
            "anthropic:work": {"type": "token", "provider": "anthropic", "token": TOKEN},
        },
    }
    # Byte-identical to Python's json.dumps(indent=2) + "\n"; file 0600.
    assert raw == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    status = oc.status_json()
    profiles = {p["profileId"]: p for p in status["auth"]["oauth"]["profiles"]}
    assert profiles["anthropic:work"]["type"] == "token"
    assert profiles["anthropic:work"]["status"] == "static"
    anthropic = next(p for p in status["auth"]["providers"] if p["provider"] == "anthropic")
    assert anthropic["profiles"]["labels"] == [f"anthropic:work=token:{TOKEN[:8]}...{TOKEN[-8:]}"]
    assert anthropic["effective"]["detail"] == "~/.openclaw/agents/main/agent/auth-profiles.json"


def test_hand_written_oauth_profile_is_read_back(oc: OpenClaw) -> None:
    expires = int(time.time() * 1000) + 2 * 3600 * 1000  # < 24 h left: "expiring"
    oc.write_store(
        {
            "openai:alice@example.com": {
                "type": "oauth",
                "provider": "openai",
                "email": "alice@example.com",
                "access": "eyJ.fake.access",
                "refresh": "rt_fake",
                "expires": expires,
            }
        }
    )
    listed = oc.list_json()
    assert [p["id"] for p in listed["profiles"]] == ["openai:alice@example.com"]
    assert listed["profiles"][0]["email"] == "alice@example.com"

    status = oc.status_json()
    (profile,) = status["auth"]["oauth"]["profiles"]
    assert profile["status"] == "expiring"
    assert profile["expiresAt"] == expires
    assert profile["label"] == "openai:alice@example.com (alice@example.com)"
    # The default model is openai/*, so an expiring openai OAuth profile makes --check exit 2.
    assert oc.status_check() == 2
