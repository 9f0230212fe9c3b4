"""Tests for sidecar.providers.ids: provider ids compared as OpenClaw compares them."""

from __future__ import annotations

import pytest

from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.providers.ids import (
    auth_provider_id,
    normalize_provider_id,
    profiles_of,
    route_provider,
    serves,
    stored_spellings,
)

KNOWN = frozenset(BUILTIN_PROVIDERS) | {"my-llm"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("deepseek", "deepseek"), ("  DeepSeek ", "deepseek"), ("Z.AI", "z.ai"), ("", "")],
)
def test_normalize_provider_id(raw: str, expected: str) -> None:
    """OpenClaw's normalizeProviderId: trimmed and lowercased, nothing else."""
    assert normalize_provider_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zai", "zai"),
        ("Z.AI", "zai"),
        ("z-ai", "zai"),
        ("minimax-cn", "minimax"),
        ("minimax-portal-cn", "minimax-portal"),
        ("MoonshotAI", "moonshot"),
        ("qwen-portal", "qwen-oauth"),
        ("kimi-coding", "kimi"),
        ("claude-cli", "anthropic"),
        ("codex", "openai-codex"),
        ("x-ai", "xai"),
        ("deepseek", "deepseek"),
        ("my-llm", "my-llm"),
    ],
)
def test_auth_provider_id(raw: str, expected: str) -> None:
    """An alias means its provider's credentials (OpenClaw's resolveProviderIdForAuth)."""
    assert auth_provider_id(raw) == expected


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("deepseek", "deepseek"),
        ("DeepSeek", "deepseek"),
        ("z.ai", "zai"),
        ("Z-AI", "zai"),
        ("minimax-cn", "minimax-cn"),  # an endpoint of its own: its own route
        ("zai-coding-global", "zai-coding-global"),
        ("codex", "openai-codex"),
        ("my-llm", "my-llm"),
        ("nonesuch", None),
    ],
)
def test_route_provider(segment: str, expected: str | None) -> None:
    """A path segment routes to a provider by name, case or alias."""
    assert route_provider(segment, KNOWN) == expected


def test_route_provider_needs_the_alias_target_configured() -> None:
    """An alias of a provider that is not configured routes nowhere."""
    assert route_provider("z-ai", {"openai"}) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zai", "zai"),
        ("zai-coding-global", "zai"),
        ("minimax-cn", "minimax"),
        ("minimax-portal-cn", "minimax-portal"),
        ("byteplus-plan", "byteplus"),
        ("stepfun-plan", "stepfun-plan"),
    ],
)
def test_profiles_of(name: str, expected: str) -> None:
    """Variants and regional aliases are served by their provider's profiles."""
    assert profiles_of(BUILTIN_PROVIDERS[name]) == expected


def test_stored_spellings() -> None:
    """The wanted id first, then each stored spelling that means it, in the given order."""
    stored = ["anthropic", "minimax-cn", "minimax", "minimax-api", "zai", "z-ai"]
    assert stored_spellings("minimax", stored) == ["minimax", "minimax-cn", "minimax-api"]
    assert stored_spellings("zai", stored) == ["zai", "z-ai"]
    assert stored_spellings("groq", stored) == ["groq"]


@pytest.mark.parametrize(
    ("name", "provider", "cred_type", "expected"),
    [
        ("openai-codex", "openai", "oauth", True),
        ("openai-codex", "openai", "api_key", False),
        ("openai-codex", "codex", "oauth", True),
        ("openai", "openai", "oauth", False),
        ("openai", "openai", "api_key", True),
        ("zai-coding-global", "z-ai", "api_key", True),
        ("zai", "zai", "token", True),
        ("deepseek", "zai", "api_key", False),
    ],
)
def test_serves(name: str, provider: str, cred_type: str, expected: bool) -> None:
    """Which stored profiles the proxy would pick from for a route, unpinned."""
    assert serves(BUILTIN_PROVIDERS[name], provider, cred_type) is expected
