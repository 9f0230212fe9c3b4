# ruff: noqa: E501  (tables of stores, configs and failure sequences, one case a line)
"""The sidecar's failover rules against OpenClaw 2026.9.6's own functions, loaded from its
dist/ and run offline: ``classifyFailoverSignal`` (no plugin registry) reads every case of
tests/auth/test_failover.py's table as ``sidecar.auth.failover.classify`` does;
``computeNextProfileUsageStats``, ``resetAuthProfileFailureState``, ``isProfileInCooldown``
agree with ``sidecar.sources.openclaw.usage`` to the byte; ``resolveAuthProfileOrder`` with
``sidecar.sources.openclaw.order``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.auth import failover
from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.config import parse_openclaw_config
from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import parse_profiles, parse_state, parse_usage
from sidecar.sources.openclaw.order import ordered_profiles
from sidecar.sources.openclaw.usage import Failure
from sidecar.sources.openclaw.views import StoreSnapshot, merge_view
from tests.auth.test_failover import CASES
from tests.interop.oc_functions import js_json, run_functions
from tests.interop.openclaw import OpenClaw, installed

VERSION = "2026.9.6"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]

# argv: <openclaw package dir> <cases JSON [[status, message, provider], ...]>
# stdout: a JSON list of reasons (null where OpenClaw finds none).
CLASSIFY = r"""
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const [pkg, cases] = process.argv.slice(2);
const dist = path.join(pkg, "dist");
const region = "//#region src/agents/failover/classify.ts";
const file = fs.readdirSync(dist).find((name) => name.endsWith(".mjs") &&
  fs.readFileSync(path.join(dist, name), "utf8").includes(region));
const source = fs.readFileSync(path.join(dist, file), "utf8");
const alias = /classifyFailoverSignal as (\w+)/.exec(source)[1];
const classify = (await import(pathToFileURL(path.join(dist, file)).href))[alias];
const reasons = JSON.parse(cases).map(([status, message, provider]) => {
  const found = classify({ status, message, provider });
  return found ? (found.kind === "reason" ? found.reason : found.kind) : null;
});
console.log(JSON.stringify(reasons));
"""


def test_the_port_reads_every_case_as_openclaw_does(tmp_path: Path) -> None:
    """Same status, body and provider in; the same reason out, case for case."""
    oc = OpenClaw(VERSION, tmp_path / "oc")
    script = tmp_path / "classify.mjs"
    script.write_text(CLASSIFY)
    cases = [[status, body, provider] for status, body, provider, _ in CASES]
    done = subprocess.run(
        [*oc.node_command(str(script), str(oc.package_dir), json.dumps(cases))],
        capture_output=True,
        text=True,
        env=oc.env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours = [failover.classify(status, body, provider) for status, body, provider, _ in CASES]
    assert list(zip(cases, ours, strict=True)) == list(zip(cases, theirs, strict=True))


# --- the cooldown arithmetic and the order, against OpenClaw's own functions ---------------------

T0 = 1_767_225_600_000
SEC, MIN, DAY = 1_000, 60_000, 86_400_000
# (start, [(at, reason, model)]): each sequence is run through computeNextProfileUsageStats and
# through usage.after_failure; the JSON must be the same, key order included.
SEQUENCES: list[tuple[dict[str, Any], list[tuple[int, str, str | None]]]] = [
    ({}, [(T0 + i * (DAY + SEC), "rate_limit", None) for i in range(14)]),
    ({}, [(T0, "rate_limit", None), (T0 + 10 * SEC, "rate_limit", None)]),
    ({}, [(T0, "billing", None), (T0 + MIN, "timeout", None), (T0 + 2 * MIN, "timeout", None)]),
    ({}, [(T0, "billing", None), (T0 + 11 * MIN, "billing", None), (T0 + 12 * MIN, "billing", None)]),
    ({}, [(T0 + i * 5 * MIN, "auth_permanent", None) for i in range(5)]),
    ({}, [(T0, "rate_limit", "gpt-5"), (T0 + SEC, "rate_limit", "o3"), (T0 + 2 * SEC, "timeout", None)]),
    ({}, [(T0, "timeout", "gpt-5"), (T0 + SEC, "timeout", "gpt-5"), (T0 + MIN, "auth", "gpt-5")]),
    ({}, [(T0, "rate_limit", None), (T0 + 31 * SEC, "timeout", None), (T0 + 2 * DAY, "billing", None)]),
    (
        {"lastUsed": T0 - DAY, "cooldownClassification": "wham_token_expired", "cooldownReason": "auth",
         "cooldownUntil": T0 + MIN, "errorCount": 1, "failureCounts": {"auth": 1}, "lastFailureAt": T0 - SEC},
        [(T0, "rate_limit", "gpt-5")],
    ),
    (
        {"blockedUntil": T0 + DAY, "blockedReason": "subscription_limit", "blockedSource": "wham",
         "failureCounts": {"rate_limit": 3}, "lastFailureAt": T0 - MIN},
        [(T0, "rate_limit", None), (T0 + SEC, "timeout", None)],
    ),
]  # fmt: skip
FULL: dict[str, Any] = {
    "lastUsed": T0 - DAY,
    "blockedUntil": T0 + DAY,
    "blockedReason": "subscription_limit",
    "blockedSource": "wham",
    "blockedModel": "gpt-5",
    "blockedScope": "model",
    "cooldownUntil": T0 + MIN,
    "cooldownReason": "rate_limit",
    "cooldownClassification": "wham_token_expired",
    "cooldownModel": "gpt-5",
    "disabledUntil": T0 + DAY,
    "disabledReason": "billing",
    "errorCount": 3,
    "failureCounts": {"rate_limit": 2, "billing": 1},
    "lastFailureAt": T0 - MIN,
    "lastProbeAt": T0 - DAY,
}
WINDOWS: list[dict[str, Any]] = [
    {"cooldownUntil": T0 + MIN, "cooldownReason": "rate_limit", "cooldownModel": "gpt-5"},
    {"cooldownUntil": T0 + MIN, "cooldownReason": "auth", "cooldownModel": "gpt-5"},
    {"cooldownUntil": T0 + MIN, "cooldownReason": "rate_limit", "cooldownModel": "gpt-5",
     "disabledUntil": T0 + 2 * MIN},
    {"blockedUntil": T0 + MIN, "blockedScope": "model", "blockedModel": "gpt-5"},
    {"blockedUntil": T0 + MIN, "blockedScope": "model", "blockedModel": "gpt-5",
     "cooldownUntil": T0 + 2 * MIN, "cooldownReason": "timeout", "cooldownModel": "o3"},
    {"cooldownUntil": T0 - SEC, "disabledUntil": T0 + SEC},
    {"lastUsed": T0},
]  # fmt: skip


@pytest.fixture(scope="module")
def oc(tmp_path_factory: pytest.TempPathFactory) -> OpenClaw:
    return OpenClaw(VERSION, tmp_path_factory.mktemp("oc-functions"))


def test_failures_are_written_as_openclaw_writes_them(oc: OpenClaw, tmp_path: Path) -> None:
    """Each sequence of failures gives byte-identical usage stats (JSON, key order included):
    the ladders, the kept windows, the counters starting over, the model scope."""
    calls = [
        {"fn": "next", "args": {"start": start, "steps": [{"now": at, "reason": r, "model": m} for at, r, m in steps]}}
        for start, steps in SEQUENCES
    ]  # fmt: skip
    theirs = [js_json(r) for r in run_functions(oc, tmp_path, calls)]
    ours = []
    for start, steps in SEQUENCES:
        stats = parse_usage(start)
        for at, reason, model in steps:
            stats = usage.after_failure(stats, Failure(reason, model), at)  # type: ignore[arg-type]
        ours.append(js_json(dict(stats.raw)))
    assert ours == theirs


def test_success_clear_and_windows_read_as_openclaw_reads_them(
    oc: OpenClaw, tmp_path: Path
) -> None:
    """resetAuthProfileFailureState (a success, a clear) gives the same JSON; for each window
    and model, isProfileInCooldown and resolveProfileUnusableUntil agree with the port."""
    models = [None, "gpt-5", "o3"]
    calls: list[dict[str, Any]] = [
        {"fn": "success", "args": {"existing": FULL, "now": T0}},
        {"fn": "clear", "args": {"existing": FULL}},
    ]
    calls += [
        {"fn": "unusable", "args": {"stats": w, "now": T0, "forModel": m}}
        for w in WINDOWS
        for m in models
    ]
    theirs = run_functions(oc, tmp_path, calls)
    assert js_json(theirs[0]) == js_json(dict(usage.after_success(parse_usage(FULL), T0).raw))
    assert js_json(theirs[1]) == js_json(dict(usage.cleared(parse_usage(FULL)).raw))
    ours = []
    for w in WINDOWS:
        for m in models:
            until = usage.unusable_until(parse_usage(w), m, T0)
            ours.append(until > T0)
    assert ours == [r["inCooldown"] for r in theirs[2:]]


def order_cases(now: int) -> list[dict[str, Any]]:
    """Stores and configs (as OpenClaw holds them) whose order is asked of both."""
    key = {"type": "api_key", "provider": "openai", "key": "k"}
    tok = {"type": "token", "provider": "openai", "token": "t"}

    def login(expires: int) -> dict[str, Any]:
        return {
            "type": "oauth",
            "provider": "openai",
            "access": "a",
            "refresh": "r",
            "expires": expires,
        }

    fence = {
        **login(1),
        "access": "openclaw-oauth-refresh-fence:v1:" + "0" * 32 + ":access:" + "1" * 64,
        "refresh": "openclaw-oauth-refresh-fence:v1:" + "0" * 32 + ":refresh:" + "1" * 64,
    }
    mixed = {
        "openai:key": key,
        "openai:tok": tok,
        "openai:old": login(now - MIN),
        "openai:new": login(now + DAY),
    }
    keys = {"openai:a": key, "openai:b": key, "openai:c": key}
    scoped = {
        "openai:new": {
            "cooldownUntil": now + 10 * MIN,
            "cooldownReason": "rate_limit",
            "cooldownModel": "gpt-5",
        }
    }
    order_only = {"openai": ["openai:gone"]}
    return [
        {"store": {"profiles": mixed}},
        {"store": {"profiles": mixed, "usageStats": scoped}},
        {"store": {"profiles": mixed, "usageStats": scoped}, "forModel": "gpt-4"},
        {"store": {"profiles": keys, "usageStats": {"openai:a": {"lastUsed": now - MIN}, "openai:b": {"lastUsed": now - 9 * MIN}}}},
        {"store": {"profiles": keys, "order": {"openai": ["openai:b", "openai:a"]}}, "cfg": {"auth": {"order": {"openai": ["openai:c"]}}}},
        {"store": {"profiles": keys}, "cfg": {"auth": {"order": {"openai": ["openai:c", "openai:a"]}}}},
        {"store": {"profiles": keys}, "cfg": {"auth": {"order": order_only}}},
        {"store": {"profiles": keys}, "cfg": {"auth": {"order": order_only, "profiles": {"openai:gone": {"provider": "openai", "mode": "api_key"}}}}},
        {"store": {"profiles": keys, "order": order_only}},
        {"store": {"profiles": keys, "order": {"openai": []}}},
        {"store": {"profiles": {**keys, "openai:t": tok}}, "cfg": {"auth": {"profiles": {
            "openai:t": {"provider": "openai", "mode": "oauth"}, "openai:a": {"provider": "openai", "mode": "token"},
            "openai:b": {"provider": "openai", "mode": "api_key"}}}}},
        {"store": {"profiles": {"openai:old": {**tok, "expires": now - MIN}, "openai:fence": fence, "openai:ok": key}}},
        {"store": {"profiles": keys, "usageStats": {"openai:a": {"disabledUntil": now + DAY}, "openai:b": {"cooldownUntil": now + MIN}}}},
        {"store": {"profiles": {"openrouter:a": {**key, "provider": "openrouter"}, "openrouter:b": {**key, "provider": "openrouter"}},
                   "usageStats": {"openrouter:a": {"cooldownUntil": now + MIN}}}, "provider": "openrouter"},
    ]  # fmt: skip


def sidecar_order(case: dict[str, Any], now: int) -> list[str]:
    store = case["store"]
    doc = parse_profiles(json.dumps({"version": 1, "profiles": store["profiles"]}))
    state = {k: store[k] for k in ("order", "usageStats") if k in store}
    snapshot = StoreSnapshot(
        agent="main",
        profiles=doc.profiles,
        invalid=doc.invalid,
        state=parse_state(json.dumps({"version": 1, **state})),
        origin=Path("/oc"),
        era=Era.SQLITE,
    )
    auth = case.get("cfg", {}).get("auth", {})
    config = parse_openclaw_config(
        json.dumps({"auth": auth}), path=Path("/oc.json"), home=Path("/")
    )
    view = merge_view(
        "main",
        snapshot,
        None,
        now_ms=now,
        config_order=config.auth_order,
        config_profiles=config.auth_profiles,
    )
    provider = case.get("provider", "openai")
    return [v.id for v in ordered_profiles(view, [provider], now, case.get("forModel"))]


def test_the_order_is_openclaws(oc: OpenClaw, tmp_path: Path) -> None:
    """resolveAuthProfileOrder and the port give the same list for each store and config:
    sources of the order, dropped profiles, the repair, expired logins, cooldowns, model scope,
    exempt providers."""
    now = int(time.time() * 1000)
    cases = order_cases(now)
    calls = [
        {"fn": "order", "args": {"cfg": c.get("cfg", {}), "store": {"version": 1, **c["store"]},
                                 "provider": c.get("provider", "openai"), "forModel": c.get("forModel")}}
        for c in cases
    ]  # fmt: skip
    theirs = run_functions(oc, tmp_path, calls)
    assert [sidecar_order(c, now) for c in cases] == theirs
