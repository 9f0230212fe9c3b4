"""Scenarios 2, 3 and 4: SSE through each target in front of bench/sse_upstream.py — sequential
streams (time to first event, per-event transit), many concurrent streams (transit p99, proxy CPU
per 1,000 events), and many idle streams (RSS and CPU against open streams)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import targets
from bench.procs import LOAD_CPU, PYTHON, Children, cpu_seconds, free_port, rss_bytes, wait_port
from bench.sse_client import StreamTiming, concurrent, one_stream, sequential
from bench.stats import percentile, spread


def start_sse_upstream(group: Children) -> int:
    port = free_port()
    child = group.start(
        "sse-upstream", [PYTHON, "-m", "bench.sse_upstream", "--port", str(port)], cpu=LOAD_CPU
    )
    wait_port(port, proc=child.proc)
    return port


def _timing_row(timings: list[StreamTiming]) -> dict[str, float]:
    ttfe = [t.ttfe_ms for t in timings]
    transit = [x for t in timings for x in t.transit_ms]
    total = [t.total_ms for t in timings]
    return {
        "ttfe_p50_ms": percentile(ttfe, 50),
        "ttfe_p99_ms": percentile(ttfe, 99),
        "transit_p50_ms": percentile(transit, 50),
        "transit_p99_ms": percentile(transit, 99),
        "total_p50_ms": percentile(total, 50),
        "events": float(sum(t.events for t in timings)),
    }


def _added(runs: list[dict[str, float]], direct: list[dict[str, float]]) -> dict[str, Any]:
    metrics = [m for m in runs[0] if m.endswith("_ms")]
    row: dict[str, Any] = {m: spread(r[m] for r in runs) for m in metrics}
    for m in metrics:
        row[f"added_{m}"] = spread(r[m] - d[m] for r, d in zip(runs, direct, strict=True))
    for extra in ("cpu_ms_per_1k_events",):
        if extra in runs[0]:
            row[extra] = spread(r[extra] for r in runs)
    return row


def scenario2(
    group: Children, names: list[str], repeats: int, streams: int, events: int, interval_ms: float
) -> dict[str, Any]:
    upstream = start_sse_upstream(group)
    running = targets.start_all(group, names, upstream)
    samples: dict[str, list[dict[str, float]]] = {}
    for run in running.values():  # warm: connections, imports, caches
        asyncio.run(sequential(run.port, run.path(), streams=5, events=2, interval_ms=1))
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            run = running[name]
            timings = asyncio.run(
                sequential(
                    run.port, run.path(), streams=streams, events=events, interval_ms=interval_ms
                )
            )
            row = _timing_row(timings)
            samples.setdefault(name, []).append(row)
            print(
                f"  s2 rep{rep} {name:>22}: ttfe p50 {row['ttfe_p50_ms']:.2f} ms "
                f"transit p99 {row['transit_p99_ms']:.2f} ms",
                flush=True,
            )
    for run in running.values():
        if run.child is not None:
            group.stop(run.child)
    summary = {name: _added(runs, samples["direct"]) for name, runs in samples.items()}
    return {
        "streams": streams,
        "events": events,
        "interval_ms": interval_ms,
        "samples": samples,
        "summary": summary,
    }


def scenario3(
    group: Children, names: list[str], repeats: int, streams: int, events: int, interval_ms: float
) -> dict[str, Any]:
    upstream = start_sse_upstream(group)
    running = targets.start_all(group, names, upstream)
    samples: dict[str, list[dict[str, float]]] = {}
    for run in running.values():
        asyncio.run(concurrent(run.port, run.path(), streams=streams, events=2, interval_ms=1))
    for rep in range(repeats):
        for name in names:
            run = running[name]
            before = cpu_seconds(run.child.pid) if run.child else 0.0
            timings = asyncio.run(
                concurrent(
                    run.port, run.path(), streams=streams, events=events, interval_ms=interval_ms
                )
            )
            row = _timing_row(timings)
            if run.child is not None:
                row["cpu_ms_per_1k_events"] = (
                    (cpu_seconds(run.child.pid) - before) * 1000 / (row["events"] / 1000)
                )
            samples.setdefault(name, []).append(row)
            print(
                f"  s3 rep{rep} {name:>22}: transit p50 {row['transit_p50_ms']:.2f} "
                f"p99 {row['transit_p99_ms']:.2f} ms "
                f"cpu/1k ev {row.get('cpu_ms_per_1k_events', 0):.1f} ms",
                flush=True,
            )
    for run in running.values():
        if run.child is not None:
            group.stop(run.child)
    summary = {name: _added(runs, samples["direct"]) for name, runs in samples.items()}
    return {
        "streams": streams,
        "events": events,
        "interval_ms": interval_ms,
        "samples": samples,
        "summary": summary,
    }


async def _idle_steps(
    run: targets.Running, steps: list[int], hold_s: float, settle_s: float
) -> list[dict[str, float]]:
    assert run.child is not None
    tasks: list[asyncio.Task[StreamTiming]] = []
    out = [{"streams": 0, "rss_mb": rss_bytes(run.child.pid) / 2**20, "cpu_pct": 0.0}]
    for step in steps:
        opened = []
        while len(tasks) < step:
            ev = asyncio.Event()
            opened.append(ev)
            tasks.append(
                asyncio.create_task(
                    one_stream(
                        run.port, run.path(), events=2, interval_ms=1, hold_s=hold_s, opened=ev
                    )
                )
            )
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 60)
        before, t0 = cpu_seconds(run.child.pid), time.monotonic()
        await asyncio.sleep(settle_s)
        cpu_pct = 100 * (cpu_seconds(run.child.pid) - before) / (time.monotonic() - t0)
        out.append(
            {"streams": step, "rss_mb": rss_bytes(run.child.pid) / 2**20, "cpu_pct": cpu_pct}
        )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return out


def scenario4(group: Children, names: list[str], streams: int, settle_s: float) -> dict[str, Any]:
    upstream = start_sse_upstream(group)
    steps = [streams * k // 4 for k in (1, 2, 3, 4)]
    result: dict[str, Any] = {}
    for name in names:
        if name == "direct":
            continue
        run = targets.start_all(group, [name], upstream)[name]
        asyncio.run(sequential(run.port, run.path(), streams=3, events=2, interval_ms=1))
        curve = asyncio.run(_idle_steps(run, steps, hold_s=3600, settle_s=settle_s))
        result[name] = curve
        print(
            f"  s4 {name:>22}: "
            + ", ".join(f"{c['streams']}: {c['rss_mb']:.0f} MB" for c in curve),
            flush=True,
        )
        assert run.child is not None
        group.stop(run.child)
    return {"streams": streams, "curves": result}
