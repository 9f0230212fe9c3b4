"""A seconds-long smoke of the benchmark harness (bench/): it starts its processes, measures,
and writes results and plots. Never a timed assertion: only that the plumbing works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.sse_client import _Chunked
from bench.stats import spread

REPO = Path(__file__).resolve().parents[2]


def _run(out: Path, *args: str) -> dict[str, object]:
    """Runs ``python -m bench.run --quick`` into ``out`` and returns its results JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out), *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def test_spread_is_median_with_min_and_max() -> None:
    """Repeats are reported as median with min–max."""
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_chunked_decoder_yields_whole_events_across_chunk_splits() -> None:
    """An SSE event split across chunks (as a proxy may re-chunk it) is decoded whole."""
    decoder = _Chunked()
    assert decoder.feed(b"5\r\ndata:\r\n") == []
    assert decoder.feed(b"4\r\n 1\n\n\r\n0\r\n\r\n") == [b"data: 1"]
    assert decoder.finished


@pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("wrk") is None, reason="needs nginx and wrk"
)
def test_json_scenario_runs_for_direct_and_sidecar(tmp_path: Path) -> None:
    """Scenario 1 at 1 s and 4 connections measures direct and the sidecar without errors."""
    pytest.importorskip("matplotlib")
    results = _run(tmp_path, "--scenarios", "1", "--targets", "direct,sidecar")
    summary = results["scenarios"]["1"]["summary"]  # type: ignore[index]
    assert set(summary) == {"closed-4", "paced-4"}
    assert set(summary["closed-4"]) == {"direct", "sidecar"}
    assert summary["closed-4"]["sidecar"]["errors"] == 0
    assert (tmp_path / "json-latency.png").exists()


def test_sse_scenario_runs_for_direct_and_sidecar(tmp_path: Path) -> None:
    """Scenario 2 (a few sequential streams) times every event through the sidecar."""
    pytest.importorskip("matplotlib")
    results = _run(tmp_path, "--scenarios", "2", "--targets", "direct,sidecar")
    samples = results["scenarios"]["2"]["samples"]  # type: ignore[index]
    assert [run["events"] for run in samples["sidecar"]] == [50.0]
    assert (tmp_path / "sse-added.png").exists()


@pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("redis-server") is None,
    reason="needs nginx and redis-server",
)
def test_storm_scenario_refreshes_once_per_variant_and_reads_the_waits(tmp_path: Path) -> None:
    """Scenario 5 with 20 requests: one token call for 1 and 4 processes and 4 fleet hosts, and
    every request's credential_ms read back from the sidecars' log lines."""
    pytest.importorskip("matplotlib")
    results = _run(tmp_path, "--scenarios", "5")
    s5 = results["scenarios"]["5"]  # type: ignore[index]
    variants = s5["variants"]
    assert set(variants) == {"file-1", "file-4", "fleet-4"}
    for name, row in variants.items():
        assert (name, row["token_calls"]["median"], row["errors"]["median"]) == (name, 1, 0)
        assert (name, row["logged"]["median"]) == (name, 20)
        assert row["wait_p99_ms"]["median"] >= s5["endpoint_latency_ms"]["median"] / 2


def test_failover_scenario_measures_every_series(tmp_path: Path) -> None:
    """The failover scenario's five series all answer as expected (the 429s and the 200s) and
    its summary names what failing over adds."""
    pytest.importorskip("matplotlib")
    results = _run(tmp_path, "--scenarios", "failover", "--failover-delay-ms", "5")
    summary = results["scenarios"]["failover"]["summary"]  # type: ignore[index]
    assert {"p50_failover", "p50_sidecar_429", "added", "own", "client_retry"} <= set(summary)
    assert summary["p50_failover"]["median"] > summary["p50_sidecar_429"]["median"]
