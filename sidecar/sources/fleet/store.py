"""The fleet's Redis as a credential source: OAuth profiles shared by sidecars on many hosts.

Redis is the source of truth. Each host caches an agent's records and re-reads them only when
the agent's write counter moved (one GET per ``check_interval_s``), so a token another host
refreshed arrives without a token call. A refresh runs under a lease (``fleet.refresh``);
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

from sidecar.errors import StoreError
from sidecar.log import get_logger
from sidecar.sources.fleet import records as rec
from sidecar.sources.fleet.crypto import Keyring
from sidecar.sources.fleet.lease import LeaseClient
from sidecar.sources.fleet.refresh import FleetRefresher, FleetUnavailable, oauth_of
from sidecar.sources.interface import Exchange, StateUpdate
from sidecar.sources.openclaw import model
from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import AuthState, OAuthCredential
from sidecar.sources.openclaw.views import AgentView, ProfileView

log = get_logger("sidecar.fleet")
OWNER_PREFIX = "fleet:"  # a ProfileView.owner "fleet:<agent>" can never be a local agent id


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
        self.refresher = FleetRefresher(self)

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
        if cached.view is not None and cached.view_epoch == self.refresher.unsaved_epoch:
            return cached.view
        profiles = {
            pid: ProfileView(self.overlay(r).profile, owner_of(agent), self.origin)
            for pid, r in cached.records.items()
        }
        view = AgentView(agent=agent, profiles=profiles, state=cached.state, era=Era.NONE)
        cached.view, cached.view_epoch = view, self.refresher.unsaved_epoch
        return view

    def overlay(self, record: rec.Record) -> rec.Record:
        """A credential refreshed while Redis was away is served until it is saved."""
        unsaved = self.refresher.unsaved.get((record.agent, record.profile_id))
        if unsaved is None or unsaved[0] != record.version:
            return record
        entry = model.parse_entry(record.profile_id, unsaved[2])
        return record if isinstance(entry, model.InvalidEntry) else replace(record, profile=entry)

    async def _revalidate(self, agent: str, cached: _Cached | None) -> _Cached:
        async with self.reachable():
            await self.refresher.save_unsaved(agent)
            await self.refresher.release_pending()
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
        return await self.refresher.refresh(
            agent, profile_id, exchange, rejected_access=rejected_access, margin_ms=margin_ms
        )

    async def reload(self, agent: str) -> None:
        gen = _opt_text(await self.client.get(self.keys.gen(agent)))
        self._cache[agent] = await self._load(agent, gen)

    def remember(self, record: rec.Record) -> OAuthCredential:
        """Caches what a refresh read, so it is served even if Redis then goes away."""
        cached = self._cache.setdefault(record.agent, _Cached(None, 0.0))
        known = cached.records.get(record.profile_id)
        if known is None or record.version >= known.version:
            cached.records[record.profile_id] = record
            cached.view = None
        return oauth_of(self.overlay(record))

    def cached_oauth(self, agent: str, pid: str) -> OAuthCredential | None:
        cached = self._cache.get(agent)
        found = cached.records.get(pid) if cached is not None else None
        profile = self.overlay(found).profile if found is not None else None
        return profile if isinstance(profile, OAuthCredential) else None

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
