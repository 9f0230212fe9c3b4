"""Scenario 5: the refresh storm. 500 concurrent requests arrive with the profile's OAuth token
already expired, spread over 1 or 4 sidecar processes sharing one file store, or over 4 fleet
hosts (each with its own state dir) sharing one Redis.

Measured per repeat: token-endpoint calls (the target is exactly 1); each request's wait for
its credential (the refresh included) as the sidecar logs it (``credential_ms``), which is
what the target bounds; and, from the client, every request's latency and the same storm's
latency with a valid token right after (``calm``). 500 requests queue for one CPU either way,
so ``added`` = storm minus calm is what the refresh added to the clients' latency.

The token endpoint is the rotating fake of the tests (it rejects a reused refresh token), run
as its own process on the load CPU and made to answer in ``delay_ms``; its own latency is
measured directly with a refresh of a separate grant.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench import oauth
from bench.procs import LOAD_CPU, PROXY_CPU, PYTHON, Child, Children, free_port, wait_port
from bench.scenario_json import start_upstream
from bench.stats import loadavg, percentile, spread
from sidecar.providers.catalog import BUILTIN_PROVIDERS

VARIANTS: dict[str, tuple[int, bool]] = {"file-1": (1, False), "file-4": (4, False)}
FLEET_VARIANTS: dict[str, tuple[int, bool]] = {"fleet-4": (4, True)}


def start_token_server(group: Children) -> str:
    port = free_port()
    argv = [PYTHON, "-m", "tests.fakes.token_server", "--port", str(port)]
    child = group.start(f"token-server-{port}", argv, cpu=LOAD_CPU)
    wait_port(port, proc=child.proc)
    return f"http://127.0.0.1:{port}"


def _fake(tokens: str, what: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if body is None:
        answer = httpx.get(f"{tokens}/__fake/{what}", timeout=30)
    else:
        answer = httpx.post(f"{tokens}/__fake/{what}", json=body, timeout=30)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def endpoint_latency_ms(tokens: str, times: int = 5) -> float:
    """The token endpoint's own latency: refreshes of a grant of its own, median of ``times``."""
    refresh = _fake(tokens, "seed", {})["refresh_token"]
    took = []
    with httpx.Client(timeout=30) as client:
        for _ in range(times):
            form = {"grant_type": "refresh_token", "refresh_token": refresh}
            form["client_id"] = BUILTIN_PROVIDERS["openai-codex"].client_id or ""
            t0 = time.perf_counter()
            answer = client.post(f"{tokens}/oauth/token", data=form)
            took.append((time.perf_counter() - t0) * 1000)
            refresh = answer.json()["refresh_token"]
    return sorted(took)[len(took) // 2]


async def _storm(urls: list[str], requests: int) -> tuple[list[float], int]:
    """Connections opened first (one per request, with /healthz), then every request at once."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def health(url: str) -> None:
            async with session.get(url + "/healthz") as r:
                await r.read()

        await asyncio.gather(*(health(urls[i % len(urls)]) for i in range(requests)))
        go = asyncio.Event()
        latencies: list[float] = []
        errors = 0

        async def one(url: str) -> None:
            nonlocal errors
            await go.wait()
            t0 = time.perf_counter()
            headers = {"content-type": "application/json"}
            async with session.post(url + oauth.PATH, data=oauth.BODY, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - t0) * 1000)

        tasks = [asyncio.create_task(one(urls[i % len(urls)])) for i in range(requests)]
        await asyncio.sleep(0.05)
        go.set()
        await asyncio.gather(*tasks)
    return latencies, errors


def _start_hosts(
    group: Children,
    count: int,
    upstream: str,
    tokens: str,
    fleet: oauth.FleetFiles | None,
    entry: dict[str, Any],
) -> tuple[list[str], list[Child]]:
    """``count`` sidecars: on one shared file store holding ``entry``, or (fleet) each on an
    empty state dir of its own."""
    shared = group.workdir / f"storm-state-{time.monotonic_ns()}"
    if fleet is None:
        oauth.write_store(shared, entry)
    urls, children = [], []
    for index in range(count):
        state = shared / f"host-{index}" if fleet else shared
        state.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = oauth.config(
            group.workdir / f"storm-{port}.toml",
            state_dir=state,
            port=port,
            upstream=upstream,
            token_url=f"{tokens}/oauth/token",
            fleet=fleet,
            log_level="info",  # the shipped default; each line carries credential_ms
        )
        argv = [PYTHON, "-m", "sidecar", "serve", "--config", str(conf)]
        children.append(group.start(f"storm-{port}", argv, cpu=PROXY_CPU))
        urls.append(f"http://127.0.0.1:{port}")
    for url, child in zip(urls, children, strict=True):
        wait_port(int(url.rsplit(":", 1)[1]), proc=child.proc)
    return urls, children


def one_storm(
    group: Children,
    *,
    hosts: int,
    fleet: oauth.FleetFiles | None,
    requests: int,
    upstream: str,
    tokens: str,
    delay_ms: int,
) -> dict[str, Any]:
    _fake(tokens, "reset", {})
    grant = _fake(tokens, "seed", {"access_expires_in": -60})
    expired = oauth.oauth_entry(grant["access_token"], grant["refresh_token"], -60)
    if fleet is not None:
        oauth.fleet_push(group, fleet, expired)
    urls, children = _start_hosts(group, hosts, upstream, tokens, fleet, expired)
    _fake(tokens, "mode", {"mode": "slow", "delay_ms": delay_ms})
    try:
        stormed, errors = asyncio.run(_storm(urls, requests))
        state = _fake(tokens, "state")
        between = time.time()
        # The same storm again with the token now valid: what requests cost without a refresh.
        calm, calm_errors = asyncio.run(_storm(urls, requests))
    finally:
        for child in children:
            group.stop(child)
    waits = [ms for child in children for at, ms in credential_waits(child.log) if at < between]
    out: dict[str, Any] = {
        "token_calls": state["calls"],
        "reused_refresh_tokens": state["reused"],
        "errors": errors + calm_errors,
        "logged": len(waits),
        "loadavg": loadavg(),
    }
    for q in (50, 90, 99, 100):
        storm_q, calm_q = percentile(stormed, q), percentile(calm, q)
        out[f"storm_p{q}_ms"] = storm_q
        out[f"calm_p{q}_ms"] = calm_q
        out[f"added_p{q}_ms"] = storm_q - calm_q
        out[f"wait_p{q}_ms"] = percentile(waits, q)
    return out


def credential_waits(log: Path) -> list[tuple[float, float]]:
    """(epoch seconds, credential_ms) of each proxied request in a sidecar's JSON log lines:
    how long it waited for its credential, the refresh included, as the sidecar measured it."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if '"request_completed"' not in line:
            continue
        event = json.loads(line)
        if event.get("credential_ms") is None:
            continue
        at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        out.append((at, float(event["credential_ms"])))
    return out


def scenario5(
    group: Children,
    repeats: int,
    requests: int = 500,
    delay_ms: int = 100,
    with_fleet: bool = True,
) -> dict[str, Any]:
    upstream = f"http://127.0.0.1:{start_upstream(group)}"
    tokens = start_token_server(group)
    fleet = oauth.start_redis(group)[1] if with_fleet else None
    variants = {**VARIANTS, **(FLEET_VARIANTS if with_fleet else {})}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    endpoint: list[float] = []
    for _ in range(repeats):
        for name, (hosts, use_fleet) in variants.items():
            sample = one_storm(
                group,
                hosts=hosts,
                fleet=fleet if use_fleet else None,
                requests=requests,
                upstream=upstream,
                tokens=tokens,
                delay_ms=delay_ms,
            )
            samples[name].append(sample)
            print(f"  {name}: {sample['token_calls']} call(s), p99 {sample['storm_p99_ms']:.0f} ms")
        endpoint.append(endpoint_latency_ms(tokens))  # still answering in delay_ms
    summary = {
        name: {
            key: spread(s[key] for s in runs)
            for key in runs[0]
            if isinstance(runs[0][key], (int, float))
        }
        for name, runs in samples.items()
    }
    return {
        "requests": requests,
        "endpoint_delay_ms": delay_ms,
        "endpoint_latency_ms": spread(endpoint),
        "variants": summary,
        "samples": samples,
    }
