"""Scenario failover (issue #19): what failing over costs the request that needs it.

An upstream answers every request after ``delay_ms`` (a provider's round trip) and refuses key
A with a 429 (``retry-after-ms: 1``, so A is tried again by every request). main holds A, then
B. One client on one kept-alive connection sends requests one after another, for each series:

- ``direct_ok`` / ``direct_429``: straight to the upstream with B / with A (one round trip);
- ``sidecar_ok``: through the sidecar pinned to B (a proxied success);
- ``sidecar_429``: pinned to A, so the 429 comes back (the failed request, without failover);
- ``failover``: unpinned: A's 429, then B's 200, inside the sidecar.

``added`` is what failing over adds to the failed request (failover - sidecar_429): the retry's
upstream round trip plus the sidecar's own work; ``own`` is that work alone (added minus one
direct round trip), the part the target "less than one upstream round trip" is about.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from bench import store
from bench.procs import LOAD_CPU, PROXY_CPU, PYTHON, Children, free_port, wait_port
from bench.stats import percentile, spread

KEY_A = "sk-bench-limited-" + "a" * 24
KEY_B = "sk-bench-backup-" + "b" * 24
BODY = json.dumps({"model": "gpt-bench", "messages": [{"role": "user", "content": "hi"}]})
PATH = "/v1/chat/completions"


def scenario_failover(
    group: Children, requests: int, delay_ms: float, repeats: int
) -> dict[str, Any]:
    upstream = free_port()
    argv = [PYTHON, "-m", "bench.limit_upstream", "--port", str(upstream)]
    argv += ["--limited", KEY_A, "--delay-ms", str(delay_ms)]
    group.start("limit-upstream", argv, cpu=LOAD_CPU)
    wait_port(upstream)
    sidecar = _start_sidecar(group, upstream)
    series = {
        "direct_ok": (upstream, PATH, KEY_B, 200),
        "direct_429": (upstream, PATH, KEY_A, 429),
        "sidecar_ok": (sidecar, "/openai@openai:b" + PATH, None, 200),
        "sidecar_429": (sidecar, "/openai@openai:a" + PATH, None, 429),
        "failover": (sidecar, "/openai" + PATH, None, 200),
    }
    runs = []
    for _ in range(repeats):  # the series one after another, again each repeat
        ms = {name: _measure(*args, requests) for name, args in series.items()}
        p50 = {name: percentile(v, 50) for name, v in ms.items()}
        added = p50["failover"] - p50["sidecar_429"]
        runs.append(
            {
                **{f"p50_{k}": v for k, v in p50.items()},
                **{f"p99_{k}": percentile(v, 99) for k, v in ms.items()},
                "added": added,
                "own": added - p50["direct_ok"],
                "client_retry": p50["sidecar_429"] + p50["sidecar_ok"],
            }
        )
    summary = {key: spread(run[key] for run in runs) for key in runs[0]}
    return {"delay_ms": delay_ms, "requests": requests, "repeats": repeats, "summary": summary}


def _start_sidecar(group: Children, upstream: int) -> int:
    port = free_port()
    state = group.workdir / "failover-state"
    agent = state / "agents" / "main" / "agent"
    agent.mkdir(parents=True, exist_ok=True)
    profiles = {
        "openai:a": {"type": "api_key", "provider": "openai", "key": KEY_A},
        "openai:b": {"type": "api_key", "provider": "openai", "key": KEY_B},
    }
    (agent / "auth-profiles.json").write_text(json.dumps({"version": 1, "profiles": profiles}))
    order = {"version": 1, "order": {"openai": ["openai:a", "openai:b"]}}
    (agent / "auth-state.json").write_text(json.dumps(order))
    config = store.write_config(
        group.workdir / "failover.toml",
        state_dir=state,
        port=port,
        upstream=f"http://127.0.0.1:{upstream}",
    )
    argv = [PYTHON, "-m", "sidecar", "serve", "--config", str(config)]
    group.start("sidecar-failover", argv, cpu=PROXY_CPU)
    wait_port(port)
    return port


def _measure(port: int, path: str, key: str | None, status: int, requests: int) -> list[float]:
    """Milliseconds per request (after 10 to warm up), each answer checked."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key or 'unused'}"}
    out = []
    try:
        for i in range(requests + 10):
            t0 = time.perf_counter()
            conn.request("POST", path, BODY, headers)
            response = conn.getresponse()
            response.read()
            took = (time.perf_counter() - t0) * 1000
            if response.status != status:
                raise RuntimeError(f"{path}: {response.status}, expected {status}")
            if i >= 10:
                out.append(took)
    finally:
        conn.close()
    return out


def table(s: dict[str, Any]) -> str:
    """The benchmarks.md rows: medians of the repeats, min–max in brackets (milliseconds)."""
    sm = s["summary"]

    def cell(key: str) -> str:
        v = sm[key]
        return f"{v['median']:.2f} ({v['min']:.2f}–{v['max']:.2f})"

    names = [k.removeprefix("p50_") for k in sm if k.startswith("p50_")]
    rows = ["| series | p50 ms | p99 ms |", "|---|---|---|"]
    rows += [f"| {n} | {cell('p50_' + n)} | {cell('p99_' + n)} |" for n in names]
    rows.append(
        f"\nupstream round trip {cell('p50_direct_ok')} ms; failing over adds {cell('added')} ms "
        f"to the failed request, of which the sidecar's own work is {cell('own')} ms; a client "
        f"retrying itself pays {cell('client_retry')} ms ({s['requests']} requests a series, "
        f"{s['repeats']} repeats)"
    )
    return "\n".join(rows)
