"""Markdown tables from bench/results/results.json, for docs/benchmarks.md:
``python -m bench.report [results.json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.scenario_failover import table as failover_table

RESULTS = Path(__file__).with_name("results") / "results.json"
JSON_HEAD = (
    "| target | req/s | p50 ms | p90 ms | p99 ms | added p50 ms | added p99 ms "
    "| req/s × ref_httpx | req/s × ref_aiohttp | CPU µs/req | CPU-efficiency × ref_httpx "
    "| CPU-efficiency × ref_aiohttp | errors |\n" + "|---" * 13 + "|"
)


def _r(s: dict[str, float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    lo, mid, hi = (fmt.format(s[k] * scale) for k in ("min", "median", "max"))
    return f"{mid} ({lo}–{hi})"


def _ratio(row: dict[str, Any], key: str, same: bool) -> str:
    return _r(row[key]) if key in row else ("1" if same else "–")


def _json_row(name: str, row: dict[str, Any]) -> str:
    ms = 1e-3
    added = ("–", "–")
    if "added_p50_us" in row and name != "direct":
        added = (_r(row["added_p50_us"], ms), _r(row["added_p99_us"], ms))
    cpu = _r(row["cpu_us_per_req"], fmt="{:.0f}") if "cpu_us_per_req" in row else "–"
    cells = [
        name,
        _r(row["rps"], fmt="{:.0f}"),
        _r(row["p50_us"], ms),
        _r(row["p90_us"], ms),
        _r(row["p99_us"], ms),
        *added,
        _ratio(row, "rps_vs_ref_httpx", name == "ref_httpx"),
        _ratio(row, "rps_vs_ref_aiohttp", name == "ref_aiohttp"),
        cpu,
        _ratio(row, "cpu_vs_ref_httpx", name == "ref_httpx"),
        _ratio(row, "cpu_vs_ref_aiohttp", name == "ref_aiohttp"),
        str(row["errors"]),
    ]
    return "| " + " | ".join(cells) + " |"


def json_tables(s1: dict[str, Any]) -> str:
    out = []
    for key, rows in s1["summary"].items():
        mode, connections = key.split("-")
        out.append(f"\n**{key}** (wrk, {connections} connections, {mode} loop)\n")
        out.append(JSON_HEAD)
        out += [_json_row(name, row) for name, row in rows.items()]
    return "\n".join(out)


def sse_table(s: dict[str, Any], extra: str = "") -> str:
    cols = ["ttfe_p50_ms", "transit_p50_ms", "transit_p99_ms", "total_p50_ms"]
    names = " | ".join("added " + c.replace("_ms", " ms") for c in cols)
    out = [f"| target | {names} | {extra} |", "|---|" + "---|" * (len(cols) + 1)]
    for name, row in s["summary"].items():
        cells = [_r(row[f"added_{c}"]) for c in cols]
        tail = _r(row[extra], fmt="{:.0f}") if extra and extra in row else ""
        out.append(f"| {name} | {' | '.join(cells)} | {tail} |")
    return "\n".join(out)


def idle_table(s4: dict[str, Any]) -> str:
    curves = s4["curves"]
    steps = [c["streams"] for c in next(iter(curves.values()))]
    head = " | ".join(f"RSS MB @ {n}" for n in steps)
    out = [f"| target | {head} | CPU % idle @ {steps[-1]} |", "|---|" + "---|" * (len(steps) + 1)]
    for name, curve in curves.items():
        rss = " | ".join(f"{c['rss_mb']:.0f}" for c in curve)
        out.append(f"| {name} | {rss} | {curve[-1]['cpu_pct']:.1f} |")
    return "\n".join(out)


def scale_table(s6: dict[str, Any]) -> str:
    paced, closed = s6["summary"]["paced-32"], s6["summary"]["closed-32"]
    out = [
        "| store | added p50 ms (paced) | added p99 ms (paced) | req/s closed-32 "
        "| CPU µs/req closed-32 | RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name in paced:
        if name == "direct":
            continue
        c = closed[name]
        out.append(
            f"| {name} | {_r(paced[name]['added_p50_us'], 1e-3)} "
            f"| {_r(paced[name]['added_p99_us'], 1e-3)} | {_r(c['rps'], fmt='{:.0f}')} "
            f"| {_r(c['cpu_us_per_req'], fmt='{:.0f}')} | {_r(c['rss_mb'], fmt='{:.0f}')} |"
        )
    return "\n".join(out)


def storm_table(s5: dict[str, Any]) -> str:
    endpoint = s5["endpoint_latency_ms"]
    out = [
        f"{s5['requests']} concurrent requests, token expired; the token endpoint answers in "
        f"{_r(endpoint, fmt='{:.1f}')} ms (its own latency, measured directly). *wait*: each "
        "request's wait for its credential as the sidecar logs it (`credential_ms`); *storm*: "
        "the requests' latency at the client; *calm*: the same storm right after, token valid; "
        "*added*: storm minus calm.\n",
        "| variant | token calls | reused refresh tokens | errors | wait p50 ms | wait p99 ms "
        "| wait p99 − endpoint ms | storm p50 ms | storm p99 ms "
        "| calm p99 ms | added p50 ms | added p99 ms | added p99 − endpoint ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in s5["variants"].items():
        over = {k: row["added_p99_ms"][k] - endpoint["median"] for k in ("min", "median", "max")}
        wait = row.get("wait_p99_ms")
        wait_over = (
            {k: wait[k] - endpoint["median"] for k in ("min", "median", "max")} if wait else None
        )
        cells = [
            _r(row["token_calls"], fmt="{:.0f}"),
            _r(row["reused_refresh_tokens"], fmt="{:.0f}"),
            _r(row["errors"], fmt="{:.0f}"),
            _r(row["wait_p50_ms"], fmt="{:.0f}") if wait else "–",
            _r(wait, fmt="{:.0f}") if wait else "–",
            _r(wait_over, fmt="{:.0f}") if wait_over else "–",
            _r(row["storm_p50_ms"], fmt="{:.0f}"),
            _r(row["storm_p99_ms"], fmt="{:.0f}"),
            _r(row["calm_p99_ms"], fmt="{:.0f}"),
            _r(row["added_p50_ms"], fmt="{:.0f}"),
            _r(row["added_p99_ms"], fmt="{:.0f}"),
            _r(over, fmt="{:.0f}"),
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def start_table(s7: dict[str, Any]) -> str:
    out = ["| what | wall median | wall min–max | CPU (user+sys) |", "|---|---|---|---|"]
    for key, s in s7["ready_s"].items():
        cpu = s7.get("ready_cpu_s", {}).get(key, {}).get("median", float("nan"))
        spread = f"{_ms(s['min'])}–{_ms(s['max'])}"
        out.append(f"| serve → /readyz 200, {key} | {_ms(s['median'])} | {spread} | {_ms(cpu)} |")
    for h in s7.get("hyperfine", {}).values():
        cpu = h.get("user_s", float("nan")) + h.get("system_s", float("nan"))
        what = f"hyperfine `{h['command'].split('/')[-1]}`"
        spread = f"{_ms(h['min_s'])}–{_ms(h['max_s'])}"
        out.append(f"| {what} | {_ms(h['median_s'])} | {spread} | {_ms(cpu)} |")
    return "\n".join(out)


def profile_table(p: dict[str, Any], top: int = 15) -> str:
    out = []
    for name, h in p.items():
        if not isinstance(h, dict) or "ours_inclusive" not in h:
            continue
        out.append(f"\n**{name}** ({h['samples']} samples of the GIL-holding thread)\n")
        out.append("| ours, inclusive | % | file, self | % |\n|---|---|---|---|")
        ours, files = h["ours_inclusive"][:top], h["self_by_file"][:top]
        for i in range(max(len(ours), len(files))):
            a = ours[i] if i < len(ours) else ("", "")
            b = files[i] if i < len(files) else ("", "")
            out.append(f"| {a[0]} | {a[1]} | {b[0]} | {b[1]} |")
    return "\n".join(out)


def main() -> int:
    results = json.loads((Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS).read_text())
    sc = results["scenarios"]
    parts = {
        "1": json_tables,
        "2": sse_table,
        "3": lambda s: sse_table(s, "cpu_ms_per_1k_events"),
        "4": idle_table,
        "5": storm_table,
        "6": scale_table,
        "7": start_table,
        "fleet": json_tables,
        "failover": failover_table,
        "profile": profile_table,
    }
    for key, table in parts.items():
        if key in sc:
            print(f"\n### scenario {key}: `{sc[key]['command']}` ({sc[key].get('finished')})\n")
            print(table(sc[key]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
