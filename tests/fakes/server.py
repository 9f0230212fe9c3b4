"""Run a fake's ASGI app on uvicorn at 127.0.0.1: in a background thread, or as a process.

- `serve_in_thread(app)` is a context manager yielding a `RunningServer` (``.url``); port 0 picks
  a free port. The socket is bound and listening before the call returns, so the URL can be
  used at once.
- `run_main(app, host=..., port=..., port_file=...)` is the body of a fake's ``__main__``: it
  binds, writes the port to ``port_file`` (atomically), prints ``listening on URL`` and serves
  until SIGINT/SIGTERM.
- `spawn(module, *args)` starts ``python -m module --port 0 ...`` and yields a `SpawnedServer`
  with ``.url`` once the child has bound its socket.
- `abort_connection(scope, ...)` drops the TCP connection of the current request (no response,
  or a response cut off mid-body), for "connection reset" failure modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import uvicorn

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
TRANSPORT_KEY = "fake.transport"

ASGIApp = Callable[..., Any]


class AbortConnection(Exception):
    """Raised to drop a connection when the transport is not reachable; never logged."""


class _QuietAbort(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" records caused by AbortConnection."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _contains_abort(exc)


def _contains_abort(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, AbortConnection):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains_abort(e) for e in exc.exceptions)
    return False


logging.getLogger("uvicorn.error").addFilter(_QuietAbort())


class ExposeTransport:
    """ASGI wrapper that puts uvicorn's transport into ``scope[TRANSPORT_KEY]`` (or None)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            owner = getattr(send, "__self__", None)
            scope[TRANSPORT_KEY] = getattr(owner, "transport", None)
        await self.app(scope, receive, send)


async def abort_connection(
    scope: MutableMapping[str, Any], gone: anyio.Event | None = None
) -> None:
    """Close the request's TCP connection abruptly (client sees a dropped connection).

    `gone` (set by a disconnect watcher) is awaited briefly so uvicorn has noticed the
    disconnect before the app returns; without a transport, AbortConnection is raised.
    """
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        raise AbortConnection
    transport.abort()
    if gone is not None:
        with anyio.move_on_after(1.0):
            await gone.wait()
    else:
        for _ in range(3):
            await anyio.sleep(0)


def _check_loopback(host: str) -> None:
    if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        raise ValueError(f"fakes bind only to loopback addresses, not {host!r}")


def bind(host: str = LOOPBACK, port: int = 0) -> socket.socket:
    """A listening TCP socket on host:port (port 0 = a free port)."""
    _check_loopback(host)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # proto is IPPROTO_TCP; with proto 0 every keep-alive response waits ~40 ms (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _config(app: ASGIApp, graceful_timeout: int) -> uvicorn.Config:
    return uvicorn.Config(
        ExposeTransport(app),
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        lifespan="off",
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=graceful_timeout,
    )


class _ThreadServer(uvicorn.Server):
    """uvicorn.Server tuned for tests: sets `ready` once accepting, stops within milliseconds
    of `wake()`, and runs `before_shutdown` first (to release a fake's held requests)."""

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.before_shutdown = before_shutdown
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    def wake(self) -> None:
        """Ask the server to exit now (callable from any thread)."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            call_soon_threadsafe(self._loop, self._wake.set)

    async def main_loop(self) -> None:
        assert self._wake is not None
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown without its fixed 0.1 s pause (lifespan is off)."""
        if self.before_shutdown is not None:
            self.before_shutdown()
        for server in self.servers:
            server.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(self.config.timeout_graceful_shutdown or 1)
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()


@dataclass
class RunningServer:
    """A uvicorn server running in a daemon thread."""

    url: str
    host: str
    port: int
    server: _ThreadServer
    thread: threading.Thread
    sock: socket.socket
    on_stop: Callable[[], None] | None = None
    error: list[BaseException] = field(default_factory=list)

    def stop(self, timeout: float = 5.0) -> None:
        """Release the fake's waiters, ask uvicorn to exit, join the thread."""
        if self.on_stop is not None:
            self.on_stop()
        self.server.wake()
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)
        self.sock.close()


def start_in_thread(
    app: ASGIApp,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    on_stop: Callable[[], None] | None = None,
    graceful_timeout: int = 1,
) -> RunningServer:
    """Start `app` in a background thread; returns once it accepts connections."""
    sock = bind(host, port)
    server = _ThreadServer(_config(app, graceful_timeout))
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by stop()/start, never left unhandled
            errors.append(exc)
            server.ready.set()

    bound_port = sock.getsockname()[1]
    thread = threading.Thread(target=target, name=f"fake-server-{bound_port}", daemon=True)
    thread.start()
    if not server.ready.wait(10.0) or errors or not server.started:
        server.should_exit = True
        thread.join(5.0)
        sock.close()
        raise RuntimeError(f"fake server did not start: {errors!r}")
    return RunningServer(
        url=f"http://{host}:{bound_port}",
        host=host,
        port=bound_port,
        server=server,
        thread=thread,
        sock=sock,
        on_stop=on_stop,
        error=errors,
    )


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    on_stop: Callable[[], None] | None = None,
) -> Iterator[RunningServer]:
    """Context manager: run `app` on uvicorn in a thread, yield it, stop it cleanly."""
    running = start_in_thread(app, host=host, port=port, on_stop=on_stop)
    try:
        yield running
    finally:
        running.stop()


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def run_main(
    app: ASGIApp,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    port_file: str | None = None,
    name: str = "fake",
    on_stop: Callable[[], None] | None = None,
) -> int:
    """Serve `app` in the foreground (a fake's __main__). Returns the exit code."""
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    if port_file:
        _write_port_file(port_file, bound)
    print(f"{name} listening on http://{host}:{bound}", flush=True)
    server = _ThreadServer(_config(app, graceful_timeout=1), before_shutdown=on_stop)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


@dataclass
class SpawnedServer:
    """A fake running as a child process (``python -m <module>``)."""

    url: str
    port: int
    proc: subprocess.Popen[str]
    port_file: Path

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait, SIGKILL if needed; closes the pipes."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


@contextlib.contextmanager
def spawn(module: str, *args: str, timeout: float = 15.0) -> Iterator[SpawnedServer]:
    """Run ``python -m module --port 0 --port-file F *args`` from the repo root."""
    with tempfile.TemporaryDirectory(prefix="fake-") as tmp:
        port_file = Path(tmp) / "port"
        cmd = [sys.executable, "-m", module, "--port", "0", "--port-file", str(port_file), *args]
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = _read_line(proc, timeout)
        if "listening on " not in line:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise RuntimeError(f"{module} did not start: {line!r} {err[-2000:]}")
        url = line.rsplit("listening on ", 1)[1].strip()
        spawned = SpawnedServer(
            url=url, port=int(url.rsplit(":", 1)[1]), proc=proc, port_file=port_file
        )
        try:
            yield spawned
        finally:
            spawned.stop()


def call_soon_threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> None:
    """loop.call_soon_threadsafe that ignores a loop that has already closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn)


class Gate:
    """A latch that async code (in the server thread) waits on and any thread opens.

    `release()` opens it (all current and future waiters pass) until `arm()` closes it again.
    """

    def __init__(self, *, open_: bool = False) -> None:
        self._lock = threading.Lock()
        self._open = open_
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.opened = threading.Event()
        if open_:
            self.opened.set()

    @property
    def is_open(self) -> bool:
        return self._open

    def release(self) -> None:
        with self._lock:
            self._open = True
            self.opened.set()
            waiters = list(self._waiters)
        for loop, event in waiters:
            call_soon_threadsafe(loop, event.set)

    def arm(self) -> None:
        with self._lock:
            self._open = False
            self.opened.clear()

    async def wait(self) -> None:
        with self._lock:
            if self._open:
                return
            entry = (asyncio.get_running_loop(), asyncio.Event())
            self._waiters.append(entry)
        try:
            await entry[1].wait()
        finally:
            with self._lock:
                self._waiters.remove(entry)
