"""Read-through inheritance (store spec §7), as pure functions; the order of an agent's
profiles is ``order.py``'s.

An agent's view is main's profiles overlaid by its own; each profile remembers its owner (the
store a refresh or a usage update must be written to) and the file it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.errors import SidecarError
from sidecar.sources.openclaw.config import ConfiguredProfile
from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.layout import DEFAULT_AGENT
from sidecar.sources.openclaw.model import (
    AuthState,
    InvalidEntry,
    OAuthCredential,
    Profile,
    UsageStats,
)


@dataclass(frozen=True)
class StoreSnapshot:
    """One agent's own store as read from disk (or from a legacy import, ``imported``)."""

    agent: str
    profiles: Mapping[str, Profile]
    invalid: Sequence[InvalidEntry]
    state: AuthState
    origin: Path  # the file the profiles come from
    era: Era
    imported: bool = False  # built from legacy files; no store file exists yet


@dataclass(frozen=True)
class ProfileView:
    profile: Profile
    owner: str
    origin: Path | str  # the store file, or a fleet's redis://host:port/<prefix>

    @property
    def id(self) -> str:
        return self.profile.id


@dataclass(frozen=True)
class AgentView:
    agent: str
    profiles: Mapping[str, ProfileView]
    state: AuthState
    era: Era
    config_order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config_profiles: Mapping[str, ConfiguredProfile] = field(default_factory=dict)
    invalid: Sequence[tuple[Path, InvalidEntry]] = ()
    # Why some of the agent's profiles could not be read at all (a fleet not reached since
    # start-up): a request that finds no profile answers this error instead of ``no_profile``.
    unreadable: SidecarError | None = None

    def get(self, profile_id: str) -> ProfileView | None:
        return self.profiles.get(profile_id)


def merge_view(
    agent: str,
    own: StoreSnapshot | None,
    main: StoreSnapshot | None,
    *,
    now_ms: int,
    config_order: Mapping[str, tuple[str, ...]] | None = None,
    config_profiles: Mapping[str, ConfiguredProfile] | None = None,
) -> AgentView:
    """Main's profiles ∪ the agent's own (the agent wins on the same id), except that an
    unusable OAuth copy of the agent's loses to a fresher one of main's (store spec §7)."""
    base = main if agent != DEFAULT_AGENT else None
    profiles = _views(base)
    for pid, view in _views(own).items():
        inherited = profiles.get(pid)
        if inherited is None or not _main_is_fresher(view.profile, inherited.profile, now_ms):
            profiles[pid] = view
    snapshots = [s for s in (base, own) if s is not None]
    return AgentView(
        agent=agent,
        profiles=profiles,
        state=merge_states([s.state for s in snapshots]),
        era=own.era if own is not None else (base.era if base else Era.NONE),
        config_order=dict(config_order or {}),
        config_profiles=dict(config_profiles or {}),
        invalid=[(s.origin, e) for s in snapshots for e in s.invalid],
    )


def _views(snapshot: StoreSnapshot | None) -> dict[str, ProfileView]:
    if snapshot is None:
        return {}
    return {
        pid: ProfileView(profile, snapshot.agent, snapshot.origin)
        for pid, profile in snapshot.profiles.items()
    }


def _main_is_fresher(own: Profile, main: Profile, now_ms: int) -> bool:
    if not (isinstance(own, OAuthCredential) and isinstance(main, OAuthCredential)):
        return False
    if own.provider != main.provider or own.is_usable(now_ms):
        return False
    return main.is_usable(now_ms) and (main.expires or 0) > (own.expires or 0)


def merge_states(states: Sequence[AuthState]) -> AuthState:
    """Later states win per key (per provider for order/lastGood, per profile for usage)."""
    order: dict[str, tuple[str, ...]] = {}
    last_good: dict[str, str] = {}
    usage: dict[str, UsageStats] = {}
    for state in states:
        order.update(state.order)
        last_good.update(state.last_good)
        usage.update(state.usage)
    return AuthState(order=order, last_good=last_good, usage=usage)


def merge_inline_state(inline: AuthState, split: AuthState | None) -> AuthState:
    """Eras A/B inline keys, overridden per key by ``auth-state.json`` when both exist (§4)."""
    if split is None:
        return inline
    raw = {**inline.raw, **{k: v for k, v in split.raw.items()}}
    return AuthState(
        order=split.order if "order" in split.raw else inline.order,
        last_good=split.last_good if "lastGood" in split.raw else inline.last_good,
        usage=split.usage if "usageStats" in split.raw else inline.usage,
        raw=raw,
    )
