"""kill -9 at random points while a process refreshes (rotating refresh tokens), pastes and
records usage: after every kill the store parses, holds a credential the token server issued
(old or new, access and refresh of one grant), no lock blocks the next process, and the one
real data-loss window (token rotated, new token not yet on disk) is counted, not hidden.

``CRASH_TRIALS`` (default 400) and ``CRASH_SECONDS`` (default 60) bound the cost.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from sidecar.auth.refresh import Refresher
from sidecar.providers.grants import ProviderAuth
from sidecar.sources.openclaw import locks
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import OAuthCredential, parse_profiles, parse_state
from sidecar.sources.openclaw_json.store import JsonStore
from tests.e2e.refresh_support import oauth_profile, profiles_path, state_path, write_profiles
from tests.fakes.token_server import FakeTokenServer
from tests.reliability.crash_worker import CLIENT_ID, CODEX_ID, PASTED_ID
from tests.reliability.support import REPO, NotifyingRegistry, report, wait_idle

pytestmark = pytest.mark.reliability

TRIALS = int(os.environ.get("CRASH_TRIALS", "400"))
SECONDS = float(os.environ.get("CRASH_SECONDS", "60"))
MAX_DELAY_US = 60_000  # a few loop iterations: kills land in every phase of a write
PASTED = re.compile(r"sk-paste-\d+-\d+")


@dataclass
class Tally:
    trials: int = 0
    lost: int = 0  # refresh token on disk rotated away: the kill hit the window
    old_kept: int = 0  # the credential before the trial still on disk (kill before the write)
    locks_left: int = 0  # lock files left by the dead child, all reclaimed at once
    temp_files: set[str] = field(default_factory=set)
    pairs: dict[str, str] = field(default_factory=dict)  # refresh -> access of one grant
    on_disk: set[str] = field(default_factory=set)  # refresh tokens seen on disk


@pytest.fixture
def token_server() -> Iterator[FakeTokenServer]:
    """A fake token server (rotating, reuse-detecting) that says when it is idle."""
    with FakeTokenServer(registry=NotifyingRegistry()) as server:
        yield server


@pytest.fixture
def worker(tmp_path: Path, token_server: FakeTokenServer) -> Iterator[subprocess.Popen[str]]:
    """The fork server that runs and kills the children."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.crash_worker",
            str(tmp_path / "state"),
            token_server.openai_token_url,
            str(tmp_path / "children.log"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)
    proc.stdout.close()


def seed(state_dir: Path, server: FakeTokenServer, tally: Tally) -> None:
    """A fresh OAuth grant on disk (kept beside whatever else the store holds)."""
    grant = server.seed()
    tally.pairs[grant.refresh_token] = grant.access_token
    profiles = {}
    if profiles_path(state_dir).exists():
        profiles = parse_profiles(profiles_path(state_dir).read_bytes()).raw["profiles"]
    write_profiles(state_dir, {**profiles, CODEX_ID: oauth_profile(grant)})


def learn_pairs(server: FakeTokenServer, tally: Tally) -> None:
    for exchange in server.exchanges:
        if exchange.get("issued_refresh"):
            tally.pairs[exchange["issued_refresh"]] = exchange["issued_access"]


def check_locks(layout: Layout, tally: Tally) -> None:
    """A lock the dead child left is stale: one attempt takes it, at once."""
    for path, policy in (
        (layout.store_lock_path("main"), locks.STORE_LOCK),
        (layout.refresh_lock_path("openai-codex", CODEX_ID), locks.REFRESH_LOCK),
    ):
        if not path.exists():
            continue
        tally.locks_left += 1
        held = locks.try_acquire(path, stale_ms=policy.stale_ms, dir_mode=policy.dir_mode)
        assert held is not None, f"{path} blocks the next process: {path.read_bytes()!r}"
        locks.release(held)
        assert not path.exists()


def check_temp_files(state_dir: Path, tally: Tally) -> None:
    """Stray temp files are ignored by every reader; they must at least be private."""
    for path in state_dir.rglob(".*.tmp"):
        mode = path.stat().st_mode & 0o777
        expected = locks.LOCK_FILE_MODE if ".lock." in path.name else 0o600
        assert mode == expected, (path, oct(mode))
        tally.temp_files.add(path.name)


def check_store(state_dir: Path, server: FakeTokenServer, before: str, tally: Tally) -> None:
    """The store parses and holds one grant the server issued; a dead refresh token is the
    measured loss window, re-seeded so the trials go on."""
    doc = parse_profiles(profiles_path(state_dir).read_bytes())
    if state_path(state_dir).exists():
        parse_state(state_path(state_dir).read_bytes())
    pasted = doc.entries.get(PASTED_ID)
    assert pasted is None or PASTED.fullmatch(pasted.raw["key"]), pasted
    cred = doc.entries[CODEX_ID]
    assert isinstance(cred, OAuthCredential)
    learn_pairs(server, tally)
    refresh, access = cred.refresh.reveal(), cred.access.reveal()
    assert tally.pairs.get(refresh) == access, "access and refresh of different grants"
    status = server.registry.refresh_tokens[refresh].status
    assert status in ("active", "rotated"), status
    tally.old_kept += refresh == before
    assert refresh == before or refresh not in tally.on_disk, "an older credential came back"
    if status == "rotated":
        # Only the window: the token that replaced it was never used, so it is the answer of
        # the dead child's last token call (never an older file written over a newer one).
        replacement = server.registry.refresh_tokens[refresh].replaced_by
        assert replacement is not None
        assert server.registry.refresh_tokens[replacement].status == "active"
        assert replacement not in tally.on_disk
        tally.lost += 1
        seed(state_dir, server, tally)
    tally.on_disk.add(cred.refresh.reveal())


def next_process_refreshes(state_dir: Path, server: FakeTokenServer) -> float:
    """After all the kills, a new process refreshes at once; returns the seconds it took."""
    layout = Layout.from_env({}, state_dir=state_dir)
    store = JsonStore(layout, home=state_dir, check_interval_s=0)
    auth = ProviderAuth("openai-codex", "openai", server.openai_token_url, CLIENT_ID)

    async def run() -> OAuthCredential:
        async with httpx.AsyncClient(timeout=5) as client:
            refresher = Refresher(store, client, lambda _: auth, clock=now_ms)
            with anyio.fail_after(5):
                return await store.refresh("main", CODEX_ID, refresher._exchange, margin_ms=10**13)

    started = time.monotonic()
    cred = anyio.run(run)
    assert server.registry.refresh_tokens[cred.refresh.reveal()].status == "active"
    return time.monotonic() - started


def windows_of(log: Path, server: FakeTokenServer) -> tuple[list[int], list[int]]:
    """Per finished refresh: token answer → rename in the child (the sidecar's own share),
    and the token server's rotation → rename (the whole window), in microseconds."""
    rotated = {e["issued_refresh"]: e["time"] for e in server.exchanges if e.get("issued_refresh")}
    lines = log.read_text().splitlines() if log.exists() else []
    own, whole = [], []
    for line in lines:
        if line.startswith("window "):
            _, ns, wall_ns, refresh = line.split()
            own.append(int(ns) // 1000)
            whole.append(round((int(wall_ns) / 1e9 - rotated[refresh]) * 1e6))
    return own, whole


def spread(values: list[int]) -> dict[str, int]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered)),
        "p99": ordered[int(len(ordered) * 0.99)],
        "max": ordered[-1],
    }


def test_kill_9_during_refresh_and_writes_never_corrupts_or_blocks(
    tmp_path: Path, token_server: FakeTokenServer, worker: subprocess.Popen[str]
) -> None:
    """Hundreds of SIGKILLs at random points: the store parses, holds old or new, no lock
    blocks, and lost rotations are only the kills inside the token-to-disk window."""
    state_dir = tmp_path / "state"
    layout = Layout.from_env({}, state_dir=state_dir)
    tally = Tally()
    seed(state_dir, token_server, tally)
    rng = random.Random(8)
    assert worker.stdin is not None
    assert worker.stdout is not None
    deadline = time.monotonic() + SECONDS
    while tally.trials < TRIALS and time.monotonic() < deadline:
        before = parse_profiles(profiles_path(state_dir).read_bytes()).entries[CODEX_ID]
        assert isinstance(before, OAuthCredential)
        worker.stdin.write(f"trial {tally.trials} {rng.randrange(MAX_DELAY_US)}\n")
        worker.stdin.flush()
        assert worker.stdout.readline().startswith("killed ")
        assert wait_idle(token_server), "the token server is still answering a dead client"
        tally.trials += 1
        check_store(state_dir, token_server, before.refresh.reveal(), tally)
        check_locks(layout, tally)
        check_temp_files(state_dir, tally)
    took = next_process_refreshes(state_dir, token_server)
    own, whole = windows_of(tmp_path / "children.log", token_server)
    report(
        "crash",
        trials=tally.trials,
        token_calls=token_server.calls,
        refreshes_completed=len(own),
        lost_rotations=tally.lost,
        old_credential_kept=tally.old_kept,
        locks_left_and_reclaimed=tally.locks_left,
        stray_temp_files=len(tally.temp_files),
        reuse_detected=token_server.reused,
        answer_to_rename_us=spread(own),
        rotation_to_rename_us=spread(whole),
        next_refresh_s=round(took, 3),
    )
    assert tally.trials >= min(TRIALS, 300)
    assert took < 1.0
    # The sidecar's own share of the window: it writes at once after the token answer.
    assert spread(own)["p99"] < 100_000
