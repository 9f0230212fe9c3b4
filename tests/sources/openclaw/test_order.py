"""OpenClaw 2026.9.6's profile order (``auth-profiles/order.ts``) as pure functions: where the
order comes from (stored, configured, ``auth.profiles``, the store), which profiles it drops,
how an explicit order that names only missing profiles is repaired, where expired OAuth logins
go, and what a model-scoped or exempt cooldown does to it. tests/interop/test_failover_interop.py
asks OpenClaw's own ``resolveAuthProfileOrder`` the same questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.sources.openclaw.config import ConfiguredProfile
from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import parse_profiles, parse_state
from sidecar.sources.openclaw.order import order_changes_at, ordered_profiles, ranked_profiles
from sidecar.sources.openclaw.views import AgentView, StoreSnapshot, merge_view

NOW = 1_767_225_600_000
MIN = 60_000
DAY = 24 * 60 * MIN


def key(provider: str = "openai") -> dict[str, Any]:
    return {"type": "api_key", "provider": provider, "key": "k"}


def token(expires: int | None = None) -> dict[str, Any]:
    return {
        "type": "token",
        "provider": "openai",
        "token": "t",
        **({"expires": expires} if expires else {}),
    }


def oauth(expires: int, provider: str = "openai") -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": provider,
        "access": "a",
        "refresh": "r",
        "expires": expires,
    }


def view_of(
    profiles: dict[str, Any],
    state: dict[str, Any] | None = None,
    config_order: dict[str, tuple[str, ...]] | None = None,
    config_profiles: dict[str, tuple[str, str]] | None = None,
) -> AgentView:
    doc = parse_profiles(json.dumps({"version": 1, "profiles": profiles}))
    snapshot = StoreSnapshot(
        agent="main",
        profiles=doc.profiles,
        invalid=doc.invalid,
        state=parse_state(json.dumps({"version": 1, **(state or {})})),
        origin=Path("/state/agents/main/agent/auth-profiles.json"),
        era=Era.JSON,
    )
    configured = {pid: ConfiguredProfile(*c) for pid, c in (config_profiles or {}).items()}
    return merge_view(
        "main",
        snapshot,
        None,
        now_ms=NOW,
        config_order=config_order,
        config_profiles=configured,
    )


def ids(
    view: AgentView, providers: tuple[str, ...] = ("openai",), model: str | None = None
) -> list[str]:
    return [v.id for v in ordered_profiles(view, list(providers), NOW, model)]


STORE = {"openai:a": key(), "openai:b": key(), "openai:c": key()}
ALL = ["openai:a", "openai:b", "openai:c"]


def test_without_an_order_the_store_order_stands_among_equals() -> None:
    """Same type, never used: the store's order (a stable sort), not the ids'."""
    store = {"openai:z": key(), "openai:a": key()}
    assert ids(view_of(store)) == ["openai:z", "openai:a"]


def test_auth_profiles_come_before_the_store() -> None:
    """openclaw.json auth.profiles of the provider are the base when no order is set: a stored
    profile it does not name is not used."""
    configured = {"openai:c": ("openai", "api_key"), "openai:a": ("openai", "api_key")}
    assert ids(view_of(STORE, config_profiles=configured)) == ["openai:c", "openai:a"]


def test_the_stored_order_beats_the_configured_one() -> None:
    view = view_of(STORE, {"order": {"openai": ["openai:b"]}}, {"openai": ("openai:c",)})
    assert ids(view) == ["openai:b"]


def test_an_order_key_matches_case_insensitively() -> None:
    assert ids(view_of(STORE, {"order": {"OpenAI": ["openai:c", "openai:a"]}})) == [
        "openai:c",
        "openai:a",
    ]


def test_an_explicit_order_is_kept_as_written() -> None:
    """No type sorting under an explicit order: an API key may come before an OAuth login."""
    store = {**STORE, "openai:login": oauth(NOW + DAY)}
    view = view_of(store, config_order={"openai": ("openai:b", "openai:login", "openai:b")})
    assert ids(view) == ["openai:b", "openai:login"]


def test_an_empty_explicit_order_selects_nothing() -> None:
    """OpenClaw: an authored empty order means select no profiles."""
    assert ids(view_of(STORE, {"order": {"openai": []}})) == []


@pytest.mark.parametrize(
    ("state", "config_order", "config_profiles", "expected"),
    [
        ({"order": {"openai": ["openai:gone"]}}, None, None, ALL),
        (None, {"openai": ("openai:gone",)}, {"openai:gone": ("openai", "api_key")}, ALL),
        (None, {"openai": ("openai:gone",)}, None, []),
    ],
    ids=["stored-order", "config-order-with-auth-profiles", "config-order-alone"],
)  # fmt: skip
def test_an_order_of_missing_profiles_falls_back_to_the_stored_ones(
    state: dict[str, Any] | None,
    config_order: dict[str, tuple[str, ...]] | None,
    config_profiles: dict[str, tuple[str, str]] | None,
    expected: list[str],
) -> None:
    """Repaired when the order is the stored one, or auth.profiles names the provider's; a
    configured order alone that names only missing profiles selects none (2026.9.6's rule)."""
    assert ids(view_of(STORE, state, config_order, config_profiles)) == expected


def test_a_profile_whose_type_is_not_its_configured_mode_is_skipped() -> None:
    """auth.profiles says api_key but the store holds a token: skipped; mode oauth accepts a
    token (a setup token stands for a login)."""
    store = {"openai:a": token(), "openai:b": token(), "openai:c": key()}
    configured = {
        "openai:a": ("openai", "api_key"),
        "openai:b": ("openai", "oauth"),
        "openai:c": ("openai", "api_key"),
    }
    assert ids(view_of(store, config_profiles=configured)) == ["openai:b", "openai:c"]


def test_profiles_that_cannot_serve_are_dropped() -> None:
    """An expired static token, an OAuth refresh fence, a key with no secret: never chosen."""
    fence = {
        **oauth(1),
        "access": "openclaw-oauth-refresh-fence:v1:" + "0" * 32 + ":access:" + "1" * 64,
        "refresh": "openclaw-oauth-refresh-fence:v1:" + "0" * 32 + ":refresh:" + "1" * 64,
    }
    store = {
        "openai:old": token(NOW - 1),
        "openai:fence": fence,
        "openai:empty": {"type": "api_key", "provider": "openai"},
        "openai:ok": key(),
    }
    assert ids(view_of(store)) == ["openai:ok"]


def test_an_expired_login_comes_after_usable_logins_but_before_tokens() -> None:
    """It stays eligible (it refreshes), behind the usable OAuth profiles."""
    store = {
        "openai:tok": token(),
        "openai:expired": oauth(NOW - MIN),
        "openai:fresh": oauth(NOW + DAY),
    }
    assert ids(view_of(store)) == ["openai:fresh", "openai:expired", "openai:tok"]


def test_least_recently_used_first_within_a_type() -> None:
    usage = {"openai:a": {"lastUsed": NOW - MIN}, "openai:b": {"lastUsed": NOW - 9 * MIN}}
    assert ids(view_of(STORE, {"usageStats": usage})) == ["openai:c", "openai:b", "openai:a"]


def test_one_providers_order_never_hides_anothers_profiles() -> None:
    """The Codex route takes openai-codex and openai logins: an ``openai`` order of API keys
    no longer hides the ``openai-codex`` login (each provider is ordered on its own)."""
    store = {"openai:key": key(), "openai-codex:me": oauth(NOW + DAY, "openai-codex")}
    view = view_of(store, {"order": {"openai": ["openai:key"]}})
    assert [v.id for v in ranked_profiles(view, ["openai-codex", "openai"], NOW)] == [
        "openai-codex:me",
        "openai:key",
    ]


def test_a_model_scoped_cooldown_moves_its_profile_only_for_that_model() -> None:
    usage = {
        "openai:a": {
            "cooldownUntil": NOW + MIN,
            "cooldownReason": "rate_limit",
            "cooldownModel": "gpt-5",
        }
    }
    view = view_of(STORE, {"usageStats": usage})
    assert ids(view, model="gpt-5") == ["openai:b", "openai:c", "openai:a"]
    assert ids(view, model="gpt-5-mini") == ["openai:a", "openai:b", "openai:c"]
    assert ids(view) == ["openai:b", "openai:c", "openai:a"]  # model unknown: it holds


def test_openrouter_profiles_never_rest() -> None:
    """isAuthCooldownBypassedForProvider: an openrouter cooldown does not move the profile."""
    store = {"openrouter:a": key("openrouter"), "openrouter:b": key("openrouter")}
    usage = {"openrouter:a": {"cooldownUntil": NOW + MIN}}
    assert ids(view_of(store, {"usageStats": usage}), ("openrouter",)) == [
        "openrouter:a",
        "openrouter:b",
    ]


def test_the_order_changes_when_a_login_or_token_expires() -> None:
    store = {"openai:a": key(), "openai:tok": token(NOW + 5 * MIN), "openai:in": oauth(NOW + DAY)}
    assert order_changes_at(view_of(store), ["openai"], NOW) == NOW + 5 * MIN
