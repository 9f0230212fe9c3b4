"""A soak at steady load while access tokens expire every few seconds: every request succeeds,
and the sidecar's memory, open files and threads stay flat.

``SOAK_SECONDS`` sets the length: 600 when ``CI`` is set, else 60.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.refresh_support import (
    CODEX_ID,
    RESPONSES,
    RESPONSES_BODY,
    expect_oauth,
    oauth_profile,
    provider_tables,
    write_profiles,
)
from tests.e2e.sidecar import Sidecar, free_port, render_config, start_sidecar
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream
from tests.reliability.support import Usage, report, usage_of

pytestmark = pytest.mark.reliability

SECONDS = float(os.environ.get("SOAK_SECONDS", "600" if os.environ.get("CI") else "60"))
ACCESS_LIFETIME_S = 4  # with a 1 s margin: a refresh about every 3 s
CLIENTS = 4
SAMPLE_S = 2.0
WARM_UP = 0.25  # the first quarter of the run (at most 60 s) settles caches and pools
KEY = "sk-soak-" + "s" * 24
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def soaked(tmp_path: Path) -> Iterator[tuple[Sidecar, FakeTokenServer, FakeUpstream]]:
    """A sidecar with a short-lived Codex login and an API key, in front of the fakes."""
    with (
        FakeTokenServer(access_lifetime=ACCESS_LIFETIME_S) as tokens,
        FakeUpstream(tokens=tokens) as upstream,
    ):
        expect_oauth(upstream)
        upstream.expect("/oa", [KEY])
        grant = tokens.seed()
        key = {"type": "api_key", "provider": "openai", "key": KEY}
        write_profiles(tmp_path / "state", {CODEX_ID: oauth_profile(grant), "openai:main": key})
        providers = {
            **provider_tables(tokens, upstream),
            "openai": {"base_url": upstream.url + "/oa"},
        }
        refresh = {"margin_seconds": 1, "background_interval_seconds": 1}
        port = free_port()
        sidecar = start_sidecar(
            render_config([{"port": port}], providers, {"refresh": refresh}),
            [port],
            state_dir=tmp_path / "state",
            workdir=tmp_path,
        )
        try:
            yield sidecar, tokens, upstream
        finally:
            sidecar.stop()


def test_soak_with_expiring_tokens(soaked: tuple[Sidecar, FakeTokenServer, FakeUpstream]) -> None:
    """Steady load for SOAK_SECONDS with token expiries every few seconds: no error, RSS
    growth under 20 MB after warm-up, no growth in open files or threads."""
    sidecar, tokens, upstream = soaked
    stop = threading.Event()
    failures: list[str] = []
    counts = [0] * CLIENTS

    def client(n: int) -> None:
        path, body = (
            (RESPONSES, dict(RESPONSES_BODY))
            if n % 2 == 0
            else ("/openai/v1/chat/completions", CHAT)
        )
        with httpx.Client(base_url=sidecar.url(), timeout=30) as http:
            while not stop.is_set():
                response = http.post(path, json=body)
                response.read()
                counts[n] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for worker in workers:
        worker.start()
    samples: list[tuple[float, Usage]] = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < SECONDS and not failures:
        samples.append((elapsed, usage_of(sidecar.proc.pid)))
        upstream.recorder.clear()  # the fake's memory, not the sidecar's
        stop.wait(SAMPLE_S)  # the sampling period: no ordering depends on it
    stop.set()
    for worker in workers:
        worker.join(60)
    warm = [u for t, u in samples if t >= min(SECONDS * WARM_UP, 60)]
    base, last = warm[0], warm[-1]
    rss_growth_mb = (max(u.rss_kb for u in warm) - base.rss_kb) / 1024
    report(
        "soak",
        seconds=round(time.monotonic() - started),
        requests=sum(counts),
        refreshes=tokens.calls,
        errors=len(failures),
        samples=len(samples),
        rss_mb={"after_warm_up": round(base.rss_kb / 1024, 1), "end": round(last.rss_kb / 1024, 1)},
        rss_growth_mb=round(rss_growth_mb, 1),
        fds=[base.fds, max(u.fds for u in warm)],
        threads=[base.threads, max(u.threads for u in warm)],
    )
    assert failures == []
    assert tokens.calls >= SECONDS / (ACCESS_LIFETIME_S * 2)  # tokens really expired and rotated
    # The usage database's SQLite page cache fills as the file grows (bounded by its
    # cache_size); the rest stays flat (1.1 MB over 300 s with usage off).
    assert rss_growth_mb < 20
    assert max(u.fds for u in warm) <= base.fds + CLIENTS + 4
    assert max(u.threads for u in warm) <= base.threads + 4
