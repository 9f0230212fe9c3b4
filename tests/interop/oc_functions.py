"""OpenClaw 2026.9.6's own failover functions, called from Python: a node script loads them
from the installed package's dist/ (found by their source region, their export alias read from
the module, since the chunk names are hashed) and answers a batch of calls as JSON. Offline: no
request leaves the process (it is run in a fresh network namespace when the host allows).

    calls = [{"fn": "order", "args": {...}}, {"fn": "next", "args": {...}}]
    run_functions(oc, tmp_path, calls) -> [result, ...]
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.interop.openclaw import OpenClaw

SCRIPT = r"""
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const [pkg, callsFile] = process.argv.slice(2);
const dist = path.join(pkg, "dist");
const files = fs.readdirSync(dist).filter((n) => n.endsWith(".mjs"));
async function exported(region, name) {
  for (const file of files) {
    const source = fs.readFileSync(path.join(dist, file), "utf8");
    if (!source.includes(`//#region ${region}`)) continue;
    const alias = new RegExp(`${name} as (\\w+)`).exec(source);
    const mod = await import(pathToFileURL(path.join(dist, file)).href);
    return alias ? mod[alias[1]] : mod[name];
  }
  throw new Error(`${name} not found`);
}
const sdk = await import(pathToFileURL(path.join(dist, "plugin-sdk/agent-runtime.js")).href);
const failures = "src/agents/auth-profiles/usage-failure-state.ts";
const next = await exported(failures, "computeNextProfileUsageStats");
const state = "src/agents/auth-profiles/usage-state.ts";
const reset = await exported(state, "resetAuthProfileFailureState");
const inCooldown = await exported(state, "isProfileInCooldown");
const until = await exported(state, "resolveProfileUnusableUntil");
const fns = {
  order: (a) => sdk.resolveAuthProfileOrder({ cfg: a.cfg, store: a.store, provider: a.provider,
    forModel: a.forModel ?? undefined }),
  next: (a) => a.steps.reduce((stats, s) => next({ existing: stats, now: s.now, reason: s.reason,
    modelId: s.model ?? undefined }), a.start ?? {}),
  success: (a) => reset(a.existing, { lastProbeAt: a.now, lastUsed: a.now }),
  clear: (a) => reset(a.existing),
  unusable: (a) => ({
    inCooldown: inCooldown({ profiles: { x: { provider: "openai" } }, usageStats: { x: a.stats } },
      "x", a.now, a.forModel ?? undefined),
    until: until(a.stats, a.forModel ?? undefined),
  }),
};
const calls = JSON.parse(fs.readFileSync(callsFile, "utf8"));
console.log(JSON.stringify(calls.map((c) => fns[c.fn](c.args))));
"""


def run_functions(oc: OpenClaw, work: Path, calls: list[dict[str, Any]]) -> list[Any]:
    """Each call's result, as OpenClaw's function returns it (JSON round-tripped)."""
    script, batch = work / "oc-functions.mjs", work / "oc-calls.json"
    script.write_text(SCRIPT)
    batch.write_text(json.dumps(calls))
    done = subprocess.run(
        [*oc.node_command(str(script), str(oc.package_dir), str(batch))],
        capture_output=True,
        text=True,
        env=oc.env(),
        cwd=oc.sandbox,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def js_json(value: Any) -> str:
    """``JSON.stringify`` of ``value`` (no spaces), to compare key order too."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
