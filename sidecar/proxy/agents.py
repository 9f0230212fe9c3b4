"""Which agents exist, asked before anything is read or kept for an agent: a request naming an
agent the state dir does not know costs no store read and leaves no per-agent state (views,
caches, metric labels) behind, so that state stays bounded by the agents that exist.

The list comes from the credential source (agent folders, ``openclaw.json``, the fleet). It is
read again only when an agent not on it is asked for, and then at most once per ``interval_s``:
a new agent is served within that interval, and a request for a known one never waits on a
listing (nor on the fleet's Redis). An agent removed is forgotten at the next listing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

import anyio

from sidecar.errors import UnknownAgent

Listing = Callable[[], Awaitable[Collection[str]]]


class KnownAgents:
    def __init__(
        self,
        listing: Listing,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._listing = listing
        self.interval_s = interval_s
        self._clock = clock
        self._known: frozenset[str] = frozenset()
        self._listed_at: float | None = None
        self._lock = anyio.Lock()

    async def knows(self, agent: str) -> bool:
        if agent in self._known or not self._is_stale():
            return agent in self._known
        async with self._lock:  # one listing at a time; those queued behind it reuse it
            if self._is_stale():
                self._known = frozenset(await self._listing())
                self._listed_at = self._clock()
        return agent in self._known

    async def check(self, agent: str) -> str:
        """``agent``, or ``UnknownAgent`` if the state dir does not know it."""
        if not await self.knows(agent):
            raise UnknownAgent(
                f"agent {agent!r} does not exist: it has no folder in the state dir and is not "
                "in openclaw.json. Store a credential for it (`openclaw-sidecar paste-api-key "
                f"--agent {agent} --provider <provider>`, or login / paste-token), or name an "
                "agent that exists"
            )
        return agent

    def _is_stale(self) -> bool:
        listed = self._listed_at
        return listed is None or self._clock() - listed >= self.interval_s
