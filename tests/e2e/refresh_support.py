"""Helpers of the refresh end-to-end tests: OAuth profiles written straight into the store (as
OpenClaw writes them), a config that points the OAuth providers at the fakes, and the real
``serve`` processes started on one state dir and stopped at the end."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.e2e.sidecar import Sidecar, free_port, render_config, start_sidecar
from tests.fakes.token_server import ANTHROPIC_CLIENT_ID, OPENAI_CLIENT_ID, FakeTokenServer, Grant
from tests.fakes.upstream import FakeUpstream

CODEX_PREFIX = "/backend-api/codex"
ANTHROPIC_PREFIX = "/anthropic"
CODEX_ID = "openai-codex:user@example.com"
ANTHROPIC_ID = "anthropic:work"
RESPONSES = "/openai-codex/responses"
MESSAGES = "/anthropic/v1/messages"
RESPONSES_BODY: Mapping[str, Any] = {"model": "gpt-5.1-codex", "input": "hi", "stream": True}
MESSAGES_BODY: Mapping[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


def oauth_profile(grant: Grant, *, provider: str = "openai-codex", **extra: Any) -> dict[str, Any]:
    """The store entry OpenClaw keeps for ``grant`` (``expires`` in epoch ms)."""
    return {
        "type": "oauth",
        "provider": provider,
        "access": grant.access_token,
        "refresh": grant.refresh_token,
        "expires": grant.expires_ms,
        "accountId": grant.account_id,
        "email": grant.email,
        **extra,
    }


def profiles_path(state_dir: Path, agent: str = "main") -> Path:
    return state_dir / "agents" / agent / "agent" / "auth-profiles.json"


def state_path(state_dir: Path, agent: str = "main") -> Path:
    return state_dir / "agents" / agent / "agent" / "auth-state.json"


def write_profiles(state_dir: Path, profiles: Mapping[str, Any], agent: str = "main") -> Path:
    """``auth-profiles.json`` as OpenClaw writes it: two-space JSON, a newline, mode 0600."""
    path = profiles_path(state_dir, agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "profiles": dict(profiles)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # a running sidecar may read it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_profiles(state_dir: Path, agent: str = "main") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(profiles_path(state_dir, agent).read_bytes())
    return doc["profiles"]


def read_state(state_dir: Path, agent: str = "main") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(state_path(state_dir, agent).read_bytes())
    return doc


def provider_tables(
    tokens: FakeTokenServer,
    upstream: FakeUpstream,
    anthropic: tuple[FakeTokenServer, FakeUpstream] | None = None,
) -> dict[str, Any]:
    """Codex and Anthropic at their prefixes of the fake upstream, refreshing at the fake
    token server (``anthropic`` gives that provider fakes of its own)."""
    anthropic_tokens, anthropic_upstream = anthropic or (tokens, upstream)
    return {
        "openai-codex": {
            "base_url": upstream.url + CODEX_PREFIX,
            "token_url": tokens.openai_token_url,
            "client_id": OPENAI_CLIENT_ID,
        },
        "anthropic": {
            "base_url": anthropic_upstream.url + ANTHROPIC_PREFIX,
            "token_url": anthropic_tokens.anthropic_token_url,
            "client_id": ANTHROPIC_CLIENT_ID,
        },
    }


def expect_oauth(upstream: FakeUpstream, *keys: str) -> None:
    """The upstream accepts only valid (unexpired, unrevoked) access tokens, plus ``keys``."""
    upstream.expect(CODEX_PREFIX, keys, oauth=True, account_header=True)
    upstream.expect(ANTHROPIC_PREFIX, keys, oauth=True)


def bearers(upstream: FakeUpstream, prefix: str = CODEX_PREFIX) -> list[str]:
    """The bearer token of every request the upstream received under ``prefix``."""
    return [
        r.headers.get("authorization", "").removeprefix("Bearer ")
        for r in upstream.requests
        if r.path.startswith(prefix)
    ]


class Sidecars:
    """Starts ``serve`` processes on one state dir, all with the same provider tables, and
    stops every one of them at the end."""

    def __init__(self, root: Path, providers: Mapping[str, Any]) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.providers = providers
        self.running: list[Sidecar] = []

    def start(
        self, port: int | None = None, *, env: Mapping[str, str] | None = None, **refresh: float
    ) -> Sidecar:
        """One more sidecar; ``refresh`` are keys of its ``[refresh]`` table, ``env`` extra
        variables of its environment."""
        port = port or free_port()
        text = render_config([{"port": port}], self.providers, {"refresh": refresh})
        sidecar = start_sidecar(text, [port], state_dir=self.state_dir, workdir=self.root, env=env)
        self.running.append(sidecar)
        return sidecar

    def start_many(self, count: int, **refresh: float) -> list[Sidecar]:
        """``count`` sidecars, started side by side (on ports picked together, so distinct)."""
        ports = distinct_ports(count)
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda port: self.start(port, **refresh), ports))

    def stop_all(self) -> None:
        for sidecar in self.running:
            sidecar.stop()


def distinct_ports(count: int) -> list[int]:
    """``count`` free loopback ports, all held at once while picked."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def events(sidecar: Sidecar, name: str) -> list[dict[str, Any]]:
    return [e for e in sidecar.log_events() if e.get("event") == name]


_IN_FLIGHT = re.compile(r"^openclaw_sidecar_in_flight (\S+)$", re.MULTILINE)


def in_flight_of(metrics: httpx.Response) -> int:
    """The sidecar's own count of requests being proxied now, from its /metrics page."""
    found = _IN_FLIGHT.search(metrics.text)
    assert found is not None
    return int(float(found.group(1)))


def wait_until(what: str, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``done()`` (each call is a real round trip, so no sleep) until true or fail."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")


def clients_for(sidecars: list[Sidecar], connections: int) -> list[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=connections)
    return [httpx.AsyncClient(base_url=s.url(), limits=limits, timeout=60) for s in sidecars]


async def held_storm(
    sidecars: list[Sidecar], tokens: FakeTokenServer, count: int
) -> list[int | str]:
    """``count`` Codex requests spread over ``sidecars`` while ``tokens`` holds the refresh
    (its mode "hold"): released once every request is in flight, so all of them wait on it.
    Each request's status, or its transport error."""
    clients = clients_for(sidecars, count)
    answers: list[int | str] = []

    async def one(client: httpx.AsyncClient) -> None:
        try:
            answers.append((await client.post(RESPONSES, json=RESPONSES_BODY)).status_code)
        except httpx.HTTPError as exc:
            answers.append(repr(exc))

    async def waiting() -> int:
        return sum([in_flight_of(await c.get("/metrics")) for c in clients])

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(count):
                tg.start_soon(one, clients[n % len(clients)])
            assert await anyio.to_thread.run_sync(tokens.held.wait, 10)
            while await waiting() < count:
                pass
            tokens.release()
    for client in clients:
        await client.aclose()
    return answers
