"""OAuth and fleet set-ups for the benchmarks: a Codex OAuth profile in a file store or in the
fleet's Redis, the sidecar config that serves it, and a real ``redis-server`` on loopback.

The fleet profile is seeded the way a user does it: written to a local store, then moved with
``openclaw-sidecar fleet push``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import LOAD_CPU, PYTHON, REPO, Child, Children, free_port, wait_port

PROFILE_ID = "openai-codex:bench@example.com"
PATH = "/openai-codex/responses"
BODY = json.dumps({"model": "gpt-5.1-codex", "input": "hi"}).encode()
DEAD_TOKEN_URL = "http://127.0.0.1:9/oauth/token"  # a valid token never needs it


def oauth_entry(access: str, refresh: str, expires_in_s: float) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": "openai-codex",
        "access": access,
        "refresh": refresh,
        "expires": int((time.time() + expires_in_s) * 1000),
        "accountId": "acct_bench",
        "email": "bench@example.com",
    }


def write_store(state_dir: Path, entry: dict[str, Any]) -> None:
    agent_dir = state_dir / "agents" / "main" / "agent"
    agent_dir.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "profiles": {PROFILE_ID: entry}}
    path = agent_dir / "auth-profiles.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class FleetFiles:
    url_file: Path
    key_file: Path


def config(
    path: Path,
    *,
    state_dir: Path,
    port: int,
    upstream: str,
    token_url: str = DEAD_TOKEN_URL,
    fleet: FleetFiles | None = None,
    log_level: str = "info",
) -> Path:
    text = (
        f'state_dir = "{state_dir}"\n\n'
        f'[[listeners]]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[providers.openai-codex]\nbase_url = "{upstream}"\n'
        f'token_url = "{token_url}"\n\n'  # the built-in client id, which the fake checks
        # No background refresh: every refresh in a run comes from the requests themselves.
        f"[refresh]\nbackground_interval_seconds = 3600\n\n"
        f'[log]\nlevel = "{log_level}"\n\n'
        f'[usage]\ndir = "{path.parent / (path.stem + "-usage")}"\n'  # the run's own
    )
    if fleet is not None:
        text += (
            f'\n[fleet]\nurl_file = "{fleet.url_file}"\nkey_file = "{fleet.key_file}"\n'
            'prefix = "bench"\n'
        )
    path.write_text(text)
    return path


def start_redis(group: Children) -> tuple[Child, FleetFiles]:
    """redis-server as the fleet tests run it (append-only, fsync always), on the load CPU."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: apt-get install redis-server")
    port = free_port()
    data = group.workdir / f"redis-{port}"
    data.mkdir(parents=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
    argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    child = group.start(f"redis-{port}", argv, cpu=LOAD_CPU)
    wait_port(port, proc=child.proc)
    secrets = group.workdir / f"fleet-secrets-{port}"
    secrets.mkdir()
    url_file, key_file = secrets / "redis-url", secrets / "fleet-key"
    url_file.write_text(f"redis://127.0.0.1:{port}/0\n")
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    for f in (url_file, key_file):
        os.chmod(f, 0o600)
    return child, FleetFiles(url_file, key_file)


def fleet_push(group: Children, fleet: FleetFiles, entry: dict[str, Any]) -> None:
    """The profile into Redis with the real CLI (replacing one pushed before)."""
    seed = group.workdir / f"fleet-seed-{time.monotonic_ns()}"
    write_store(seed, entry)
    conf = config(
        seed / "cli.toml", state_dir=seed, port=1, upstream="http://127.0.0.1:9", fleet=fleet
    )
    cli = [PYTHON, "-m", "sidecar"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [*cli, "fleet", "pull", "--config", str(conf), "--profile-id", PROFILE_ID],
        capture_output=True,
        env=env,
        check=False,  # nothing to pull the first time
    )
    write_store(seed, entry)
    pushed = subprocess.run(
        [*cli, "fleet", "push", "--config", str(conf), "--profile-id", PROFILE_ID],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if pushed.returncode != 0:
        raise RuntimeError(f"fleet push failed: {pushed.stderr.strip()}")
