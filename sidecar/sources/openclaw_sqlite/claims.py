"""The sidecar's write-ahead record of its own refresh claims in an SQLite store.

OpenClaw's fence keeps only digests of the claimed tokens: while a claim is open the real
refresh token lives in the claimer's memory, and a claimer killed then loses it for good. So
before the sidecar commits a fence it records the credential it replaces (and, as soon as the
provider answers, the new one) in a 0600 file beside the refresh lock; a later run that finds
the fence still in place puts the record's credential back. The file exists only while a claim
is open (seconds), so no lasting second copy of a refresh token is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sidecar.sources.openclaw import files, locks
from sidecar.sources.openclaw.model import JSONObject

PREFIX = "sidecar-claim-"


@dataclass(frozen=True)
class Claim:
    path: Path  # this record
    database: str
    profile_id: str
    provider: str
    fence: JSONObject
    original: JSONObject
    refreshed: JSONObject | None = None
    pid: int = 0
    starttime: int | None = None

    def is_orphan(self) -> bool:
        """The process that made the claim is gone (same test as OpenClaw's lock files)."""
        if self.pid <= 0 or not locks.process_alive(self.pid):
            return True
        now = locks.process_starttime(self.pid)
        return self.starttime is not None and now is not None and now != self.starttime


def claim_path(lock_dir: Path, database: Path, provider: str, profile_id: str) -> Path:
    key = json.dumps([str(database), provider, profile_id]).encode()
    return lock_dir / f"{PREFIX}{hashlib.sha256(key).hexdigest()[:32]}.json"


def new_claim(
    path: Path,
    database: Path,
    profile_id: str,
    provider: str,
    fence: JSONObject,
    original: JSONObject,
) -> Claim:
    pid = os.getpid()
    return Claim(
        path,
        str(database),
        profile_id,
        provider,
        fence,
        original,
        None,
        pid,
        locks.process_starttime(pid),
    )


def write(claim: Claim) -> None:
    """Durably (fsync, then rename) before the fence is committed or the answer settled."""
    doc = {
        "version": 1,
        "database": claim.database,
        "profileId": claim.profile_id,
        "provider": claim.provider,
        "pid": claim.pid,
        "starttime": claim.starttime,
        "fence": claim.fence,
        "original": claim.original,
        "refreshed": claim.refreshed,
    }
    files.ensure_dir(claim.path.parent, locks.REFRESH_LOCK.dir_mode)
    files.atomic_write(claim.path, (json.dumps(doc) + "\n").encode(), mode=0o600)


def with_refreshed(claim: Claim, refreshed: JSONObject) -> Claim:
    return replace(claim, refreshed=refreshed)


def read(path: Path) -> Claim | None:
    data = files.read_bytes(path)
    if data is None:
        return None
    try:
        doc: Any = json.loads(data)
        return Claim(
            path=path,
            database=str(doc["database"]),
            profile_id=str(doc["profileId"]),
            provider=str(doc["provider"]),
            fence=dict(doc["fence"]),
            original=dict(doc["original"]),
            refreshed=dict(doc["refreshed"]) if isinstance(doc.get("refreshed"), dict) else None,
            pid=int(doc.get("pid") or 0),
            starttime=doc.get("starttime") if isinstance(doc.get("starttime"), int) else None,
        )
    except (ValueError, KeyError, TypeError):
        return None  # not ours or torn: atomic_write makes this a file someone else left


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def all_claims(lock_dir: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        return sorted(p for p in lock_dir.iterdir() if p.name.startswith(PREFIX))
    return []
