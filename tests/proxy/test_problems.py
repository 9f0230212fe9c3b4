"""Tests for sidecar.proxy.problems: sidecar-made errors in each provider's shape."""

from __future__ import annotations

import json

import pytest

from sidecar.errors import (
    AgentMismatch,
    CallerUnauthorized,
    InvalidPath,
    NoProfile,
    ProfilesCooling,
    RefreshUnavailable,
    SidecarError,
    StoreError,
    StoreReadOnly,
    UpstreamTimeout,
)
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ErrorStyle, ProviderSpec
from sidecar.proxy.problems import error_body, error_type, style_for


@pytest.mark.parametrize(
    ("error", "style", "payload"),
    [
        (InvalidPath("bad path"), "openai",
         {"error": {"message": "bad path", "type": "invalid_request_error",
                    "code": "invalid_path"}}),
        (InvalidPath("bad path"), "anthropic",
         {"type": "error", "error": {"type": "invalid_request_error", "message": "bad path"}}),
        (CallerUnauthorized("no token"), "openai",
         {"error": {"message": "no token", "type": "authentication_error",
                    "code": "caller_unauthorized"}}),
        (AgentMismatch("other"), "anthropic",
         {"type": "error", "error": {"type": "permission_error", "message": "other"}}),
        (NoProfile("none"), "anthropic",
         {"type": "error", "error": {"type": "not_found_error", "message": "none"}}),
        (RefreshUnavailable("down"), "anthropic",
         {"type": "error", "error": {"type": "overloaded_error", "message": "down"}}),
        (RefreshUnavailable("down"), "openai",
         {"error": {"message": "down", "type": "api_error", "code": "refresh_unavailable"}}),
        (UpstreamTimeout("slow"), "anthropic",
         {"type": "error", "error": {"type": "api_error", "message": "slow"}}),
        (StoreError("bad json"), "openai",
         {"error": {"message": "bad json", "type": "api_error", "code": "store_unreadable"}}),
        (StoreReadOnly("era D"), "openai",
         {"error": {"message": "era D", "type": "invalid_request_error",
                    "code": "store_read_only"}}),
        (InvalidPath("ünïcode"), "openai",
         {"error": {"message": "ünïcode", "type": "invalid_request_error",
                    "code": "invalid_path"}}),
    ],
)  # fmt: skip
def test_error_body(error: SidecarError, style: ErrorStyle, payload: dict[str, object]) -> None:
    """The body has the provider's error shape; headers carry the type and the code."""
    status, headers, body = error_body(error, style)
    assert (status, headers, json.loads(body)) == (
        error.status,
        [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-openclaw-sidecar-error", error.code.encode()),
        ],
        payload,
    )


def test_all_profiles_cooling_says_when_to_retry() -> None:
    """The 429 all_profiles_cooling carries Retry-After, in the provider's rate-limit shape."""
    error = ProfilesCooling("resting", retry_after_s=17)
    status, headers, body = error_body(error, "anthropic")
    assert (status, headers[-2:], json.loads(body)) == (
        429,
        [(b"x-openclaw-sidecar-error", b"all_profiles_cooling"), (b"retry-after", b"17")],
        {"type": "error", "error": {"type": "rate_limit_error", "message": "resting"}},
    )


@pytest.mark.parametrize(
    ("status", "style", "expected"),
    [
        (400, "openai", "invalid_request_error"),
        (401, "anthropic", "authentication_error"),
        (403, "openai", "permission_error"),
        (404, "openai", "not_found_error"),
        (409, "anthropic", "invalid_request_error"),
        (429, "anthropic", "rate_limit_error"),
        (500, "anthropic", "api_error"),
        (502, "openai", "api_error"),
        (503, "openai", "api_error"),
        (503, "anthropic", "overloaded_error"),
        (504, "anthropic", "api_error"),
    ],
)
def test_error_type(status: int, style: ErrorStyle, expected: str) -> None:
    """Statuses map to the provider-style error type."""
    assert error_type(status, style) == expected


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (None, "openai"),
        (BUILTIN_PROVIDERS["anthropic"], "anthropic"),
        (BUILTIN_PROVIDERS["openai"], "openai"),
        (BUILTIN_PROVIDERS["openai-codex"], "openai"),
        (BUILTIN_PROVIDERS["openrouter"], "openai"),
        (ProviderSpec(name="c", kind="generic", base_url="https://c", error_style="anthropic"),
         "anthropic"),
    ],
)  # fmt: skip
def test_style_for(provider: ProviderSpec | None, expected: ErrorStyle) -> None:
    """Anthropic-style providers get Anthropic errors; everything else OpenAI's."""
    assert style_for(provider) == expected
