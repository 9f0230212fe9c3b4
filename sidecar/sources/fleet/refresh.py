"""Refreshing a fleet profile under its Redis lease: take the lease or adopt what another host
wrote, exchange the refresh token while renewing the lease, write back by compare-and-set on
the record's version, release only our own lease. With Redis away, a refreshed credential is
kept in memory and saved (and a lease we could not release is released) once it is back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio

from sidecar.errors import NoProfile, RefreshUnavailable, StoreError
from sidecar.log import get_logger
from sidecar.sources.fleet import records as rec
from sidecar.sources.fleet.lease import Lease, LeaseClient
from sidecar.sources.interface import Exchange
from sidecar.sources.openclaw import model
from sidecar.sources.openclaw.model import OAuthCredential

log = get_logger("sidecar.fleet")
VALID_SLACK_MS = 0  # while Redis is away (or another host refreshes), served until it expires


class FleetUnavailable(RefreshUnavailable):
    """Redis cannot be reached (or timed out); nothing was refreshed."""


class FleetHost(Protocol):
    """What the refresh needs of its store (``store.FleetStore``), so that this module does not
    import the store that uses it."""

    lease_ttl_ms: int
    poll_s: float
    clock: Callable[[], int]

    @property
    def leases(self) -> LeaseClient: ...

    def reachable(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    def remember(self, record: rec.Record) -> OAuthCredential: ...

    def cached_oauth(self, agent: str, pid: str) -> OAuthCredential | None: ...

    def overlay(self, record: rec.Record) -> rec.Record: ...

    async def reload(self, agent: str) -> None: ...

    async def read(self, agent: str, pid: str) -> rec.Record | None: ...


class FleetRefresher:
    """The refresh half of a ``FleetStore``; ``unsaved`` holds credentials refreshed while Redis
    was away (``FleetStore.overlay`` serves them), ``unreleased`` the leases not yet released."""

    def __init__(self, store: FleetHost) -> None:
        self.store = store
        self.unsaved: dict[tuple[str, str], tuple[int, int, dict[str, Any]]] = {}
        self.unsaved_epoch = 0  # moves whenever ``unsaved`` does
        self.unreleased: list[Lease] = []

    async def refresh(
        self,
        agent: str,
        profile_id: str,
        exchange: Exchange,
        *,
        rejected_access: str | None = None,
        margin_ms: int = model.REFRESH_MARGIN_MS,
    ) -> OAuthCredential:
        try:
            if any(who == agent for who, _ in self.unsaved):
                async with self.store.reachable():
                    await self.save_unsaved(agent)
            return await self._online(agent, profile_id, exchange, rejected_access, margin_ms)
        except FleetUnavailable:
            cached = self.store.cached_oauth(agent, profile_id)
            if cached is not None and self._still_valid(cached, rejected_access):
                return cached  # serve on; the refresh waits for Redis and its lease
            raise

    async def _online(
        self, agent: str, pid: str, exchange: Exchange, rejected: str | None, margin_ms: int
    ) -> OAuthCredential:
        lease, record = await self._lease_or_adopt(agent, pid, rejected, margin_ms)
        if lease is None:
            return self.store.remember(record)
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_alive, lease)
                try:
                    cred = await self._exchange_under(lease, exchange, rejected, margin_ms)
                except Exception as exc:  # raised as itself, not inside the group's ExceptionGroup
                    failure = exc
                finally:
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._release(lease)
        if failure is not None:
            raise failure
        return cred

    async def _release(self, lease: Lease) -> None:
        """Compare-and-delete; with Redis away, kept to release as soon as it is back (a restarted
        Redis still holds the lease, and every host would otherwise wait out its TTL)."""
        try:
            async with self.store.reachable():
                await self.store.leases.release(lease)
        except FleetUnavailable:
            self.unreleased.append(lease)

    async def release_pending(self) -> None:
        for lease in list(self.unreleased):
            if time.monotonic() < lease.expires_at:
                await self.store.leases.release(lease)
            with contextlib.suppress(ValueError):
                self.unreleased.remove(lease)

    async def _exchange_under(
        self, lease: Lease, exchange: Exchange, rejected: str | None, margin_ms: int
    ) -> OAuthCredential:
        record = await self._must_read(lease.agent, lease.profile_id)  # someone may have won
        if self._adoptable(oauth_of(record), rejected, margin_ms):
            return self.store.remember(record)
        fields = await self._exchange(record, exchange, margin_ms)
        if isinstance(fields, rec.Record):
            return self.store.remember(fields)
        return await self._write_back(lease, record, model.merge_fields(record.fields, fields))

    async def _keep_alive(self, lease: Lease) -> None:
        """Renews the lease every third of its TTL while the token call runs (which may
        outlast the request that started it); a holder that dies stops renewing, and its lease
        lapses one TTL later."""
        while True:
            await anyio.sleep(self.store.lease_ttl_ms / 3000)
            with contextlib.suppress(FleetUnavailable):
                async with self.store.reachable():
                    await self.store.leases.renew(lease, self.store.lease_ttl_ms)

    async def _lease_or_adopt(
        self, agent: str, pid: str, rejected: str | None, margin_ms: int
    ) -> tuple[Lease | None, rec.Record]:
        """The lease, or a record to adopt: fresh enough, or still valid while another host
        refreshes. A dead holder's lease lapses after its TTL and is then taken over."""
        deadline = time.monotonic() + self.store.lease_ttl_ms / 1000 + 5
        if self.unreleased:
            async with self.store.reachable():
                await self.release_pending()
        while True:
            record = await self._must_read(agent, pid)
            cred = oauth_of(record)
            if self._adoptable(cred, rejected, margin_ms):
                return None, record
            async with self.store.reachable():
                lease = await self.store.leases.acquire(agent, pid, self.store.lease_ttl_ms)
            if lease is not None or self._still_valid(cred, rejected):
                return lease, record
            if time.monotonic() > deadline:
                raise FleetUnavailable(
                    f"another sidecar held the refresh lease of fleet profile {pid} (agent "
                    f"{agent}) past its TTL; try again"
                )
            await anyio.sleep(self.store.poll_s)

    async def _exchange(
        self, record: rec.Record, exchange: Exchange, margin_ms: int
    ) -> Mapping[str, Any] | rec.Record:
        current = oauth_of(record)
        try:
            return await exchange(current)
        except StoreError:
            raise
        except Exception:
            # Rejected: a host outside the lease (its TTL lapsed) may have rotated it first.
            again = await self._must_read(record.agent, record.profile_id)
            cred = oauth_of(again)
            if cred.refresh != current.refresh and cred.is_usable(self.store.clock(), margin_ms):
                return again
            raise

    async def _write_back(
        self, lease: Lease, record: rec.Record, fields: dict[str, Any]
    ) -> OAuthCredential:
        """Compare-and-set on the record's version, retried while the lease lasts; if Redis
        stays away, the credential is kept in memory and saved when Redis returns."""
        key = (record.agent, record.profile_id)
        self.unsaved[key] = (record.version, lease.fence, fields)
        self.unsaved_epoch += 1
        self.store.remember(record)
        while True:
            try:
                async with self.store.reachable():
                    await self.save_unsaved(record.agent, owner=lease.owner)
                break
            except FleetUnavailable:
                if time.monotonic() > lease.expires_at - 1:
                    log.error("fleet_write_deferred", agent=record.agent, profile=record.profile_id)
                    break
                await anyio.sleep(self.store.poll_s * 4)
        newest = self.store.cached_oauth(record.agent, record.profile_id)
        return newest if newest is not None else oauth_of(self.store.overlay(record))

    async def save_unsaved(self, agent: str, owner: str = "") -> None:
        for key, entry in list(self.unsaved.items()):
            (who, pid), (version, fence, fields) = key, entry
            if who != agent or self.unsaved.get(key) is not entry:
                continue  # another agent's, or saved meanwhile by a concurrent caller
            outcome, _ = await self.store.leases.write(
                agent, pid, fields, version, owner=owner, fence=fence
            )
            if outcome == -1:  # our lease lapsed; the version check alone still protects
                outcome, _ = await self.store.leases.write(agent, pid, fields, version, fence=fence)
            if self.unsaved.get(key) is entry:
                del self.unsaved[key]
                self.unsaved_epoch += 1
            if outcome != 1:
                log.warning(
                    "fleet_write_refused",
                    agent=agent,
                    profile=pid,
                    reason=rec.WRITE_OUTCOMES[outcome],
                )
            # Replaced only once the reload succeeded: Redis may go away right here, and the
            # cached profiles must keep serving meanwhile (an emptied cache answered 404).
            await self.store.reload(agent)

    async def _must_read(self, agent: str, pid: str) -> rec.Record:
        found = await self.store.read(agent, pid)
        if found is None:
            raise NoProfile(f"fleet profile {pid} of agent {agent} is no longer in the fleet")
        return found

    def _adoptable(self, cred: OAuthCredential, rejected: str | None, margin_ms: int) -> bool:
        return cred.is_usable(self.store.clock(), margin_ms) and cred.access.reveal() != rejected

    def _still_valid(self, cred: OAuthCredential, rejected: str | None) -> bool:
        return (
            cred.is_usable(self.store.clock(), VALID_SLACK_MS) and cred.access.reveal() != rejected
        )


def oauth_of(record: rec.Record) -> OAuthCredential:
    if not isinstance(record.profile, OAuthCredential):
        raise NoProfile(f"fleet profile {record.profile_id} is not an OAuth profile")
    return record.profile
