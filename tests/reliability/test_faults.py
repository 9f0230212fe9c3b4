"""Faults around a real ``serve`` process: a token endpoint that is down, slow past the timeout,
failing, malformed or incomplete; an upstream that refuses, resets or hangs; a full disk, a
read-only state dir and a half-written store. Each gives its documented error, leaves the old
credential on disk as it was, and another agent is served meanwhile and after.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.sources.openclaw import locks
from tests.e2e.refresh_support import (
    CODEX_ID,
    RESPONSES,
    RESPONSES_BODY,
    expect_oauth,
    oauth_profile,
    profiles_path,
    read_profiles,
    state_path,
    wait_until,
    write_profiles,
)
from tests.e2e.refresh_support import provider_tables as oauth_tables
from tests.e2e.sidecar import Sidecar, free_port, render_config, run_cli, start_sidecar
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream
from tests.reliability.support import NotifyingRegistry, report

pytestmark = pytest.mark.reliability

OTHER_KEY = "sk-other-" + "o" * 24
MAIN_KEY = "sk-main-" + "m" * 24
CHAT: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
OTHER = "/agents/other/openai@openai:other/v1/chat/completions"
MAIN_OPENAI = "/openai/v1/chat/completions"
DOWN = "/down/chat/completions"
TIMEOUT_S = 1  # refresh and upstream read timeout: "slow" is anything past it


@dataclass
class Rig:
    sidecar: Sidecar
    tokens: FakeTokenServer
    upstream: FakeUpstream
    http: httpx.Client

    @property
    def state_dir(self) -> Path:
        return self.sidecar.state_dir

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(self.sidecar.url() + path, json=body or CHAT)

    def lift_disable(self, profile_id: str) -> None:
        """A refused login rests (OpenClaw's auth_permanent disable), and the profile's next
        request is 429 all_profiles_cooling: once the disable is on disk, lift it as signing
        in again would (``cooldowns clear``), so the next case starts from a usable login."""
        path = state_path(self.state_dir)
        assert wait_for(lambda: "disabledUntil" in _usage(path).get(profile_id, {}))
        done = run_cli(["cooldowns", "clear", "--profile-id", profile_id], self.sidecar.env)
        assert done.returncode == 0, done.stderr
        # serve looks at the store's files at most once a second (ViewCache): the next case's
        # request must come after that look. Nothing the sidecar answers shows it, so wait it out.
        time.sleep(STORE_CHECK_S)

    def other_agent_served(self) -> None:
        """A request of another agent (an API key, no write needed) succeeds."""
        response = self.post(OTHER)
        assert response.status_code == 200, response.text
        assert self.upstream.requests[-1].headers["authorization"] == f"Bearer {OTHER_KEY}"


STORE_CHECK_S = 1.1  # a little over serve's check interval of the store's files


def _usage(path: Path) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(path.read_bytes()).get("usageStats", {})
    except FileNotFoundError:
        return {}
    return found


def seed_store(state_dir: Path, tokens: FakeTokenServer) -> None:
    """main: an expired Codex login (every request must refresh), an OpenAI key and a key of a
    provider whose upstream is down; other: its own OpenAI key; work: its own store too."""
    grant = tokens.seed(access_expires_in=-60)
    write_profiles(
        state_dir,
        {
            CODEX_ID: oauth_profile(grant),
            "openai:main": {"type": "api_key", "provider": "openai", "key": MAIN_KEY},
            "down:main": {"type": "api_key", "provider": "down", "key": MAIN_KEY},
        },
    )
    key = {"type": "api_key", "provider": "openai", "key": OTHER_KEY}
    write_profiles(state_dir, {"openai:other": key}, agent="other")
    write_profiles(state_dir, {"openai:work": {**key, "key": MAIN_KEY}}, agent="work")


def start(root: Path, state_dir: Path, tokens: FakeTokenServer, upstream: FakeUpstream) -> Sidecar:
    providers = {
        **oauth_tables(tokens, upstream),
        "openai": {"base_url": upstream.url + "/oa"},
        "down": {"base_url": f"http://127.0.0.1:{free_port()}/v1"},
    }
    port = free_port()
    extra = {
        "refresh": {"timeout_seconds": TIMEOUT_S},
        "upstream": {"read_timeout_seconds": TIMEOUT_S, "connect_timeout_seconds": TIMEOUT_S},
    }
    text = render_config([{"port": port}], providers, extra)
    return start_sidecar(text, [port], state_dir=state_dir, workdir=root)


@contextlib.contextmanager
def rig_at(root: Path, state_dir: Path) -> Iterator[Rig]:
    with (
        FakeTokenServer(registry=NotifyingRegistry()) as tokens,
        FakeUpstream(tokens=tokens) as upstream,
        httpx.Client(timeout=15) as http,
    ):
        expect_oauth(upstream)
        upstream.expect("/oa", [OTHER_KEY, MAIN_KEY])
        if not profiles_path(state_dir).exists():
            seed_store(state_dir, tokens)
        sidecar = start(root, state_dir, tokens, upstream)
        try:
            yield Rig(sidecar, tokens, upstream, http)
        finally:
            sidecar.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One sidecar in front of a token server and an upstream whose modes the tests set."""
    root = tmp_path_factory.mktemp("faults")
    with rig_at(root, root / "state") as running:
        yield running


@pytest.fixture(autouse=True)
def _normal(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends with both fakes behaving."""
    yield
    if "rig" in request.fixturenames:
        running: Rig = request.getfixturevalue("rig")
        running.tokens.set_mode("normal")
        running.upstream.set_mode("normal")


def error_of(response: httpx.Response) -> tuple[int, str | None]:
    assert response.json()["error"]["message"]  # the documented JSON shape, with a message
    return response.status_code, response.headers.get("x-openclaw-sidecar-error")


TOKEN_FAULTS = [
    ("down", {}, 503, "refresh_unavailable"),
    ("500", {}, 503, "refresh_unavailable"),
    ("503", {}, 503, "refresh_unavailable"),
    ("malformed", {}, 503, "refresh_unavailable"),
    ("missing_fields", {}, 503, "refresh_unavailable"),
    ("missing_fields", {"fields": ["access_token", "refresh_token"]}, 503, "refresh_unavailable"),
    ("reject", {}, 401, "reauth_required"),
]


@pytest.mark.parametrize(("mode", "params", "status", "code"), TOKEN_FAULTS)
def test_token_endpoint_faults_keep_the_old_credential(
    rig: Rig, mode: str, params: dict[str, Any], status: int, code: str
) -> None:
    """A failing token endpoint: the documented error, the store file untouched, and another
    agent served while the fault lasts."""
    before = profiles_path(rig.state_dir).read_bytes()
    rig.tokens.set_mode(mode, **params)
    response = rig.post(RESPONSES, dict(RESPONSES_BODY))
    rig.other_agent_served()
    assert error_of(response) == (status, code)
    assert profiles_path(rig.state_dir).read_bytes() == before
    kept = read_profiles(rig.state_dir)[CODEX_ID]["refresh"]
    assert rig.tokens.registry.refresh_tokens[kept].status == "active"
    if code == "reauth_required":
        rig.lift_disable(CODEX_ID)


def test_token_endpoint_slower_than_the_timeout(rig: Rig) -> None:
    """Past the timeout: refresh_unavailable at once and another agent served, while the token
    call goes on; when the provider answers late, its rotation is saved rather than lost, and
    the next request uses it without a token call of its own."""
    before = profiles_path(rig.state_dir).read_bytes()
    rig.tokens.set_mode("hold")
    response = rig.post(RESPONSES, dict(RESPONSES_BODY))
    assert error_of(response) == (503, "refresh_unavailable")
    assert "refresh goes on" in response.json()["error"]["message"]
    rig.other_agent_served()
    assert profiles_path(rig.state_dir).read_bytes() == before
    calls = rig.tokens.calls
    rig.tokens.release()  # the provider answers late; the sidecar is still waiting for it
    registry = rig.tokens.registry
    assert isinstance(registry, NotifyingRegistry)
    assert registry.wait_answered()
    assert wait_for(lambda: profiles_path(rig.state_dir).read_bytes() != before)
    saved = read_profiles(rig.state_dir)[CODEX_ID]["refresh"]
    report("late_rotation", saved_refresh_token=registry.refresh_tokens[saved].status)
    assert registry.refresh_tokens[saved].status == "active"
    assert rig.post(RESPONSES, dict(RESPONSES_BODY)).status_code == 200
    assert rig.tokens.calls == calls + 1
    # The tests after this one start from a due token again.
    grant = rig.tokens.seed(access_expires_in=-60)
    profiles = read_profiles(rig.state_dir)
    write_profiles(rig.state_dir, {**profiles, CODEX_ID: oauth_profile(grant)})


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Bounded poll of a file another process writes (no event crosses the process line)."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.02)
    return True


UPSTREAM_FAULTS = [
    (DOWN, None, {}, 502, "upstream_unavailable"),
    (MAIN_OPENAI, "reset", {"after": 0, "times": 1}, 502, "upstream_unavailable"),
    (MAIN_OPENAI, "hang", {"times": 1}, 504, "upstream_timeout"),
    (MAIN_OPENAI, "slow", {"delay_ms": 2500, "times": 1}, 504, "upstream_timeout"),
]


@pytest.mark.parametrize(("path", "mode", "params", "status", "code"), UPSTREAM_FAULTS)
def test_upstream_faults_give_their_error(
    rig: Rig, path: str, mode: str | None, params: dict[str, Any], status: int, code: str
) -> None:
    """Refused, reset before answering, hanging, slow: the documented error, then another
    agent is served."""
    if mode is not None:
        rig.upstream.set_mode(mode, **params)
    response = rig.post(path)
    assert error_of(response) == (status, code)
    rig.other_agent_served()


def test_upstream_reset_mid_stream_ends_the_stream_cleanly(rig: Rig) -> None:
    """A reset after the first event: the client gets what arrived and a clean end, the
    sidecar logs it, and keeps serving."""
    rig.upstream.set_mode("reset", after=1, times=1)
    with rig.http.stream(
        "POST", rig.sidecar.url() + MAIN_OPENAI, json={**CHAT, "stream": True}
    ) as response:
        body = response.read()
    assert response.status_code == 200
    assert body.startswith(b"data: ")
    assert b"[DONE]" not in body
    wait_until(  # logged once the stream has ended, which the client may see first
        "upstream_stream_failed",
        lambda: any(e.get("event") == "upstream_stream_failed" for e in rig.sidecar.log_events()),
    )
    rig.other_agent_served()


def test_half_written_store_of_one_agent(rig: Rig) -> None:
    """work's store cut mid-write: work gets store_unreadable and its file is left as it is;
    main and other are served."""
    path = profiles_path(rig.state_dir, "work")
    whole = path.read_bytes()
    half = whole[: len(whole) // 2]
    path.write_bytes(half)
    try:
        response = rig.post("/agents/work/openai/v1/chat/completions")
        assert error_of(response) == (500, "store_unreadable")
        assert rig.post(MAIN_OPENAI).status_code == 200
        rig.other_agent_served()
        assert path.read_bytes() == half
    finally:
        path.write_bytes(whole)


def test_half_written_main_store_during_refresh(rig: Rig) -> None:
    """main's store cut mid-write while its token is due: no token call, nothing rewritten."""
    path = profiles_path(rig.state_dir)
    whole = path.read_bytes()
    half = whole[: len(whole) // 2]
    calls = rig.tokens.calls
    path.write_bytes(half)
    try:
        assert error_of(rig.post(RESPONSES, dict(RESPONSES_BODY))) == (500, "store_unreadable")
        assert (rig.tokens.calls, path.read_bytes()) == (calls, half)
    finally:
        path.write_bytes(whole)
    rig.other_agent_served()


def test_after_the_faults_the_refresh_succeeds(rig: Rig) -> None:
    """Once the token endpoint behaves, the kept credential refreshes and the request passes."""
    response = rig.post(RESPONSES, dict(RESPONSES_BODY))
    assert response.status_code == 200, response.text
    stored = read_profiles(rig.state_dir)[CODEX_ID]["refresh"]
    assert rig.tokens.registry.refresh_tokens[stored].status == "active"
    report(
        "faults",
        token_faults=len(TOKEN_FAULTS),
        upstream_faults=len(UPSTREAM_FAULTS) + 1,
        store_faults=2,
    )


# --- the disk ----------------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only; skipped elsewhere)."""
    target = tmp_path / "disk"
    target.mkdir()
    if os.geteuid() != 0 or not _mount(
        "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(target)
    ):
        pytest.skip("mounting a tmpfs needs root")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space") as full:  # noqa: PT012 - ends by raising
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert full.value.errno == errno.ENOSPC
    return filler


def test_disk_full_refuses_before_the_token_call(tmp_path: Path, tiny_disk: Path) -> None:
    """A full disk: the refresh fails before the token endpoint rotates anything, the store is
    as it was, another agent is served; with space again the refresh succeeds."""
    state_dir = tiny_disk / "state"
    with rig_at(tmp_path, state_dir) as rig:
        before = profiles_path(state_dir).read_bytes()
        filler = fill(tiny_disk)
        response = rig.post(RESPONSES, dict(RESPONSES_BODY))
        assert error_of(response) == (500, "store_unreadable")
        assert "disk full" in response.json()["error"]["message"] or "space" in response.text
        assert (rig.tokens.calls, profiles_path(state_dir).read_bytes()) == (0, before)
        rig.other_agent_served()
        assert sorted(p.name for p in state_dir.rglob(".*.tmp")) == []
        filler.unlink()
        assert rig.post(RESPONSES, dict(RESPONSES_BODY)).status_code == 200


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a folder, the same folder mounted read-only): root only, skipped elsewhere."""
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    if os.geteuid() != 0 or not _mount("--bind", str(source), str(view)):
        pytest.skip("a read-only bind mount needs root")
    if not _mount("-o", "remount,ro,bind", str(view)):
        subprocess.run(["umount", "-l", str(view)], check=True)
        pytest.skip("cannot remount read-only here")
    yield source, view
    subprocess.run(["umount", "-l", str(view)], check=True)


def test_read_only_state_dir_refuses_writes(tmp_path: Path, read_only: tuple[Path, Path]) -> None:
    """A read-only state dir: reads serve, a due refresh is store_read_only before any token
    call, the file is unchanged, another agent is served."""
    source, view = read_only
    with FakeTokenServer() as tokens:
        seed_store(source / "state", tokens)
    with rig_at(tmp_path, view / "state") as rig:
        before = profiles_path(view / "state").read_bytes()
        response = rig.post(RESPONSES, dict(RESPONSES_BODY))
        assert error_of(response) == (409, "store_read_only")
        assert (rig.tokens.calls, profiles_path(view / "state").read_bytes()) == (0, before)
        rig.other_agent_served()


@pytest.mark.parametrize("written", [None, 10])
@pytest.mark.parametrize("hard_links", [True, False])
def test_a_lock_that_cannot_be_written_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: int | None, hard_links: bool
) -> None:
    """ENOSPC (or a short write) while writing a lock body: the error surfaces and no file is
    left, neither a temp file nor a lock whose non-JSON body would never go stale."""
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if written is None:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data)[:written])

    if not hard_links:
        monkeypatch.setattr(locks.os, "link", _no_links)
    monkeypatch.setattr(locks.os, "write", full_disk)
    path = tmp_path / "locks" / "auth-profiles.json.lock"
    with pytest.raises(OSError, match="space") as failed:
        locks.try_acquire(path, stale_ms=locks.STORE_LOCK.stale_ms)
    assert failed.value.errno == errno.ENOSPC
    assert list(path.parent.iterdir()) == []


def _no_links(src: object, dst: object) -> None:
    raise OSError(errno.EPERM, "hard links not supported")
