"""Scenarios 1 and 6: 1 KB JSON POSTs through each target (closed loop and paced) and the store
scale sweep, all in front of one nginx upstream, targets measured alternately."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import nginx_conf, targets
from bench.procs import LOAD_CPU, Children, cpu_seconds, free_port, rss_bytes, wait_port
from bench.stats import loadavg, spread
from bench.wrk import run_wrk

PACED_RATE = 100.0  # req/s in total across the paced connections


@dataclass(frozen=True)
class Load:
    mode: str  # closed | paced
    connections: int
    seconds: float

    @property
    def key(self) -> str:
        return f"{self.mode}-{self.connections}"

    @property
    def think_ms(self) -> float:
        return 1000 * self.connections / PACED_RATE if self.mode == "paced" else 0.0


def start_upstream(group: Children) -> int:
    port = free_port()
    nginx_conf.start(
        group,
        "upstream.conf.template",
        "upstream",
        cpu=LOAD_CPU,
        port=port,
        body=nginx_conf.completion_body(),
    )
    wait_port(port)
    return port


def body_file(workdir: Path) -> Path:
    path = workdir / "request.json"
    path.write_text(nginx_conf.request_body())
    return path


def measure(
    run: targets.Running, load: Load, body: Path, paths: list[str] | None = None
) -> dict[str, Any]:
    pid = run.child.pid if run.child is not None else None
    before = cpu_seconds(pid) if pid else 0.0
    sample = run_wrk(
        run.url,
        connections=load.connections,
        seconds=load.seconds,
        body_file=body,
        think_ms=load.think_ms,
        paths=paths or [run.path()],
    )
    sample["loadavg"] = loadavg()
    if pid is not None:
        # CPU time per request holds under a busy machine where req/s and latency do not.
        sample["cpu_us_per_req"] = (cpu_seconds(pid) - before) * 1e6 / max(1, sample["requests"])
        sample["rss_mb"] = rss_bytes(pid) / 2**20
    return sample


def warm(running: dict[str, targets.Running], body: Path) -> None:
    for run in running.values():
        measure(run, Load("closed", 32, 1), body)


def summarize(samples: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per load and target: medians with min–max, latency added over ``direct`` (paired by
    repeat), and throughput ratios to the references (paired by repeat)."""
    out: dict[str, Any] = {}
    for key, by_target in samples.items():
        direct = by_target.get("direct", [])
        out[key] = {}
        for name, runs in by_target.items():
            row: dict[str, Any] = {
                m: spread(r[m] for r in runs) for m in ("rps", "p50_us", "p90_us", "p99_us")
            }
            row["errors"] = sum(r["errors"] for r in runs)
            if direct:
                for m in ("p50_us", "p90_us", "p99_us"):
                    row[f"added_{m}"] = spread(
                        r[m] - d[m] for r, d in zip(runs, direct, strict=True)
                    )
            for ref in ("ref_httpx", "ref_aiohttp", "nginx"):
                if ref in by_target and ref != name:
                    row[f"rps_vs_{ref}"] = spread(
                        r["rps"] / x["rps"] for r, x in zip(runs, by_target[ref], strict=True)
                    )
            if runs and "rss_mb" in runs[0]:
                row["rss_mb"] = spread(r["rss_mb"] for r in runs)
                row["cpu_us_per_req"] = spread(r["cpu_us_per_req"] for r in runs)
                for ref in ("ref_httpx", "ref_aiohttp", "nginx"):
                    if ref in by_target and ref != name:
                        row[f"cpu_vs_{ref}"] = spread(
                            x["cpu_us_per_req"] / r["cpu_us_per_req"]
                            for r, x in zip(runs, by_target[ref], strict=True)
                        )
            out[key][name] = row
    return out


def scenario1(group: Children, names: list[str], loads: list[Load], repeats: int) -> dict[str, Any]:
    upstream = start_upstream(group)
    body = body_file(group.workdir)
    running = targets.start_all(group, names, upstream)
    warm(running, body)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]  # rotate who goes first
        for load in loads:
            for name in order:
                sample = measure(running[name], load, body)
                samples.setdefault(load.key, {}).setdefault(name, []).append(sample)
                print(
                    f"  s1 rep{rep} {load.key:>10} {name:>22}: {sample['rps']:8.0f} req/s "
                    f"p50 {sample['p50_us'] / 1000:7.2f} ms p99 {sample['p99_us'] / 1000:7.2f} ms "
                    f"cpu/req {sample.get('cpu_us_per_req', 0):6.0f} us "
                    f"load {sample['loadavg']:.1f}",
                    flush=True,
                )
    for run in running.values():
        if run.child is not None:
            group.stop(run.child)
    return {"loads": [vars(x) for x in loads], "samples": samples, "summary": summarize(samples)}


def scenario6(group: Children, transport: str, repeats: int, seconds: float) -> dict[str, Any]:
    """Store scale: profiles per agent 10 → 1,000 and agents 1 → 100, paced (added p50) and
    closed at 32 connections (req/s), RSS after the load."""
    upstream = start_upstream(group)
    body = body_file(group.workdir)
    shapes = [("profiles", p, 1) for p in (10, 100, 1000)] + [
        ("agents", 10, a) for a in (1, 10, 100)
    ]
    table = {"direct": targets.TARGETS["direct"]}
    for kind, profiles, agents in shapes:
        name = f"{kind}-{profiles}x{agents}"
        table[name] = targets.Target(
            name,
            "/openai",
            targets.sidecar(transport, profiles=profiles, agents=agents),
            is_sidecar=True,
        )
    names = list(table)
    running = targets.start_all(group, names, upstream, table)
    agents_of = {
        n: [f"agent{i:03d}" if i else "main" for i in range(int(n.split("x")[1]))]
        for n in names
        if n != "direct"
    }
    warm(running, body)
    loads = [Load("paced", 32, seconds), Load("closed", 32, seconds)]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rep in range(repeats):
        for load in loads:
            for name in names:
                run = running[name]
                paths = [run.path(a) for a in agents_of[name]] if name != "direct" else None
                sample = measure(run, load, body, paths)
                samples.setdefault(load.key, {}).setdefault(name, []).append(sample)
                print(
                    f"  s6 rep{rep} {load.key:>10} {name:>22}: {sample['rps']:8.0f} req/s "
                    f"p50 {sample['p50_us'] / 1000:7.2f} ms",
                    flush=True,
                )
    for run in running.values():
        if run.child is not None:
            group.stop(run.child)
    time.sleep(0.2)
    return {"transport": transport, "samples": samples, "summary": summarize(samples)}
