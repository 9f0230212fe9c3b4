"""OpenClaw's usage bookkeeping (store spec §4) as pure functions of a fake ``now``: the cooldown
ladders, the 24-hour counter reset, and what a success clears."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.model import AuthState, UsageStats, parse_usage
from sidecar.sources.openclaw.usage import FailureReason

T0 = 1_767_225_600_000
SEC = 1_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR


def windows(reasons: list[FailureReason], step_ms: int = SEC) -> list[int]:
    """The window each failure opens (until - at), failures ``step_ms`` apart from T0."""
    stats: UsageStats | None = None
    out = []
    for i, reason in enumerate(reasons):
        at = T0 + i * step_ms
        stats = usage.after_failure(stats, reason, at)
        out.append(stats.unusable_until() - at)
    return out


@pytest.mark.parametrize("reason", sorted(usage.TRANSIENT))
def test_transient_ladder_is_30s_60s_then_5min(reason: FailureReason) -> None:
    """rate_limit/timeout/overloaded/auth cool down 30 s, 60 s, then 5 min from then on."""
    assert windows([reason] * 5) == [30 * SEC, 60 * SEC, 5 * MIN, 5 * MIN, 5 * MIN]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("billing", [5 * HOUR, 10 * HOUR, 20 * HOUR, 24 * HOUR, 24 * HOUR]),
        ("auth_permanent", [10 * MIN, 20 * MIN, 40 * MIN, 60 * MIN, 60 * MIN]),
    ],
)
def test_disabling_ladders_double_up_to_their_cap(
    reason: FailureReason, expected: list[int]
) -> None:
    """billing disables 5 h doubling to 24 h; auth_permanent 10 min doubling to 60 min."""
    assert windows([reason] * 5, step_ms=MIN) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "rate_limit",
            {
                "errorCount": 1,
                "failureCounts": {"rate_limit": 1},
                "lastFailureAt": T0,
                "cooldownUntil": T0 + 30 * SEC,
                "cooldownReason": "rate_limit",
            },
        ),
        (
            "billing",
            {
                "errorCount": 1,
                "failureCounts": {"billing": 1},
                "lastFailureAt": T0,
                "disabledUntil": T0 + 5 * HOUR,
                "disabledReason": "billing",
            },
        ),
    ],
)
def test_first_failure_in_openclaws_shape(reason: FailureReason, expected: dict[str, Any]) -> None:
    """A first failure writes OpenClaw's keys: counts, time, and a cooldown or disabled window."""
    assert dict(usage.after_failure(None, reason, T0).raw) == expected


def test_failures_of_different_reasons_share_the_error_count() -> None:
    """The transient step follows errorCount over all reasons; billing counts only billing."""
    stats = usage.after_failure(None, "billing", T0)
    stats = usage.after_failure(stats, "rate_limit", T0 + SEC)
    stats = usage.after_failure(stats, "billing", T0 + 2 * SEC)
    assert dict(stats.raw) == {
        "errorCount": 3,
        "failureCounts": {"billing": 2, "rate_limit": 1},
        "lastFailureAt": T0 + 2 * SEC,
        "disabledUntil": T0 + 2 * SEC + 10 * HOUR,
        "disabledReason": "billing",
        "cooldownUntil": T0 + SEC + 60 * SEC,
        "cooldownReason": "rate_limit",
    }


@pytest.mark.parametrize(
    ("reason", "gap", "errors", "count", "window"),
    [
        ("rate_limit", DAY, 4, 4, 5 * MIN),  # exactly 24 h: still counted
        ("rate_limit", DAY + 1, 1, 1, 30 * SEC),  # older than 24 h: counters start over
        ("billing", DAY, 4, 4, 24 * HOUR),
        ("billing", DAY + 1, 1, 1, 5 * HOUR),
    ],
)
def test_counters_reset_after_24_hours(
    reason: FailureReason, gap: int, errors: int, count: int, window: int
) -> None:
    """Counters older than 24 h since the last failure start over; the ladder with them."""
    stats: UsageStats | None = None
    for i in range(3):
        stats = usage.after_failure(stats, reason, T0 + i * SEC)
    at = T0 + 2 * SEC + gap
    stats = usage.after_failure(stats, reason, at)
    assert (stats.error_count, stats.raw["failureCounts"], stats.unusable_until() - at) == (
        errors,
        {reason: count},
        window,
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, {"lastUsed": T0, "errorCount": 0}),
        (
            {
                "lastUsed": T0 - DAY,
                "errorCount": 3,
                "failureCounts": {"rate_limit": 2, "billing": 1},
                "lastFailureAt": T0 - MIN,
                "cooldownUntil": T0 + MIN,
                "cooldownReason": "rate_limit",
                "cooldownModel": "gpt-5",
                "disabledUntil": T0 + HOUR,
                "disabledReason": "billing",
                "blockedUntil": T0 + HOUR,
                "blockedReason": "usage_limit",
                "blockedSource": "wham",
                "blockedModel": "gpt-5",
                "futureKey": {"kept": True},
            },
            {
                "lastUsed": T0,
                "errorCount": 0,
                "lastFailureAt": T0 - MIN,
                "futureKey": {"kept": True},
            },
        ),
    ],
    ids=["first-use", "after-failures"],
)
def test_success_clears_every_window(before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """A success: errorCount 0, windows and counts cleared, lastUsed now, other keys kept."""
    stats = usage.after_success(parse_usage(before) if before else None, T0)
    assert (dict(stats.raw), stats.in_cooldown(T0)) == (after, False)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (200, None),
        (400, None),
        (401, "auth"),
        (402, "billing"),
        (403, "auth"),
        (404, None),
        (408, "timeout"),
        (429, "rate_limit"),
        (500, "overloaded"),
        (501, None),
        (502, "overloaded"),
        (503, "overloaded"),
        (504, "timeout"),
        (529, "overloaded"),
    ],
)
def test_failure_reason_for_status(status: int, reason: str | None) -> None:
    """Upstream statuses map to OpenClaw's failure reasons; others are not the profile's fault."""
    assert usage.failure_reason_for_status(status) == reason


def test_state_updates_replace_one_entry_and_keep_the_rest() -> None:
    """with_usage/with_last_good change one profile or provider and keep all else."""
    old = UsageStats(last_used=1)
    state = AuthState(
        order={"anthropic": ("a:1",)},
        last_good={"openai": "o:1"},
        usage={"a:1": old},
        raw={"version": 1, "extra": True},
    )
    new = UsageStats(last_used=2)
    updated = usage.with_last_good(usage.with_usage(state, "a:2", new), "anthropic", "a:2")
    assert updated == AuthState(
        order={"anthropic": ("a:1",)},
        last_good={"openai": "o:1", "anthropic": "a:2"},
        usage={"a:1": old, "a:2": new},
    )
    assert updated.raw == {"version": 1, "extra": True}


def test_a_cooldown_cleared_by_hand() -> None:
    """clearAuthProfileCooldown: the stats reset, lastUsed and unknown keys kept; a profile
    without stats, or another profile, untouched."""
    before = {
        "lastUsed": T0 - HOUR,
        "errorCount": 2,
        "failureCounts": {"rate_limit": 2},
        "lastFailureAt": T0 - MIN,
        "cooldownUntil": T0 + MIN,
        "cooldownReason": "rate_limit",
        "disabledUntil": T0 + HOUR,
        "disabledReason": "billing",
        "futureKey": 1,
    }
    other = UsageStats(last_used=5)
    state = AuthState(usage={"a:1": parse_usage(before), "a:2": other})
    after = usage.cleared(state, "a:1")
    assert dict(after.usage["a:1"].raw) == {
        "lastUsed": T0 - HOUR,
        "errorCount": 0,
        "lastFailureAt": T0 - MIN,
        "futureKey": 1,
    }
    assert (after.usage["a:1"].in_cooldown(T0), after.usage["a:2"]) == (False, other)
    assert usage.cleared(state, "a:3") is state
