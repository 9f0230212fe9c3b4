"""What the page shows, as one JSON document built purely from values: the agents' views, the
in-memory cooldowns, the usage database's windows, hourly series, failures and refreshes.

It names profiles, providers, types, emails, states and times; never a secret, nor a masked
one (``status`` shows the first and last characters of a key; the page does not)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sidecar.sources.openclaw.expiry import expires_at, profile_status
from sidecar.sources.openclaw.model import UsageStats
from sidecar.sources.openclaw.views import AgentView, ProfileView
from sidecar.usage.db import EventRow, WindowRow
from sidecar.usage.queries import Bucket, Failure
from sidecar.usage.windows import label

BUCKET_MS: Final = 3_600_000
BUCKETS: Final = 24
_WINDOWS: Final = (("cooldown", "cooldownUntil"), ("disabled", "disabledUntil"))


@dataclass(frozen=True)
class Usage:
    """What the usage database says (empty when there is none, or it cannot be read)."""

    windows: Mapping[tuple[str, str], Sequence[WindowRow]]
    series: Sequence[Bucket]
    failures: Sequence[Failure]
    events: Sequence[EventRow]
    problem: str | None = None


EMPTY: Final = Usage({}, (), (), ())


def series_start(now_ms: int) -> int:
    """The first of the last day's hourly buckets (the current hour is the last)."""
    return (now_ms // BUCKET_MS - (BUCKETS - 1)) * BUCKET_MS


def cooldown(stats: UsageStats | None, pending_until: int, now_ms: int) -> dict[str, Any] | None:
    """Why and until when a profile rests: the store's latest window (cooldown, disabled,
    blocked) or the sidecar's own estimate of a failure not yet written."""
    found: list[tuple[int, str, str]] = []
    raw = stats.raw if stats is not None else {}
    for kind in ("cooldown", "disabled", "blocked"):
        until = raw.get(f"{kind}Until")
        if isinstance(until, int) and until > now_ms:
            reason = raw.get(f"{kind}Reason")
            found.append((until, kind, reason if isinstance(reason, str) else kind))
    if pending_until > now_ms:
        found.append((pending_until, "cooldown", "failure"))
    if not found:
        return None
    until, kind, reason = max(found)
    return {"until": until, "kind": kind, "reason": reason}


def window_entry(row: WindowRow) -> dict[str, Any]:
    w = row.window
    return {
        "name": label(w),
        "utilization": w.utilization,
        "resetsAt": w.reset_at,
        "status": w.status,
        "seenAt": row.seen_at_ms,
    }


def profile_entry(
    view: ProfileView,
    agent: AgentView,
    now_ms: int,
    pending: Callable[[str, str], int],
    usage: Usage,
) -> dict[str, Any]:
    profile = view.profile
    return {
        "id": view.id,
        "provider": profile.provider,
        "type": profile.type,
        "email": profile.email,
        "owner": view.owner,
        "inherited": view.owner != agent.agent,
        "status": profile_status(profile, now_ms),
        "expiresAt": expires_at(profile),
        "cooldown": cooldown(agent.state.usage.get(view.id), pending(view.owner, view.id), now_ms),
        "windows": [window_entry(w) for w in usage.windows.get((view.owner, view.id), ())],
    }


def agent_entry(
    agent: AgentView, now_ms: int, pending: Callable[[str, str], int], usage: Usage
) -> dict[str, Any]:
    profiles = sorted(agent.profiles.values(), key=lambda v: (v.profile.provider, v.id))
    return {
        "agent": agent.agent,
        "profiles": [profile_entry(v, agent, now_ms, pending, usage) for v in profiles],
    }


def series(buckets: Sequence[Bucket], agents: Sequence[str], now_ms: int) -> dict[str, Any]:
    """Requests and tokens per agent per hour over the last day, every hour present."""
    start = series_start(now_ms)
    hours = [start + i * BUCKET_MS for i in range(BUCKETS)]
    by_agent = {a: {h: [0, 0] for h in hours} for a in agents}
    for b in buckets:
        if b.start_ms in by_agent.get(b.agent, {}):
            by_agent[b.agent][b.start_ms] = [b.requests, b.tokens]
    return {
        "bucketMs": BUCKET_MS,
        "start": start,
        "agents": {a: [by_agent[a][h] for h in hours] for a in agents},
    }


def recent(usage: Usage, profiles: set[str], agents: set[str]) -> list[dict[str, Any]]:
    """Refreshes and failed requests of the agents shown, newest first."""
    items: list[dict[str, Any]] = [
        {
            "at": e.at_ms,
            "kind": "refresh",
            "outcome": e.outcome,
            "profile": e.profile,
            "provider": e.provider,
        }
        for e in usage.events
        if e.profile in profiles
    ]
    items += [
        {
            "at": f.at_ms,
            "kind": "request",
            "outcome": f.error or f"status {f.status}",
            "status": f.status,
            "agent": f.agent,
            "profile": f.profile,
            "provider": f.provider,
            "model": f.model,
        }
        for f in usage.failures
        if f.agent in agents
    ]
    return sorted(items, key=lambda i: -int(i["at"]))[:30]


def page_state(
    views: Sequence[AgentView],
    errors: Sequence[dict[str, str]],
    now_ms: int,
    pending: Callable[[str, str], int],
    usage: Usage,
) -> dict[str, Any]:
    """The document ``GET /ui/api/state`` answers."""
    names = [v.agent for v in views] + [e["agent"] for e in errors]
    profiles = {p for v in views for p in v.profiles}
    return {
        "now": now_ms,
        "agents": [agent_entry(v, now_ms, pending, usage) for v in views],
        "errors": list(errors),
        "series": series(usage.series, names, now_ms),
        "recent": recent(usage, profiles, set(names)),
        "usageProblem": usage.problem,
    }
