"""The cache of agent views a file-backed source keeps, so the proxy never re-reads a store per
request: a view stands until its files' signature changes (looked at no more often than every
``check_interval_s``), or until the clock reaches the moment its inheritance may turn."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from sidecar.sources.openclaw.layout import DEFAULT_AGENT
from sidecar.sources.openclaw.model import REFRESH_MARGIN_MS, OAuthCredential
from sidecar.sources.openclaw.views import AgentView

NEVER = 2**62


@dataclass
class _Entry:
    signature: Hashable
    checked_at: float  # time.monotonic() of the last look at the files
    recheck_at: int  # epoch ms after which the view must be merged again
    view: AgentView


class ViewCache:
    def __init__(self, check_interval_s: float, clock: Callable[[], int]) -> None:
        self.check_interval_s = check_interval_s
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def lookup(
        self, agent: str, signature: Callable[[], Hashable], build: Callable[[], AgentView]
    ) -> AgentView:
        """The cached view, looking at the files (``signature``) only once the interval is
        over, and building a new one (``build``) only when they changed."""
        cached = self.fresh(agent)
        if cached is not None:
            return cached
        current = signature()
        return self.matching(agent, current) or self.put(agent, current, build())

    def fresh(self, agent: str) -> AgentView | None:
        """The view, if its files were looked at less than ``check_interval_s`` ago."""
        entry = self._entries.get(agent)
        if entry is None or time.monotonic() - entry.checked_at >= self.check_interval_s:
            return None
        return entry.view if self.clock() < entry.recheck_at else None

    def matching(self, agent: str, signature: Hashable) -> AgentView | None:
        """The view, if its files still have ``signature`` (and marks them looked at)."""
        entry = self._entries.get(agent)
        if entry is None or entry.signature != signature or self.clock() >= entry.recheck_at:
            return None
        entry.checked_at = time.monotonic()
        return entry.view

    def put(self, agent: str, signature: Hashable, view: AgentView) -> AgentView:
        recheck = recheck_at(view, self.clock())
        self._entries[agent] = _Entry(signature, time.monotonic(), recheck, view)
        return view

    def invalidate(self) -> None:
        """Look at the files again on the next read (after our own writes)."""
        for entry in self._entries.values():
            entry.checked_at = -float("inf")


def recheck_at(view: AgentView, now_ms: int) -> int:
    """Inheritance depends on the clock: an agent's own OAuth copy gives way to main's fresher
    one once it stops being usable (store spec §7), so the view is merged again by then."""
    turns = [
        p.profile.expires - REFRESH_MARGIN_MS
        for p in view.profiles.values()
        if p.owner == view.agent != DEFAULT_AGENT
        and isinstance(p.profile, OAuthCredential)
        and p.profile.expires is not None
    ]
    return min((t for t in turns if t > now_ms), default=NEVER)
