"""OpenClaw 2026.9.6's profile order for a provider (``resolveAuthProfileOrderWithMetadata`` in
``auth-profiles/order.ts``), as pure functions over an agent's view:

1. the agent's stored ``order[provider]``, else ``openclaw.json`` ``auth.order[provider]``,
   else the ``auth.profiles`` of that provider, else every stored profile of it; an explicit
   order that names only profiles the store does not hold falls back to the stored ones (when it
   is the stored order, or ``auth.profiles`` names some of the provider's), and an explicit
   empty order selects none;
2. profiles that cannot serve are dropped: another provider's, one whose configured ``mode`` is
   not its type (a token may stand for ``oauth``), a key or token without a secret, an expired
   token, an OAuth refresh fence;
3. with an explicit order that order stands; otherwise OAuth < token < API key, an OAuth
   profile whose token has expired after the usable ones, then least recently used, then store
   order (JavaScript's sort is stable);
4. profiles in a cooldown come last, soonest usable first (``by_availability``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.model import (
    ApiKeyCredential,
    OAuthCredential,
    Profile,
    TokenCredential,
)
from sidecar.sources.openclaw.views import AgentView, ProfileView

_TYPE_RANK = {"oauth": 0, "token": 1, "api_key": 2}
_FENCE_PREFIX = "openclaw-oauth-refresh-fence:v1:"
_MAX_EXPIRES = 864 * 10**13  # resolveTokenExpiryState: larger is invalid


def ranked_profiles(view: AgentView, providers: Sequence[str], now_ms: int) -> list[ProfileView]:
    """Each provider's profiles in its own order, one provider after the other (a route that
    takes two providers, Codex's, never lets one's explicit order hide the other's)."""
    return [v for provider in providers for v in _ranked(view, provider.lower(), now_ms)]


def order_changes_at(view: AgentView, providers: Sequence[str], now_ms: int) -> int | None:
    """When the order of ``providers`` may change by the clock alone: the next expiry of an
    OAuth or token profile of theirs (None: never)."""
    wanted = {p.lower() for p in providers}
    times = [
        v.profile.expires
        for v in view.profiles.values()
        if v.profile.provider in wanted
        and isinstance(v.profile, OAuthCredential | TokenCredential)
        and v.profile.expires is not None
        and v.profile.expires > now_ms
    ]
    return min(times, default=None)


def _ranked(view: AgentView, provider: str, now: int) -> list[ProfileView]:
    explicit, from_store = _explicit_order(view, provider)
    configured = [pid for pid, c in view.config_profiles.items() if c.provider == provider]
    stored = [pid for pid, v in view.profiles.items() if v.profile.provider == provider]
    base = explicit if explicit is not None else (configured or stored)
    kept = [pid for pid in _dedupe(base) if _eligible(view, pid, provider, now)]
    all_missing = bool(base) and all(pid not in view.profiles for pid in base)
    repaired = not kept and all_missing and (from_store or bool(configured))
    if repaired:
        kept = [pid for pid in stored if _eligible(view, pid, provider, now)]
    ranked = [view.profiles[pid] for pid in kept]
    if explicit and not repaired:
        return ranked
    return sorted(ranked, key=lambda v: _mode_key(v, view, now))  # stable, as JS's toSorted


def _explicit_order(view: AgentView, provider: str) -> tuple[list[str] | None, bool]:
    """``resolveExplicitAuthOrderSelection``: the stored order, else the configured one (an
    empty list is an order too: it selects nothing)."""
    stored = _lookup(view.state.order, provider)
    if stored is not None:
        return list(stored), True
    configured = _lookup(view.config_order, provider)
    return (list(configured) if configured is not None else None), False


def _lookup(orders: Mapping[str, Sequence[str]], provider: str) -> Sequence[str] | None:
    for key, ids in orders.items():  # findNormalizedProviderValue: the first key that matches
        if key.strip().lower() == provider:
            return ids
    return None


def _dedupe(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _eligible(view: AgentView, pid: str, provider: str, now: int) -> bool:
    """``resolveAuthProfileEligibility`` for a stored profile."""
    found = view.profiles.get(pid)
    if found is None or found.profile.provider != provider:
        return False
    configured = view.config_profiles.get(pid)
    if configured is not None:
        if configured.provider != provider:
            return False
        mode, kind = configured.mode, found.profile.type
        if mode != kind and not (mode == "oauth" and kind == "token"):
            return False
    return _has_usable_secret(found.profile, now)


def _has_usable_secret(profile: Profile, now: int) -> bool:
    """``evaluateStoredCredentialEligibility``: an expired OAuth token is fine (it refreshes),
    an expired static token is not."""
    if isinstance(profile, ApiKeyCredential):
        return profile.key is not None or profile.key_ref is not None
    if isinstance(profile, TokenCredential):
        if profile.token is None and profile.token_ref is None:
            return False
        expires = profile.expires
        return expires is None or (0 < expires <= _MAX_EXPIRES and expires > now)
    if _is_fence(profile):
        return False
    return bool(profile.access.reveal().strip() or profile.refresh.reveal().strip())


def _is_fence(profile: OAuthCredential) -> bool:
    return profile.expires == 1 and profile.access.reveal().startswith(_FENCE_PREFIX)


def _mode_key(v: ProfileView, view: AgentView, now: int) -> tuple[int, int, int]:
    """``orderProfilesByMode``: type, then an expired OAuth token last, then least recent."""
    profile = v.profile
    expired = isinstance(profile, OAuthCredential) and _expired(profile.expires, now)
    stats = view.state.usage.get(v.id)
    return (_TYPE_RANK[profile.type], int(expired), (stats.last_used if stats else None) or 0)


def _expired(expires: int | None, now: int) -> bool:
    """``resolveTokenExpiryState(...) === "expired"`` (a missing or invalid expiry is not)."""
    return expires is not None and 0 < expires <= _MAX_EXPIRES and expires <= now


# --- availability -----------------------------------------------------------------------------


def unusable_until(view: AgentView, profile: ProfileView, model: str | None, now_ms: int) -> int:
    """When the store lets ``profile`` serve a request for ``model`` again (0: it may now);
    openrouter and kilocode profiles never rest (``isAuthCooldownBypassedForProvider``)."""
    if usage.is_cooldown_exempt(profile.profile.provider):
        return 0
    return usage.unusable_until(view.state.usage.get(profile.id), model, now_ms)


def is_model_scoped(view: AgentView, ranked: Iterable[ProfileView]) -> bool:
    """Whether a window of one of ``ranked`` holds for one model only."""
    return any(usage.is_model_scoped(view.state.usage.get(v.id)) for v in ranked)


def by_availability(
    ranked: Iterable[ProfileView], now_ms: int, until: Callable[[ProfileView], int]
) -> Iterator[tuple[ProfileView, int]]:
    """``ranked`` lazily, each with when it may be used again (``until``): the usable ones first
    (0), then those in a cooldown, soonest usable first. The first usable profile comes
    without looking at the rest."""
    later: list[tuple[int, ProfileView]] = []
    for v in ranked:
        when = until(v)
        if when > now_ms:
            later.append((when, v))
        else:
            yield v, 0
    yield from ((v, when) for when, v in sorted(later, key=lambda pair: pair[0]))


def ordered_profiles(
    view: AgentView, providers: Sequence[str], now_ms: int, model: str | None = None
) -> list[ProfileView]:
    """The whole order, profiles in a cooldown last (for commands and tests)."""
    ranked = ranked_profiles(view, providers, now_ms)
    found = by_availability(ranked, now_ms, lambda v: unusable_until(view, v, model, now_ms))
    return [v for v, _ in found]
