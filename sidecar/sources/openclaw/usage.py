"""OpenClaw's bookkeeping of profile outcomes (store spec §4), as pure functions over values:
the cooldown ladder for failures, and what a success resets."""

from __future__ import annotations

from typing import Any, Literal

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
TRANSIENT: frozenset[str] = frozenset({"rate_limit", "timeout", "overloaded", "auth"})
COUNTER_RESET_MS = 24 * 3600 * 1000
_TRANSIENT_LADDER_MS = (30_000, 60_000, 300_000)
_BILLING_MS, _BILLING_MAX_MS = 5 * 3600 * 1000, 24 * 3600 * 1000
_AUTH_PERMANENT_MS, _AUTH_PERMANENT_MAX_MS = 600_000, 3_600_000


def failure_reason_for_status(status: int) -> FailureReason | None:
    """How an upstream answer counts against a profile (None: not the profile's fault)."""
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 402:
        return "billing"
    if status in (408, 504):
        return "timeout"
    if status in (500, 502, 503, 529):
        return "overloaded"
    return None


def after_failure(usage: UsageStats | None, reason: FailureReason, now_ms: int) -> UsageStats:
    usage = _reset_if_old(usage or UsageStats(), now_ms)
    counts = dict(usage.raw.get("failureCounts") or {})
    counts[reason] = int(counts.get(reason, 0)) + 1
    errors = usage.error_count + 1
    fields: dict[str, Any] = {
        "errorCount": errors,
        "failureCounts": counts,
        "lastFailureAt": now_ms,
    }
    if reason not in ("billing", "auth_permanent"):
        step = _TRANSIENT_LADDER_MS[min(errors, len(_TRANSIENT_LADDER_MS)) - 1]
        fields |= {"cooldownUntil": now_ms + step, "cooldownReason": reason}
    else:
        base, cap = (
            (_BILLING_MS, _BILLING_MAX_MS)
            if reason == "billing"
            else (_AUTH_PERMANENT_MS, _AUTH_PERMANENT_MAX_MS)
        )
        window = min(base * 2 ** (counts[reason] - 1), cap)
        fields |= {"disabledUntil": now_ms + window, "disabledReason": reason}
    return merge_usage(usage, fields)


def after_success(usage: UsageStats | None, now_ms: int) -> UsageStats:
    """``errorCount`` 0, every window cleared, ``lastUsed = now``.

    The keys are those OpenClaw 2026.6.1 clears (``resetSuccessfulUsageStats``), the ``blocked*``
    window included: left in place, it would keep a working profile unusable."""
    return merge_usage(
        usage or UsageStats(),
        {
            "lastUsed": now_ms,
            "errorCount": 0,
            "blockedUntil": None,
            "blockedReason": None,
            "blockedSource": None,
            "blockedModel": None,
            "cooldownUntil": None,
            "cooldownReason": None,
            "cooldownModel": None,
            "disabledUntil": None,
            "disabledReason": None,
            "failureCounts": None,
        },
    )


def _reset_if_old(usage: UsageStats, now_ms: int) -> UsageStats:
    last = usage.raw.get("lastFailureAt")
    if isinstance(last, int) and now_ms - last > COUNTER_RESET_MS:
        return merge_usage(usage, {"errorCount": 0, "failureCounts": None})
    return usage


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
