"""The local store's profiles plus the fleet's, as one credential source: a fleet profile wins
over a local one of the same id (after ``fleet push`` the local copy has no refresh token), and
each refresh or usage update goes to the source that owns the profile."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sidecar.config import FleetSettings, Settings
from sidecar.errors import ConfigError
from sidecar.log import get_logger
from sidecar.sources.fleet.crypto import load_keyring
from sidecar.sources.fleet.refresh import FleetUnavailable
from sidecar.sources.fleet.store import OWNER_PREFIX, FleetStore
from sidecar.sources.interface import CredentialSource, Exchange, StateUpdate
from sidecar.sources.openclaw.clock import now_ms as local_clock
from sidecar.sources.openclaw.config import OpenClawConfig
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import REFRESH_MARGIN_MS, OAuthCredential
from sidecar.sources.openclaw.views import AgentView, merge_states

log = get_logger("sidecar.fleet")
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 64


class CompositeSource:
    def __init__(self, local: CredentialSource, fleet: FleetStore) -> None:
        self.local = local
        self.fleet = fleet
        # agent -> (local view, fleet view, their merge): the same merged object while neither
        # side changes, so that the proxy's per-view caches hold.
        self._merged: dict[str, tuple[AgentView, AgentView, AgentView]] = {}

    # The local store re-reads openclaw.json and may replace its layout: delegate, never copy.
    @property
    def layout(self) -> Layout:
        return self.local.layout

    @layout.setter
    def layout(self, value: Layout) -> None:
        self.local.layout = value

    @property
    def home(self) -> Path:
        return self.local.home

    @home.setter
    def home(self, value: Path) -> None:
        self.local.home = value

    def config(self) -> OpenClawConfig:
        return self.local.config()

    def agents(self) -> list[str]:
        local = self.local.agents()
        return local + [a for a in self.fleet.known_agents() if a not in local]

    async def all_agents(self) -> set[str]:
        """The local store's agents and the fleet's: those read so far, and Redis's own list (a
        host with an empty state dir knows its fleet agents before their first request)."""
        found = await self.local.all_agents()
        found.update(self.fleet.known_agents())
        with contextlib.suppress(FleetUnavailable):  # the cached ones serve meanwhile
            found.update(await self.fleet.agents_online())
        return found

    async def view(self, agent: str) -> AgentView:
        own, fleet = await self.local.view(agent), await self.fleet.view(agent)
        last = self._merged.get(agent)
        if last is not None and last[0] is own and last[1] is fleet:
            return last[2]
        view = merged(own, fleet)
        self._merged[agent] = (own, fleet, view)
        return view

    def view_sync(self, agent: str) -> AgentView:
        """Without an event loop: the fleet's profiles as last cached (none in a fresh CLI)."""
        own = self.local.view_sync(agent)
        cached = self.fleet.cached_view(agent)
        return own if cached is None else merged(own, cached)

    async def refresh(
        self,
        agent: str,
        profile_id: str,
        exchange: Exchange,
        *,
        rejected_access: str | None = None,
        margin_ms: int = REFRESH_MARGIN_MS,
    ) -> OAuthCredential:
        found = (await self.view(agent)).get(profile_id)
        target: CredentialSource | FleetStore = self.local
        if found is not None and found.owner.startswith(OWNER_PREFIX):
            target = self.fleet
        return await target.refresh(
            agent, profile_id, exchange, rejected_access=rejected_access, margin_ms=margin_ms
        )

    async def update_state(self, agent: str, update: StateUpdate) -> None:
        if agent.startswith(OWNER_PREFIX):
            await self.fleet.update_state(agent.removeprefix(OWNER_PREFIX), update)
        else:
            await self.local.update_state(agent, update)

    async def put_profile(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        """Logins and pastes go to the local store; ``fleet push`` moves them on."""
        return await self.local.put_profile(agent, profile_id, fields)

    def put_profile_sync(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        return self.local.put_profile_sync(agent, profile_id, fields)


def merged(own: AgentView, fleet: AgentView) -> AgentView:
    if not fleet.profiles and fleet.state.is_empty() and fleet.unreadable is None:
        return own
    return AgentView(
        agent=own.agent,
        profiles={**own.profiles, **fleet.profiles},
        state=merge_states([own.state, fleet.state]),
        era=own.era,
        config_order=own.config_order,
        config_profiles=own.config_profiles,
        invalid=own.invalid,
        unreadable=own.unreadable or fleet.unreadable,
    )


def with_fleet(local: CredentialSource, settings: Settings) -> CredentialSource:
    """``local``, or ``local`` plus the fleet when the config has a ``[fleet]`` table."""
    if settings.fleet is None:
        return local
    fleet = open_fleet(
        settings.fleet, clock=local_clock, refresh_timeout_s=settings.refresh.timeout_seconds
    )
    log.info("fleet_configured", origin=fleet.origin, key_id=fleet.keyring.kid)
    return CompositeSource(local, fleet)


def read_url(path: Path) -> str:
    source = f"fleet.url_file ({path})"
    try:
        url = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"{source}: must hold one redis:// or rediss:// URL with a host")
    return url


def public_origin(url: str, prefix: str) -> str:
    """The fleet's name for status and logs: scheme, host, port, db and prefix; never the
    user name or password the URL may carry."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    db = parts.path.strip("/")
    suffix = f"?db={db}" if db not in ("", "0") else ""
    return f"{parts.scheme}://{host}:{parts.port or 6379}/{prefix}{suffix}"


def open_fleet(
    settings: FleetSettings, *, clock: Callable[[], int], refresh_timeout_s: float
) -> FleetStore:
    """Reads ``url_file`` and ``key_file`` (errors name them). The lease outlives a token call
    that runs into its timeout twice over, plus slack for the write-back."""
    url = read_url(settings.url_file)
    keyring = load_keyring(settings.key_file)

    def connect() -> Redis:
        # A bounded pool that makes a burst of requests wait for a connection, not fail.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=COMMAND_TIMEOUT_S,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),  # one retry: a pooled connection Redis closed
        )
        return Redis(connection_pool=pool)

    return FleetStore(
        connect,
        keyring,
        prefix=settings.prefix,
        origin=public_origin(url, settings.prefix),
        clock=clock,
        lease_ttl_ms=int((2 * refresh_timeout_s + 5) * 1000),
    )
