"""Windows read from answer headers: Anthropic's unified and API limits, OpenAI's, Codex's."""

from __future__ import annotations

import pytest

from sidecar.usage.windows import Window, duration_ms, label, windows_from_headers

NOW = 1_800_000_000_000


def raw(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_anthropic_unified_windows() -> None:
    """A Claude login's 5-hour and 7-day windows (and others it names), resets in epoch s."""
    headers = [
        (b"Anthropic-Ratelimit-Unified-5h-Utilization", b"0.42"),
        (b"anthropic-ratelimit-unified-5h-reset", b"1800003600"),
        (b"anthropic-ratelimit-unified-5h-status", b"allowed"),
        (b"anthropic-ratelimit-unified-7d-utilization", b"0.18"),
        (b"anthropic-ratelimit-unified-7d-reset", b"1800500000"),
        (b"anthropic-ratelimit-unified-7d_opus-utilization", b"1.02"),
        (b"anthropic-ratelimit-unified-status", b"allowed"),
        (b"anthropic-ratelimit-unified-reset", b"1800003600"),
        (b"anthropic-ratelimit-unified-representative-claim", b"five_hour"),
        (b"anthropic-ratelimit-unified-fallback-percentage", b"0.5"),
        (b"content-type", b"application/json"),
    ]
    assert windows_from_headers(headers, NOW) == [
        Window("5h", "anthropic-unified", 0.42, 1_800_003_600_000, status="allowed"),
        Window("7d", "anthropic-unified", 0.18, 1_800_500_000_000),
        Window("7d_opus", "anthropic-unified", 1.02),
    ]


def test_anthropic_api_limits() -> None:
    """An API key's request and token limits: used share from limit and remaining."""
    headers = raw(
        anthropic_ratelimit_requests_limit="50",
        anthropic_ratelimit_requests_remaining="49",
        anthropic_ratelimit_requests_reset="2027-01-15T08:00:30Z",
        anthropic_ratelimit_input_tokens_limit="40000",
        anthropic_ratelimit_input_tokens_remaining="30000",
        anthropic_ratelimit_input_tokens_reset="2027-01-15T08:00:05+00:00",
        anthropic_ratelimit_tokens_limit="0",
        anthropic_ratelimit_tokens_remaining="0",
        anthropic_ratelimit_output_tokens_reset="yesterday",
    )
    assert windows_from_headers(headers, NOW) == [
        Window("input-tokens", "anthropic", 0.25, 1_800_000_005_000, limit=40000, remaining=30000),
        Window("requests", "anthropic", 0.02, 1_800_000_030_000, limit=50, remaining=49),
    ]


def test_openai_limits_reset_after_a_duration() -> None:
    """OpenAI's resets are durations from the answer."""
    headers = raw(
        x_ratelimit_limit_requests="500",
        x_ratelimit_remaining_requests="400",
        x_ratelimit_reset_requests="6m0s",
        x_ratelimit_limit_tokens="10000",
        x_ratelimit_remaining_tokens="9000",
        x_ratelimit_reset_tokens="20ms",
    )
    assert windows_from_headers(headers, NOW) == [
        Window("requests", "openai", 0.2, NOW + 360_000, limit=500, remaining=400),
        Window("tokens", "openai", 0.1, NOW + 20, limit=10000, remaining=9000),
    ]


def test_codex_windows() -> None:
    """Codex's primary and secondary windows: percent, length, reset at or after."""
    headers = raw(
        x_codex_primary_used_percent="12.5",
        x_codex_primary_window_minutes="300",
        x_codex_primary_reset_after_seconds="600",
        x_codex_secondary_reset_after_seconds="999",
        x_codex_secondary_used_percent="40",
        x_codex_secondary_window_minutes="10080",
        x_codex_secondary_reset_at="1800300000",
        x_codex_plan_type="plus",
        x_codex_tertiary_used_percent="1",
    )
    assert windows_from_headers(headers, NOW) == [
        Window("primary", "codex", 0.125, NOW + 600_000, window_minutes=300),
        Window("secondary", "codex", 0.4, 1_800_300_000_000, window_minutes=10080),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        raw(x_codex_primary_used_percent="lots", x_codex_primary_window_minutes="300"),
        raw(anthropic_ratelimit_unified_5h_utilization="nan"),
        raw(anthropic_ratelimit_unified_5h_reset="-5"),
        raw(x_ratelimit_reset_requests="soon"),
        [(b"anthropic-ratelimit-unified-" + b"x" * 40 + b"-utilization", b"0.5")],
        raw(server="x", date="y"),
    ],
)
def test_headers_that_describe_no_window(headers: list[tuple[bytes, bytes]]) -> None:
    """Bad values and unknown names are skipped, never an error."""
    assert windows_from_headers(headers, NOW) == []


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1s", 1000),
        ("6m0s", 360_000),
        ("1h2m3.5s", 3_723_500),
        ("20ms", 20),
        ("0.5s", 500),
        ("", None),
        ("5", None),
        ("1x", None),
        ("1s junk", None),
    ],
)
def test_duration_ms(text: str, ms: int | None) -> None:
    """OpenAI's Go-style durations."""
    assert duration_ms(text) == ms


@pytest.mark.parametrize(
    ("window", "text"),
    [
        (Window("primary", "codex", window_minutes=300), "5h"),
        (Window("secondary", "codex", window_minutes=10080), "7d"),
        (Window("primary", "codex", window_minutes=90), "90m"),
        (Window("primary", "codex"), "primary"),
        (Window("5h", "anthropic-unified", window_minutes=300), "5h"),
        (Window("requests", "openai"), "requests"),
    ],
)
def test_label(window: Window, text: str) -> None:
    """Codex's windows are named by their length, the others by their own names."""
    assert label(window) == text


def test_numbers_too_large_for_the_database_are_no_window() -> None:
    """Limits, resets and durations no provider sends are dropped, never stored."""
    headers = raw(
        anthropic_ratelimit_requests_limit="9" * 30,
        anthropic_ratelimit_requests_remaining="1",
        anthropic_ratelimit_unified_5h_reset="1e300",
        x_codex_primary_reset_after_seconds="1e300",
        x_ratelimit_reset_tokens="99999999999999h",
    )
    assert windows_from_headers(headers, NOW) == []
