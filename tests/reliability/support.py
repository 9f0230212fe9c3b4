"""Helpers of the reliability suite: figures for docs/reliability.md, a token registry that
says when a request is done, a process's resources from /proc, and raw HTTP over a socket."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.token_server import FakeTokenServer, TokenRegistry

REPO = Path(__file__).resolve().parents[2]
FIGURES_ENV = "RELIABILITY_FIGURES"


def report(name: str, **figures: Any) -> None:
    """Print a test's figures; also append them to ``$RELIABILITY_FIGURES`` (JSON lines)."""
    line = json.dumps({"test": name, **figures}, sort_keys=True)
    print(f"\nFIGURES {line}")
    target = os.environ.get(FIGURES_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


class NotifyingRegistry(TokenRegistry):
    """A registry whose waiters also wake when a token request has been answered."""

    def log_exchange(self, entry: dict[str, Any]) -> None:
        super().log_exchange(entry)
        with self._lock:
            self._lock.notify_all()

    def wait_answered(self, timeout: float = 2.0) -> bool:
        """Block until every token request that arrived has been answered."""
        with self._lock:
            return self._lock.wait_for(lambda: self.calls >= self.arrivals, timeout)


def wait_idle(server: FakeTokenServer, timeout: float = 2.0) -> bool:
    """Every connection to ``server`` closed and every request answered (after a kill, the
    dead client's last request may still be in the server's hands)."""
    registry = server.registry
    assert isinstance(registry, NotifyingRegistry)
    assert server._running is not None
    state = server._running.server.server_state
    deadline = time.monotonic() + timeout
    with registry._lock:
        # uvicorn does not signal a closed connection: look again every millisecond.
        while state.connections or state.tasks or registry.calls < registry.arrivals:
            if time.monotonic() > deadline:
                return False
            registry._lock.wait(0.001)
    return True


@dataclass(frozen=True)
class Usage:
    """One sample of a process's resources."""

    rss_kb: int
    fds: int
    threads: int


def usage_of(pid: int) -> Usage:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return Usage(rss, len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task")))


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with (mode, size, mtime_ns): a snapshot to compare."""
    found: dict[str, tuple[int, int, int]] = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> RawReply | None:
    """Send ``data`` as is (one request, ``Connection: close`` expected), read until EOF;
    None if the server closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = list(_read_all(sock))
    return parse_reply(b"".join(chunks))


def _read_all(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return
        if not chunk:
            return
        yield chunk


def parse_reply(data: bytes) -> RawReply | None:
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
    pairs = [(k.strip(), v.strip()) for k, v in headers]
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in pairs):
        body = _dechunk(body)
    return RawReply(status, pairs, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def request_bytes(
    method: str, target: str | bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes = b""
) -> bytes:
    line = target.encode("latin-1") if isinstance(target, str) else target
    lines = [method.encode() + b" " + line + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in headers]
    if body:
        lines.append(b"content-length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
