"""OpenClaw 2026.9.6's bookkeeping of profile outcomes (``usageStats``), as pure functions over
values: what a failure writes (``computeNextProfileUsageStats`` in ``usage-failure-state.ts``,
``buildBlockedProfileUsageStats`` for a subscription window), what a success or a manual clear
resets (``resetAuthProfileFailureState``), and when a profile may be used again for a model
(``resolveProfileUnusableUntil`` and its model scoping in ``usage-state.ts``).

2026.9.6 reads no cooldown setting from ``openclaw.json``: 2026.6.1's ``auth.cooldowns`` is a
retired key there (``RETIRED_TUNING_PATHS``), and its ladder numbers are constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

from sidecar.sources.openclaw.model import AuthState, UsageStats, merge_usage

FailureReason = Literal[
    "rate_limit",
    "timeout",
    "overloaded",
    "auth",
    "billing",
    "auth_permanent",
    "model_not_found",
    "session_expired",
]
SEC: Final = 1_000
FAILURE_WINDOW_MS: Final = 24 * 3600 * SEC  # counters older than this start over
RATE_LIMIT_BASE_MS, RATE_LIMIT_MAX_MS = 30 * SEC, 24 * 3600 * SEC
BILLING_BASE_MS, BILLING_MAX_MS = 600 * SEC, 24 * 3600 * SEC
AUTH_PERMANENT_BASE_MS, AUTH_PERMANENT_MAX_MS = 600 * SEC, 3600 * SEC
# A provider's stated reset beyond this is not believed (a weekly window is the longest known).
RESET_MAX_MS: Final = 7 * 24 * 3600 * SEC
# Providers that manage their own rotation: OpenClaw neither writes nor honours their cooldowns
# (isAuthCooldownBypassedForProvider).
COOLDOWN_EXEMPT: Final = frozenset({"openrouter", "kilocode"})
_MODEL_SCOPED: Final = frozenset({"rate_limit", "timeout", "model_not_found"})
_DISABLING: Final = frozenset({"billing", "auth_permanent"})
_BLOCK_KEYS: Final = ("blockedUntil", "blockedReason", "blockedSource", "blockedModel")
_COOLDOWN_KEYS: Final = ("cooldownUntil", "cooldownReason", "cooldownClassification")


@dataclass(frozen=True)
class Failure:
    """One failure of a profile: its reason, the model asked for (None: unknown), and the
    provider's own reset time (epoch ms) when its answer gave one; ``window``: that reset ends
    a subscription usage window (Codex), which OpenClaw records as a block, not a cooldown."""

    reason: FailureReason
    model: str | None = None
    reset_ms: int | None = None
    window: bool = False


def is_cooldown_exempt(provider: str) -> bool:
    return provider.lower() in COOLDOWN_EXEMPT


def after_failure(usage: UsageStats | None, failure: Failure, now_ms: int) -> UsageStats:
    """What OpenClaw writes for ``failure`` at ``now_ms``; a provider reset becomes the
    cooldown's end (never shortening an active window)."""
    existing = usage or UsageStats()
    if failure.window and failure.reset_ms is not None and failure.reset_ms > now_ms:
        return blocked_until(existing, min(failure.reset_ms, now_ms + RESET_MAX_MS), now_ms)
    stats = _next_stats(existing, failure.reason, failure.model, now_ms)
    if failure.reset_ms is None or failure.reason in _DISABLING:
        return stats
    reset = min(failure.reset_ms, now_ms + RESET_MAX_MS)
    active = _active(existing.raw.get("cooldownUntil"), now_ms)
    return merge_usage(stats, {"cooldownUntil": max(active, reset)})


def _next_stats(
    existing: UsageStats, reason: FailureReason, model: str | None, now: int
) -> UsageStats:
    """``computeNextProfileUsageStats``, key for key and in its order."""
    raw = existing.raw
    # A subscription block already says when; OpenClaw passes ``modelId ?? null`` here, so a
    # block scoped to a model holds only a request known to be for that model.
    subscription = raw.get("blockedReason") == "subscription_limit"
    if reason == "rate_limit" and subscription and _block_applies(raw, now, model, True):
        return existing
    last = raw.get("lastFailureAt")
    window_expired = _num(last) > 0 and now - _num(last) > FAILURE_WINDOW_MS
    until = unusable_until(existing, None)
    reset = window_expired or (until > 0 and now >= until)
    found = raw.get("failureCounts")
    old_counts: dict[str, Any] = found if isinstance(found, dict) else {}
    if reset:
        kept = old_counts.get("rate_limit")
        counts: dict[str, Any] = {"rate_limit": kept} if kept else {}
    else:
        counts = dict(old_counts)
    counts[reason] = _num(counts.get(reason)) + 1
    errors = (0 if reset else _num(raw.get("errorCount"))) + 1
    fields: dict[str, Any] = {
        "cooldownClassification": None,
        "errorCount": errors,
        "failureCounts": counts,
        "lastFailureAt": now,
    }
    if reason in _DISABLING:
        step = _disabling_backoff(reason, counts[reason])
        fields["disabledUntil"] = _keep_active(raw.get("disabledUntil"), now, now + step)
        fields["disabledReason"] = reason
    else:
        fields |= _cooldown_fields(raw, reason, model, counts, errors, now)
    return merge_usage(existing, fields)


def _cooldown_fields(
    raw: Any, reason: FailureReason, model: str | None, counts: Any, errors: int, now: int
) -> dict[str, Any]:
    if reason == "rate_limit":
        step = capped_backoff(counts["rate_limit"], RATE_LIMIT_BASE_MS, RATE_LIMIT_MAX_MS)
    else:
        step = cooldown_step(errors)
    fields: dict[str, Any] = {
        "cooldownUntil": _keep_active(raw.get("cooldownUntil"), now, now + step),
        "cooldownReason": reason,
    }
    old_model = raw.get("cooldownModel")
    scoped = reason in _MODEL_SCOPED
    if _num(raw.get("cooldownUntil")) > now:  # the window stays, and its scope unless it widens
        widens = (old_model and model and old_model != model) or (not model and old_model)
        fields["cooldownModel"] = old_model if scoped and not widens else None
    else:
        fields["cooldownModel"] = model if scoped else None
    return fields


def blocked_until(existing: UsageStats, until: int, now: int) -> UsageStats:
    """``buildBlockedProfileUsageStats``: a subscription window (source ``codex_rate_limits``)
    blocks the whole profile until ``until``; the cooldown it replaces is cleared."""
    raw = existing.raw
    active = _active(raw.get("blockedUntil"), now)
    counts = dict(raw.get("failureCounts") or {})
    counts["rate_limit"] = _num(counts.get("rate_limit")) + 1
    return merge_usage(
        existing,
        {
            "blockedUntil": max(active, until),
            "blockedReason": "subscription_limit",
            "blockedSource": "codex_rate_limits",
            "blockedModel": None,
            "blockedScope": None,
            "cooldownUntil": None,
            "cooldownReason": None,
            "cooldownClassification": None,
            "cooldownModel": None,
            "lastFailureAt": now,
            "failureCounts": counts,
        },
    )


def cooldown_step(error_count: int) -> int:
    """``calculateAuthProfileCooldownMs``: 30 s, 1 min, then 5 min."""
    n = max(1, error_count)
    return 30 * SEC if n <= 1 else 60 * SEC if n <= 2 else 300 * SEC


def capped_backoff(count: int, base_ms: int, max_ms: int) -> int:
    """``calculateCappedExponentialBackoffMs``: ``base`` doubling per count up to ``max``."""
    exponent = max(0, math.ceil(math.log2(max_ms / base_ms)))
    steps: int = min(max(1, count) - 1, exponent)
    return min(max_ms, base_ms << steps)


def _disabling_backoff(reason: FailureReason, count: int) -> int:
    if reason == "billing":
        return capped_backoff(count, BILLING_BASE_MS, BILLING_MAX_MS)
    return capped_backoff(count, AUTH_PERMANENT_BASE_MS, AUTH_PERMANENT_MAX_MS)


def after_success(usage: UsageStats | None, now_ms: int, *, inherited: bool = False) -> UsageStats:
    """``markAuthProfileSuccess``: every window and counter cleared, ``lastProbeAt = now``, and
    ``lastUsed = now`` unless the agent only inherits the profile from main."""
    fields: dict[str, Any] = {**RESET_FIELDS, "lastProbeAt": now_ms}
    if not inherited:
        fields["lastUsed"] = now_ms
    return merge_usage(usage or UsageStats(), fields)


def cleared(usage: UsageStats) -> UsageStats:
    """A manual clear (``resetAuthProfileFailureState`` with nothing else): the profile is
    usable at once and its counters start over; its use history stays."""
    return merge_usage(usage, RESET_FIELDS)


def cleared_in(state: AuthState, profile_id: str) -> AuthState:
    """``state`` with ``profile_id``'s cooldown cleared by hand (``cleared``), as both
    ``cooldowns clear`` and the page's action write it; a profile without stats is left as is."""
    stats = state.usage.get(profile_id)
    return state if stats is None else with_usage(state, profile_id, cleared(stats))


RESET_FIELDS: Final[dict[str, Any]] = {
    "errorCount": 0,
    "blockedUntil": None,
    "blockedReason": None,
    "blockedSource": None,
    "blockedModel": None,
    "blockedScope": None,
    "cooldownUntil": None,
    "cooldownReason": None,
    "cooldownClassification": None,
    "cooldownModel": None,
    "disabledUntil": None,
    "disabledReason": None,
    "failureCounts": None,
}


# --- when a profile may be used again -------------------------------------------------------


def unusable_until(usage: UsageStats | None, model: str | None, now_ms: int = 0) -> int:
    """The end of the profile's latest window that applies to a request for ``model`` (None:
    the model is not known, so every window applies), 0 when none does. A rate-limit, timeout
    or model-not-found cooldown scoped to another model does not apply, nor a block scoped to
    another model, unless another window holds the profile anyway (``isProfileInCooldown``)."""
    if usage is None:
        return 0
    raw = usage.raw
    if model is not None and _scoped_elsewhere(raw, model, now_ms):
        return 0
    values = [
        None if _block_elsewhere(raw, model) else raw.get("blockedUntil"),
        raw.get("cooldownUntil"),
        raw.get("disabledUntil"),
    ]
    return max((_num(v) for v in values), default=0)


def resting_reason(usage: UsageStats | None, now_ms: int) -> str | None:
    """Why the profile rests, as OpenClaw's status shows it: the disable's reason while one
    holds, ``subscription_limit`` for a block, else the cooldown's reason."""
    if usage is None:
        return None
    raw = usage.raw
    if _num(raw.get("disabledUntil")) > now_ms:
        return _str(raw.get("disabledReason"))
    if _num(raw.get("blockedUntil")) > now_ms and _num(raw.get("blockedUntil")) >= _num(
        raw.get("cooldownUntil")
    ):
        return _str(raw.get("blockedReason")) or "subscription_limit"
    return _str(raw.get("cooldownReason"))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def is_model_scoped(usage: UsageStats | None) -> bool:
    """Whether any window of ``usage`` holds for one model only (so the model matters)."""
    if usage is None:
        return False
    raw = usage.raw
    scoped_cooldown = raw.get("cooldownReason") in _MODEL_SCOPED and bool(raw.get("cooldownModel"))
    return scoped_cooldown or (raw.get("blockedScope") == "model" and bool(raw.get("blockedModel")))


def _scoped_elsewhere(raw: Any, model: str, now: int) -> bool:
    """``shouldBypassModelScopedCooldown``: the cooldown is another model's, and neither a
    block for this model nor a disable holds the profile."""
    other = raw.get("cooldownModel")
    if raw.get("cooldownReason") not in _MODEL_SCOPED or not other or other == model:
        return False
    return not _block_applies(raw, now, model) and not _num(raw.get("disabledUntil")) > now


def _block_elsewhere(raw: Any, model: str | None, *, unknown_is_other: bool = False) -> bool:
    """``isBlockScopedToDifferentModel``: an unknown model is another one only where OpenClaw
    passes ``null`` (its ``undefined`` is not)."""
    if raw.get("blockedScope") != "model" or not raw.get("blockedModel"):
        return False
    return unknown_is_other if model is None else raw.get("blockedModel") != model


def _block_applies(raw: Any, now: int, model: str | None, unknown_is_other: bool = False) -> bool:
    """``isBlockedWindowActiveForModel``."""
    elsewhere = _block_elsewhere(raw, model, unknown_is_other=unknown_is_other)
    return not elsewhere and _num(raw.get("blockedUntil")) > now


def _keep_active(existing: Any, now: int, recomputed: int) -> int:
    """``keepActiveWindowOrRecompute``: a window still open is kept, not recomputed."""
    return _num(existing) if _num(existing) > now else recomputed


def _active(until: Any, now: int) -> int:
    return _num(until) if _num(until) > now else 0


def _num(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(value) if math.isfinite(value) else 0


# --- the state document ------------------------------------------------------------------------


def with_usage(state: AuthState, profile_id: str, usage: UsageStats) -> AuthState:
    return AuthState(
        order=state.order,
        last_good=state.last_good,
        usage={**state.usage, profile_id: usage},
        raw=state.raw,
    )


def with_last_good(state: AuthState, provider: str, profile_id: str) -> AuthState:
    return AuthState(
        order=state.order,
        last_good={**state.last_good, provider: profile_id},
        usage=state.usage,
        raw=state.raw,
    )
