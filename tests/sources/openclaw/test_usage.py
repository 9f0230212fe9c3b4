"""OpenClaw 2026.9.6's usage bookkeeping as pure functions of a fake ``now``: the ladders per
reason, an active window kept, counters started over once the last window ended, a provider's
reset as the cooldown's end, subscription blocks, model-scoped cooldowns, and what a success or
a clear resets. tests/interop/test_failover_interop.py runs the same sequences through
OpenClaw's own functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.model import AuthState, UsageStats, parse_usage
from sidecar.sources.openclaw.usage import Failure, FailureReason

T0 = 1_767_225_600_000
SEC = 1_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR


def run(steps: list[tuple[int, Failure]], start: dict[str, Any] | None = None) -> UsageStats:
    stats = parse_usage(start) if start is not None else None
    for at, failure in steps:
        stats = usage.after_failure(stats, failure, at)
    assert stats is not None
    return stats


def windows(reason: FailureReason, gaps: list[int]) -> list[int]:
    """The window each failure opens (until - at), each ``gap`` after the one before."""
    stats: UsageStats | None = None
    out, at = [], T0
    for gap in gaps:
        at += gap
        stats = usage.after_failure(stats, Failure(reason), at)
        out.append(stats.unusable_until() - at)
    return out


def test_rate_limits_double_from_30_s_as_their_count_grows() -> None:
    """rate_limit: 30 s doubling per rate limit (the count outlives the windows), up to 24 h."""
    gap = DAY + SEC  # each one after the previous window ended
    assert windows("rate_limit", [0] + [gap] * 13) == [
        30 * SEC, MIN, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN, 32 * MIN, 64 * MIN, 128 * MIN,
        256 * MIN, 512 * MIN, 1024 * MIN, DAY, DAY,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "first", "again"),
    [("billing", 10 * MIN, 10 * MIN), ("auth_permanent", 10 * MIN, 10 * MIN)],
)
def test_disables_start_at_10_min_and_start_over_once_ended(
    reason: FailureReason, first: int, again: int
) -> None:
    """billing and auth_permanent disable for 10 min; a failure after the window ended starts
    the count over (2026.6.1 began billing at 5 h)."""
    assert windows(reason, [0, 11 * MIN]) == [first, again]


@pytest.mark.parametrize(
    ("reason", "counts", "step"),
    [
        ("billing", 2, 20 * MIN),
        ("billing", 5, 160 * MIN),
        ("billing", 9, DAY),
        ("auth_permanent", 3, 40 * MIN),
        ("auth_permanent", 4, HOUR),
    ],
)
def test_disables_double_with_their_count_up_to_the_cap(
    reason: FailureReason, counts: int, step: int
) -> None:
    """While a disable lasts its count grows: the next window, once recomputed, doubles."""
    assert (
        usage.capped_backoff(
            counts,
            usage.BILLING_BASE_MS if reason == "billing" else usage.AUTH_PERMANENT_BASE_MS,
            usage.BILLING_MAX_MS if reason == "billing" else usage.AUTH_PERMANENT_MAX_MS,
        )
        == step
    )


@pytest.mark.parametrize("reason", ["timeout", "auth", "overloaded", "session_expired"])
def test_other_failures_cool_30_s_and_start_over_once_ended(reason: FailureReason) -> None:
    """The 30 s / 1 min / 5 min ladder follows errorCount, which starts over when the previous
    window has ended: failures a minute apart each get 30 s."""
    assert windows(reason, [0, MIN, MIN]) == [30 * SEC] * 3


def test_the_1_and_5_minute_steps_come_while_another_window_holds() -> None:
    """errorCount only climbs while the profile is unusable: here a billing disable holds it,
    so the second timeout cools 1 min and the third 5 min."""
    stats = run(
        [
            (T0, Failure("billing")),
            (T0 + MIN, Failure("timeout")),
            (T0 + 2 * MIN, Failure("timeout")),
        ]
    )
    assert (stats.raw["errorCount"], stats.raw["cooldownUntil"]) == (3, T0 + 2 * MIN + 5 * MIN)


def test_an_active_window_is_kept_not_recomputed() -> None:
    """A second rate limit inside the first window keeps its end; the count still grows."""
    stats = run([(T0, Failure("rate_limit")), (T0 + 10 * SEC, Failure("rate_limit"))])
    assert dict(stats.raw) == {
        "errorCount": 2,
        "failureCounts": {"rate_limit": 2},
        "lastFailureAt": T0 + 10 * SEC,
        "cooldownUntil": T0 + 30 * SEC,
        "cooldownReason": "rate_limit",
    }


def test_counters_start_over_when_the_previous_window_ended() -> None:
    """After the window: errorCount 1 and the other counts gone; rate_limit's count stays."""
    stats = run(
        [(T0, Failure("rate_limit")), (T0 + 31 * SEC, Failure("timeout"))],
    )
    assert (stats.raw["errorCount"], stats.raw["failureCounts"]) == (
        1,
        {"rate_limit": 1, "timeout": 1},
    )


def test_a_first_failure_is_written_in_openclaws_key_order() -> None:
    """Existing keys stay where they were; new ones follow in OpenClaw's assignment order."""
    stats = run([(T0, Failure("rate_limit", model="gpt-5"))], {"lastUsed": T0 - DAY})
    assert json.dumps(dict(stats.raw)) == json.dumps(
        {
            "lastUsed": T0 - DAY,
            "errorCount": 1,
            "failureCounts": {"rate_limit": 1},
            "lastFailureAt": T0,
            "cooldownUntil": T0 + 30 * SEC,
            "cooldownReason": "rate_limit",
            "cooldownModel": "gpt-5",
        }
    )


def test_a_provider_reset_is_the_cooldowns_end() -> None:
    """Retry-After (and the like) ends the cooldown, shorter or longer than the ladder, but
    never before a window already open; a reset beyond a week is capped to a week."""
    short = run([(T0, Failure("rate_limit", reset_ms=T0 + 2 * SEC))])
    long = run([(T0, Failure("rate_limit", reset_ms=T0 + HOUR))])
    inside = run(
        [
            (T0, Failure("rate_limit", reset_ms=T0 + HOUR)),
            (T0 + MIN, Failure("rate_limit", reset_ms=T0 + 2 * MIN)),
        ]
    )
    absurd = run([(T0, Failure("rate_limit", reset_ms=T0 + 400 * DAY))])
    assert [s.raw["cooldownUntil"] for s in (short, long, inside, absurd)] == [
        T0 + 2 * SEC,
        T0 + HOUR,
        T0 + HOUR,
        T0 + 7 * DAY,
    ]


def test_a_codex_usage_window_is_a_subscription_block() -> None:
    """A reset that ends a subscription window is written as OpenClaw's codex_rate_limits
    block; the cooldown it replaces goes."""
    stats = run(
        [
            (T0, Failure("rate_limit")),
            (T0 + SEC, Failure("rate_limit", reset_ms=T0 + 5 * HOUR, window=True)),
        ]
    )
    assert dict(stats.raw) == {
        "errorCount": 1,
        "failureCounts": {"rate_limit": 2},
        "lastFailureAt": T0 + SEC,
        "blockedUntil": T0 + 5 * HOUR,
        "blockedReason": "subscription_limit",
        "blockedSource": "codex_rate_limits",
    }
    again = usage.after_failure(stats, Failure("rate_limit"), T0 + MIN)
    assert again is stats  # a rate limit inside the block changes nothing


@pytest.mark.parametrize(
    ("asked", "until"),
    [("gpt-5", T0 + 30 * SEC), ("gpt-5-mini", 0), (None, T0 + 30 * SEC)],
)
def test_a_rate_limit_holds_only_for_its_model(asked: str | None, until: int) -> None:
    """cooldownModel scopes a rate limit: another model may use the profile; a request whose
    model is not known is held, as OpenClaw holds one."""
    stats = run([(T0, Failure("rate_limit", model="gpt-5"))])
    assert usage.unusable_until(stats, asked, T0) == until
    assert usage.is_model_scoped(stats)


def test_a_disable_holds_for_every_model() -> None:
    """Billing is never scoped: the profile rests for every model."""
    stats = run([(T0, Failure("billing", model="gpt-5"))])
    assert usage.unusable_until(stats, "gpt-5-mini", T0) == T0 + 10 * MIN
    assert not usage.is_model_scoped(stats)


def test_a_second_model_widens_the_scope() -> None:
    """A rate limit on another model inside the window makes the cooldown profile-wide."""
    stats = run(
        [(T0, Failure("rate_limit", model="gpt-5")), (T0 + SEC, Failure("rate_limit", model="o3"))]
    )
    assert ("cooldownModel" in stats.raw, usage.unusable_until(stats, "gpt-4o", T0)) == (
        False,
        T0 + 30 * SEC,
    )


FULL = {
    "lastUsed": T0 - DAY,
    "blockedUntil": T0 + HOUR,
    "blockedReason": "subscription_limit",
    "blockedSource": "wham",
    "blockedModel": "gpt-5",
    "blockedScope": "model",
    "cooldownUntil": T0 + MIN,
    "cooldownReason": "auth",
    "cooldownClassification": "wham_token_expired",
    "cooldownModel": "gpt-5",
    "disabledUntil": T0 + HOUR,
    "disabledReason": "billing",
    "errorCount": 3,
    "failureCounts": {"rate_limit": 2, "billing": 1},
    "lastFailureAt": T0 - MIN,
    "futureKey": {"kept": True},
}


@pytest.mark.parametrize(
    ("inherited", "after"),
    [
        (
            False,
            {
                "lastUsed": T0,
                "errorCount": 0,
                "lastFailureAt": T0 - MIN,
                "futureKey": {"kept": True},
                "lastProbeAt": T0,
            },
        ),
        (
            True,
            {
                "lastUsed": T0 - DAY,
                "errorCount": 0,
                "lastFailureAt": T0 - MIN,
                "futureKey": {"kept": True},
                "lastProbeAt": T0,
            },
        ),
    ],
    ids=["own", "inherited"],
)
def test_success_clears_every_window(inherited: bool, after: dict[str, Any]) -> None:
    """markAuthProfileSuccess: windows and counts cleared, lastProbeAt now, and lastUsed now
    unless the agent only inherits the profile from main; other keys kept."""
    stats = usage.after_success(parse_usage(FULL), T0, inherited=inherited)
    assert (json.dumps(dict(stats.raw)), stats.in_cooldown(T0)) == (json.dumps(after), False)


def test_a_clear_resets_the_windows_and_keeps_the_history() -> None:
    """resetAuthProfileFailureState alone: usable now, lastUsed and lastFailureAt kept."""
    stats = usage.cleared(parse_usage(FULL))
    assert dict(stats.raw) == {
        "lastUsed": T0 - DAY,
        "errorCount": 0,
        "lastFailureAt": T0 - MIN,
        "futureKey": {"kept": True},
    }


@pytest.mark.parametrize(
    ("provider", "exempt"),
    [("openrouter", True), ("kilocode", True), ("OpenRouter", True), ("openai", False)],
)
def test_openrouter_and_kilocode_keep_no_cooldowns(provider: str, exempt: bool) -> None:
    """isAuthCooldownBypassedForProvider."""
    assert usage.is_cooldown_exempt(provider) is exempt


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
    """A manual clear (2026.9.6 resetAuthProfileFailureState): the stats reset, lastUsed and
    unknown keys kept; a profile without stats, or another profile, untouched."""
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
    after = usage.cleared_in(state, "a:1")
    assert dict(after.usage["a:1"].raw) == {
        "lastUsed": T0 - HOUR,
        "errorCount": 0,
        "lastFailureAt": T0 - MIN,
        "futureKey": 1,
    }
    assert (after.usage["a:1"].in_cooldown(T0), after.usage["a:2"]) == (False, other)
    assert usage.cleared_in(state, "a:3") is state
