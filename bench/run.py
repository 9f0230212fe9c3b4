"""Run the benchmarks: ``python -m bench.run [--scenarios 1,2,3,4,5,6,7,fleet,failover,profile]
[--quick]``.

Starts everything itself on loopback (nginx and SSE upstreams and the load generator on CPU 0,
each target alone on CPU 1), measures targets alternately, and writes bench/results/results.json
(merged with earlier scenarios' results) and PNG plots. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import plots, procs, stats, targets
from bench.profile import profile
from bench.scenario_failover import scenario_failover
from bench.scenario_json import Load, scenario1, scenario6
from bench.scenario_sse import scenario2, scenario3, scenario4
from bench.scenario_start import scenario7
from bench.scenario_storm import scenario5

RESULTS = Path(__file__).with_name("results")
ALL = ["1", "2", "3", "4", "5", "6", "7", "fleet", "failover", "profile"]


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenarios", default=",".join(ALL))
    ap.add_argument("--targets", default=",".join(targets.DEFAULT))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5, help="per closed-loop wrk run")
    ap.add_argument("--paced-seconds", type=float, default=8)
    ap.add_argument("--connections", default="1,32,256")
    ap.add_argument("--paced-connections", default="1,32")
    ap.add_argument("--sse-streams", type=int, default=200)
    ap.add_argument("--idle-streams", type=int, default=1000)
    ap.add_argument("--storm-requests", type=int, default=500)
    ap.add_argument("--storm-delay-ms", type=int, default=100, help="the token endpoint's latency")
    ap.add_argument("--no-fleet", action="store_true", help="scenario 5 without the Redis variant")
    ap.add_argument("--failover-requests", type=int, default=200, help="per failover series")
    ap.add_argument(
        "--failover-delay-ms", type=float, default=20, help="the failover upstream's round trip"
    )
    ap.add_argument("--scale-transport", default="aiohttp", choices=["httpx", "aiohttp"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true", help="1 repeat, 1 s runs, small counts (smoke)")
    return ap.parse_args(argv)


def _quick(args: argparse.Namespace) -> None:
    args.repeats, args.seconds, args.paced_seconds = 1, 1, 1
    args.connections, args.paced_connections = "4", "4"
    args.sse_streams, args.idle_streams = 5, 8
    args.storm_requests = 20
    args.failover_requests = 10


def run_scenarios(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    names = args.targets.split(",")
    wanted = args.scenarios.split(",")
    out: dict[str, Any] = {}
    loads = [Load("closed", int(c), args.seconds) for c in args.connections.split(",")]
    loads += [
        Load("paced", int(c), args.paced_seconds) for c in args.paced_connections.split(",") if c
    ]
    steps = {
        "1": lambda g: scenario1(g, names, loads, args.repeats),
        "2": lambda g: scenario2(g, names, args.repeats, args.sse_streams, 10, 2.0),
        "3": lambda g: scenario3(
            g, names, args.repeats, args.sse_streams, 20 if args.quick else 100, 10.0
        ),
        "4": lambda g: scenario4(g, names, args.idle_streams, 1 if args.quick else 5),
        "5": lambda g: scenario5(
            g, args.repeats, args.storm_requests, args.storm_delay_ms, not args.no_fleet
        ),
        "fleet": lambda g: scenario1(
            g,
            targets.FLEET,
            [x for x in loads if x.connections > 1 or x.mode == "paced"],
            args.repeats,
        ),
        "6": lambda g: scenario6(g, args.scale_transport, args.repeats, args.paced_seconds),
        "7": lambda g: scenario7(g.workdir, 3 if args.quick else 10),
        "failover": lambda g: scenario_failover(
            g, args.failover_requests, args.failover_delay_ms, args.repeats
        ),
        "profile": lambda g: profile(
            g, [n for n in names if n.startswith("sidecar")][:4], args.out, 2 if args.quick else 10
        ),
    }
    for key in wanted:
        print(f"scenario {key}", flush=True)
        t0 = time.monotonic()
        with procs.children(workdir / f"s{key}") as group:
            group.workdir.mkdir(parents=True, exist_ok=True)
            out[key] = steps[key](group)
        out[key]["elapsed_s"] = time.monotonic() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.quick:
        _quick(args)
    procs.raise_fd_limit()
    # SIGTERM unwinds like Ctrl-C, so that every child started so far is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmp:
        fresh = run_scenarios(args, Path(tmp))
    for key, value in fresh.items():
        value["command"] = "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv)
        value["machine"] = stats.machine()
        value["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        results["scenarios"][key] = value
    path.write_text(json.dumps(results, indent=1))
    plots.plot_all(results, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
