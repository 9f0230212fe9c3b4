"""Four real ``serve`` processes on one state dir: a minute of mixed load on tokens that live a
few seconds (rotation through OpenClaw's locks, never a reused refresh token, a store that parses
at every moment), and a refresh storm that makes one token call between all four."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.e2e.refresh_support import (
    ANTHROPIC_ID,
    ANTHROPIC_PREFIX,
    CODEX_ID,
    CODEX_PREFIX,
    MESSAGES,
    MESSAGES_BODY,
    RESPONSES,
    RESPONSES_BODY,
    Sidecars,
    clients_for,
    held_storm,
    oauth_profile,
    profiles_path,
    provider_tables,
    read_profiles,
    write_profiles,
)
from tests.e2e.sidecar import Sidecar
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

PROCESSES = 4
LOAD_SECONDS = 60.0
MAX_REQUESTS = 60_000
WORKERS = 16
REVOKE_EVERY = 1_000  # requests between revocations of the live Codex access token
LIFETIME_S = 4  # how long the sidecars see an access token live
MARGIN_S = 1  # [refresh] margin_seconds
STORM = 500

# Parses the store file over and over until the deadline, in a process of its own (as OpenClaw
# would read it); prints how many reads parsed, the ones that did not, and every Codex refresh
# token it saw.
READER = """
import json, sys, time
path, deadline, pid = sys.argv[1], time.time() + float(sys.argv[2]), sys.argv[3]
reads, invalid, seen = 0, [], set()
while time.time() < deadline:
    with open(path, "rb") as file:
        data = file.read()
    try:
        doc = json.loads(data)
    except ValueError as err:
        invalid.append(f"{err}: {data[:80]!r}")
        continue
    reads += 1
    seen.add(doc["profiles"][pid]["refresh"])
print(json.dumps({"reads": reads, "invalid": invalid[:5], "seen": sorted(seen)}))
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Fakes:
    """Codex and Anthropic each with a token server and an upstream that checks its tokens."""

    codex_tokens: FakeTokenServer
    codex: FakeUpstream
    anthropic_tokens: FakeTokenServer
    anthropic: FakeUpstream

    def providers(self) -> dict[str, Any]:
        return provider_tables(
            self.codex_tokens, self.codex, (self.anthropic_tokens, self.anthropic)
        )


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    """Tokens that live LIFETIME_S for the sidecars. Anthropic's expiry is stored 5 minutes
    early, so its token server grants 300 s more to give the same few seconds."""
    with (
        FakeTokenServer(access_lifetime=LIFETIME_S) as codex_tokens,
        FakeTokenServer(access_lifetime=LIFETIME_S + 300) as anthropic_tokens,
        FakeUpstream(tokens=codex_tokens) as codex,
        FakeUpstream(tokens=anthropic_tokens) as anthropic,
    ):
        codex.expect(CODEX_PREFIX, oauth=True, account_header=True)
        anthropic.expect(ANTHROPIC_PREFIX, oauth=True)
        yield Fakes(codex_tokens, codex, anthropic_tokens, anthropic)


@pytest.fixture
def sidecars(tmp_path: Path, fakes: Fakes) -> Iterator[Sidecars]:
    """Sidecars on one state dir in front of ``fakes``, all stopped at the end."""
    pool = Sidecars(tmp_path, fakes.providers())
    yield pool
    pool.stop_all()


class StoreReader:
    """The reader process over ``path`` for ``seconds``; ``result()`` waits for its report."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, str(path), str(seconds), CODEX_ID],
            stdout=subprocess.PIPE,
            text=True,
        )

    def result(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=30)
        report: dict[str, Any] = json.loads(out)
        return report


@dataclass
class Load:
    """What the client workers did."""

    deadline: float
    requests: int = 0
    revocations: int = 0
    failures: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)


async def worker(
    index: int, clients: list[httpx.AsyncClient], load: Load, fakes: Fakes, state_dir: Path
) -> None:
    """Requests round-robin over the sidecars, Codex (streamed) and Anthropic alternating,
    until the deadline; one in REVOKE_EVERY first revokes the live Codex access token."""
    for turn in itertools.count():
        n = next(load.counter)
        if time.monotonic() > load.deadline or n >= MAX_REQUESTS:
            return
        if n and n % REVOKE_EVERY == 0:
            fakes.codex_tokens.registry.revoke(read_profiles(state_dir)[CODEX_ID]["access"])
            load.revocations += 1
        client = clients[(index + turn) % len(clients)]
        codex = n % 2 == 0
        path, body = (RESPONSES, RESPONSES_BODY) if codex else (MESSAGES, MESSAGES_BODY)
        load.requests += 1
        try:
            response = await client.post(path, json=body)
        except httpx.HTTPError as exc:
            load.failures.append(f"{client.base_url}{path}: {exc!r}")
            continue
        done = "response.completed" in response.text if codex else '"stop_reason"' in response.text
        if response.status_code != 200 or not done:
            load.failures.append(
                f"{client.base_url}{path}: {response.status_code} {response.text[:200]}"
            )


def seed_both(fakes: Fakes, state_dir: Path, expires_in: int) -> None:
    """A Codex and an Anthropic OAuth profile whose tokens expire in ``expires_in`` s."""
    codex = fakes.codex_tokens.seed(access_expires_in=expires_in)
    anthropic = fakes.anthropic_tokens.seed(style="anthropic", access_expires_in=expires_in)
    profiles = {
        CODEX_ID: oauth_profile(codex),
        ANTHROPIC_ID: oauth_profile(anthropic, provider="anthropic"),
    }
    write_profiles(state_dir, profiles)


def sidecar_logs(running: list[Sidecar]) -> str:
    """The tail of each sidecar's log, for a failure message."""
    return "\n".join(f"--- {s.log_path.name}\n{s.logs()[-3000:]}" for s in running)


@pytest.mark.anyio
async def test_four_processes_under_a_minute_of_mixed_load_rotate_without_reuse(
    sidecars: Sidecars, fakes: Fakes
) -> None:
    """A minute of load on 4 processes sharing one store: every request succeeds, no refresh
    token is ever used twice, token calls follow the rotations, and the store always parses."""
    seed_both(fakes, sidecars.state_dir, LIFETIME_S)
    running = sidecars.start_many(
        PROCESSES, margin_seconds=MARGIN_S, background_interval_seconds=3600
    )
    clients = clients_for(running, WORKERS)
    load = Load(deadline=time.monotonic() + LOAD_SECONDS)
    started = time.monotonic()
    reader = StoreReader(profiles_path(sidecars.state_dir), LOAD_SECONDS)
    with anyio.fail_after(LOAD_SECONDS + 30):
        async with anyio.create_task_group() as tg:
            for index in range(WORKERS):
                tg.start_soon(worker, index, clients, load, fakes, sidecars.state_dir)
    elapsed = time.monotonic() - started
    for client in clients:
        await client.aclose()
    read = reader.result()
    report = (
        f"{load.requests} requests in {elapsed:.1f} s, {load.revocations} revocations, "
        f"token calls codex={fakes.codex_tokens.calls} anthropic={fakes.anthropic_tokens.calls}, "
        f"{read['reads']} store reads"
    )
    print(report)
    assert [s.proc.poll() for s in running] == [None] * PROCESSES, sidecar_logs(running)
    assert load.failures[:10] == [], f"{report}\n{sidecar_logs(running)}"
    assert (fakes.codex_tokens.reused, fakes.anthropic_tokens.reused) == (0, 0), report
    assert (read["invalid"], read["reads"] > 1000) == ([], True), report
    # A rotation is due every LIFETIME_S - MARGIN_S seconds, and after each revocation; four
    # processes refreshing on their own would make about four times as many calls.
    rotations = elapsed / (LIFETIME_S - MARGIN_S)
    for tokens, extra in ((fakes.codex_tokens, load.revocations), (fakes.anthropic_tokens, 0)):
        assert rotations * 0.5 <= tokens.calls <= (rotations + extra) * 1.3 + 2, report
        assert [e["outcome"] for e in tokens.exchanges] == ["ok"] * tokens.calls, report
    final = read_profiles(sidecars.state_dir)
    assert final[CODEX_ID]["refresh"] == fakes.codex_tokens.exchanges[-1]["issued_refresh"]
    assert final[ANTHROPIC_ID]["refresh"] == fakes.anthropic_tokens.exchanges[-1]["issued_refresh"]
    issued = {e["issued_refresh"] for e in fakes.codex_tokens.exchanges}
    assert set(read["seen"]) <= issued | {fakes.codex_tokens.exchanges[0]["refresh_token"]}


@pytest.mark.anyio
async def test_a_refresh_storm_over_four_processes_makes_one_token_call(
    sidecars: Sidecars, fakes: Fakes
) -> None:
    """500 concurrent requests spread over 4 processes, all with an expired token, wait on one
    token call between them and all succeed with the new token."""
    fakes.codex_tokens.registry.access_lifetime = 3600
    seed_both(fakes, sidecars.state_dir, -60)
    running = sidecars.start_many(PROCESSES)
    fakes.codex_tokens.set_mode("hold")  # park the one refresh until all 500 wait
    answers = await held_storm(running, fakes.codex_tokens, STORM)
    assert (answers, fakes.codex_tokens.calls) == ([200] * STORM, 1), sidecar_logs(running)
    issued = fakes.codex_tokens.exchanges[0]
    seen = {r.headers["authorization"] for r in fakes.codex.requests}
    assert seen == {f"Bearer {issued['issued_access']}"}
    assert read_profiles(sidecars.state_dir)[CODEX_ID]["refresh"] == issued["issued_refresh"]
