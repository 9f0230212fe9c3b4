"""The page's state document, pure: profiles with state, expiry, cooldown and windows (and no
secret), hourly series with every hour present, and the recent refreshes and failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import parse_usage
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.ui.state import BUCKET_MS, Usage, cooldown, page_state, series, series_start
from sidecar.usage.db import EventRow, WindowRow
from sidecar.usage.queries import Bucket, Failure
from sidecar.usage.windows import Window

NOW = 1_800_000_123_456
MIN = 60_000
HOUR = 60 * MIN
KEY = "sk-state-canary-0123456789abcdefghij"
ACCESS = "access-canary-0123456789abcdefghij"


@pytest.mark.parametrize(
    ("raw", "pending", "expected"),
    [
        (None, 0, None),
        ({"cooldownUntil": NOW - 1, "cooldownReason": "rate_limit"}, 0, None),
        (
            {"cooldownUntil": NOW + MIN, "cooldownReason": "rate_limit"},
            0,
            {"until": NOW + MIN, "kind": "cooldown", "reason": "rate_limit"},
        ),
        (
            {"cooldownUntil": NOW + MIN, "disabledUntil": NOW + HOUR, "disabledReason": "billing"},
            0,
            {"until": NOW + HOUR, "kind": "disabled", "reason": "billing"},
        ),
        (
            {"blockedUntil": NOW + HOUR},
            0,
            {"until": NOW + HOUR, "kind": "blocked", "reason": "blocked"},
        ),
        (None, NOW + 30_000, {"until": NOW + 30_000, "kind": "cooldown", "reason": "failure"}),
    ],
)
def test_cooldown(
    raw: dict[str, Any] | None, pending: int, expected: dict[str, Any] | None
) -> None:
    """The latest window that rests the profile, with its reason; the sidecar's own estimate
    of a failure not yet written counts too."""
    assert cooldown(parse_usage(raw) if raw else None, pending, NOW) == expected


def test_series_has_every_hour_of_the_day() -> None:
    """24 hourly buckets ending with the current hour, zero where nothing happened; buckets
    of agents not shown, or older, are left out."""
    start = series_start(NOW)
    assert (start, (NOW - start) // HOUR) == ((NOW // HOUR - 23) * HOUR, 23)
    doc = series(
        [
            Bucket("work", start, 2, 30),
            Bucket("work", start + 23 * HOUR, 1, 5),
            Bucket("work", start - HOUR, 9, 9),
            Bucket("ghost", start, 1, 1),
        ],
        ["main", "work"],
        NOW,
    )
    assert doc["bucketMs"] == BUCKET_MS
    assert doc["agents"]["main"] == [[0, 0]] * 24
    assert doc["agents"]["work"] == [[2, 30]] + [[0, 0]] * 22 + [[1, 5]]


def test_the_state_of_a_store(tmp_path: Path) -> None:
    """Profiles of each agent with state, expiry, cooldown, windows, inherited ones marked;
    recent items of the agents and profiles shown; no secret anywhere in the document."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    store = JsonStore(
        Layout.from_env({"HOME": str(home), "OPENCLAW_STATE_DIR": str(state)}),
        home=home,
        clock=lambda: NOW,
        check_interval_s=0,
    )
    store.put_profile_sync(
        "main", "openai:main", {"type": "api_key", "provider": "openai", "key": KEY}
    )
    oauth = {
        "type": "oauth",
        "provider": "anthropic",
        "access": ACCESS,
        "refresh": "refresh-canary-0123456789",
        "expires": NOW + 2 * HOUR,
        "email": "w@example.com",
    }
    store.put_profile_sync("work", "anthropic:work", oauth)
    stats = {"anthropic:work": {"cooldownUntil": NOW + MIN, "cooldownReason": "rate_limit"}}
    path = state / "agents" / "work" / "agent" / "auth-state.json"
    path.write_text(json.dumps({"version": 1, "usageStats": stats}))
    window = Window("5h", "anthropic-unified", 0.42, NOW + HOUR, status="allowed")
    usage = Usage(
        windows={
            ("work", "anthropic:work"): [
                WindowRow("work", "anthropic:work", "anthropic", window, NOW - MIN)
            ]
        },
        series=[],
        failures=[
            Failure(NOW - 2 * MIN, "work", "anthropic:work", "anthropic", "claude", 429, None),
            Failure(NOW - MIN, "other", "x:y", "openai", None, 500, None),
        ],
        events=[
            EventRow(NOW - 3 * MIN, "refresh", "anthropic", "anthropic:work", "refreshed"),
            EventRow(NOW - 3 * MIN, "refresh", "openai", "not:shown", "failed"),
        ],
    )
    views = [store.view_sync("work")]
    doc = page_state(views, [], NOW, lambda owner, pid: 0, usage)
    assert doc["agents"] == [
        {
            "agent": "work",
            "profiles": [
                {
                    "id": "anthropic:work",
                    "provider": "anthropic",
                    "type": "oauth",
                    "email": "w@example.com",
                    "owner": "work",
                    "inherited": False,
                    "status": "expiring",
                    "expiresAt": NOW + 2 * HOUR,
                    "cooldown": {"until": NOW + MIN, "kind": "cooldown", "reason": "rate_limit"},
                    "windows": [
                        {
                            "name": "5h",
                            "utilization": 0.42,
                            "resetsAt": NOW + HOUR,
                            "status": "allowed",
                            "seenAt": NOW - MIN,
                        }
                    ],
                },
                {
                    "id": "openai:main",
                    "provider": "openai",
                    "type": "api_key",
                    "email": None,
                    "owner": "main",
                    "inherited": True,
                    "status": "static",
                    "expiresAt": None,
                    "cooldown": None,
                    "windows": [],
                },
            ],
        }
    ]
    assert [(r["kind"], r["outcome"]) for r in doc["recent"]] == [
        ("request", "status 429"),
        ("refresh", "refreshed"),
    ]
    text = json.dumps(doc)
    assert [s for s in (KEY, ACCESS, "refresh-canary", KEY[:12], KEY[-8:]) if s in text] == []
