"""Shared fixtures of the store tests: a private state dir with helpers to lay out its files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw_json.store import JsonStore

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z, in epoch milliseconds
HOUR = 3_600_000


class StateDir:
    """An OpenClaw state dir under ``tmp_path`` and a fake clock (epoch milliseconds)."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.path = root / "state"
        self.home.mkdir()
        self.path.mkdir()
        self.environ = {"HOME": str(self.home), "OPENCLAW_STATE_DIR": str(self.path)}
        self.layout = Layout.from_env(self.environ)
        self.now = NOW

    def clock(self) -> int:
        return self.now

    def store(self, **kwargs: Any) -> JsonStore:
        kwargs.setdefault("check_interval_s", 0)
        return JsonStore(self.layout, home=self.home, clock=self.clock, **kwargs)

    def agent_dir(self, agent: str = "main") -> Path:
        return self.path / "agents" / agent / "agent"

    def profiles_path(self, agent: str = "main") -> Path:
        return self.agent_dir(agent) / "auth-profiles.json"

    def state_path(self, agent: str = "main") -> Path:
        return self.agent_dir(agent) / "auth-state.json"

    def write(self, path: Path, content: bytes | str | Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        if not isinstance(content, bytes):
            content = dump(content)
        path.write_bytes(content)
        return path

    def write_profiles(self, agent: str, profiles: dict[str, Any], **top: Any) -> Path:
        return self.write(self.profiles_path(agent), {"version": 1, "profiles": profiles, **top})

    def write_state(self, agent: str, **keys: Any) -> Path:
        return self.write(self.state_path(agent), {"version": 1, **keys})

    def write_config(self, doc: Any) -> Path:
        return self.write(self.path / "openclaw.json", doc)

    @staticmethod
    def dump(doc: Any) -> bytes:
        """OpenClaw's writer, as the spec states it."""
        return dump(doc)

    @staticmethod
    def load(path: Path) -> Any:
        return json.loads(path.read_bytes())

    @staticmethod
    def oauth(
        access: str, refresh: str, expires: int, provider: str = "openai-codex", **extra: Any
    ) -> dict[str, Any]:
        return {
            "type": "oauth",
            "provider": provider,
            "access": access,
            "refresh": refresh,
            "expires": expires,
            **extra,
        }


def dump(doc: Any) -> bytes:
    """OpenClaw's writer, as the spec states it."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


@pytest.fixture
def sd(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask000", "umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)
