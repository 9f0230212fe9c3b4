"""deploy/systemd: both units pass `systemd-analyze verify` cleanly and are well sandboxed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy/systemd"
SYSTEM, USER = "openclaw-sidecar.service", "openclaw-sidecar-user.service"
# The project's own console script, standing in for the installed one the units name.
SCRIPT = Path(sys.executable).with_name("openclaw-sidecar")
REQUIRED = (
    "ProtectSystem=strict",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter=@system-service",
    "ProtectKernelTunables=yes",
    "RestrictNamespaces=yes",
)


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    return found


def lines(name: str) -> list[str]:
    return [ln.strip() for ln in (UNITS / name).read_text().splitlines()]


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A $HOME with ~/.local/bin/openclaw-sidecar and ~/.openclaw, and a runtime dir."""
    (tmp_path / ".local/bin").mkdir(parents=True)
    (tmp_path / ".local/bin/openclaw-sidecar").symlink_to(SCRIPT)
    (tmp_path / ".openclaw").mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    return {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)}


def verify(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyze(), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize("name", [SYSTEM, USER])
def test_unit_has_the_hardening_options(name: str) -> None:
    """Both units set the sandboxing options, and neither a private PID nor user namespace."""
    unit = lines(name)
    assert set(REQUIRED) <= set(unit)
    assert not [
        ln for ln in unit if ln.startswith(("PrivatePIDs=", "PrivateUsers=", "ProtectProc="))
    ]


def test_units_write_only_the_openclaw_state_dir_and_their_own() -> None:
    """The system unit writes /var/lib/openclaw, the user unit ~/.openclaw (%h/.openclaw); each
    also its own state dir (StateDirectory=), where the usage database is."""
    assert "ReadWritePaths=/var/lib/openclaw" in lines(SYSTEM)
    assert "Environment=OPENCLAW_STATE_DIR=/var/lib/openclaw" in lines(SYSTEM)
    assert "StateDirectory=openclaw openclaw-sidecar" in lines(SYSTEM)
    assert "Environment=OPENCLAW_SIDECAR_DATA_DIR=/var/lib/openclaw-sidecar" in lines(SYSTEM)
    assert "ReadWritePaths=%h/.openclaw" in lines(USER)
    assert "ProtectHome=read-only" in lines(USER)
    assert "Environment=OPENCLAW_STATE_DIR=%h/.openclaw" in lines(USER)
    assert "StateDirectory=openclaw-sidecar" in lines(USER)
    assert "Environment=OPENCLAW_SIDECAR_DATA_DIR=%S/openclaw-sidecar" in lines(USER)


def test_system_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` prints nothing for the system unit (ExecStart made to exist)."""
    text = (UNITS / SYSTEM).read_text()
    assert "ExecStart=/opt/openclaw-sidecar/bin/openclaw-sidecar serve" in text
    unit = tmp_path / SYSTEM
    unit.write_text(text.replace("/opt/openclaw-sidecar/bin/openclaw-sidecar", str(SCRIPT)))
    result = verify(["verify", str(unit)], dict(os.environ))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_user_unit_passes_systemd_analyze_verify(user_env: dict[str, str]) -> None:
    """`systemd-analyze --user verify` prints nothing for the user unit."""
    result = verify(["--user", "verify", str(UNITS / USER)], user_env)
    if "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze --user cannot run here: {result.stderr.strip()}")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_reports_a_misspelt_option(user_env: dict[str, str], tmp_path: Path) -> None:
    """A typo in a unit is reported, so the clean verify above means something."""
    bad = tmp_path / "bad.service"
    bad.write_text((UNITS / USER).read_text().replace("PrivateTmp=", "PrivateTempdir="))
    result = verify(["--user", "verify", str(bad)], user_env)
    assert "Unknown key 'PrivateTempdir'" in result.stderr


@pytest.mark.parametrize(("name", "threshold"), [(SYSTEM, 20), (USER, 50)])
def test_unit_exposure_stays_low(name: str, threshold: int, tmp_path: Path) -> None:
    """`systemd-analyze security --offline` rates exposure at most 2.0 (system), 5.0 (user)."""
    args = ["security", "--offline=yes", f"--threshold={threshold}", str(UNITS / name)]
    if name == USER:
        args.insert(0, "--user")
    result = verify(args, {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
    if "Unknown option" in result.stderr or "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze has no offline security check (needs systemd 250+)")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
