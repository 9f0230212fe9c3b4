"""The store layer against the real OpenClaw 2026.6.1 CLI: each reads what the other writes,
and each waits for the other's store lock (store spec §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sidecar.sources.openclaw import locks
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import ApiKeyCredential, TokenCredential
from sidecar.sources.openclaw_json.store import JsonStore
from tests.interop.openclaw import OpenClaw, installed

VERSION = "2026.6.1"
TOKEN = "sk-ant-oat01-" + "INTEROP0123456789" * 5
KEY_MAIN = "sk-or-v1-interop-main-0123456789"
KEY_WORK = "sk-or-v1-interop-work-0123456789"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]


def store_for(oc: OpenClaw) -> JsonStore:
    layout = Layout.from_env({"HOME": str(oc.sandbox)}, state_dir=oc.state_dir)
    return JsonStore(layout, home=oc.sandbox, check_interval_s=0)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Bounded poll of another process's files: OpenClaw gives us no event to wait on."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.02)
    return True


def sidecar_cli(oc: OpenClaw, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(oc.sandbox), "OPENCLAW_STATE_DIR": str(oc.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def paste_in_background(oc: OpenClaw, provider: str, secret: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        oc.command("models", "auth", "paste-api-key", "--provider", provider),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=oc.env(),
        cwd=oc.sandbox,
    )
    assert proc.stdin is not None
    proc.stdin.write(secret + "\n")
    proc.stdin.close()
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> int:
    """Wait for a background OpenClaw whose stdin we already closed; read and close its pipes."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    with proc.stdout, proc.stderr:
        proc.stdout.read()
        proc.stderr.read()
    return proc.wait(timeout=timeout)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- OpenClaw writes, the sidecar reads ---------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> OpenClaw:
    """One sandbox written by OpenClaw: a token, an api key, a second agent, an order."""
    oc = OpenClaw(VERSION, tmp_path_factory.mktemp("seeded"))
    oc.paste_token("anthropic", "anthropic:work", expires_in="12h", secret=TOKEN)
    oc.paste_api_key("openrouter", secret=KEY_MAIN)
    oc.add_agent("work")
    oc.paste_api_key("openrouter", "openrouter:work", agent="work", secret=KEY_WORK)
    oc.set_order("openrouter", "openrouter:work", "openrouter:manual", agent="work")
    return oc


def test_profiles_openclaw_wrote_are_read(seeded: OpenClaw) -> None:
    """Types, providers, secrets and expiry of OpenClaw's profiles come through unchanged."""
    view = store_for(seeded).view_sync("main")
    token, key = view.profiles["anthropic:work"].profile, view.profiles["openrouter:manual"].profile
    assert isinstance(token, TokenCredential)
    assert isinstance(key, ApiKeyCredential)
    assert (token.provider, token.token and token.token.reveal()) == ("anthropic", TOKEN)
    assert token.expires is not None
    assert abs(token.expires - (time.time() * 1000 + 12 * 3600_000)) < 600_000
    assert (key.provider, key.key and key.key.reveal()) == ("openrouter", KEY_MAIN)
    assert set(view.profiles) == {"anthropic:work", "openrouter:manual"}


def test_second_agent_inherits_and_keeps_its_order(seeded: OpenClaw) -> None:
    """Agent work sees main's profiles and its own, each with its owner and its file."""
    view = store_for(seeded).view_sync("work")
    assert {pid: (v.owner, v.origin) for pid, v in view.profiles.items()} == {
        "anthropic:work": ("main", seeded.store_path()),
        "openrouter:manual": ("main", seeded.store_path()),
        "openrouter:work": ("work", seeded.store_path("work")),
    }
    # OpenClaw 2026.6.1 drops ids inherited from main when it sets a sub-agent's order.
    assert view.state.order["openrouter"] == ("openrouter:work",)


def test_sidecar_status_agrees_with_openclaw_status(seeded: OpenClaw) -> None:
    """`status --json` and `openclaw models status --json` list the same profiles."""
    ours = json.loads(sidecar_cli(seeded, "status", "--agent", "main", "--json").stdout)
    theirs = seeded.status_json()["auth"]["oauth"]["profiles"]
    assert summary(ours["agents"][0]["profiles"]) == summary(theirs)


def summary(profiles: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            p["profileId"],
            p["provider"],
            p["type"],
            p["status"],
            round((p.get("expiresAt") or 0) / 60_000),
        )
        for p in profiles
    )


# --- the sidecar writes, OpenClaw reads -----------------------------------------------------------


def test_openclaw_lists_what_the_sidecar_wrote(tmp_path: Path) -> None:
    """Profiles from paste commands and OAuth logins are listed by both OpenClaw commands with
    the same ids, types, status and expiry, for main and a second agent."""
    oc = OpenClaw(VERSION, tmp_path)
    oc.add_agent("work")  # OpenClaw only answers for agents in openclaw.json's agents.list
    now = int(time.time() * 1000)
    sidecar_cli(oc, "paste-api-key", "--provider", "openai", stdin=KEY_MAIN + "\n")
    sidecar_cli(
        oc, "paste-token", "--provider", "anthropic", "--expires-in", "30d", stdin=TOKEN + "\n"
    )
    store = store_for(oc)
    for name, expires in (
        ("ok", now + 3 * 86400_000),
        ("soon", now + 3600_000),
        ("old", now - 60_000),
    ):
        store.put_profile_sync(
            "main",
            f"openai-codex:{name}@example.com",
            {
                "type": "oauth",
                "provider": "openai-codex",
                "access": f"access-{name}-0123456789",
                "refresh": f"refresh-{name}-0123456789",
                "expires": expires,
                "email": f"{name}@example.com",
                "accountId": "acct-1",
            },
        )
    sidecar_cli(
        oc, "paste-api-key", "--provider", "openrouter", "--agent", "work", stdin=KEY_WORK + "\n"
    )

    listed = {p["id"]: p for p in oc.list_json()["profiles"]}
    ours = json.loads(sidecar_cli(oc, "status", "--agent", "main", "--json").stdout)
    theirs = oc.status_json()["auth"]["oauth"]["profiles"]
    assert set(listed) == {
        "openai:manual",
        "anthropic:manual",
        "openai-codex:ok@example.com",
        "openai-codex:soon@example.com",
        "openai-codex:old@example.com",
    }
    assert listed["openai-codex:soon@example.com"]["expiresAt"].startswith(
        time.strftime("%Y-%m-%dT", time.gmtime((now + 3600_000) / 1000))
    )
    assert summary(ours["agents"][0]["profiles"]) == summary(theirs)
    assert {p["id"] for p in oc.list_json(agent="work")["profiles"]} >= {"openrouter:manual"}


# --- the store lock, both ways --------------------------------------------------------------------


def test_openclaw_waits_while_the_sidecar_holds_the_store_lock(tmp_path: Path) -> None:
    """OpenClaw's paste blocks on our lock file and completes once we release it."""
    oc = OpenClaw(VERSION, tmp_path)
    store = store_for(oc)
    store.put_profile_sync(
        "main", "openai:ours", {"type": "api_key", "provider": "openai", "key": KEY_MAIN}
    )
    with locks.hold(store.layout.store_lock_path("main"), locks.STORE_LOCK):
        proc = paste_in_background(oc, "openrouter", KEY_WORK)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=8)  # still waiting for our lock
    assert finish(proc) == 0
    assert set(oc.read_store()["profiles"]) == {"openai:ours", "openrouter:manual"}


def test_sidecar_waits_while_openclaw_holds_the_store_lock(tmp_path: Path) -> None:
    """During OpenClaw's slow locked refresh, our write waits, and neither update is lost."""
    oc = OpenClaw(VERSION, tmp_path)
    oc.write_store(
        {
            "anthropic:default": {
                "type": "oauth",
                "provider": "anthropic",
                "access": "OLD-ACCESS",
                "refresh": "OLD-R",
                "expires": int(time.time() * 1000) - 1000,
            }
        }
    )
    store = store_for(oc)
    stub = oc.refresh_stub("anthropic:default", delay_ms=6000, background=True)
    assert wait_until(store.layout.store_lock_path("main").exists)
    done = threading.Event()
    writer = threading.Thread(
        target=lambda: (
            store.put_profile_sync(
                "main", "openai:ours", {"type": "api_key", "provider": "openai", "key": KEY_MAIN}
            ),
            done.set(),
        )
    )
    writer.start()
    assert not done.wait(2), "the sidecar wrote while OpenClaw held the store lock"
    result = oc.wait_stub(stub)
    writer.join(timeout=90)
    profiles = oc.read_store()["profiles"]
    assert (result["tokenEndpointCalls"], done.is_set()) == (1, True)
    assert profiles["anthropic:default"]["access"] == result["apiKey"]
    assert profiles["openai:ours"]["key"] == KEY_MAIN


def test_a_dead_pids_lock_is_taken_over_by_both(tmp_path: Path) -> None:
    """A lock left by a dead process blocks neither OpenClaw nor the sidecar."""
    oc = OpenClaw(VERSION, tmp_path)
    store = store_for(oc)
    lock = store.layout.store_lock_path("main")
    body = locks.lock_body(dead_pid(), int(time.time() * 1000), 12345)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_bytes(body)
    oc.paste_api_key("openrouter", secret=KEY_WORK, timeout=60)
    lock.write_bytes(body)
    started = time.monotonic()
    store.put_profile_sync(
        "main", "openai:ours", {"type": "api_key", "provider": "openai", "key": KEY_MAIN}
    )
    assert time.monotonic() - started < 5
    assert not lock.exists()
    assert set(oc.read_store()["profiles"]) == {"openrouter:manual", "openai:ours"}
