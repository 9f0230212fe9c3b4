"""One wrk run with bench/lua/post.lua, pinned to the load CPU, parsed into a dict."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench.procs import LOAD_CPU, pinned

SCRIPT = Path(__file__).with_name("lua") / "post.lua"


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    body_file: Path,
    think_ms: float = 0.0,
    paths: list[str] | None = None,
) -> dict[str, float]:
    """``url`` is the origin (``http://127.0.0.1:P``); ``paths`` go to BENCH_PATHS."""
    argv = pinned(
        LOAD_CPU,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            url,
        ],
    )
    env = {
        **os.environ,
        "BENCH_THINK_MS": str(think_ms),
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_PATHS": ",".join(paths or ["/v1/chat/completions"]),
    }
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    data: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["errors"] = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return data
