"""py-spy on a sidecar under 32-connection closed-loop load: a flame graph (SVG) and the
collapsed stacks, summarised into the functions of ours that take the most time."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench import targets
from bench.procs import LOAD_CPU, PYTHON, Children, pinned
from bench.scenario_json import Load, body_file, measure, start_upstream

OURS = ("sidecar/",)


def spy_bin() -> str | None:
    beside = Path(PYTHON).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _record(pid: int, out: Path, fmt: str, seconds: int) -> subprocess.Popen[bytes]:
    argv = [
        spy_bin() or "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "250",
        "--nonblocking",
        "--gil",
        "--format",
        fmt,
        "-o",
        str(out),
    ]
    return subprocess.Popen(
        pinned(LOAD_CPU, argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _under_load(run: targets.Running, body: Path, out: Path, fmt: str, seconds: int) -> None:
    assert run.child is not None
    load = threading.Thread(target=measure, args=(run, Load("closed", 32, seconds + 2), body))
    load.start()
    spy = _record(run.child.pid, out, fmt, seconds)
    _, err = spy.communicate()
    load.join()
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode()[-500:]}")


def hotspots(collapsed: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive share of samples per function of ours, and self share per file of any library."""
    inclusive: Counter[str] = Counter()
    self_by_module: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        seen = set()
        for frame in frames:
            if any(o in frame for o in OURS) and frame not in seen:
                seen.add(frame)
                inclusive[_short(frame)] += n
        self_by_module[_module(frames[-1])] += n
    return {
        "samples": total,
        "ours_inclusive": [(f, round(100 * n / total, 1)) for f, n in inclusive.most_common(top)],
        "self_by_file": [
            (f, round(100 * n / total, 1)) for f, n in self_by_module.most_common(top)
        ],
    }


def _short(frame: str) -> str:
    # py-spy frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path[path.find('sidecar/') :]})"


def _module(frame: str) -> str:
    _, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", "sidecar/"):
        if marker in path:
            return path[
                path.find(marker) + len(marker) if marker != "sidecar/" else path.find(marker) :
            ]
    return path or frame


def profile(group: Children, names: list[str], out_dir: Path, seconds: int) -> dict[str, Any]:
    if spy_bin() is None:
        return {"skipped": "py-spy not installed"}
    upstream = start_upstream(group)
    body = body_file(group.workdir)
    result: dict[str, Any] = {}
    for name in names:
        run = targets.start_all(group, [name], upstream)[name]
        measure(run, Load("closed", 32, 2), body)
        _under_load(run, body, out_dir / f"profile-{name}.svg", "flamegraph", seconds)
        raw = out_dir / f"profile-{name}.txt"
        _under_load(run, body, raw, "raw", seconds)
        result[name] = hotspots(raw)
        print(
            f"  profile {name}: "
            + "; ".join(f"{f} {p}%" for f, p in result[name]["ours_inclusive"][:6]),
            flush=True,
        )
        assert run.child is not None
        group.stop(run.child)
    return result
