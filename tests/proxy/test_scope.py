"""Tests for sidecar.proxy.scope: which upstream a credential may reach, and what a listener
without read-through leaves of an agent's view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.proxy.scope import is_inherited, may_carry, own_view
from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import ApiKeyCredential, AuthState, UsageStats, parse_entry
from sidecar.sources.openclaw.views import AgentView, ProfileView


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
        ("openai", "OpenAI", "api_key", True),  # ids compared as OpenClaw compares them
        ("zai", "z-ai", "api_key", True),  # an alias of the provider
        ("zai-coding-global", "zai", "api_key", True),  # a route served by zai profiles
        ("zai", "openai", "api_key", False),
    ],
)
def test_may_carry(upstream: str, provider: str, kind: str, expected: bool) -> None:
    """A credential goes to its own provider's base URL only; the one exception is an
    ``openai`` OAuth profile (a renamed Codex login) going to the Codex backend."""
    spec = BUILTIN_PROVIDERS.get(upstream) or ProviderSpec(
        name=upstream, kind="generic", base_url="https://llm.example.com"
    )
    assert may_carry(spec, provider, kind) is expected


def profile(pid: str, owner: str) -> ProfileView:
    provider = pid.split(":")[0]
    entry = parse_entry(pid, {"type": "api_key", "provider": provider, "key": "k"})
    assert isinstance(entry, ApiKeyCredential)
    return ProfileView(entry, owner, Path(f"/state/agents/{owner}/agent/auth-profiles.json"))


def view(agent: str, *profiles: ProfileView, **kwargs: Any) -> AgentView:
    return AgentView(agent=agent, profiles={p.id: p for p in profiles}, era=Era.JSON, **kwargs)


@pytest.mark.parametrize(
    ("owner", "agent", "expected"),
    [("main", "work", True), ("work", "work", False), ("main", "main", False),
     ("fleet:work", "work", False), ("fleet:main", "work", False)],
)  # fmt: skip
def test_is_inherited(owner: str, agent: str, expected: bool) -> None:
    """Read-through is from main's own store only (store spec §7); the fleet's profiles of
    the agent are its own."""
    assert is_inherited(profile("openai:x", owner), agent) is expected


def test_own_view_drops_what_main_lends() -> None:
    """Main's profiles go; the agent's own (its store's and its fleet's) stay, same objects."""
    mine, fleet, lent = (
        profile("openai:work", "work"),
        profile("openai-codex:w", "fleet:work"),
        profile("openai:main", "main"),
    )
    got = own_view(view("work", mine, fleet, lent, state=AuthState()))
    assert got.profiles == {"openai:work": mine, "openai-codex:w": fleet}
    assert got.agent == "work"


def test_own_view_of_main_and_of_an_agent_without_loans_is_the_view_itself() -> None:
    """Nothing to drop: the same object, so the proxy's per-view caches keep hitting."""
    for agent, owner in (("main", "main"), ("work", "work")):
        original = view(agent, profile("openai:a", owner), state=AuthState())
        assert own_view(original) is original


def test_own_view_narrows_orders_to_the_agents_own_ids() -> None:
    """An order naming main's ids keeps the agent's own; one naming none of them no longer
    applies (else the agent's own profiles would be ordered out entirely)."""
    usage = {"openai:work": UsageStats(last_used=5)}
    original = view(
        "work",
        profile("openai:work", "work"),
        profile("openai:main", "main"),
        profile("anthropic:main", "main"),
        state=AuthState(
            order={"openai": ("openai:main", "openai:work"), "anthropic": ("anthropic:main",)},
            last_good={"openai": "openai:main"},
            usage=usage,
        ),
        config_order={"openai": ("openai:main",), "anthropic": ("anthropic:main",)},
    )
    got = own_view(original)
    assert (got.state.order, got.config_order, got.state.usage) == (
        {"openai": ("openai:work",)},
        {},
        usage,
    )
