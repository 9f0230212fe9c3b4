"""Tests for sidecar.proxy.scope: which upstream a credential may reach."""

from __future__ import annotations

import pytest

from sidecar.proxy.scope import may_carry


@pytest.mark.parametrize(
    ("upstream", "provider", "kind", "expected"),
    [
        ("openai", "openai", "api_key", True),
        ("anthropic", "anthropic", "oauth", True),
        ("anthropic", "anthropic", "token", True),
        ("my-llm", "my-llm", "api_key", True),
        ("openai-codex", "openai-codex", "oauth", True),
        # 2026.6.1's name for a Codex login: the Codex backend is its own upstream.
        ("openai-codex", "openai", "oauth", True),
        ("openai-codex", "openai", "api_key", False),
        ("openai-codex", "openai", "token", False),
        ("openai", "openai-codex", "oauth", False),
        ("openai", "anthropic", "oauth", False),
        ("openai", "anthropic", "token", False),
        ("anthropic", "openai", "oauth", False),
        ("anthropic", "openai", "api_key", False),
        ("openrouter", "openai", "api_key", False),
        ("my-llm", "openrouter", "api_key", False),
        ("openai-codex", "anthropic", "oauth", False),
        ("openai", "OpenAI", "api_key", False),  # the store lowercases; nothing else matches
    ],
)
def test_may_carry(upstream: str, provider: str, kind: str, expected: bool) -> None:
    """A credential goes to its own provider's base URL only; the one exception is an
    ``openai`` OAuth profile (a renamed Codex login) going to the Codex backend."""
    assert may_carry(upstream, provider, kind) is expected
