"""Profile order (store spec §4) and the merge of main's and an agent's stores (§7), as pure
functions over parsed snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import parse_profiles, parse_state
from sidecar.sources.openclaw.order import ordered_profiles
from sidecar.sources.openclaw.views import StoreSnapshot, merge_view

NOW = 1_767_225_600_000
MIN = 60_000

PROFILES = {
    "anthropic:key": {"type": "api_key", "provider": "anthropic", "key": "k"},
    "anthropic:old-key": {"type": "api_key", "provider": "anthropic", "key": "k"},
    "anthropic:setup": {"type": "token", "provider": "anthropic", "token": "t"},
    "anthropic:oauth-b": {
        "type": "oauth",
        "provider": "anthropic",
        "access": "a",
        "refresh": "r",
        "expires": NOW,
    },
    "anthropic:oauth-a": {
        "type": "oauth",
        "provider": "anthropic",
        "access": "a",
        "refresh": "r",
        "expires": NOW,
    },
    "openai:key": {"type": "api_key", "provider": "openai", "key": "k"},
}
USAGE = {
    "anthropic:key": {"lastUsed": NOW - 1 * MIN},
    "anthropic:old-key": {"lastUsed": NOW - 9 * MIN},
    "anthropic:oauth-b": {"lastUsed": NOW - 5 * MIN},
    "anthropic:oauth-a": {"lastUsed": NOW - 2 * MIN},
}


def snapshot(agent, profiles, state=None):
    doc = parse_profiles(json.dumps({"version": 1, "profiles": profiles}))
    return StoreSnapshot(
        agent=agent,
        profiles=doc.profiles,
        invalid=doc.invalid,
        state=parse_state(json.dumps({"version": 1, **(state or {})})),
        origin=Path(f"/state/agents/{agent}/agent/auth-profiles.json"),
        era=Era.JSON,
    )


def order(state=None, config_order=None, providers=("anthropic",)):
    view = merge_view(
        "main", snapshot("main", PROFILES, state), None, now_ms=NOW, config_order=config_order
    )
    return [v.id for v in ordered_profiles(view, list(providers), NOW)]


def test_default_order_is_type_then_least_recently_used():
    """Without an explicit order: oauth < token < api_key, least recently used first."""
    assert order({"usageStats": USAGE}) == [
        "anthropic:oauth-b",
        "anthropic:oauth-a",
        "anthropic:setup",
        "anthropic:old-key",
        "anthropic:key",
    ]


def test_never_used_comes_before_used():
    """A profile with no lastUsed counts as least recently used."""
    usage = {"anthropic:oauth-a": {"lastUsed": NOW - MIN}}
    assert order({"usageStats": usage})[:2] == ["anthropic:oauth-b", "anthropic:oauth-a"]


def test_auth_state_order_wins_over_config_order():
    """auth-state.json order[provider] beats openclaw.json auth.order."""
    assert order(
        {"order": {"anthropic": ["anthropic:key", "anthropic:setup"]}},
        {"anthropic": ("anthropic:setup", "anthropic:oauth-a")},
    ) == ["anthropic:key", "anthropic:setup"]


def test_config_order_used_without_state_order():
    """openclaw.json auth.order applies when auth-state.json has none for the provider."""
    assert order(
        {"order": {"openai": ["openai:key"]}},
        {"anthropic": ("anthropic:setup", "anthropic:oauth-a")},
    ) == ["anthropic:setup", "anthropic:oauth-a"]


@pytest.mark.parametrize("window", ["cooldownUntil", "disabledUntil", "blockedUntil"])
def test_profile_in_cooldown_goes_last(window):
    """An explicitly first profile that is cooling down moves behind the usable ones."""
    state = {
        "order": {"anthropic": ["anthropic:key", "anthropic:setup", "anthropic:oauth-a"]},
        "usageStats": {"anthropic:key": {window: NOW + MIN}},
    }
    assert order(state) == ["anthropic:setup", "anthropic:oauth-a", "anthropic:key"]


def test_cooling_profiles_ordered_by_soonest_usable():
    """Among profiles in cooldown, the one usable soonest comes first."""
    usage = {
        **USAGE,
        "anthropic:oauth-b": {"cooldownUntil": NOW + 5 * MIN},
        "anthropic:setup": {"disabledUntil": NOW + 1 * MIN},
    }
    assert order({"usageStats": usage}) == [
        "anthropic:oauth-a",
        "anthropic:old-key",
        "anthropic:key",
        "anthropic:setup",
        "anthropic:oauth-b",
    ]


def test_expired_cooldown_is_not_cooldown():
    """A window that ended is ignored (ties keep the store's order: JavaScript's sort is
    stable, and OpenClaw 2026.9.6 breaks no tie by id)."""
    usage = {"anthropic:oauth-b": {"cooldownUntil": NOW - 1}}
    assert order({"usageStats": usage}) == [
        "anthropic:oauth-b",
        "anthropic:oauth-a",
        "anthropic:setup",
        "anthropic:key",
        "anthropic:old-key",
    ]


def test_order_is_per_provider():
    """Only the requested providers' profiles are listed."""
    assert order(providers=("openai",)) == ["openai:key"]


def test_merge_view_main_union_own():
    """The agent's view is main ∪ own; own wins on the same id; owners are recorded."""
    main = snapshot("main", {"a:1": PROFILES["openai:key"], "a:2": PROFILES["anthropic:key"]})
    own = snapshot("w", {"a:2": PROFILES["anthropic:setup"], "a:3": PROFILES["openai:key"]})
    view = merge_view("w", own, main, now_ms=NOW)
    assert {pid: (v.owner, v.profile.type) for pid, v in view.profiles.items()} == {
        "a:1": ("main", "api_key"),
        "a:2": ("w", "token"),
        "a:3": ("w", "api_key"),
    }


def test_merge_view_expired_own_oauth_loses_to_fresh_main():
    """An unusable OAuth copy of the agent's gives way to main's usable, later-expiring one."""
    fresh = {**PROFILES["anthropic:oauth-a"], "expires": NOW + 60 * MIN, "access": "main"}
    stale = {**PROFILES["anthropic:oauth-a"], "expires": NOW - MIN, "access": "own"}
    view = merge_view(
        "w", snapshot("w", {"x:o": stale}), snapshot("main", {"x:o": fresh}), now_ms=NOW
    )
    assert (view.get("x:o").owner, view.get("x:o").profile.access.reveal()) == ("main", "main")


def test_merge_view_keeps_invalid_entries_with_their_file():
    """Invalid entries of both stores are reported with the file they are in."""
    main = snapshot("main", {"bad:1": {"type": "api_key"}})
    own = snapshot("w", {"bad:2": "junk"})
    view = merge_view("w", own, main, now_ms=NOW)
    assert [(str(path), e.id) for path, e in view.invalid] == [
        ("/state/agents/main/agent/auth-profiles.json", "bad:1"),
        ("/state/agents/w/agent/auth-profiles.json", "bad:2"),
    ]
