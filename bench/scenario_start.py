"""Scenario 7: cold start (``serve`` spawned → ``/readyz`` answers 200) and the ``status``
command's run time with hyperfine."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import store
from bench.procs import PROXY_CPU, PYTHON, REPO, cpu_seconds, free_port, pinned
from bench.stats import spread

SIDECAR = str(Path(REPO) / ".venv" / "bin" / "openclaw-sidecar")


def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def time_to_ready(workdir: Path, profiles: int) -> tuple[float, float]:
    """Wall time from spawn to the first 200 from /readyz, and the CPU time the process used."""
    port = free_port()
    state = workdir / f"cold-state-{profiles}"
    if not state.exists():
        store.write_state(state, profiles=profiles)
    config = store.write_config(
        workdir / f"cold-{port}.toml", state_dir=state, port=port, upstream="http://127.0.0.1:9"
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        pinned(PROXY_CPU, [sidecar_bin(), "serve", "--config", str(config)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not _ready(port):
            if proc.poll() is not None or time.perf_counter() - t0 > 30:
                raise RuntimeError("serve did not become ready")
            time.sleep(0.002)
        return time.perf_counter() - t0, cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def sidecar_bin() -> str:
    return SIDECAR if Path(SIDECAR).exists() else (shutil.which("openclaw-sidecar") or SIDECAR)


def hyperfine(workdir: Path, name: str, command: str, runs: int) -> dict[str, Any]:
    out = workdir / f"hyperfine-{name}.json"
    subprocess.run(
        [
            "hyperfine",
            "--warmup",
            "2",
            "--runs",
            str(runs),
            "--export-json",
            str(out),
            "--style",
            "basic",
            command,
        ],
        check=True,
        capture_output=True,
    )
    res = json.loads(out.read_text())["results"][0]
    return {
        "command": command,
        "mean_s": res["mean"],
        "stddev_s": res["stddev"],
        "median_s": res["median"],
        "min_s": res["min"],
        "max_s": res["max"],
        "user_s": res["user"],
        "system_s": res["system"],
    }


def scenario7(workdir: Path, repeats: int) -> dict[str, Any]:
    result: dict[str, Any] = {"ready_s": {}, "hyperfine": {}}
    for profiles in (1, 1000):
        pairs = [time_to_ready(workdir, profiles) for _ in range(repeats)]
        result["ready_s"][f"profiles-{profiles}"] = spread(p[0] for p in pairs)
        result.setdefault("ready_cpu_s", {})[f"profiles-{profiles}"] = spread(p[1] for p in pairs)
        print(
            f"  s7 ready ({profiles} profiles): "
            f"median {spread(p[0] for p in pairs)['median'] * 1000:.0f} ms "
            f"cpu {spread(p[1] for p in pairs)['median'] * 1000:.0f} ms",
            flush=True,
        )
    state = workdir / "cold-state-1000"
    if shutil.which("hyperfine"):
        for name, cmd in (
            ("help", f"{sidecar_bin()} --help"),
            ("status", f"{sidecar_bin()} status --state-dir {workdir / 'cold-state-1'}"),
            ("status-1000", f"{sidecar_bin()} status --state-dir {state}"),
            ("python", f"{PYTHON} -c pass"),
        ):
            result["hyperfine"][name] = hyperfine(workdir, name, cmd, max(10, repeats))
            print(
                f"  s7 hyperfine {name}: {result['hyperfine'][name]['mean_s'] * 1000:.0f} ms",
                flush=True,
            )
    return result
