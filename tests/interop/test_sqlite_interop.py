"""The SQLite store against the real OpenClaw 2026.9.6: what its CLI writes is read correctly,
``openclaw-sidecar status --json`` agrees with ``openclaw models status --json``, what the
sidecar writes is listed by the CLI, a refresh racing OpenClaw's own (fence protocol) makes one
token call in both orders and leaves no fence, and the CLI's writes never hit their busy
timeout while the sidecar refreshes in a loop."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sidecar.auth.refresh import Refresher
from sidecar.providers.grants import ProviderAuth
from sidecar.sources.choice import open_source
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import OAuthCredential
from sidecar.sources.openclaw_sqlite import fence
from sidecar.sources.openclaw_sqlite.store import SqliteStore
from tests.fakes.token_server import ANTHROPIC_CLIENT_ID, FakeTokenServer
from tests.interop.openclaw import FAKE_API_KEY, FAKE_TOKEN, OpenClaw, installed

VERSION = "2026.9.6"
PROFILE = "anthropic:default"
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]


def sqlite_store(oc: OpenClaw) -> SqliteStore:
    layout = Layout.from_env({"HOME": str(oc.sandbox)}, state_dir=oc.state_dir)
    store = open_source(layout, home=oc.sandbox, check_interval_s=0)
    assert isinstance(store, SqliteStore)
    return store


def sidecar_cli(oc: OpenClaw, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(oc.sandbox), "OPENCLAW_STATE_DIR": str(oc.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )


def state_db(oc: OpenClaw) -> Path:
    return oc.state_dir / "state" / "openclaw.sqlite"


def stored(oc: OpenClaw) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(f"file:{state_db(oc)}?mode=ro", uri=True)) as conn:
        row = conn.execute(
            "SELECT value_json FROM config_machine_state WHERE state_key = 'authProfiles.store'"
        ).fetchone()
    profiles: dict[str, Any] = json.loads(row[0])["profiles"]
    return profiles


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> OpenClaw:
    """One install, written by the CLI itself (each call takes ~5 s)."""
    oc = OpenClaw(VERSION, tmp_path_factory.mktemp("oc"))
    oc.paste_token("anthropic", "anthropic:work", expires_in="30d")
    oc.paste_api_key("openai")
    oc.add_agent("work")
    oc.paste_api_key("openai", "openai:work", agent="work", secret=FAKE_API_KEY + "-work")
    oc.set_order("anthropic", "anthropic:work", agent="main")
    return oc


def test_profiles_the_cli_wrote_are_read(seeded: OpenClaw) -> None:
    """paste-token, paste-api-key, a second agent and an order, through the typed model."""
    store = sqlite_store(seeded)
    main, work = store.view_sync("main"), store.view_sync("work")
    assert {k: (v.profile.type, v.owner) for k, v in work.profiles.items()} == {
        "anthropic:work": ("token", "main"),
        "openai:manual": ("api_key", "main"),
        "openai:work": ("api_key", "work"),
    }
    token = main.profiles["anthropic:work"].profile
    assert token.token.reveal() == FAKE_TOKEN
    assert work.profiles["openai:work"].profile.key.reveal() == FAKE_API_KEY + "-work"
    assert dict(main.state.order) == {"anthropic": ("anthropic:work",)}
    assert (main.era.value, work.era.value) == ("sqlite", "sqlite")


@pytest.mark.parametrize("agent", ["main", "work"])
def test_status_agrees_with_openclaw(seeded: OpenClaw, agent: str) -> None:
    """ids, types, status and expiry as `openclaw models status --json` reports them."""
    theirs = seeded.status_json(agent=agent)["auth"]["oauth"]["profiles"]
    ours = json.loads(sidecar_cli(seeded, "status", "--json", "--agent", agent).stdout)
    by_id = {p["profileId"]: p for p in ours["agents"][0]["profiles"]}
    assert ours["agents"][0]["era"] == "sqlite"
    assert theirs
    for profile in theirs:
        mine = by_id[profile["profileId"]]
        assert (mine["type"], mine["status"]) == (profile["type"], profile["status"])
        assert mine["expiresAt"] == profile.get("expiresAt")
    listed = seeded.list_json(agent=agent)["profiles"]
    assert sorted(p["id"] for p in listed) == sorted(by_id)


def test_what_the_sidecar_writes_is_listed(seeded: OpenClaw) -> None:
    """paste-api-key / paste-token through the sidecar's CLI land where OpenClaw reads them."""
    sidecar_cli(
        seeded,
        "paste-api-key",
        "--provider",
        "openai",
        "--agent",
        "work",
        "--profile-id",
        "openai:side",
        stdin="sk-side-0123456789abcdefghij\n",
    )
    token = "sk-ant-oat01-" + "SIDE0123456789" * 6
    sidecar_cli(
        seeded,
        "paste-token",
        "--provider",
        "anthropic",
        "--profile-id",
        "anthropic:side",
        "--expires-in",
        "7d",
        stdin=token + "\n",
    )
    work = {p["id"]: p for p in seeded.list_json(agent="work")["profiles"]}
    main = {p["id"]: p for p in seeded.list_json()["profiles"]}
    assert work["openai:side"]["type"] == "api_key"
    assert main["anthropic:side"]["type"] == "token"
    status = {p["profileId"]: p for p in seeded.status_json()["auth"]["oauth"]["profiles"]}
    assert status["anthropic:side"]["status"] == "ok"


# --- refresh against OpenClaw's own fence protocol ----------------------------------------------


@pytest.fixture
def tokens() -> Any:
    with FakeTokenServer() as server:
        yield server


def seed_expired(oc: OpenClaw, tokens: FakeTokenServer) -> None:
    oc.paste_token("anthropic", "anthropic:work")  # the CLI makes the install (state DB)
    grant = tokens.seed(style="anthropic", email="me@example.com")  # the identity it answers
    credential = {
        "type": "oauth",
        "provider": "anthropic",
        "access": grant.access_token,
        "refresh": grant.refresh_token,
        "expires": now_ms() - 60_000,
        "email": "me@example.com",
    }
    sqlite_store(oc).put_profile_sync("main", PROFILE, credential)


async def sidecar_refresh(oc: OpenClaw, tokens: FakeTokenServer) -> OAuthCredential:
    auth = ProviderAuth(
        provider="anthropic",
        style="anthropic",
        token_url=tokens.anthropic_token_url,
        client_id=ANTHROPIC_CLIENT_ID,
    )
    async with httpx.AsyncClient(timeout=30) as client:
        refresher = Refresher(sqlite_store(oc), client, lambda _p: auth, clock=now_ms, timeout_s=20)
        view = (await refresher.source.view("main")).profiles[PROFILE]
        return await refresher.fresh("main", view)


def wait_until(check: Any, timeout: float = 60) -> bool:
    """Bounded poll of another process's state (no event crosses the process line)."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not check():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.02)
    return True


def assert_clean(oc: OpenClaw) -> None:
    """No fence in the store, no lock file and no claim record left."""
    assert not any(fence.is_fence(p) for p in stored(oc).values())
    assert [p.name for p in (oc.state_dir / "locks" / "oauth-refresh").iterdir()] == []


def test_openclaw_first_then_the_sidecar_adopts(tmp_path: Path, tokens: FakeTokenServer) -> None:
    """OpenClaw's fence is in place while its token call runs; the sidecar waits for it to
    settle and uses OpenClaw's credential without calling the token endpoint."""
    oc = OpenClaw(VERSION, tmp_path)
    seed_expired(oc, tokens)
    stub = oc.refresh_stub(PROFILE, delay_ms=4000, background=True)
    assert wait_until(lambda: fence.is_pending_fence(stored(oc)[PROFILE]))
    ours = anyio.run(sidecar_refresh, oc, tokens)
    theirs = oc.wait_stub(stub)
    final = stored(oc)[PROFILE]
    assert (theirs["tokenEndpointCalls"], tokens.calls) == (1, 0)
    assert ours.access.reveal() == theirs["apiKey"] == final["access"]
    assert ours.refresh.reveal() == final["refresh"]
    assert ours.is_usable(now_ms())
    assert_clean(oc)


def test_sidecar_first_then_openclaw_adopts(tmp_path: Path, tokens: FakeTokenServer) -> None:
    """The sidecar's fence is in place while its token call is held open; OpenClaw observes
    it and uses the sidecar's credential without a token call of its own."""
    oc = OpenClaw(VERSION, tmp_path)
    seed_expired(oc, tokens)
    tokens.set_mode("hold")
    result: dict[str, OAuthCredential] = {}
    worker = threading.Thread(
        target=lambda: result.update(cred=anyio.run(sidecar_refresh, oc, tokens))
    )
    worker.start()
    assert tokens.held.wait(30), "the sidecar never reached the token endpoint"
    assert fence.is_pending_fence(stored(oc)[PROFILE])
    stub = oc.refresh_stub(PROFILE, background=True)
    with pytest.raises(subprocess.TimeoutExpired):
        stub.wait(timeout=5)  # OpenClaw is observing our fence
    tokens.release()
    worker.join(timeout=60)
    theirs = oc.wait_stub(stub)
    final, ours = stored(oc)[PROFILE], result["cred"]
    assert (tokens.calls, theirs["tokenEndpointCalls"]) == (1, 0), theirs
    assert ours.access.reveal() == theirs["apiKey"] == final["access"]
    assert final["refresh"] == ours.refresh.reveal()
    assert final["email"] == ours.email == "me@example.com"
    assert tokens.registry.is_valid_access(final["access"])
    assert_clean(oc)


def test_cli_writes_never_time_out_under_refresh_load(tmp_path: Path) -> None:
    """50+ sidecar refreshes and writes in a loop while the CLI stores keys: every CLI write
    succeeds, none reports a lock wait."""
    oc = OpenClaw(VERSION, tmp_path)
    oc.paste_token("anthropic", "anthropic:work")
    store = sqlite_store(oc)
    store.put_profile_sync(
        "main",
        PROFILE,
        {
            "type": "oauth",
            "provider": "anthropic",
            "access": "A0",
            "refresh": "R0",
            "expires": now_ms() + 3_600_000,
            "email": "me@example.com",
        },
    )
    done, count = threading.Event(), [0]

    async def load() -> None:
        async def exchange(cred: OAuthCredential) -> dict[str, Any]:
            n = count[0] = count[0] + 1
            return {"access": f"A{n}", "refresh": f"R{n}", "expires": now_ms() + 3_600_000}

        while not done.is_set() or count[0] < 50:
            current = (await store.view("main")).profiles[PROFILE].profile
            assert isinstance(current, OAuthCredential)
            await store.refresh("main", PROFILE, exchange, rejected_access=current.access.reveal())
            await store.put_profile(
                "main",
                "openai:load",
                {"type": "api_key", "provider": "openai", "key": f"k{count[0]}"},
            )
            await anyio.sleep(0.02)  # heavy, but not a CPU burner on a 2-CPU runner

    worker = threading.Thread(target=lambda: anyio.run(load))
    worker.start()
    results, took = [], []
    for i in range(3):
        started = time.monotonic()
        results.append(oc.paste_api_key("openai", f"openai:cli{i}", check=False))
        took.append(time.monotonic() - started)
    print("cli seconds", [round(t, 1) for t in took], "sidecar refreshes", count[0])
    done.set()
    worker.join(timeout=120)
    assert count[0] >= 50
    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
        assert "lock wait" not in result.stdout + result.stderr
    assert {f"openai:cli{i}" for i in range(3)} <= set(stored(oc))
    assert stored(oc)[PROFILE]["access"] == f"A{count[0]}"
