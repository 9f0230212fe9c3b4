"""Helpers of the fleet tests: in-process fleet stores on a real Redis, OAuth fields, exchanges
that count their calls."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from sidecar.config import FleetSettings
from sidecar.sources.fleet.composite import open_fleet
from sidecar.sources.fleet.store import FleetStore
from sidecar.sources.openclaw.model import OAuthCredential
from tests.sources.fleet.redis_server import RedisServer

PID = "openai-codex:user@example.com"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def write_secret(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    os.chmod(path, 0o600)
    return path


def now_ms() -> int:
    return int(time.time() * 1000)


def fleet_files(root: Path, server: RedisServer, key: str | None = None) -> FleetSettings:
    root.mkdir(parents=True, exist_ok=True)
    url = write_secret(root / "redis-url", server.url)
    key_file = write_secret(root / "fleet-key", key or new_key())
    return FleetSettings(url_file=url, key_file=key_file, prefix="t")


def make_fleet(settings: FleetSettings, *, timeout_s: float = 2.0, **kw: Any) -> FleetStore:
    store = open_fleet(settings, clock=now_ms, refresh_timeout_s=timeout_s)
    for name, value in kw.items():
        setattr(store, name, value)
    return store


def oauth(access: str, refresh: str, expires_in_s: float) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": "openai-codex",
        "access": access,
        "refresh": refresh,
        "expires": now_ms() + int(expires_in_s * 1000),
        "email": "user@example.com",
    }


class Exchanges:
    """An ``exchange`` callback: rotates ``rt-N`` to ``rt-N+1``; ``gate`` parks each call."""

    def __init__(self, *, gate: anyio.Event | None = None, lifetime_s: float = 3600) -> None:
        self.seen: list[str] = []
        self.gate = gate
        self.entered = anyio.Event()
        self.lifetime_s = lifetime_s

    async def __call__(self, cred: OAuthCredential) -> Mapping[str, Any]:
        self.seen.append(cred.refresh.reveal())
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        n = len(self.seen)
        return {
            "access": f"at-{n}",
            "refresh": f"rt-{n}",
            "expires": now_ms() + int(self.lifetime_s * 1000),
        }


async def seed(store: FleetStore, fields: Mapping[str, Any], agent: str = "main") -> None:
    outcome, _ = await store.leases.write(agent, PID, fields, 0)
    assert outcome == 1
