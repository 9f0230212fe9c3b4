"""When a provider's answer says a refused account may be used again: Retry-After (seconds,
milliseconds, HTTP date), Anthropic's per-limit and unified reset headers, OpenAI's reset
durations, the Codex backend's usage windows (headers and the usage_limit_reached body)."""

from __future__ import annotations

import json

import pytest

from sidecar.providers.ratelimits import Reset, reset_of

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
S = 1_000
AT = NOW // 1000  # NOW in epoch seconds


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, "", None),
        ({"retry-after": "7"}, "", Reset(NOW + 7 * S)),
        ({"retry-after": "1.5"}, "", Reset(NOW + 1_500)),
        ({"retry-after-ms": "250"}, "", Reset(NOW + 250)),
        ({"retry-after": "Thu, 01 Jan 2026 00:01:00 GMT"}, "", Reset(NOW + 60 * S)),
        ({"retry-after": "soon"}, "", None),
        ({"retry-after": "-3"}, "", None),
        ({"retry-after": "0"}, "", None),  # no later than now: nothing to wait for
        (
            {
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:42Z",
                "anthropic-ratelimit-requests-remaining": "12",
                "anthropic-ratelimit-requests-reset": "2026-01-01T00:09:00Z",
            },
            "",
            Reset(NOW + 42 * S),
        ),
        (
            {
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": str(NOW // 1000 + 3600),
                "anthropic-ratelimit-unified-7d-status": "allowed",
                "anthropic-ratelimit-unified-7d-reset": str(NOW // 1000 + 86400),
            },
            "",
            Reset(NOW + 3600 * S),
        ),
        (
            {
                "anthropic-ratelimit-unified-5h-status": "rejected",
                "anthropic-ratelimit-unified-5h-reset": str(NOW // 1000 + 600),
                "retry-after": "30",
            },
            "",
            Reset(NOW + 600 * S),
        ),
        (
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "6m0s",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "1h2m3.5s",
            },
            "",
            Reset(NOW + 3_723_500),
        ),
        (
            {"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "20ms"},
            "",
            None,
        ),
        (
            {
                "x-codex-primary-used-percent": "100.0",
                "x-codex-primary-reset-after-seconds": "1200",
                "x-codex-secondary-used-percent": "40",
                "x-codex-secondary-reset-after-seconds": "500000",
            },
            "",
            Reset(NOW + 1200 * S, window=True),
        ),
        (
            {"x-codex-secondary-used-percent": "100", "x-codex-secondary-reset-at": str(AT + 99)},
            "",
            Reset(NOW + 99 * S, window=True),
        ),
        (
            {"retry-after": "5"},
            json.dumps({"error": {"type": "usage_limit_reached", "resets_in_seconds": 3600}}),
            Reset(NOW + 3600 * S, window=True),
        ),
        (
            {"retry-after": "7200"},
            json.dumps({"error": {"type": "usage_limit_reached", "resets_at": NOW // 1000 + 60}}),
            Reset(NOW + 7200 * S),  # the later throttle wins: not the window's end
        ),
    ],
)  # fmt: skip
def test_the_latest_stated_reset_is_the_answer(
    headers: dict[str, str], body: str, expected: Reset | None
) -> None:
    """Every limit still exhausted must reset first; limits with room left say nothing."""
    assert reset_of(headers, body, NOW) == expected
