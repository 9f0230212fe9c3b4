"""OpenClaw 2026.9.6 and the sidecar on one store holding a profile of every catalog provider (of
each credential type OpenClaw stores for it, OAuth logins ok, expiring and expired), plus the
logins whose refresh is special (no refresh token, GitHub Copilot's token, Qwen Portal):
``openclaw-sidecar status --json`` agrees with ``openclaw models status --json`` on each, and
says who refreshes each login and, for an expired one nobody here refreshes, what to run."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from sidecar.providers.catalog import CATALOG
from tests.interop.openclaw import OpenClaw, installed
from tests.interop.test_sqlite_interop import sidecar_cli, sqlite_store

VERSION = "2026.9.6"
HOUR = 3_600_000

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]


def catalog_profiles(now: int) -> dict[str, dict[str, Any]]:
    """A profile of every catalog provider, of each type OpenClaw stores for it."""
    expiries = (now + 7 * 24 * HOUR, now + 2 * HOUR, now - 60_000)  # ok, expiring, expired
    profiles: dict[str, dict[str, Any]] = {}
    for n, (name, entry) in enumerate(sorted(CATALOG.items())):
        for kind in entry.credentials:
            secret = f"{name}-{kind}-0123456789abcdef"
            base = {"type": kind, "provider": name}
            if kind == "api_key":
                profiles[f"{name}:key"] = {**base, "key": secret}
            elif kind == "token":
                profiles[f"{name}:token"] = {**base, "token": secret, "expires": now + 30 * HOUR}
            else:
                expires = expiries[n % 3]
                login = {"access": secret, "refresh": "rt-" + secret, "expires": expires}
                profiles[f"{name}:login"] = {**base, **login}
    return profiles


SPECIAL = {
    "radius:no-refresh": {"type": "oauth", "provider": "radius", "access": "a-0123456789"},
    "qwen-portal:legacy": {"type": "oauth", "provider": "qwen-portal", "access": "q-0123456789"},
    "github-copilot:github": {
        "type": "token",
        "provider": "github-copilot",
        "token": "gho_0123456789abcdefghijklmnopqrstuvwxyz",
    },
    "x-ai:alias": {"type": "oauth", "provider": "x-ai", "access": "x-0123456789", "refresh": "r"},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> OpenClaw:
    """OpenClaw's own store (made by its CLI), then every profile written into it."""
    oc = OpenClaw(VERSION, tmp_path_factory.mktemp("catalog"))
    oc.paste_api_key("openai")
    now = int(time.time() * 1000)
    special = {
        pid: {**fields, "expires": now - 60_000 if "legacy" in pid else now + 3 * HOUR}
        for pid, fields in SPECIAL.items()
        if fields["type"] == "oauth"
    }
    special["github-copilot:github"] = SPECIAL["github-copilot:github"]
    writer = sqlite_store(oc)
    for pid, fields in {**catalog_profiles(now), **special}.items():
        writer.put_profile_sync("main", pid, fields)
    return oc


def test_status_agrees_with_openclaw_on_every_catalog_provider(store: OpenClaw) -> None:
    """Every profile OpenClaw reports, the sidecar reports with the same provider, type,
    status and expiry; and the two list the same profiles."""
    theirs = store.status_json()["auth"]["oauth"]["profiles"]
    ours = json.loads(sidecar_cli(store, "status", "--json").stdout)["agents"][0]["profiles"]
    keys = ("provider", "type", "status", "expiresAt")
    assert len(theirs) > 80
    assert {p["profileId"]: tuple(p.get(k) for k in keys) for p in ours} == {
        p["profileId"]: tuple(p.get(k) for k in keys) for p in theirs
    }


def test_status_says_who_refreshes_each_login_and_what_to_run(store: OpenClaw) -> None:
    """Each OAuth login's refresh flavour, "openclaw" where only OpenClaw's plugin refreshes it,
    "none" where nobody can; an expired login nobody here refreshes names the command."""
    ours = json.loads(sidecar_cli(store, "status", "--json").stdout)["agents"][0]["profiles"]
    refresh = {p["profileId"]: p["refresh"] for p in ours if p["type"] == "oauth"}
    assert {pid: refresh[pid] for pid in sorted(refresh) if refresh[pid] != "openclaw"} == {
        "anthropic:login": "anthropic",
        "chutes:login": "chutes",
        "github-copilot:login": "copilot",
        "google-gemini-cli:login": "google",
        "minimax-portal-cn:login": "none",
        "minimax-portal:login": "none",
        "openai-codex:login": "openai",
        "qwen-portal:legacy": "none",
        "x-ai:alias": "xai",
        "xai:login": "xai",
    }
    actions = {p["profileId"]: p["action"] for p in ours if p["action"]}
    expired_elsewhere = {
        p["profileId"]
        for p in ours
        if p["status"] == "expired" and p["refresh"] in ("openclaw", "none")
    }
    assert set(actions) == expired_elsewhere
    assert actions["qwen-portal:legacy"].endswith(
        "OpenClaw cannot refresh qwen-portal logins either: sign in again with `openclaw "
        "onboard --auth-choice qwen-api-key`"
    )
