"""The fleet's atomic operations on Redis: take and release a refresh lease, write a record by
compare-and-set on its version, delete one. Each is one Lua script (``fleet.records``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from sidecar.sources.fleet import records as rec
from sidecar.sources.fleet.crypto import Keyring


@dataclass
class Lease:
    agent: str
    profile_id: str
    owner: str  # random: only the one who took the lease can release it
    fence: int  # grows with every lease granted on this profile
    expires_at: float  # time.monotonic() when Redis lets the lease lapse (moved by renew)


class LeaseClient:
    def __init__(self, client: Redis, keys: rec.Keys, keyring: Keyring) -> None:
        self.client = client
        self.keys = keys
        self.keyring = keyring

    async def acquire(self, agent: str, pid: str, ttl_ms: int) -> Lease | None:
        """``SET lease owner NX PX ttl`` and ``INCR fence``, atomically; None if held."""
        owner = secrets.token_hex(16)
        started = time.monotonic()
        fence = await self.client.eval(
            rec.ACQUIRE, 2, self.keys.lease(agent, pid), self.keys.fence(agent, pid), owner, ttl_ms
        )
        if fence is None:
            return None
        return Lease(agent, pid, owner, int(fence), started + ttl_ms / 1000)

    async def release(self, lease: Lease) -> bool:
        """Compare-and-delete: a lease that lapsed and was taken over is left alone."""
        deleted = await self.client.eval(
            rec.RELEASE, 1, self.keys.lease(lease.agent, lease.profile_id), lease.owner
        )
        return bool(deleted)

    async def renew(self, lease: Lease, ttl_ms: int) -> bool:
        """Compare-and-extend, while the holder's token call is still running."""
        started = time.monotonic()
        key = self.keys.lease(lease.agent, lease.profile_id)
        renewed = bool(await self.client.eval(rec.RENEW, 1, key, lease.owner, ttl_ms))
        if renewed:
            lease.expires_at = started + ttl_ms / 1000
        return renewed

    async def holder(self, agent: str, pid: str) -> str | None:
        found = await self.client.get(self.keys.lease(agent, pid))
        return str(found) if found is not None else None

    async def write(
        self,
        agent: str,
        pid: str,
        fields: Mapping[str, Any],
        expected_version: int,
        *,
        owner: str = "",
        fence: int = 0,
    ) -> tuple[int, int]:
        """(outcome, version): outcome 1 written, else a key of ``WRITE_OUTCOMES``. ``owner``
        '' writes without a lease (creating, or saving after the lease lapsed)."""
        sealed = rec.encode(self.keyring, self.keys, agent, pid, fields, expected_version + 1)
        pairs = [item for pair in sealed.items() for item in pair]
        keys = (
            self.keys.profile(agent, pid),
            self.keys.lease(agent, pid),
            self.keys.gen(agent),
            self.keys.index(agent),
            self.keys.agents,
        )
        args: list[str | int] = [expected_version, owner, fence, pid, agent, self.keys.channel]
        args += pairs
        outcome, version = await self.client.eval(rec.WRITE, len(keys), *keys, *args)
        return int(outcome), int(version)

    async def delete(self, lease: Lease, expected_version: int) -> tuple[int, int]:
        agent, pid = lease.agent, lease.profile_id
        keys = (
            self.keys.profile(agent, pid),
            self.keys.lease(agent, pid),
            self.keys.gen(agent),
            self.keys.index(agent),
        )
        args: list[str | int] = [expected_version, lease.owner, pid, self.keys.channel, agent]
        outcome, version = await self.client.eval(rec.DELETE, len(keys), *keys, *args)
        return int(outcome), int(version)
