"""What ``status`` reports (store spec §11): per-profile status and masked label, the report
over agent views (inherited profiles name main's file), and the ``--check`` exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli import report as status
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.server import auth_lookup
from sidecar.sources.openclaw import expiry
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import InvalidEntry, parse_entry
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.usage.db import WindowRow
from sidecar.usage.queries import windows_by_profile
from sidecar.usage.windows import Window

NOW = 1_767_225_600_000
MIN = 60_000
HOUR = 60 * MIN
LONG_KEY = "sk-proj-ABCDEFGH-middle-part-12345678"
ENV_REF = {"source": "env", "provider": "default", "id": "OPENAI_API_KEY"}


def api_key(**fields: Any) -> dict[str, Any]:
    return {"type": "api_key", "provider": "openai", **fields}


def token(**fields: Any) -> dict[str, Any]:
    return {"type": "token", "provider": "anthropic", **fields}


def oauth(**fields: Any) -> dict[str, Any]:
    return {"type": "oauth", "provider": "openai-codex", **fields}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (api_key(key="sk-x"), "static"),
        (api_key(keyRef=ENV_REF), "static"),
        (api_key(), "missing"),
        (token(token="t"), "static"),
        (token(tokenRef=ENV_REF), "static"),
        (token(), "missing"),
        (token(token="t", expires=NOW + 48 * HOUR), "ok"),
        (token(token="t", expires=NOW + 24 * HOUR), "ok"),
        (token(token="t", expires=NOW + 24 * HOUR - 1), "expiring"),
        (token(token="t", expires=NOW + 1), "expiring"),
        (token(token="t", expires=NOW), "expired"),
        (oauth(access="a", refresh="r", expires=NOW + 48 * HOUR), "ok"),
        (oauth(access="a", refresh="r", expires=NOW + HOUR), "expiring"),
        (oauth(access="a", refresh="r", expires=NOW - 1), "expired"),
        (oauth(refresh="r", expires=NOW + 48 * HOUR), "ok"),
        (oauth(access="a", refresh="r"), "expired"),  # no expiry known: treat as expired
        (oauth(), "missing"),
    ],
)
def test_profile_status(raw: dict[str, Any], expected: str) -> None:
    """static, ok, expiring (< 24 h), expired and missing, by type, secret and expiry."""
    profile = parse_entry("p:x", raw)
    assert not isinstance(profile, InvalidEntry)
    assert expiry.profile_status(profile, NOW) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (api_key(key=LONG_KEY), "sk-proj-...12345678"),
        (api_key(key="sk-short-16chars"), "sk...rs"),  # up to 16 characters: 2 each side
        (api_key(key="abcdef"), "a...f"),  # up to 6: 1 each side
        (api_key(keyRef=ENV_REF), "ref(env:OPENAI_API_KEY)"),
        (api_key(key="${MY_KEY}"), "ref(env:MY_KEY)"),
        (
            token(tokenRef={"source": "file", "provider": "vault", "id": "/anthropic/token"}),
            "token:ref(file:/anthropic/token)",
        ),
        (token(token="sk-ant-oat01-" + "x" * 60 + "TAIL1234"), "token:sk-ant-o...TAIL1234"),
        (token(), "token:missing"),
        (oauth(access="eyJhbGciOi.payload-part.signature", refresh="r"), "OAuth"),
        (oauth(access="a", refresh="r", email="me@example.com"), "OAuth (me@example.com)"),
        (api_key(), "missing"),
    ],
)
def test_secret_label_masks_like_openclaw(raw: dict[str, Any], expected: str) -> None:
    """Secrets show as OpenClaw's status shows them: masked, ref(source:id), or OAuth (email)."""
    profile = parse_entry("p:x", raw)
    assert not isinstance(profile, InvalidEntry)
    assert status.secret_label(profile) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (api_key(key=LONG_KEY), "p:x"),
        (oauth(access="a", refresh="r", email="e@x.io"), "p:x (e@x.io)"),
    ],
)
def test_label_is_the_id_with_the_email(raw: dict[str, Any], expected: str) -> None:
    """``label`` is OpenClaw's: the profile id, and the email when there is one."""
    profile = parse_entry("p:x", raw)
    assert not isinstance(profile, InvalidEntry)
    assert status.label(profile) == expected


class Store:
    """An OpenClaw state dir under ``tmp_path`` and a JSON store reading it."""

    def __init__(self, root: Path) -> None:
        self.state, home = root / "state", root / "home"
        home.mkdir()
        layout = Layout.from_env({"HOME": str(home), "OPENCLAW_STATE_DIR": str(self.state)})
        self.store = JsonStore(layout, home=home, clock=lambda: NOW, check_interval_s=0)

    def path(self, agent: str, name: str = "auth-profiles.json") -> Path:
        return self.state / "agents" / agent / "agent" / name

    def write(self, agent: str, name: str, doc: Any) -> None:
        self.path(agent, name).parent.mkdir(parents=True, exist_ok=True)
        self.path(agent, name).write_text(json.dumps(doc))


def test_report_names_owner_and_file_of_inherited_profiles(tmp_path: Path) -> None:
    """Agent work's report lists main's profiles with main's file as source, marked inherited."""
    s = Store(tmp_path)
    codex = oauth(access=LONG_KEY, refresh="rt", expires=NOW + 2 * HOUR, email="a@example.com")
    odd = {"type": "mystery", "provider": "x"}
    s.write("main", "auth-profiles.json", {"version": 1, "profiles": {"c:a": codex, "x:odd": odd}})
    s.write(
        "main",
        "auth-state.json",
        {"version": 1, "usageStats": {"c:a": {"cooldownUntil": NOW + MIN}}},
    )
    s.write(
        "work", "auth-profiles.json", {"version": 1, "profiles": {"w:k": api_key(keyRef=ENV_REF)}}
    )
    primary = Window("primary", "codex", 0.25, NOW + HOUR, window_minutes=300)
    windows = windows_by_profile([WindowRow("main", "c:a", "openai-codex", primary, NOW - MIN)])
    doc = status.report(
        [s.store.view_sync("work")], NOW, [{"agent": "x", "error": "boom"}], windows
    )
    main_file, work_file = str(s.path("main")), str(s.path("work"))
    assert doc == {
        "version": 1,
        "generatedAt": NOW,
        "agents": [
            {
                "agent": "work",
                "era": "json",
                "profiles": [
                    {
                        "profileId": "w:k",
                        "provider": "openai",
                        "type": "api_key",
                        "status": "static",
                        "expiresAt": None,
                        "remainingMs": None,
                        "source": work_file,
                        "owner": "work",
                        "inherited": False,
                        "label": "w:k",
                        "secret": "ref(env:OPENAI_API_KEY)",
                        "email": None,
                        "cooldownUntil": None,
                        "windows": [],
                    },
                    {
                        "profileId": "c:a",
                        "provider": "openai-codex",
                        "type": "oauth",
                        "status": "expiring",
                        "expiresAt": NOW + 2 * HOUR,
                        "remainingMs": 2 * HOUR,
                        "source": main_file,
                        "owner": "main",
                        "inherited": True,
                        "label": "c:a (a@example.com)",
                        "secret": "OAuth (a@example.com)",
                        "email": "a@example.com",
                        "cooldownUntil": NOW + MIN,
                        "windows": [
                            {
                                "name": "5h",
                                "window": "primary",
                                "kind": "codex",
                                "utilization": 0.25,
                                "resetsAt": NOW + HOUR,
                                "windowMinutes": 300,
                                "limit": None,
                                "remaining": None,
                                "status": None,
                                "seenAt": NOW - MIN,
                            }
                        ],
                    },
                ],
                "skipped": [
                    {"profileId": "x:odd", "reason": "unknown type 'mystery'", "source": main_file}
                ],
            }
        ],
        "errors": [{"agent": "x", "error": "boom"}],
    }


def test_windows_text() -> None:
    """The status table's windows: share used and the time to the reset, if it is ahead."""
    windows = [
        {"name": "5h", "utilization": 0.424, "resetsAt": NOW + 2 * HOUR + 10 * MIN},
        {"name": "7d", "utilization": 1.02, "resetsAt": NOW - MIN},
        {"name": "requests", "utilization": None, "resetsAt": NOW + MIN},
    ]
    assert status.windows_text(windows, NOW) == "5h 42% resets 2h10m  7d 102%"
    assert status.windows_text([], NOW) == ""


def _doc(statuses: list[str], errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    profiles = [{"status": s} for s in statuses]
    return {"agents": [{"profiles": profiles}], "errors": errors or []}


@pytest.mark.parametrize(
    ("statuses", "errors", "code"),
    [
        ([], None, 1),
        (["ok", "static"], None, 0),
        (["ok", "expiring"], None, 2),
        (["expiring", "expired"], None, 1),
        (["missing"], None, 1),
        (["ok"], [{"agent": "work", "error": "store_unreadable"}], 1),
    ],
)
def test_check_exit_codes(
    statuses: list[str], errors: list[dict[str, str]] | None, code: int
) -> None:
    """--check: 1 for expired, missing, unreadable or no profiles; else 2 for expiring; else 0."""
    assert status.check_exit_code(_doc(statuses, errors)) == code


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0m"),
        (59 * 1000, "0m"),
        (59 * MIN, "59m"),
        (HOUR + 5 * MIN, "1h05m"),
        (47 * HOUR + 59 * MIN, "47h59m"),
        (48 * HOUR, "2d"),
        (-90 * MIN, "-1h30m"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    """Remaining time reads in minutes, hours and minutes under 48 h, else days."""
    assert status.format_duration(ms) == text


AUTH_FOR = auth_lookup(BUILTIN_PROVIDERS)
RADIUS_ACTION = (
    "the radius login in profile radius:me has expired, and the sidecar has no refresh method "
    "for radius (OpenClaw's plugin for it refreshes it): sign in again with `openclaw models "
    "auth login --provider radius --profile-id radius:me`, or run OpenClaw once, which "
    "refreshes it"
)
MINIMAX_ACTION = (
    "the minimax-portal login in profile minimax-portal:me has expired, and OpenClaw cannot "
    "refresh minimax-portal logins either: sign in again with `openclaw models auth login "
    "--provider minimax-portal`"
)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"type": "api_key", "provider": "openai", "status": "static"}, (None, None)),
        ({"type": "oauth", "provider": "openai-codex", "status": "expired"}, ("openai", None)),
        ({"type": "oauth", "provider": "codex", "status": "expired"}, ("openai", None)),
        ({"type": "oauth", "provider": "radius", "status": "ok"}, ("openclaw", None)),
        (
            {"type": "oauth", "provider": "radius", "status": "expired", "profileId": "radius:me"},
            ("openclaw", RADIUS_ACTION),
        ),
        ({"type": "oauth", "provider": "minimax-portal", "status": "expiring"}, ("none", None)),
        (
            {
                "type": "oauth",
                "provider": "minimax-portal",
                "status": "expired",
                "profileId": "minimax-portal:me",
            },
            ("none", MINIMAX_ACTION),
        ),
    ],
)
def test_refresh_entry_says_who_refreshes_and_what_to_run(
    entry: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    """An OAuth login is refreshed by the sidecar (its flavour), only by OpenClaw, or by nobody;
    an expired one nobody here refreshes carries the command that signs in again."""
    refresh, action = expected
    assert status.refresh_entry(entry, AUTH_FOR(entry["provider"])) == {
        "refresh": refresh,
        "action": action,
    }
