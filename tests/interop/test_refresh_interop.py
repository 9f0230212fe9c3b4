"""Refresh against the real OpenClaw 2026.6.1: OpenClaw refreshing a profile through its own
locked code path while the sidecar refreshes the same profile makes one token-endpoint call
between them, and both end with the same valid credential. In both orders."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sidecar.auth.refresh import Refresher
from sidecar.providers.grants import ProviderAuth
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import OAuthCredential
from sidecar.sources.openclaw_json.store import JsonStore
from tests.fakes.token_server import ANTHROPIC_CLIENT_ID, FakeTokenServer
from tests.interop.openclaw import OpenClaw, installed

VERSION = "2026.6.1"
PROFILE = "anthropic:default"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]


@pytest.fixture
def tokens() -> Any:
    with FakeTokenServer() as server:
        yield server


def seed_expired(oc: OpenClaw, tokens: FakeTokenServer) -> str:
    grant = tokens.seed(style="anthropic")
    oc.write_store(
        {
            PROFILE: {
                "type": "oauth",
                "provider": "anthropic",
                "access": grant.access_token,
                "refresh": grant.refresh_token,
                "expires": now_ms() - 60_000,
                "email": "me@example.com",
            }
        }
    )
    return grant.refresh_token


def refresher_for(oc: OpenClaw, tokens: FakeTokenServer, client: httpx.AsyncClient) -> Refresher:
    layout = Layout.from_env({"HOME": str(oc.sandbox)}, state_dir=oc.state_dir)
    store = JsonStore(layout, home=oc.sandbox, check_interval_s=0)
    auth = ProviderAuth(
        provider="anthropic",
        style="anthropic",
        token_url=tokens.anthropic_token_url,
        client_id=ANTHROPIC_CLIENT_ID,
    )
    return Refresher(store, client, lambda _p: auth, clock=now_ms, timeout_s=20)


async def sidecar_refresh(oc: OpenClaw, tokens: FakeTokenServer) -> OAuthCredential:
    # The token endpoint may be held for many seconds: no 5 s default read timeout here.
    async with httpx.AsyncClient(timeout=60) as client:
        refresher = refresher_for(oc, tokens, client)
        view = (await refresher.source.view("main")).profiles[PROFILE]
        return await refresher.fresh("main", view)


def wait_for(path: Path, timeout: float = 60) -> bool:
    """Bounded poll for a file another process creates (no event crosses the process line)."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.02)
    return True


def test_openclaw_first_then_the_sidecar_adopts(tmp_path: Path, tokens: FakeTokenServer) -> None:
    """OpenClaw holds the locks while its token call runs; the sidecar waits, re-reads and
    uses OpenClaw's new credential without calling the token endpoint."""
    oc = OpenClaw(VERSION, tmp_path)
    seed_expired(oc, tokens)
    stub = oc.refresh_stub(PROFILE, delay_ms=4000, background=True)
    assert wait_for(oc.refresh_lock_path("anthropic", PROFILE))
    ours = anyio.run(sidecar_refresh, oc, tokens)
    theirs = oc.wait_stub(stub)
    stored = oc.read_store()["profiles"][PROFILE]
    assert (theirs["tokenEndpointCalls"], tokens.calls) == (1, 0)
    assert ours.access.reveal() == theirs["apiKey"] == stored["access"]
    assert stored["refresh"] == ours.refresh.reveal()
    assert ours.is_usable(now_ms())


def test_sidecar_first_then_openclaw_adopts(tmp_path: Path, tokens: FakeTokenServer) -> None:
    """The sidecar holds the locks while its token call is held open; OpenClaw waits, re-reads
    and uses the sidecar's new credential without a token call of its own."""
    oc = OpenClaw(VERSION, tmp_path)
    seed_expired(oc, tokens)
    tokens.set_mode("hold")
    result: dict[str, OAuthCredential] = {}
    worker = threading.Thread(
        target=lambda: result.update(cred=anyio.run(sidecar_refresh, oc, tokens))
    )
    worker.start()
    assert tokens.held.wait(30), "the sidecar never reached the token endpoint"
    stub = oc.refresh_stub(PROFILE, background=True)
    with pytest.raises(subprocess.TimeoutExpired):
        stub.wait(timeout=5)  # OpenClaw is waiting for our refresh lock
    tokens.release()
    worker.join(timeout=60)
    theirs = oc.wait_stub(stub)
    stored = oc.read_store()["profiles"][PROFILE]
    ours = result["cred"]
    assert (tokens.calls, theirs["tokenEndpointCalls"]) == (1, 0)
    assert ours.access.reveal() == theirs["apiKey"] == stored["access"]
    # (Which other fields survive is not asserted here: OpenClaw 2026.6.1 rewrites the store after
    # adopting and normalises each profile to the fields it knows for the provider.)
    assert stored["refresh"] == ours.refresh.reveal()
    assert tokens.registry.is_valid_access(stored["access"])
