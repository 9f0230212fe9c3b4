"""The real ``openclaw-sidecar serve`` process, started on loopback for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    return json.dumps(str(value)) if isinstance(value, str | Path) else json.dumps(value)


def render_config(
    listeners: Sequence[Mapping[str, Any]],
    providers: Mapping[str, Mapping[str, Any]],
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """A TOML config (only tables of scalars and arrays of such tables are needed)."""
    lines: list[str] = []
    for listener in listeners:
        lines.append("[[listeners]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in listener.items()]
    for name, table in {
        **{f"providers.{p}": t for p, t in providers.items()},
        **(extra or {}),
    }.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Sidecar:
    """A running sidecar; ``ports`` in config order, ``log_path`` its JSON-lines stderr."""

    proc: subprocess.Popen[bytes]
    ports: list[int]
    log_path: Path
    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cli_env(state_dir: Path, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # HOME is the test's (so is the usage database under it): no XDG_STATE_HOME of the user's.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENCLAW_", "OPENAI_", "ANTHROPIC_")) and k != "XDG_STATE_HOME"
    }
    env |= {"OPENCLAW_STATE_DIR": str(state_dir), "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return env | dict(extra or {})


def run_cli(
    args: Sequence[str], env: Mapping[str, str], stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        input=stdin,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_sidecar(
    config_text: str,
    ports: list[int],
    *,
    state_dir: Path,
    workdir: Path,
    env: Mapping[str, str] | None = None,
) -> Sidecar:
    """Start ``serve`` with ``config_text``; returns once it has logged ``listening`` for every
    port (read from its stderr as it is written: no polling)."""
    config = workdir / f"sidecar-{ports[0]}.toml"
    config.write_text(config_text)
    log_path = workdir / f"sidecar-{ports[0]}.log"
    full_env = cli_env(state_dir, workdir, env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
        start_new_session=True,
    )
    sidecar = Sidecar(proc, ports, log_path, state_dir, full_env)
    ready = threading.Event()
    threading.Thread(
        target=_copy_log, args=(proc, log_path, len(ports), ready), daemon=True
    ).start()
    if not ready.wait(READY_TIMEOUT_S) or proc.poll() is not None:
        sidecar.kill()
        raise RuntimeError(f"sidecar did not start:\n{sidecar.logs()}")
    return sidecar


def _event_of(line: bytes) -> object:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc.get("event") if isinstance(doc, dict) else None


def _copy_log(
    proc: subprocess.Popen[bytes], path: Path, ports: int, ready: threading.Event
) -> None:
    seen = 0
    assert proc.stdout is not None
    with path.open("wb") as log, proc.stdout:  # closed at EOF: no ResourceWarning
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if b'"listening"' in line and _event_of(line) == "listening":
                seen += 1
                if seen == ports:
                    ready.set()
    ready.set()  # the process ended: let the waiter see it
