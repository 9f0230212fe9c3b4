"""What the compose tests share: podman and podman-compose calls on one project, the fake
upstream's request log, secrets the image's group can read, and the bounded poll for
containers starting (podman 4.3 cannot wait for "healthy")."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINER_GID = 10001  # the image's sidecar group (deploy/Dockerfile)
FAKE_LOG = (
    "import urllib.request; print(urllib.request.urlopen("
    "'http://127.0.0.1:8080/_fake/requests', timeout=5).read().decode())"
)


@dataclass
class ComposeStack:
    """One compose project, under its own name; ``FILES`` are the subclass's ``-f`` arguments."""

    FILES: ClassVar[tuple[str, ...]] = ()
    project: str
    env: dict[str, str]

    def compose(
        self, *args: str, stdin: str | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman-compose", "-p", self.project, *self.FILES, *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def podman(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def upstream_seen(self) -> dict[str, Any] | None:
        """The fake upstream's log (``requests``, ``token_calls``); None while it is not up."""
        container = f"{self.project}_fake-upstream_1"
        result = self.podman("exec", container, "python3", "-c", FAKE_LOG)
        if result.returncode != 0:
            return None
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    def seen(self) -> dict[str, Any]:
        doc = self.upstream_seen()
        assert doc is not None, "the fake upstream does not answer"
        return doc


def write_secret(path: Path, text: str) -> None:
    """A compose file secret is a bind mount keeping owner and mode: readable by the GID."""
    path.write_text(text + "\n")
    os.chown(path, 0, CONTAINER_GID)
    path.chmod(0o640)


def until(check: Callable[[], object], what: str, seconds: float = 60) -> None:
    """A bounded poll: containers starting, and sidecars noticing a changed record on their
    own schedule, give no event to wait on."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.3)
