"""The sidecar's port of OpenClaw's error classifier against the real one: OpenClaw 2026.9.6's
``classifyFailoverSignal`` (loaded from its dist/, no plugin registry, offline) reads every case
of tests/auth/test_failover.py's table exactly as ``sidecar.auth.failover.classify`` does."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sidecar.auth import failover
from tests.auth.test_failover import CASES
from tests.interop.openclaw import OpenClaw, installed, isolation

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
        [*isolation(), *oc.node_command(str(script), str(oc.package_dir), json.dumps(cases))],
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
