"""The fleet's Redis as a credential source: OAuth profiles shared by sidecars on many hosts.

Redis is the source of truth. Each host caches an agent's records and re-reads them only when
the agent's write counter moved (one GET per ``check_interval_s``), so a token another host
refreshed arrives without a token call. A refresh runs under a lease (``fleet_records``);
waiters adopt what the holder wrote. With Redis unreachable, cached tokens that are still valid
keep being served, and nothing is refreshed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from sidecar.crypto import Keyring
from sidecar.errors import NoProfile, RefreshUnavailable, StoreError
from sidecar.log import get_logger
from sidecar.store import fleet_records as rec
from sidecar.store import model
from sidecar.store.era import Era
from sidecar.store.fleet_lease import Lease, LeaseClient
from sidecar.store.model import AuthState, OAuthCredential
from sidecar.store.source import Exchange, StateUpdate
from sidecar.store.views import AgentView, ProfileView

log = get_logger("sidecar.fleet")
OWNER_PREFIX = "fleet:"  # a ProfileView.owner "fleet:<agent>" can never be a local agent id
VALID_SLACK_MS = 0  # while Redis is away (or another host refreshes), served until it expires


class FleetUnavailable(RefreshUnavailable):
    """Redis cannot be reached (or timed out); nothing was refreshed."""


def owner_of(agent: str) -> str:
    return OWNER_PREFIX + agent


@dataclass
class _Cached:
    gen: str | None
    checked: float  # time.monotonic() of the last version check
    records: dict[str, rec.Record] = field(default_factory=dict)
    state: AuthState = field(default_factory=AuthState)
    error: StoreError | None = None  # a record that did not decrypt: every view raises it
    # The view last built from these records, and the ``_unsaved`` epoch it overlaid: one
    # object for as long as nothing changes, so the proxy's per-view rank cache keeps hitting.
    view: AgentView | None = None
    view_epoch: int = -1


class FleetStore:
    """``connect()`` returns a new client (called lazily, inside the running event loop)."""

    def __init__(
        self,
        connect: Callable[[], Redis],
        keyring: Keyring,
        *,
        prefix: str,
        origin: str,
        clock: Callable[[], int],
        lease_ttl_ms: int = 65_000,
        check_interval_s: float = 0.25,
        retry_after_s: float = 1.0,
        poll_s: float = 0.05,
    ) -> None:
        self.keys = rec.Keys(prefix)
        self.keyring = keyring
        self.origin = origin
        self.clock = clock
        self.lease_ttl_ms = lease_ttl_ms
        self.check_interval_s = check_interval_s
        self.retry_after_s = retry_after_s
        self.poll_s = poll_s
        self._connect = connect
        self._client: Redis | None = None
        self._cache: dict[str, _Cached] = {}
        self._checking: dict[str, anyio.Lock] = {}
        self._down_since: float | None = None
        self._unsaved: dict[tuple[str, str], tuple[int, int, dict[str, Any]]] = {}
        self._unreleased: list[Lease] = []
        self._unsaved_epoch = 0  # moves whenever ``_unsaved`` does

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = self._connect()
        return self._client

    @property
    def leases(self) -> LeaseClient:
        return LeaseClient(self.client, self.keys, self.keyring)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None

    @contextlib.asynccontextmanager
    async def reachable(self) -> AsyncIterator[None]:
        """Translates Redis's errors (never holding a secret) into ``FleetUnavailable``."""
        try:
            yield
        except (RedisError, OSError) as exc:
            if self._down_since is None:
                log.warning("fleet_unreachable", origin=self.origin, error=type(exc).__name__)
            self._down_since = time.monotonic()
            raise FleetUnavailable(
                f"the fleet's Redis ({self.origin}) cannot be reached ({type(exc).__name__}); "
                "profiles are served from the cache while their tokens stay valid"
            ) from exc
        if self._down_since is not None:
            log.info("fleet_reachable", origin=self.origin)
            self._down_since = None

    def _in_backoff(self) -> bool:
        since = self._down_since
        return since is not None and time.monotonic() - since < self.retry_after_s

    # --- reading -------------------------------------------------------------------------------

    def known_agents(self) -> list[str]:
        return sorted(self._cache)

    async def agents_online(self) -> list[str]:
        async with self.reachable():
            return sorted(_text(a) for a in await self.client.smembers(self.keys.agents))

    async def view(self, agent: str) -> AgentView:
        """The agent's fleet profiles; the cached ones when Redis is away."""
        cached = self._cache.get(agent)
        if not self._is_fresh(cached) and not self._in_backoff():
            # One version check per agent at a time; the requests queued behind it reuse it.
            async with self._checking.setdefault(agent, anyio.Lock()):
                cached = self._cache.get(agent)
                if not self._is_fresh(cached) and not self._in_backoff():
                    with contextlib.suppress(FleetUnavailable):
                        cached = await self._revalidate(agent, cached)
        if cached is None:  # never read: not "no profiles", but "the fleet's are unknown"
            return AgentView(
                agent=agent,
                profiles={},
                state=AuthState(),
                era=Era.NONE,
                unreadable=FleetUnavailable(
                    f"the fleet's Redis ({self.origin}) has not been reached since start-up, so "
                    f"agent {agent}'s fleet profiles are not known yet; retry"
                ),
            )
        if cached.error is not None:
            raise cached.error
        return self._view_of(agent, cached)

    def _is_fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and time.monotonic() - cached.checked < self.check_interval_s

    def cached_view(self, agent: str) -> AgentView | None:
        cached = self._cache.get(agent)
        return None if cached is None or cached.error else self._view_of(agent, cached)

    def _view_of(self, agent: str, cached: _Cached) -> AgentView:
        if cached.view is not None and cached.view_epoch == self._unsaved_epoch:
            return cached.view
        profiles = {
            pid: ProfileView(self._overlay(r).profile, owner_of(agent), self.origin)
            for pid, r in cached.records.items()
        }
        view = AgentView(agent=agent, profiles=profiles, state=cached.state, era=Era.NONE)
        cached.view, cached.view_epoch = view, self._unsaved_epoch
        return view

    def _overlay(self, record: rec.Record) -> rec.Record:
        """A credential refreshed while Redis was away is served until it is saved."""
        unsaved = self._unsaved.get((record.agent, record.profile_id))
        if unsaved is None or unsaved[0] != record.version:
            return record
        entry = model.parse_entry(record.profile_id, unsaved[2])
        return record if isinstance(entry, model.InvalidEntry) else replace(record, profile=entry)

    async def _revalidate(self, agent: str, cached: _Cached | None) -> _Cached:
        async with self.reachable():
            await self._save_unsaved(agent)
            await self._release_pending()
            gen = _opt_text(await self.client.get(self.keys.gen(agent)))
            if cached is not None and cached.gen == gen:
                cached.checked = time.monotonic()
                return cached
            loaded = await self._load(agent, gen)
        self._cache[agent] = loaded
        return loaded

    async def _load(self, agent: str, gen: str | None) -> _Cached:
        ids = sorted(_text(p) for p in await self.client.smembers(self.keys.index(agent)))
        async with self.client.pipeline(transaction=False) as pipe:
            for pid in ids:
                pipe.hgetall(self.keys.profile(agent, pid))
            pipe.get(self.keys.state(agent))
            *hashes, state = await pipe.execute()
        loaded = _Cached(gen, time.monotonic())
        if state:
            with contextlib.suppress(model.StoreFormatError):
                loaded.state = model.parse_state(state)
        try:
            for pid, raw in zip(ids, hashes, strict=True):
                if raw:
                    loaded.records[pid] = self.decode(agent, pid, _texts(raw))
        except StoreError as exc:
            log.error("fleet_profile_unreadable", agent=agent, error=exc.message)
            loaded.error = exc
        return loaded

    async def load(self, agent: str) -> tuple[list[rec.Record], StoreError | None]:
        """The agent's records straight from Redis, and the error of one that did not open."""
        async with self.reachable():
            gen = _opt_text(await self.client.get(self.keys.gen(agent)))
            loaded = await self._load(agent, gen)
        return list(loaded.records.values()), loaded.error

    def decode(self, agent: str, pid: str, raw: Mapping[str, str]) -> rec.Record:
        return rec.decode(self.keyring, self.keys, agent, pid, raw)

    async def read(self, agent: str, pid: str) -> rec.Record | None:
        """One record straight from Redis (no cache)."""
        async with self.reachable():
            raw = _texts(await self.client.hgetall(self.keys.profile(agent, pid)))
        return self.decode(agent, pid, raw) if raw else None

    # --- refreshing ----------------------------------------------------------------------------

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
            if any(who == agent for who, _ in self._unsaved):
                async with self.reachable():
                    await self._save_unsaved(agent)
            return await self._refresh_online(
                agent, profile_id, exchange, rejected_access, margin_ms
            )
        except FleetUnavailable:
            cached = self._cached_oauth(agent, profile_id)
            if cached is not None and self._still_valid(cached, rejected_access):
                return cached  # serve on; the refresh waits for Redis and its lease
            raise

    async def _refresh_online(
        self, agent: str, pid: str, exchange: Exchange, rejected: str | None, margin_ms: int
    ) -> OAuthCredential:
        lease, record = await self._lease_or_adopt(agent, pid, rejected, margin_ms)
        if lease is None:
            return self._remember(record)
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
            async with self.reachable():
                await self.leases.release(lease)
        except FleetUnavailable:
            self._unreleased.append(lease)

    async def _release_pending(self) -> None:
        for lease in list(self._unreleased):
            if time.monotonic() < lease.expires_at:
                await self.leases.release(lease)
            with contextlib.suppress(ValueError):
                self._unreleased.remove(lease)

    async def _exchange_under(
        self, lease: Lease, exchange: Exchange, rejected: str | None, margin_ms: int
    ) -> OAuthCredential:
        record = await self._must_read(lease.agent, lease.profile_id)  # someone may have won
        if self._adoptable(_oauth(record), rejected, margin_ms):
            return self._remember(record)
        fields = await self._exchange(record, exchange, margin_ms)
        if isinstance(fields, rec.Record):
            return self._remember(fields)
        return await self._write_back(lease, record, model.merge_fields(record.fields, fields))

    async def _keep_alive(self, lease: Lease) -> None:
        """Renews the lease every third of its TTL while the token call runs (which may
        outlast the request that started it); a holder that dies stops renewing, and its lease
        lapses one TTL later."""
        while True:
            await anyio.sleep(self.lease_ttl_ms / 3000)
            with contextlib.suppress(FleetUnavailable):
                async with self.reachable():
                    await self.leases.renew(lease, self.lease_ttl_ms)

    async def _lease_or_adopt(
        self, agent: str, pid: str, rejected: str | None, margin_ms: int
    ) -> tuple[Lease | None, rec.Record]:
        """The lease, or a record to adopt: fresh enough, or still valid while another host
        refreshes. A dead holder's lease lapses after its TTL and is then taken over."""
        deadline = time.monotonic() + self.lease_ttl_ms / 1000 + 5
        if self._unreleased:
            async with self.reachable():
                await self._release_pending()
        while True:
            record = await self._must_read(agent, pid)
            cred = _oauth(record)
            if self._adoptable(cred, rejected, margin_ms):
                return None, record
            async with self.reachable():
                lease = await self.leases.acquire(agent, pid, self.lease_ttl_ms)
            if lease is not None or self._still_valid(cred, rejected):
                return lease, record
            if time.monotonic() > deadline:
                raise FleetUnavailable(
                    f"another sidecar held the refresh lease of fleet profile {pid} (agent "
                    f"{agent}) past its TTL; try again"
                )
            await anyio.sleep(self.poll_s)

    async def _exchange(
        self, record: rec.Record, exchange: Exchange, margin_ms: int
    ) -> Mapping[str, Any] | rec.Record:
        current = _oauth(record)
        try:
            return await exchange(current)
        except StoreError:
            raise
        except Exception:
            # Rejected: a host outside the lease (its TTL lapsed) may have rotated it first.
            again = await self._must_read(record.agent, record.profile_id)
            cred = _oauth(again)
            if cred.refresh != current.refresh and cred.is_usable(self.clock(), margin_ms):
                return again
            raise

    async def _write_back(
        self, lease: Lease, record: rec.Record, fields: dict[str, Any]
    ) -> OAuthCredential:
        """Compare-and-set on the record's version, retried while the lease lasts; if Redis
        stays away, the credential is kept in memory and saved when Redis returns."""
        key = (record.agent, record.profile_id)
        self._unsaved[key] = (record.version, lease.fence, fields)
        self._unsaved_epoch += 1
        self._remember(record)
        while True:
            try:
                async with self.reachable():
                    await self._save_unsaved(record.agent, owner=lease.owner)
                break
            except FleetUnavailable:
                if time.monotonic() > lease.expires_at - 1:
                    log.error("fleet_write_deferred", agent=record.agent, profile=record.profile_id)
                    break
                await anyio.sleep(self.poll_s * 4)
        newest = self._cached_oauth(record.agent, record.profile_id)
        return newest if newest is not None else _oauth(self._overlay(record))

    async def _save_unsaved(self, agent: str, owner: str = "") -> None:
        for key, entry in list(self._unsaved.items()):
            (who, pid), (version, fence, fields) = key, entry
            if who != agent or self._unsaved.get(key) is not entry:
                continue  # another agent's, or saved meanwhile by a concurrent caller
            outcome, _ = await self.leases.write(
                agent, pid, fields, version, owner=owner, fence=fence
            )
            if outcome == -1:  # our lease lapsed; the version check alone still protects
                outcome, _ = await self.leases.write(agent, pid, fields, version, fence=fence)
            if self._unsaved.get(key) is entry:
                del self._unsaved[key]
                self._unsaved_epoch += 1
            if outcome != 1:
                log.warning(
                    "fleet_write_refused",
                    agent=agent,
                    profile=pid,
                    reason=rec.WRITE_OUTCOMES[outcome],
                )
            # Replaced only once the reload succeeded: Redis may go away right here, and the
            # cached profiles must keep serving meanwhile (an emptied cache answered 404).
            await self._revalidate_quietly(agent)

    async def _revalidate_quietly(self, agent: str) -> None:
        gen = _opt_text(await self.client.get(self.keys.gen(agent)))
        self._cache[agent] = await self._load(agent, gen)

    async def _must_read(self, agent: str, pid: str) -> rec.Record:
        found = await self.read(agent, pid)
        if found is None:
            raise NoProfile(f"fleet profile {pid} of agent {agent} is no longer in the fleet")
        return found

    def _remember(self, record: rec.Record) -> OAuthCredential:
        """Caches what a refresh read, so it is served even if Redis then goes away."""
        cached = self._cache.setdefault(record.agent, _Cached(None, 0.0))
        known = cached.records.get(record.profile_id)
        if known is None or record.version >= known.version:
            cached.records[record.profile_id] = record
            cached.view = None
        return _oauth(self._overlay(record))

    def _cached_oauth(self, agent: str, pid: str) -> OAuthCredential | None:
        cached = self._cache.get(agent)
        found = cached.records.get(pid) if cached is not None else None
        profile = self._overlay(found).profile if found is not None else None
        return profile if isinstance(profile, OAuthCredential) else None

    def _adoptable(self, cred: OAuthCredential, rejected: str | None, margin_ms: int) -> bool:
        return cred.is_usable(self.clock(), margin_ms) and cred.access.reveal() != rejected

    def _still_valid(self, cred: OAuthCredential, rejected: str | None) -> bool:
        return cred.is_usable(self.clock(), VALID_SLACK_MS) and cred.access.reveal() != rejected

    # --- usage state ---------------------------------------------------------------------------

    async def update_state(self, agent: str, update: StateUpdate) -> None:
        """Optimistic (WATCH/MULTI): the state carries no secret, so it is plain JSON."""
        await self.view(agent)  # a key that does not open the agent's records writes nothing
        key = self.keys.state(agent)
        async with self.reachable(), self.client.pipeline(transaction=True) as pipe:
            for _ in range(10):
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    state = model.parse_state(raw) if raw else AuthState()
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, model.dump_state(update(state)).decode())
                    pipe.incr(self.keys.gen(agent))
                    await pipe.execute()
                    return
                except WatchError:
                    continue
        raise FleetUnavailable(f"the fleet's usage state of agent {agent} kept changing; retry")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _opt_text(value: bytes | str | None) -> str | None:
    return None if value is None else _text(value)


def _texts(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _oauth(record: rec.Record) -> OAuthCredential:
    if not isinstance(record.profile, OAuthCredential):
        raise NoProfile(f"fleet profile {record.profile_id} is not an OAuth profile")
    return record.profile
