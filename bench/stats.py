"""Medians with min–max over repeats, and the machine a run was made on."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable
from importlib import metadata

from bench.refcommon import fastest


def spread(values: Iterable[float]) -> dict[str, float]:
    xs = sorted(values)
    if not xs:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)}


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def loadavg() -> float:
    return os.getloadavg()[0]


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


PACKAGES = (
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "starlette",
    "uvicorn",
    "h11",
    "httptools",
    "uvloop",
    "anyio",
)


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, object]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": _version(["wrk", "-v"]),
        "nginx": _version(["nginx", "-v"]),
        **{name: _package(name) for name in PACKAGES},
        "references_run_on": "uvicorn http={} loop={}".format(*fastest()),
        "loadavg_at_start": os.getloadavg(),
    }
