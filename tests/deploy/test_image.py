"""deploy/Dockerfile: the image is small, non-root, healthchecked, and works under another UID."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_image_is_non_root_with_a_healthcheck_and_no_secret(image: str) -> None:
    """The image runs as 10001:10001, keeps its HEALTHCHECK on /healthz and holds no secret."""
    inspect = json.loads(run("podman", "image", "inspect", image).stdout)[0]
    config = inspect["Config"]
    assert config["User"] == "10001:10001"
    healthcheck = inspect.get("Healthcheck") or config.get("Healthcheck")  # podman / docker
    assert "/healthz" in " ".join(healthcheck["Test"])
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["OPENCLAW_STATE_DIR"] == "/state"
    assert not [k for k in env if any(w in k for w in ("KEY", "TOKEN", "SECRET", "PASSWORD"))]
    assert inspect["Size"] < 300 * 1024 * 1024
    listing = run(
        "podman", "run", "--rm", "--no-healthcheck", image, "sh", "-c",
        "ls -d /src /opt/venv/bin/pip 2>/dev/null; stat -c '%u:%g %a' /state",
    )  # fmt: skip
    assert listing.stdout.split() == ["10001:10001", "700"]


def test_image_runs_as_another_uid_on_its_own_state_dir(image: str, tmp_path: Path) -> None:
    """`--user 4242:4242` with a state dir that UID owns: paste-api-key and status work."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 4242, 4242)
    common = ("podman", "run", "--rm", "-i", "--no-healthcheck", "--user", "4242:4242")
    mount = ("-v", f"{state}:/state")
    paste = run(
        *common, *mount, image, "openclaw-sidecar", "paste-api-key",
        "--provider", "openai", "--agent", "work",
        stdin="sk-uid-test-0123456789\n",
    )  # fmt: skip
    assert paste.returncode == 0, paste.stderr
    status = run(*common, *mount, image, "openclaw-sidecar", "status", "--agent", "work", "--json")
    assert status.returncode == 0, status.stderr
    profiles = json.loads(status.stdout)["agents"][0]["profiles"]
    assert [p["profileId"] for p in profiles] == ["openai:manual"]
    assert "0123456789" not in status.stdout
    stored = state / "agents/work/agent/auth-profiles.json"
    assert (stored.stat().st_uid, stored.stat().st_mode & 0o777) == (4242, 0o600)
