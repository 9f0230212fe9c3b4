"""A fork server for the kill -9 trials: imports the sidecar once, then per trial forks a child
that refreshes (``JsonStore.refresh`` with the real ``Refresher`` token call), pastes
(``put_profile_sync``) and records usage (``update_state_sync``) in a tight loop, and SIGKILLs
it after the given delay. Forking from a warm process keeps a trial at a few milliseconds.

Protocol on stdin/stdout, one line each: it prints ``ready``; for ``trial SEED DELAY_US`` it
answers ``killed PID`` once the child is dead and reaped. Each child appends one line per
finished refresh to the log file: ``window NS WALL_NS REFRESH`` (token answer received → new
file renamed in; the wall clock of the rename; the new refresh token, to find its exchange).

Run: ``python -m tests.reliability.crash_worker STATE_DIR TOKEN_URL LOG_FILE``
"""

from __future__ import annotations

import os
import random
import signal
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from sidecar import log
from sidecar.auth.refresh import Refresher
from sidecar.providers.grants import ProviderAuth
from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import AuthState, OAuthCredential
from sidecar.sources.openclaw_json.store import JsonStore

CODEX_ID = "openai-codex:user@example.com"
PASTED_ID = "openai:pasted"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ALWAYS_DUE_MS = 10**13  # a margin no expiry clears: every call is a real refresh


def _store(state_dir: Path) -> JsonStore:
    layout = Layout.from_env({"OPENCLAW_STATE_DIR": str(state_dir)}, state_dir=state_dir)
    return JsonStore(layout, home=state_dir, check_interval_s=0)


async def _loop(state_dir: Path, token_url: str, seed: int, log_fd: int, go: int, tls: Any) -> None:
    rng = random.Random(seed)
    store = _store(state_dir)
    auth = ProviderAuth("openai-codex", "openai", token_url, CLIENT_ID)
    async with httpx.AsyncClient(timeout=5.0, verify=tls) as client:
        refresher = Refresher(store, client, lambda _: auth, clock=now_ms, timeout_s=5.0)
        answered: list[int] = []
        renamed: list[tuple[int, int]] = []
        _watch_renames(store.layout.profiles_path("main"), renamed)

        async def exchange(cred: OAuthCredential) -> Mapping[str, Any]:
            fields = await refresher._exchange(cred)  # the sidecar's own token call and parse
            answered.append(time.perf_counter_ns())
            return fields

        n = 0
        os.write(go, b"g")  # running: the kill delay counts from here
        while True:
            n += 1
            pick = rng.random()
            try:
                if pick < 0.6:
                    answered.clear()
                    renamed.clear()
                    cred = await store.refresh("main", CODEX_ID, exchange, margin_ms=ALWAYS_DUE_MS)
                    if answered and renamed:
                        window, at = renamed[-1][0] - answered[0], renamed[-1][1]
                        line = f"window {window} {at} {cred.refresh.reveal()}\n"
                        os.write(log_fd, line.encode())
                elif pick < 0.8:
                    key = {"type": "api_key", "provider": "openai", "key": f"sk-paste-{seed}-{n}"}
                    store.put_profile_sync("main", PASTED_ID, key)
                else:
                    store.update_state_sync("main", _used)
            except Exception as exc:  # a rejected or lost token: keep writing, the test judges
                os.write(log_fd, f"error {type(exc).__name__}\n".encode())
                await anyio.sleep(0)


def _watch_renames(target: Path, renamed: list[tuple[int, int]]) -> None:
    """Note when a new store file is renamed over ``target``: the end of the loss window."""
    replace = os.replace

    def watched(src: Any, dst: Any) -> None:
        replace(src, dst)
        if Path(dst) == target:
            renamed.append((time.perf_counter_ns(), time.time_ns()))

    os.replace = watched  # type: ignore[assignment] -- this child process only


def _used(state: AuthState) -> AuthState:
    return usage.with_usage(
        state, CODEX_ID, usage.after_success(state.usage.get(CODEX_ID), now_ms())
    )


def _child(state_dir: Path, token_url: str, seed: int, log_path: Path, go: int, tls: Any) -> None:
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    anyio.run(_loop, state_dir, token_url, seed, log_fd, go, tls)


def _trial(
    state_dir: Path, token_url: str, log_path: Path, seed: int, delay_us: int, tls: Any
) -> int:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the protocol loop
        os.close(read_end)
        try:
            _child(state_dir, token_url, seed, log_path, write_end, tls)
        finally:
            os._exit(3)
    os.close(write_end)
    os.read(read_end, 1)  # the child is running its loop
    os.close(read_end)
    time.sleep(delay_us / 1_000_000)  # the random kill point: the delay is the experiment
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return pid


async def _warm(token_url: str, tls: Any) -> None:
    """One request before any fork, so the children start with every lazy import done (the
    loop's executor threads are joined when ``anyio.run`` returns: the fork sees one thread)."""
    async with httpx.AsyncClient(timeout=5.0, verify=tls) as client:
        await client.post(token_url, data={"grant_type": "none"})
    await anyio.to_thread.run_sync(lambda: None)


def main(argv: list[str]) -> int:
    state_dir, token_url, log_path = Path(argv[0]), argv[1], Path(argv[2])
    tls = ssl.create_default_context()  # made once here: loading the CA bundle is slow
    log.configure("error", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the process
    anyio.run(_warm, token_url, tls)
    for thread in threading.enumerate():  # anyio's worker has stopped: wait until it is gone
        if thread is not threading.main_thread():
            thread.join(5)
    assert threading.active_count() == 1, threading.enumerate()
    print("ready", flush=True)
    for line in sys.stdin:
        command, seed, delay_us = line.split()
        assert command == "trial"
        pid = _trial(state_dir, token_url, log_path, int(seed), int(delay_us), tls)
        print(f"killed {pid}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
