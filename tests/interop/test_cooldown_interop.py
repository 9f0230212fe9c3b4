"""One view of which account is resting, shared with a real OpenClaw 2026.9.6 (issue #19 §2):
OpenClaw's two OpenAI keys (its own CLI stored them, in its SQLite store), the real ``serve``
in front of a fake upstream, and OpenClaw's own code and CLI on the same state dir.

- A cooldown OpenClaw writes (its ``markAuthProfileFailure``) is honoured by the sidecar: the
  next request goes to the other key without trying the resting one.
- A cooldown the sidecar writes (a 429 with Retry-After) is what ``openclaw models status``
  shows under ``auth.unusableProfiles``, with the same reason and end; ``cooldowns clear`` is
  seen by OpenClaw as cleared.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.sidecar import Sidecar, free_port, render_config, run_cli, start_sidecar
from tests.fakes.upstream import FakeUpstream
from tests.interop.openclaw import OpenClaw, installed

VERSION = "2026.9.6"
A, B = "openai:a", "openai:b"
CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
T = TypeVar("T")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        installed(VERSION) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {VERSION} not installed (run scripts/install-openclaw.sh {VERSION})",
    ),
]

# argv: <openclaw package dir> <profileId> <reason>: OpenClaw records a failure of the profile
# in the main store exactly as its runner does after a failed turn.
MARK_FAILURE = r"""
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const [pkg, profileId, reason] = process.argv.slice(2);
const dist = path.join(pkg, "dist");
const exports = /export \{[^}]*\bmarkAuthProfileFailure\b[^}]*\}/;
const file = fs.readdirSync(dist).find((n) => n.endsWith(".mjs") &&
  exports.test(fs.readFileSync(path.join(dist, n), "utf8")));
const auth = await import(pathToFileURL(path.join(dist, file)).href);
const store = auth.ensureAuthProfileStore();
await auth.markAuthProfileFailure({ store, profileId, reason });
const written = auth.ensureAuthProfileStore().usageStats?.[profileId] ?? null;
console.log(JSON.stringify(written));
"""


def until(observe: Callable[[], T], done: Callable[[T], bool], seconds: float = 15) -> T:
    deadline = time.monotonic() + seconds
    value = observe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = observe()
    return value


class Install:
    """OpenClaw's sandbox with its two keys, and the sidecar serving it."""

    def __init__(self, oc: OpenClaw, keys: dict[str, str], work: Path) -> None:
        self.oc, self.keys, self.work = oc, keys, work

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.oc.env(), "PYTHONUNBUFFERED": "1"}
        return run_cli(list(args), env)

    def resting(self) -> list[dict[str, Any]]:
        done = self.cli("cooldowns", "--agent", "main", "--json")
        assert done.returncode == 0, done.stderr
        found: list[dict[str, Any]] = json.loads(done.stdout)["cooldowns"]
        return found

    def serve(self, fake: FakeUpstream) -> Sidecar:
        port = free_port()
        text = render_config(
            [{"host": "127.0.0.1", "port": port}], {"openai": {"base_url": fake.url + "/oa"}}
        )
        return start_sidecar(text, [port], state_dir=self.oc.state_dir, workdir=self.work)

    def mark_failure(self, profile_id: str, reason: str) -> dict[str, Any]:
        script = self.work / "mark-failure.mjs"
        script.write_text(MARK_FAILURE)
        done = subprocess.run(
            self.oc.node_command(str(script), str(self.oc.package_dir), profile_id, reason),
            capture_output=True,
            text=True,
            env=self.oc.env(),
            cwd=self.oc.sandbox,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        written: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return written

    def keys_used(self, fake: FakeUpstream) -> list[str]:
        by_key = {key: pid for pid, key in self.keys.items()}
        return [by_key[r.headers["authorization"].removeprefix("Bearer ")] for r in fake.requests]


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    work = tmp_path_factory.mktemp("cooldown-interop")
    oc = OpenClaw(VERSION, work / "openclaw")
    keys = {pid: f"sk-interop-{pid[-1]}-{uuid.uuid4().hex}" for pid in (A, B)}
    for pid, key in keys.items():
        oc.paste_api_key("openai", pid, secret=key)
    return Install(oc, keys, work)


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def test_a_cooldown_openclaw_writes_is_honoured_by_the_sidecar(
    install: Install, fake: FakeUpstream
) -> None:
    """OpenClaw marks key A rate-limited; the sidecar's request goes to B without trying A,
    and `cooldowns` shows A with OpenClaw's own end."""
    written = install.mark_failure(A, "rate_limit")
    assert (written["cooldownReason"], written["cooldownUntil"] - written["lastFailureAt"]) == (
        "rate_limit",
        30_000,
    )
    sidecar = install.serve(fake)
    try:
        response = httpx.post(sidecar.url() + "/openai/v1/chat/completions", json=CHAT, timeout=10)
        assert (response.status_code, install.keys_used(fake)) == (200, [B])
        assert [(e["profileId"], e["reason"], e["until"]) for e in install.resting()] == [
            (A, "rate_limit", written["cooldownUntil"])
        ]
    finally:
        assert sidecar.stop() == 0


def test_a_cooldown_the_sidecar_writes_is_shown_by_openclaw(
    install: Install, fake: FakeUpstream
) -> None:
    """`cooldowns clear` ends OpenClaw's cooldown (OpenClaw then lists none); a 429 with
    Retry-After: 600 for A makes the sidecar fail over to B and rest A for 600 s, which
    `openclaw models status` lists with the same reason and end."""
    cleared = install.cli("cooldowns", "clear", "--profile-id", A)
    assert (cleared.returncode, cleared.stderr) == (0, "")
    assert install.oc.status_json()["auth"]["unusableProfiles"] == []
    fake.limit(install.keys[A], headers={"retry-after": "600"})
    sidecar = install.serve(fake)
    try:
        response = httpx.post(sidecar.url() + "/openai/v1/chat/completions", json=CHAT, timeout=10)
        assert (response.status_code, install.keys_used(fake)) == (200, [A, B])
        (rest,) = until(install.resting, bool)
    finally:
        assert sidecar.stop() == 0
    shown = install.oc.status_json()["auth"]["unusableProfiles"]
    assert [(u["profileId"], u["provider"], u["kind"], u["reason"], u["until"]) for u in shown] == [
        (A, "openai", "cooldown", "rate_limit", rest["until"])
    ]
    assert 590_000 < shown[0]["remainingMs"] <= 600_000
