"""The page's app in-process: the listener's access rule on every path, the security headers,
the state it polls (one agent on a bound listener; the usage database's part, or its problem),
and the one action with its anti-forgery checks."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sidecar.auth.outcomes import Outcomes
from sidecar.config import Listener
from sidecar.secret import Secret
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.ui.app import Page
from sidecar.usage import db
from sidecar.usage.db import RequestRow, WindowRow
from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Window

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000
KEY = "sk-app-canary-0123456789abcdefghij"
TOKEN = "ui-client-token-0123456789"
CSRF = "csrf-for-tests"
ORIGIN = "http://127.0.0.1:18801"


class Setup:
    def __init__(self, root: Path) -> None:
        home, self.state = root / "home", root / "state"
        home.mkdir()
        layout = Layout.from_env({"HOME": str(home), "OPENCLAW_STATE_DIR": str(self.state)})
        self.store = JsonStore(layout, home=home, clock=lambda: NOW, check_interval_s=0)
        for agent in ("main", "work"):
            fields = {"type": "api_key", "provider": "openai", "key": KEY + agent}
            self.store.put_profile_sync(agent, f"openai:{agent}", fields)
        self.outcomes = Outcomes(self.store, clock=lambda: NOW)
        self.database = root / "data" / db.FILE_NAME

    def page(self, listener: Listener) -> Page:
        return Page(
            listener,
            source=self.store,
            outcomes=self.outcomes,
            database=self.database,
            clock=lambda: NOW,
            csrf=CSRF,
        )

    def rest(self, agent: str, profile: str) -> None:
        path = self.state / "agents" / agent / "agent" / "auth-state.json"
        stats = {
            profile: {
                "errorCount": 1,
                "cooldownUntil": NOW + 60_000,
                "cooldownReason": "rate_limit",
            }
        }
        path.write_text(json.dumps({"version": 1, "usageStats": stats}))


@pytest.fixture
def s(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


async def client(page: Page) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=page)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


@pytest.fixture
async def http(s: Setup) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client(s.page(Listener(port=18801))):
        yield c


async def test_the_page_and_its_assets(http: httpx.AsyncClient) -> None:
    """HTML with the page token, script and style, each with the security headers; nothing
    else under /ui."""
    page = await http.get("/ui")
    assert page.status_code == 200
    assert f'<meta name="csrf-token" content="{CSRF}">' in page.text
    assert "//" not in page.text.replace("http://www.w3.org/", "")  # no outside asset
    script, style = await http.get("/ui/app.js"), await http.get("/ui/app.css")
    assert (script.headers["content-type"], style.headers["content-type"]) == (
        "text/javascript; charset=utf-8",
        "text/css; charset=utf-8",
    )
    assert "innerHTML" not in script.text
    for response in (page, script, style):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["cache-control"] == "no-store"
    assert (await http.get("/ui/elsewhere")).status_code == 404


async def test_another_host_name_is_refused(http: httpx.AsyncClient) -> None:
    """A token-less listener answers only to this machine's names (DNS rebinding)."""
    refused = await http.get("/ui/api/state", headers={"host": "rebound.example"})
    assert (refused.status_code, refused.json()["error"]) == (403, "host_refused")


async def test_a_listener_with_a_token_asks_the_browser_for_it(s: Setup) -> None:
    """No token: 401 with a Basic challenge (the browser asks); the token as the Basic
    password or as a Bearer token opens the page, whatever the Host."""
    listener = Listener(host="0.0.0.0", port=18443, client_token=Secret(TOKEN), plaintext=True)
    async for http in client(s.page(listener)):
        refused = await http.get("/ui")
        assert (refused.status_code, refused.headers["www-authenticate"]) == (
            401,
            'Basic realm="openclaw-sidecar", charset="UTF-8"',
        )
        basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
        for auth in (f"Basic {basic}", f"Bearer {TOKEN}"):
            headers = {"authorization": auth, "host": "sidecar.internal"}
            assert (await http.get("/ui/api/state", headers=headers)).status_code == 200


async def test_the_state_shows_profiles_and_usage_and_no_secret(
    s: Setup, http: httpx.AsyncClient
) -> None:
    """Every agent with its profiles, the windows and series from the usage database."""
    conn = db.open_for_writing(s.database)
    window = Window("5h", "anthropic-unified", 0.5, NOW + 3_600_000)
    row = RequestRow(
        NOW, "work", "work", "openai:work", "openai", "gpt", 200, None, 5, Tokens(3, 4)
    )
    db.write(conn, [row], [WindowRow("work", "openai:work", "openai", window, NOW)], [])
    doc = (await http.get("/ui/api/state")).json()
    assert [(a["agent"], [p["id"] for p in a["profiles"]]) for a in doc["agents"]] == [
        ("main", ["openai:main"]),
        ("work", ["openai:main", "openai:work"]),
    ]
    assert doc["agents"][1]["profiles"][1]["windows"][0]["utilization"] == 0.5
    assert doc["series"]["agents"]["work"][-1] == [1, 7]
    assert KEY not in json.dumps(doc)


async def test_an_unreadable_usage_database_is_shown_not_raised(
    s: Setup, http: httpx.AsyncClient
) -> None:
    """The profiles still show; the problem is named."""
    s.database.parent.mkdir()
    s.database.write_bytes(b"not sqlite" * 200)
    doc = (await http.get("/ui/api/state")).json()
    assert doc["usageProblem"].startswith(f"cannot read {s.database}")
    assert len(doc["agents"]) == 2


async def test_a_bound_listener_shows_and_acts_on_its_agent_only(s: Setup) -> None:
    """A listener bound to work: its page shows work and cannot clear main's own profiles."""
    s.rest("main", "openai:main")
    async for http in client(s.page(Listener(port=18803, agent="work"))):
        doc = (await http.get("/ui/api/state")).json()
        assert [a["agent"] for a in doc["agents"]] == ["work"]
        refused = await clear(http, "main", "openai:main")
        assert (refused.status_code, refused.json()["error"]) == (404, "unknown_agent")


async def clear(
    http: httpx.AsyncClient, agent: str, profile: str, **headers: str
) -> httpx.Response:
    sent = {"origin": ORIGIN, "sec-fetch-site": "same-origin", "x-openclaw-csrf": CSRF}
    sent |= {k.replace("_", "-"): v for k, v in headers.items()}
    body = json.dumps({"agent": agent, "profile": profile})
    sent.setdefault("content-type", "application/json")
    return await http.post("/ui/api/cooldown/clear", content=body, headers=sent)


async def test_clearing_a_cooldown(s: Setup, http: httpx.AsyncClient) -> None:
    """The page's button: the owner's stats reset as OpenClaw writes it, the state shows no
    cooldown any more."""
    s.rest("work", "openai:work")
    before = (await http.get("/ui/api/state")).json()
    assert before["agents"][1]["profiles"][1]["cooldown"]["reason"] == "rate_limit"
    done = await clear(http, "work", "openai:work")
    assert (done.status_code, done.json()) == (200, {"cleared": "openai:work", "owner": "work"})
    stored = json.loads((s.state / "agents" / "work" / "agent" / "auth-state.json").read_text())
    assert stored["usageStats"] == {"openai:work": {"errorCount": 0}}
    after = (await http.get("/ui/api/state")).json()
    assert after["agents"][1]["profiles"][1]["cooldown"] is None


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"x_openclaw_csrf": "guess"}, 403, "forbidden"),
        ({"sec_fetch_site": "cross-site"}, 403, "forbidden"),
        ({"origin": "http://evil.example"}, 403, "forbidden"),
        ({"content_type": "text/plain"}, 403, "forbidden"),
    ],
)
async def test_a_forged_clear_is_refused(
    s: Setup, http: httpx.AsyncClient, headers: dict[str, str], status: int, error: str
) -> None:
    """Another site's request, or one without the page's token, changes nothing."""
    s.rest("work", "openai:work")
    refused = await clear(http, "work", "openai:work", **headers)
    assert (refused.status_code, refused.json()["error"]) == (status, error)
    stored = json.loads((s.state / "agents" / "work" / "agent" / "auth-state.json").read_text())
    assert stored["usageStats"]["openai:work"]["errorCount"] == 1


@pytest.mark.parametrize(
    ("agent", "profile", "status", "error"),
    [
        ("work", "openai:nope", 404, "no_profile"),
        ("Bad Agent", "openai:work", 400, "invalid_request"),
        ("work", "", 400, "invalid_request"),
    ],
)
async def test_a_clear_of_nothing(
    http: httpx.AsyncClient, agent: str, profile: str, status: int, error: str
) -> None:
    """An unknown profile or a malformed request is an error that names it."""
    refused = await clear(http, agent, profile)
    assert (refused.status_code, refused.json()["error"]) == (status, error)


async def test_a_large_body_is_refused(http: httpx.AsyncClient) -> None:
    """The action's body is small; a large one is not read to its end."""
    headers = {"origin": ORIGIN, "x-openclaw-csrf": CSRF, "content-type": "application/json"}
    big = await http.post("/ui/api/cooldown/clear", content=b"{" + b" " * 10_000, headers=headers)
    assert big.status_code == 400
