"""A real ``redis-server`` (the Debian package) on a free loopback port, in a temp dir, with
append-only persistence fsynced on every write, so a restart (even after SIGKILL) keeps it all.

Installed with apt-get when missing; the tests skip only when that fails and ``CI`` is unset.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.sidecar import free_port

START_TIMEOUT_S = 10.0


def ensure_redis_server() -> str:
    found = shutil.which("redis-server")
    if found is None and shutil.which("apt-get") is not None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-server"], capture_output=True, check=False
        )
        found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing and could not be installed")
        pytest.skip(
            "redis-server is missing and could not be installed (apt-get install redis-server)"
        )
    return found


@dataclass
class RedisServer:
    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.is_up():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {self.log()[-2000:]}")
        return self

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def is_up(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def dump(self) -> dict[str, Any]:
        """Every key and its value, whatever its type (SCAN, then GET/HGETALL/SMEMBERS...)."""
        out: dict[str, Any] = {}
        with self.client() as client:
            for key in client.scan_iter(count=1000):
                kind = client.type(key)
                if kind == "string":
                    out[key] = client.get(key)
                elif kind == "hash":
                    out[key] = client.hgetall(key)
                elif kind == "set":
                    out[key] = sorted(client.smembers(key))
                elif kind == "list":
                    out[key] = client.lrange(key, 0, -1)
                elif kind == "zset":
                    out[key] = client.zrange(key, 0, -1, withscores=True)
                else:
                    out[key] = f"<{kind}>"
        return out
