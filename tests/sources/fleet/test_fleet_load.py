"""Four sidecar processes, each on an empty state dir of its own (four hosts), sharing one
fleet OAuth profile through a real Redis: a minute of mixed load on tokens that live a few
seconds, and a refresh storm of 500 requests that makes one token call between them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

from tests.e2e.refresh_support import (
    RESPONSES,
    RESPONSES_BODY,
    clients_for,
    held_storm,
)
from tests.e2e.sidecar import Sidecar
from tests.fakes.token_server import FakeTokenServer
from tests.sources.fleet.conftest import LIFETIME_S, Fakes
from tests.sources.fleet.hosts import Fleet
from tests.sources.fleet.redis_server import RedisServer

pytestmark = pytest.mark.fleet

HOSTS = 4
LOAD_SECONDS = 60.0
MARGIN_S = 1
REVOKE_EVERY = 1_500
WORKERS = 16
STORM = 500


@dataclass
class Load:
    deadline: float
    revoke: bool = True  # one request in REVOKE_EVERY first revokes the live access token
    requests: int = 0
    revocations: int = 0
    failures: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)


def logs(running: list[Sidecar]) -> str:
    return "\n".join(f"--- {s.log_path.name}\n{s.logs()[-3000:]}" for s in running)


async def worker(index: int, clients: list[httpx.AsyncClient], load: Load, fakes: Fakes) -> None:
    """Streamed responses and plain model lists round-robin over the hosts until the deadline; one
    in REVOKE_EVERY first revokes the live access token (a 401, then a forced refresh)."""
    for turn in itertools.count():
        n = next(load.counter)
        if time.monotonic() > load.deadline:
            return
        if load.revoke and n and n % REVOKE_EVERY == 0:
            exchanges = fakes.tokens.exchanges
            if exchanges:
                fakes.tokens.registry.revoke(exchanges[-1]["issued_access"])
                load.revocations += 1
        client = clients[(index + turn) % len(clients)]
        load.requests += 1
        streamed = n % 3 != 0
        try:
            if streamed:
                response = await client.post(RESPONSES, json=RESPONSES_BODY)
            else:
                response = await client.get("/openai-codex/models")
        except httpx.HTTPError as exc:
            load.failures.append(f"{client.base_url}: {exc!r}")
            continue
        if response.status_code != 200 or (streamed and "completed" not in response.text):
            load.failures.append(f"{client.base_url}: {response.status_code} {response.text[:200]}")


def assert_one_chain(tokens: FakeTokenServer, first_refresh: str) -> None:
    """Every token call rotated the newest refresh token: one call per rotation, no fork."""
    exchanges = tokens.exchanges
    assert [e["outcome"] for e in exchanges] == ["ok"] * len(exchanges)
    presented = [e["refresh_token"] for e in exchanges]
    assert presented == [first_refresh] + [e["issued_refresh"] for e in exchanges[:-1]]
    assert tokens.reused == 0


def run_load(
    running: list[Sidecar], fakes: Fakes, seconds: float, *, revoke: bool = True
) -> tuple[Load, float]:
    async def main() -> tuple[Load, float]:
        clients = clients_for(running, WORKERS)
        load = Load(deadline=time.monotonic() + seconds, revoke=revoke)
        started = time.monotonic()
        with anyio.fail_after(seconds + 60):
            async with anyio.create_task_group() as tg:
                for index in range(WORKERS):
                    tg.start_soon(worker, index, clients, load, fakes)
        for client in clients:
            await client.aclose()
        return load, time.monotonic() - started

    return anyio.run(main)


def test_four_hosts_under_a_minute_of_mixed_load_rotate_once_per_rotation(
    fleet: Fleet, fakes: Fakes, redis_server: RedisServer
) -> None:
    """A minute of load over 4 hosts: every request succeeds, one token call per rotation in a
    single chain (no reused refresh token), Redis holds the newest, and no plaintext secret."""
    grant = fakes.tokens.seed(access_expires_in=LIFETIME_S)
    fleet.push(grant)
    running = fleet.start(HOSTS, margin_seconds=MARGIN_S, background_interval_seconds=3600)
    load, elapsed = run_load(running, fakes, LOAD_SECONDS)
    calls = fakes.tokens.calls
    report = (
        f"{load.requests} requests in {elapsed:.1f} s over {HOSTS} hosts, "
        f"{load.revocations} revocations, {calls} token calls"
    )
    print(report)
    assert [s.proc.poll() for s in running] == [None] * HOSTS, logs(running)
    assert load.failures[:10] == [], f"{report}\n{logs(running)}"
    assert_one_chain(fakes.tokens, grant.refresh_token)
    rotations = elapsed / (LIFETIME_S - MARGIN_S)
    assert rotations * 0.5 <= calls <= (rotations + load.revocations) * 1.3 + 2, report
    record = fleet.record()
    assert record is not None
    assert record.fields["refresh"] == fakes.tokens.exchanges[-1]["issued_refresh"]
    secrets_issued = [grant.access_token, grant.refresh_token] + [
        e[k] for e in fakes.tokens.exchanges for k in ("issued_access", "issued_refresh")
    ]
    assert_no_plaintext(redis_server, secrets_issued)


def assert_no_plaintext(redis_server: RedisServer, secrets: list[str]) -> None:
    """SCAN every key, read every value of every type, and the append-only files on disk."""
    dump = repr(redis_server.dump())
    on_disk = b"".join(
        p.read_bytes() for p in redis_server.workdir.rglob("*") if p.is_file()
    ).decode("latin-1")
    found = [s[:12] for s in secrets if s in dump or s in on_disk]
    assert (found, len(dump) > 100) == ([], True)


def test_a_refresh_storm_of_500_over_four_hosts_makes_one_token_call(
    fleet: Fleet, fakes: Fakes
) -> None:
    """500 concurrent requests over 4 hosts with an expired token wait on one token call."""
    fakes.tokens.registry.access_lifetime = 3600
    grant = fakes.tokens.seed(access_expires_in=-60)
    fleet.push(grant)
    running = fleet.start(HOSTS)
    fakes.tokens.set_mode("hold")  # park the one refresh until all 500 wait
    answers = anyio.run(held_storm, running, fakes.tokens, STORM)
    assert (answers, fakes.tokens.calls) == ([200] * STORM, 1), logs(running)
    issued = fakes.tokens.exchanges[0]
    seen = {r.headers["authorization"] for r in fakes.upstream.requests}
    assert seen == {f"Bearer {issued['issued_access']}"}
    record = fleet.record()
    assert record is not None
    assert record.fields["refresh"] == issued["issued_refresh"]
