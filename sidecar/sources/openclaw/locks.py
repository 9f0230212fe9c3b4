"""OpenClaw's lock protocol (store spec §5): an exclusively created file whose JSON body names
the holder ``{pid, createdAt, starttime}``, judged stale only by the holder's death.

A ``flock`` would be invisible to OpenClaw, so this is the only lock the store uses. Usable from
sync code (``hold``) and async code (``ahold``: waits with ``anyio.sleep``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from sidecar.errors import StoreLocked
from sidecar.sources.openclaw.files import DIR_MODE, ensure_dir


@dataclass(frozen=True)
class LockPolicy:
    """Retries with exponential backoff and jitter, like the ``retry`` package OpenClaw uses,
    after a first ``quick_for_ms`` of polls every ``quick_ms`` (jittered): a lock is mostly
    held for milliseconds (a write) or one token call, and OpenClaw's first back-off steps
    (100-200 ms, then 200-400 ms...) would make every waiter wait far longer than the holder.
    The quick polls come on top of OpenClaw's budget; each is one failed O_EXCL create."""

    retries: int
    min_delay_ms: int
    max_delay_ms: int
    stale_ms: int
    factor: float = 2.0
    dir_mode: int = DIR_MODE  # of the folders created for the lock file
    quick_ms: int = 0
    quick_for_ms: int = 0

    def delays(self, rng: random.Random) -> Iterator[float]:
        waited = 0.0
        while self.quick_ms and waited < self.quick_for_ms:
            delay = self.quick_ms * (0.5 + rng.random())
            waited += delay
            yield delay / 1000
        for attempt in range(self.retries):
            base = self.min_delay_ms * self.factor**attempt
            yield min(base * (1 + rng.random()), self.max_delay_ms) / 1000


# OpenClaw writes its lock files 0644: the body names a pid, nothing secret, and a holder
# running under another UID (a container sharing the volume) must still be able to judge it.
LOCK_FILE_MODE = 0o644
QUICK = {"quick_ms": 10, "quick_for_ms": 1_000}
STORE_LOCK = LockPolicy(retries=10, min_delay_ms=100, max_delay_ms=10_000, stale_ms=30_000, **QUICK)
# OpenClaw creates locks/oauth-refresh/ 0755 (store spec §5).
REFRESH_LOCK = LockPolicy(
    retries=20, min_delay_ms=100, max_delay_ms=10_000, stale_ms=180_000, dir_mode=0o755, **QUICK
)


@dataclass(frozen=True)
class Holder:
    pid: int | None
    created_at_ms: int | None
    starttime: int | None


@dataclass(frozen=True)
class HeldLock:
    path: Path
    inode: int
    body: bytes


# --- pure parts ---------------------------------------------------------------------------------


def lock_body(pid: int, now_ms: int, starttime: int | None) -> bytes:
    created = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    doc: dict[str, object] = {
        "pid": pid,
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now_ms % 1000:03d}Z",
    }
    if starttime is not None:
        doc["starttime"] = starttime
    return (json.dumps(doc, indent=2) + "\n").encode()  # OpenClaw's body ends with a newline


def parse_holder(data: bytes) -> Holder | None:
    """The holder named by a lock body; ``None`` when the body is not a JSON object."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, int too long
        return None
    if not isinstance(doc, dict):
        return None
    pid, start = doc.get("pid"), doc.get("starttime")
    return Holder(
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
        created_at_ms=_parse_iso_ms(doc.get("createdAt")),
        starttime=start if isinstance(start, int) and not isinstance(start, bool) else None,
    )


def _parse_iso_ms(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def is_stale(
    holder: Holder | None,
    *,
    now_ms: int,
    mtime_ms: int,
    stale_ms: int,
    alive: bool | None,
    starttime: int | None,
) -> bool:
    """OpenClaw's staleness rule. ``alive``/``starttime`` describe ``holder.pid`` now, as seen
    from this PID namespace (``alive`` is None when there is no pid to probe)."""
    if holder is None:
        return False  # not JSON: maybe a writer mid-way, or someone else's file; never stale
    if holder.pid is None:
        return now_ms - (holder.created_at_ms or mtime_ms) > stale_ms
    if alive is False:
        return True
    if holder.starttime is not None:
        return starttime is not None and starttime != holder.starttime
    # Era B bodies carry no starttime: stale also once older than the stale time.
    return now_ms - (holder.created_at_ms or mtime_ms) > stale_ms


# --- process probes -----------------------------------------------------------------------------


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def process_starttime(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``; the command name may hold spaces and parentheses."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


# --- acquiring ----------------------------------------------------------------------------------


def try_acquire(path: Path, *, stale_ms: int, dir_mode: int = DIR_MODE) -> HeldLock | None:
    """One attempt: take the lock, or remove it if stale and try once more; None if held."""
    for _ in range(2):
        held = _create(path, dir_mode)
        if held is not None:
            return held
        if not _remove_if_stale(path, stale_ms):
            return None
    return None


def _create(path: Path, dir_mode: int) -> HeldLock | None:
    """Create the lock with its body already in place: the body is written to a private temp
    file that is then hard-linked to the lock name, which fails if the name exists, exactly like
    O_EXCL. A crash can therefore never leave an empty lock that nobody may judge stale."""
    ensure_dir(path.parent, dir_mode)
    pid = os.getpid()
    body = lock_body(pid, int(time.time() * 1000), process_starttime(pid))
    tmp = path.with_name(f".{path.name}.{pid}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LOCK_FILE_MODE)
    try:
        _write_body(fd, body)
        inode = os.fstat(fd).st_ino
    except OSError:
        os.close(fd)
        tmp.unlink()  # a full disk: leave no empty temp file behind, one per attempt
        raise
    os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        return _create_exclusive(path, body)  # a file system without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return HeldLock(path, inode, body)


def _create_exclusive(path: Path, body: bytes) -> HeldLock | None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LOCK_FILE_MODE)
    except FileExistsError:
        return None
    try:
        _write_body(fd, body)
        return HeldLock(path, os.fstat(fd).st_ino, body)
    except OSError:
        path.unlink()  # ours and incomplete: a body that is not JSON would never go stale
        raise
    finally:
        os.close(fd)


def _write_body(fd: int, body: bytes) -> None:
    """The whole body or an error: a short write on a full disk counts as ENOSPC."""
    if os.write(fd, body) != len(body):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _remove_if_stale(path: Path, stale_ms: int) -> bool:
    try:
        st = path.stat()
        if path.is_dir():  # era A: proper-lockfile's lock folder, refreshed by mtime
            return _remove_stale_folder(path, st.st_mtime_ns // 1_000_000, stale_ms)
        data = path.read_bytes()
    except FileNotFoundError:
        return True  # released meanwhile: try again
    holder = parse_holder(data)
    pid = holder.pid if holder else None
    stale = is_stale(
        holder,
        now_ms=int(time.time() * 1000),
        mtime_ms=st.st_mtime_ns // 1_000_000,
        stale_ms=stale_ms,
        alive=process_alive(pid) if pid else None,
        starttime=process_starttime(pid) if pid else None,
    )
    if stale:
        _unlink_if_same(path, st.st_ino)
    return stale


def _remove_stale_folder(path: Path, mtime_ms: int, stale_ms: int) -> bool:
    if time.time() * 1000 - mtime_ms <= stale_ms:
        return False
    with contextlib.suppress(OSError):
        path.rmdir()
    return True


def _unlink_if_same(path: Path, inode: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_ino == inode:
            path.unlink()


def release(held: HeldLock) -> None:
    """Unlink the lock only if it is still the file we created, with the body we wrote."""
    try:
        st = held.path.stat()
        if st.st_ino == held.inode and held.path.read_bytes() == held.body:
            held.path.unlink()
    except FileNotFoundError:
        pass


def _attempt(path: Path, policy: LockPolicy) -> HeldLock | None:
    return try_acquire(path, stale_ms=policy.stale_ms, dir_mode=policy.dir_mode)


def _locked_error(path: Path) -> StoreLocked:
    holder = None
    with contextlib.suppress(OSError):
        holder = parse_holder(path.read_bytes())
    who = f"process {holder.pid}" if holder and holder.pid else "another process"
    return StoreLocked(
        f"{path} is held by {who}; gave up waiting. Retry, or remove the lock "
        "file if that process is gone"
    )


@contextlib.contextmanager
def hold(path: Path, policy: LockPolicy, *, rng: random.Random | None = None) -> Iterator[HeldLock]:
    held = _attempt(path, policy)
    for delay in policy.delays(rng or random.Random()):  # noqa: S311 - jitter, not crypto
        if held is not None:
            break
        time.sleep(delay)
        held = _attempt(path, policy)
    if held is None:
        raise _locked_error(path)
    try:
        yield held
    finally:
        release(held)


@contextlib.asynccontextmanager
async def ahold(
    path: Path, policy: LockPolicy, *, rng: random.Random | None = None
) -> AsyncIterator[HeldLock]:
    held = await anyio.to_thread.run_sync(_attempt, path, policy)
    for delay in policy.delays(rng or random.Random()):  # noqa: S311 - jitter, not crypto
        if held is not None:
            break
        await anyio.sleep(delay)
        held = await anyio.to_thread.run_sync(_attempt, path, policy)
    if held is None:
        raise _locked_error(path)
    try:
        yield held
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(release, held)
