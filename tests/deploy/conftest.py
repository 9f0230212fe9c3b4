"""Fixtures for the deployment tests: podman set up by scripts/setup-podman.sh, the image built."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/openclaw-sidecar:test"
LOCAL_BASE = "localhost/python-base:bookworm"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deploy: deployment files (image, compose, Kubernetes, systemd); may use podman"
    )


def _unavailable(reason: str) -> None:
    """In CI a missing podman is a failure; elsewhere the podman tests are skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"podman is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def podman() -> str:
    """podman and podman-compose, installed and configured by scripts/setup-podman.sh."""
    if os.geteuid() != 0:
        _unavailable("podman setup needs root (scripts/setup-podman.sh)")
    if not Path("/etc/debian_version").exists():
        _unavailable("scripts/setup-podman.sh supports Debian 12 only")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts/setup-podman.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0 or not shutil.which("podman-compose"):
        _unavailable(f"scripts/setup-podman.sh failed: {result.stderr[-2000:]}")
    return "podman"


@pytest.fixture(scope="session")
def image(podman: str) -> str:
    """The sidecar image built from deploy/Dockerfile (docker format, so HEALTHCHECK stays)."""
    base = os.environ.get("BASE_IMAGE", LOCAL_BASE)
    result = subprocess.run(
        [
            podman,
            "build",
            "--format",
            "docker",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "-f",
            "deploy/Dockerfile",
            "-t",
            IMAGE,
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return IMAGE
