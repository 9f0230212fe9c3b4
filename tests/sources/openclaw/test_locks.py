"""OpenClaw's lock protocol (store spec §5): O_EXCL file, JSON body, staleness by the holder's
death only, release of our own lock only, bounded retries, and waiting without blocking."""

from __future__ import annotations

import json
import os
import random
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from sidecar.errors import StoreLocked
from sidecar.sources.openclaw import locks
from sidecar.sources.openclaw.locks import Holder, LockPolicy, is_stale, lock_body, parse_holder

NOW = 1_767_225_600_000
FAST = LockPolicy(retries=2, min_delay_ms=1, max_delay_ms=2, stale_ms=30_000)


def starttime_of(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (the command name in field 2 may hold spaces and parens)."""
    after_comm = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(after_comm[22 - 3])


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock(path, body: bytes | dict, age_s: float = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body if isinstance(body, bytes) else json.dumps(body, indent=2).encode())
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def test_lock_body_format():
    """Pretty-printed {pid, createdAt (ISO, ms, Z), starttime} with OpenClaw's final newline."""
    assert lock_body(17051, NOW + 268, 615712) == (
        b'{\n  "pid": 17051,\n  "createdAt": "2026-01-01T00:00:00.268Z",\n'
        b'  "starttime": 615712\n}\n'
    )


def test_acquired_lock_names_this_process(tmp_path):
    """The lock file holds our pid, the time now and our /proc starttime."""
    path = tmp_path / "auth-profiles.json.lock"
    before = int(time.time() * 1000)
    with locks.hold(path, FAST):
        body = json.loads(path.read_bytes())
        raw = path.read_text()
    after = int(time.time() * 1000)
    created = body.pop("createdAt")
    assert body == {"pid": os.getpid(), "starttime": starttime_of(os.getpid())}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created)
    assert iso(before - before % 1000) <= created <= iso(after)
    assert raw.startswith('{\n  "pid": ')
    assert not path.exists()


@pytest.mark.parametrize(
    ("holder", "alive", "current", "age_ms", "stale"),
    [
        (Holder(pid=41, created_at_ms=NOW, starttime=100), False, None, 0, True),
        (Holder(pid=41, created_at_ms=NOW, starttime=100), True, 101, 0, True),
        (Holder(pid=41, created_at_ms=NOW - 86_400_000, starttime=100), True, 100, 0, False),
        (Holder(pid=41, created_at_ms=NOW, starttime=100), True, None, 0, False),
        (Holder(pid=None, created_at_ms=NOW - 30_001, starttime=None), None, None, 0, True),
        (Holder(pid=None, created_at_ms=NOW - 1_000, starttime=None), None, None, 0, False),
        (Holder(pid=None, created_at_ms=None, starttime=None), None, None, 30_001, True),
        (Holder(pid=None, created_at_ms=None, starttime=None), None, None, 1_000, False),
        (None, None, None, 86_400_000, False),
        (Holder(pid=41, created_at_ms=NOW - 30_001, starttime=None), True, 100, 0, True),
        (Holder(pid=41, created_at_ms=NOW - 1_000, starttime=None), True, 100, 0, False),
        (Holder(pid=41, created_at_ms=NOW - 1_000, starttime=None), False, None, 0, True),
    ],
    ids=[
        "dead-pid",
        "starttime-differs",
        "same-holder-old",
        "starttime-unknown",
        "no-pid-old",
        "no-pid-fresh",
        "no-pid-old-mtime",
        "no-pid-fresh-mtime",
        "not-json",
        "era-b-old",
        "era-b-fresh",
        "era-b-dead",
    ],
)
def test_staleness_rule(holder, alive, current, age_ms, stale):
    """Stale only by death or a recycled pid; no-pid and era-B bodies also by age; junk never."""
    assert (
        is_stale(
            holder,
            now_ms=NOW,
            mtime_ms=NOW - age_ms,
            stale_ms=30_000,
            alive=alive,
            starttime=current,
        )
        is stale
    )


@pytest.mark.parametrize(
    ("data", "holder"),
    [
        (
            b'{"pid": 7, "createdAt": "2026-01-01T00:00:00.268Z", "starttime": 9}',
            Holder(7, NOW + 268, 9),
        ),
        (b'{"pid": 7, "createdAt": "2026-01-01T00:00:00.268Z"}', Holder(7, NOW + 268, None)),
        (b'{"createdAt": "2026-01-01T00:00:00.000Z"}', Holder(None, NOW, None)),
        (b'{"pid": "7", "createdAt": 5}', Holder(None, None, None)),
        (b'{"pid": true}', Holder(None, None, None)),
        (b"not json", None),
        (b"", None),
        (b"[1]", None),
        (b"[" * 100_000, None),
    ],
    ids=["era-c", "era-b", "no-pid", "wrong-types", "bool-pid", "junk", "empty", "array", "deep"],
)
def test_parse_holder(data, holder):
    """A lock body names its holder; a body that is not a JSON object names nobody."""
    assert parse_holder(data) == holder


@pytest.mark.parametrize(
    ("make_body", "age_s", "taken"),
    [
        (lambda live: {"pid": dead_pid(), "createdAt": iso(NOW), "starttime": 1}, 0, True),
        (
            lambda live: {"pid": live, "createdAt": iso(NOW), "starttime": starttime_of(live) + 1},
            0,
            True,
        ),
        (
            lambda live: {
                "pid": live,
                "createdAt": iso(NOW - 86_400_000),
                "starttime": starttime_of(live),
            },
            86_400,
            False,
        ),
        (lambda live: {"createdAt": iso(int(time.time() * 1000) - 60_000)}, 60, True),
        (lambda live: {"createdAt": iso(int(time.time() * 1000))}, 0, False),
        (lambda live: b"\x00\x01 half a body", 86_400, False),
        (lambda live: {"pid": live, "createdAt": iso(int(time.time() * 1000) - 60_000)}, 60, True),
        (lambda live: {"pid": live, "createdAt": iso(int(time.time() * 1000))}, 0, False),
    ],
    ids=[
        "dead-pid",
        "recycled-pid",
        "live-holder-old",
        "no-pid-old",
        "no-pid-fresh",
        "not-json-old",
        "era-b-old",
        "era-b-fresh",
    ],
)
def test_acquire_over_an_existing_lock(tmp_path, make_body, age_s, taken):
    """A stale lock is removed and taken; a live holder's lock makes us give up, untouched."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = tmp_path / "auth-profiles.json.lock"
        write_lock(path, make_body(live.pid), age_s)
        before = path.read_bytes()
        if taken:
            with locks.hold(path, FAST):
                assert json.loads(path.read_bytes())["pid"] == os.getpid()
            assert not path.exists()
        else:
            with pytest.raises(StoreLocked), locks.hold(path, FAST):
                pytest.fail("acquired a lock that is not stale")
            assert path.read_bytes() == before
    finally:
        live.kill()
        live.wait()


def test_locked_error_names_the_path_and_holder(tmp_path):
    """Giving up after the retries raises StoreLocked naming the lock file and its holder."""
    path = tmp_path / "auth-profiles.json.lock"
    write_lock(
        path, {"pid": os.getpid(), "createdAt": iso(NOW), "starttime": starttime_of(os.getpid())}
    )
    with pytest.raises(StoreLocked) as info, locks.hold(path, FAST):
        pass
    assert (str(path) in info.value.message, str(os.getpid()) in info.value.message) == (True, True)


def test_retries_are_bounded(tmp_path, monkeypatch):
    """hold tries once plus `retries` times, sleeping the policy's delays in between."""
    path = tmp_path / "auth-profiles.json.lock"
    write_lock(
        path, {"pid": os.getpid(), "createdAt": iso(NOW), "starttime": starttime_of(os.getpid())}
    )
    slept: list[float] = []
    monkeypatch.setattr(locks.time, "sleep", slept.append)
    policy = LockPolicy(retries=4, min_delay_ms=100, max_delay_ms=250, stale_ms=30_000)
    with pytest.raises(StoreLocked), locks.hold(path, policy, rng=random.Random(0)):
        pass
    assert slept == list(policy.delays(random.Random(0)))
    assert [0.1 <= d <= 0.25 for d in slept] == [True] * 4


@pytest.mark.parametrize(
    ("policy", "low_s", "high_s"),
    [(locks.STORE_LOCK, 41, 56), (locks.REFRESH_LOCK, 141, 166)],
    ids=["store-about-50s", "refresh-about-2.5min"],
)
def test_policy_totals(policy, low_s, high_s):
    """OpenClaw's budgets: store lock 10 retries (~50 s), refresh lock 20 retries (~2.5 min),
    each after a second of quick polls."""
    totals = [sum(policy.delays(random.Random(seed))) for seed in range(20)]
    assert [low_s <= t <= high_s for t in totals] == [True] * 20


@pytest.mark.parametrize("policy", [locks.STORE_LOCK, locks.REFRESH_LOCK], ids=["store", "refresh"])
def test_the_first_second_polls_every_few_milliseconds(policy):
    """A waiter sees a lock held for one write or one token call go within ~15 ms, not after
    OpenClaw's first 100-200 ms back-off step; then OpenClaw's back-off, all of its retries."""
    delays = list(policy.delays(random.Random(1)))
    quick = delays[: len(delays) - policy.retries]
    assert 65 <= len(quick) <= 200
    assert [0.005 <= d <= 0.015 for d in quick] == [True] * len(quick)
    assert 1.0 <= sum(quick) < 1.02
    assert 0.1 <= delays[len(quick)] <= 0.2


def test_policies():
    """Store lock: 10 retries, 100 ms to 10 s, stale 30 s; refresh lock: 20 retries, stale 180 s."""
    assert [
        (p.retries, p.min_delay_ms, p.max_delay_ms, p.stale_ms)
        for p in (locks.STORE_LOCK, locks.REFRESH_LOCK)
    ] == [(10, 100, 10_000, 30_000), (20, 100, 10_000, 180_000)]


def test_release_removes_our_lock(tmp_path):
    """Leaving the block unlinks the lock."""
    path = tmp_path / "x.lock"
    with locks.hold(path, FAST):
        assert path.exists()
    assert not path.exists()


@pytest.mark.parametrize("how", ["replaced", "rewritten"])
def test_release_keeps_someone_elses_lock(tmp_path, how):
    """If the lock was replaced (new file) or rewritten while we held it, release leaves it."""
    path = tmp_path / "x.lock"
    other = json.dumps({"pid": 1, "createdAt": iso(NOW), "starttime": 1}, indent=2).encode()
    with locks.hold(path, FAST):
        if how == "replaced":
            path.unlink()
            path.write_bytes(other)
        else:
            with open(path, "r+b") as f:
                f.write(other)
                f.truncate()
    assert path.read_bytes() == other


def test_second_acquire_in_the_same_process_waits(tmp_path):
    """The lock excludes a second holder even in the same process (it is not re-entrant)."""
    path = tmp_path / "x.lock"
    with locks.hold(path, FAST):
        assert locks.try_acquire(path, stale_ms=30_000) is None


def test_leftover_lock_of_a_dead_process_is_taken_over(tmp_path):
    """A process that died holding the lock (never released it) does not block us."""
    path = tmp_path / "auth-profiles.json.lock"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sidecar.sources.openclaw import locks\n"
        "held = locks.try_acquire(Path(sys.argv[1]), stale_ms=30_000)\n"
        "assert held is not None\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=os.getcwd())
    left = json.loads(path.read_bytes())
    with locks.hold(path, FAST):
        now = json.loads(path.read_bytes())
    assert (left["pid"] != os.getpid(), now["pid"]) == (True, os.getpid())


def test_refresh_lock_folders_are_0755(tmp_path, umask):
    """locks/ and locks/oauth-refresh/ are created 0755 (spec §5), whatever the umask."""
    path = tmp_path / "locks" / "oauth-refresh" / "sha256-00.lock"
    with locks.hold(path, locks.REFRESH_LOCK):
        modes = [stat.S_IMODE(os.stat(p).st_mode) for p in (path.parent.parent, path.parent)]
    assert modes == [0o755, 0o755]


@pytest.mark.anyio
async def test_ahold_does_not_block_the_event_loop(tmp_path):
    """While one task waits for a lock, another runs, and its release lets the first in."""
    path = tmp_path / "x.lock"
    theirs = locks.try_acquire(path, stale_ms=30_000)
    assert theirs is not None
    policy = LockPolicy(retries=40, min_delay_ms=5, max_delay_ms=20, stale_ms=30_000)
    events: list[str] = []
    waiting = anyio.Event()

    async def waiter() -> None:
        waiting.set()
        async with locks.ahold(path, policy):
            events.append("waiter acquired")

    async def other() -> None:
        await waiting.wait()
        await anyio.sleep(0)  # a checkpoint: the waiter is inside ahold now
        events.append("other ran")
        locks.release(theirs)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            tg.start_soon(other)
    assert (events, path.exists()) == (["other ran", "waiter acquired"], False)


@pytest.mark.anyio
async def test_ahold_gives_up_with_store_locked(tmp_path):
    """The async form has the same bounded retries."""
    path = tmp_path / "x.lock"
    write_lock(
        path, {"pid": os.getpid(), "createdAt": iso(NOW), "starttime": starttime_of(os.getpid())}
    )
    with pytest.raises(StoreLocked):
        async with locks.ahold(path, FAST):
            pytest.fail("acquired a held lock")
