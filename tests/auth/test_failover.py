"""Failover decisions as pure functions: OpenClaw 2026.9.6's reading of an error answer (status
and provider body), whether the request moves on, and whether the profile is marked. The table's
expected reasons are what OpenClaw's own classifier says for the same input
(tests/interop/test_failover_interop.py checks that against the installed CLI)."""

# ruff: noqa: E501  (a table of real provider error bodies, one case a line)
from __future__ import annotations

import json

import pytest

from sidecar.auth import failover


def anthropic(kind: str, message: str) -> str:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}})


def openai(message: str, kind: str, code: str | None = None) -> str:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


# (status, body, provider, OpenClaw's reason)
CASES: list[tuple[int, str, str, str | None]] = [
    (429, anthropic("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), "anthropic", "rate_limit"),
    (429, openai("Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 30000, Requested 100.", "tokens", "rate_limit_exceeded"), "openai", "rate_limit"),
    (429, openai("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota"), "openai", "billing"),
    (429, json.dumps({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 3600}}), "openai-codex", "rate_limit"),
    (429, "", "openai", "rate_limit"),
    (429, "Too Many Requests", "openrouter", "rate_limit"),
    (429, json.dumps({"detail": "Too many requests"}), "openai-codex", "rate_limit"),
    (429, json.dumps({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}), "google", "rate_limit"),
    (429, openai("insufficient account balance", "x"), "openai", "rate_limit"),
    (429, openai("insufficient account balance", "insufficient_balance"), "xai", "billing"),
    (529, anthropic("overloaded_error", "Overloaded"), "anthropic", "overloaded"),
    (503, anthropic("overloaded_error", "Overloaded"), "anthropic", "overloaded"),
    (503, openai("The server is overloaded or not ready yet.", "server_error"), "openai", "overloaded"),
    (503, "Service Unavailable", "openai", "overloaded"),
    (503, json.dumps({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}), "google", "overloaded"),
    (500, openai("The server had an error while processing your request.", "server_error"), "openai", "server_error"),
    (500, anthropic("api_error", "Internal server error"), "anthropic", "server_error"),
    (500, openai("Unknown error (no error details in response)", "x"), "openai", "server_error"),
    (502, "Bad Gateway", "openai", "server_error"),
    (504, "Gateway Timeout", "openai", "timeout"),
    (402, "", "openai", "billing"),
    (402, openai("Payment required", "billing"), "openrouter", "billing"),
    (402, json.dumps({"error": {"message": "Insufficient credits. Add more using https://openrouter.ai/credits", "code": 402}}), "openrouter", "billing"),
    (402, openai("Weekly usage limit exhausted, resets Monday", "usage"), "openai", "rate_limit"),
    (402, openai("Organization spending limit exceeded for this billing period", "usage"), "openai", "rate_limit"),
    (400, anthropic("invalid_request_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."), "anthropic", "billing"),
    (400, anthropic("invalid_request_error", "messages: text content blocks must be non-empty"), "anthropic", "format"),
    (400, anthropic("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"), "anthropic", "context_overflow"),
    (400, openai("This model's maximum context length is 128000 tokens.", "invalid_request_error", "context_length_exceeded"), "openai", "context_overflow"),
    (400, anthropic("invalid_request_error", "This organization has been disabled."), "anthropic", "format"),
    (400, "", "openai", None),
    (401, anthropic("authentication_error", "invalid x-api-key"), "anthropic", "auth"),
    (401, openai("Incorrect API key provided: sk-...", "invalid_request_error", "invalid_api_key"), "openai", "auth"),
    (401, openai("Your API key has been revoked", "invalid_request_error"), "openai", "auth_permanent"),
    (403, anthropic("permission_error", "Your credit balance is too low"), "anthropic", "billing"),
    (404, anthropic("not_found_error", "model: claude-x"), "anthropic", "model_not_found"),
    (404, openai("The model `gpt-9` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"), "openai", "model_not_found"),
    (404, "Not Found", "openai", "model_not_found"),
    (408, "", "openai", "timeout"),
    (409, "conflict", "openai", None),
    (413, "too large", "openai", None),
    (422, openai("Unprocessable", "invalid_request_error"), "openai", "format"),
    (200, "", "openai", None),
]  # fmt: skip
# What OpenClaw's provider plugins add (the bare classifier the interop test loads has none).
PLUGIN_CASES: list[tuple[int, str, str, str | None]] = [
    (429, openai("Key limit exceeded", "invalid_request_error"), "openrouter", "billing"),
    (403, openai("Key limit exceeded", "forbidden"), "openrouter", "billing"),
    (400, openai("Provider returned error", "x"), "openrouter", "timeout"),
]


@pytest.mark.parametrize(("status", "body", "provider", "reason"), CASES + PLUGIN_CASES)
def test_an_error_answer_reads_as_openclaw_reads_it(
    status: int, body: str, provider: str, reason: str | None
) -> None:
    """Status first, the body's wording and error type/code where the status leaves room."""
    assert failover.classify(status, body, provider) == reason


@pytest.mark.parametrize(
    ("reason", "moves", "marks"),
    [
        ("rate_limit", True, "rate_limit"),
        ("billing", True, "billing"),
        ("overloaded", True, None),  # the provider's trouble, not the account's
        ("auth", False, "auth"),
        ("auth_permanent", False, "auth_permanent"),
        ("timeout", False, "timeout"),
        ("server_error", False, None),
        ("format", False, None),
        ("context_overflow", False, None),
        ("model_not_found", False, None),  # a proxy's 404 may be any path
        (None, False, None),
    ],
)
def test_which_reasons_move_the_request_and_which_mark_the_profile(
    reason: failover.Reason | None, moves: bool, marks: str | None
) -> None:
    """Rate limits, overloads and billing move the request; only the account's own failures
    count against the profile."""
    assert (failover.fails_over(reason), failover.profile_failure(reason)) == (moves, marks)


def test_an_odd_body_never_raises() -> None:
    """Bodies that are not JSON, or JSON of another shape, still classify by status."""
    assert [failover.classify(429, b, "openai") for b in ("[1, 2]", "null", "\x00\xff")] == [
        "rate_limit"
    ] * 3
