"""The refresher against a real JSON store on disk and a fake token endpoint behind MockTransport:
single flight, rotation safety, failure translation, shielding and the background pass."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from sidecar.auth.refresh import Refresher
from sidecar.errors import ReauthRequired, RefreshUnavailable
from sidecar.providers.grants import OPENAI_CODEX, ProviderAuth, TokenRejected
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import OAuthCredential
from sidecar.sources.openclaw.views import ProfileView
from sidecar.sources.openclaw_json.store import JsonStore
from tests.fakes.token_server import duplicate_header_text, repeated_header

pytestmark = pytest.mark.anyio

NOW = 1_767_225_600_000
MIN = 60_000
HOUR = 60 * MIN
PID = "openai-codex:alice@example.com"
AUTH = dataclasses.replace(OPENAI_CODEX, token_url="https://auth.test/oauth/token")
Hook = Callable[[httpx.Request], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dump(doc: Any) -> bytes:
    """OpenClaw's writer (store spec §2)."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def oauth(access: str, refresh: str, expires: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": "openai-codex",
        "access": access,
        "refresh": refresh,
        "expires": expires,
        **extra,
    }


OLD = oauth(
    "access-old",
    "rt_old",
    NOW - MIN,
    email="alice@example.com",
    accountId="acc-1",
    chatgptPlanType="plus",
    extra={"kept": [1, 2]},
)


class TokenEndpoint:
    """A fake OpenAI token endpoint: refresh tokens rotate and are single use; a reused one
    gets 401 ``refresh_token_reused``. ``hook`` runs after rotation, before the answer. Strict
    as aiohttp's server: a request repeating a header gets 400 and is not counted."""

    def __init__(self, valid: str = "rt_old") -> None:
        self.valid = {valid}
        self.calls = 0
        self.hook: Hook | None = None
        self.error: Exception | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        repeated = repeated_header(request.headers.raw)
        if repeated is not None:
            return httpx.Response(400, text=duplicate_header_text(repeated))
        self.calls += 1
        if self.error is not None:
            raise self.error
        form = urllib.parse.parse_qs(request.content.decode())
        presented = form["refresh_token"][0]
        rotated = presented in self.valid
        if rotated:
            self.valid = {f"rt_new_{self.calls}"}
        if self.hook is not None:
            await self.hook(request)
        if not rotated:
            return httpx.Response(401, json={"error": {"code": "refresh_token_reused"}})
        body = {
            "access_token": f"access-{self.calls}",
            "refresh_token": f"rt_new_{self.calls}",
            "expires_in": 3600,
        }
        return httpx.Response(200, json=body)


class CountingSource:
    """The JSON store, counting how often the refresher enters its cross-process refresh."""

    def __init__(self, inner: JsonStore) -> None:
        self.inner = inner
        self.refreshes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def refresh(self, *args: Any, **kwargs: Any) -> OAuthCredential:
        self.refreshes += 1
        return await self.inner.refresh(*args, **kwargs)


class Harness:
    """A state dir under ``tmp_path``, its store, the fake endpoint and a refresher over them."""

    def __init__(self, root: Path, client: httpx.AsyncClient, endpoint: TokenEndpoint) -> None:
        self.state = root / "state"
        self.home = root / "home"
        self.home.mkdir()
        layout = Layout.from_env({"HOME": str(self.home), "OPENCLAW_STATE_DIR": str(self.state)})
        self.now = NOW
        self.store = JsonStore(layout, home=self.home, clock=self.clock, check_interval_s=0)
        self.source = CountingSource(self.store)
        self.endpoint = endpoint
        self.client = client
        self.auths: dict[str, ProviderAuth] = {"openai-codex": AUTH}

    def clock(self) -> int:
        return self.now

    def refresher(self, **kwargs: Any) -> Refresher:
        return Refresher(self.source, self.client, self.auths.get, clock=self.clock, **kwargs)

    def path(self, agent: str = "main") -> Path:
        return self.state / "agents" / agent / "agent" / "auth-profiles.json"

    def write(self, agent: str, profiles: dict[str, Any]) -> bytes:
        data = dump({"version": 1, "profiles": profiles})
        self.path(agent).parent.mkdir(parents=True, exist_ok=True)
        self.path(agent).write_bytes(data)
        return data

    def on_disk(self, agent: str = "main") -> Any:
        return json.loads(self.path(agent).read_bytes())

    async def view(self, agent: str = "main", pid: str = PID) -> ProfileView:
        found = (await self.store.view(agent)).get(pid)
        assert found is not None
        return found


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    endpoint = TokenEndpoint()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        yield Harness(tmp_path, client, endpoint)


def refreshed(calls: int = 1, **over: Any) -> dict[str, Any]:
    """OLD after the endpoint's ``calls``-th grant: fields it did not return are kept."""
    return {
        **OLD,
        "access": f"access-{calls}",
        "refresh": f"rt_new_{calls}",
        "expires": NOW + HOUR,
        **over,
    }


@pytest.mark.parametrize("callers", [50, 200])
async def test_concurrent_callers_share_one_refresh(h: Harness, callers: int) -> None:
    """Many concurrent fresh() calls on an expired profile: one refresh, one token call."""
    h.write("main", {PID: OLD})
    view = await h.view()
    refresher = h.refresher()
    results: list[str] = []

    async def call() -> None:
        results.append((await refresher.fresh("main", view)).access.reveal())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(callers):
                tg.start_soon(call)
    assert (h.endpoint.calls, h.source.refreshes, refresher.stats.token_calls) == (1, 1, 1)
    assert results == ["access-1"] * callers
    assert h.on_disk()["profiles"][PID] == refreshed()


async def test_concurrent_callers_share_one_failure(h: Harness) -> None:
    """Waiters on a refresh that fails get the leader's error; the endpoint is called once."""
    h.write("main", {PID: {**OLD, "refresh": "rt_reused"}})
    view = await h.view()
    refresher = h.refresher()
    errors: list[str] = []

    async def call() -> None:
        try:
            await refresher.fresh("main", view)
        except TokenRejected as exc:
            errors.append(exc.reason)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(call)
    assert (h.endpoint.calls, errors) == (1, ["refresh_token_reused"] * 20)
    assert refresher.stats.failures == {"TokenRejected": 1}


@pytest.mark.parametrize(
    ("rejected", "calls", "access"),
    [
        (None, 0, "access-old"),  # usable and nobody complained: no call
        ("access-old", 1, "access-1"),  # the stored token was refused upstream: refresh
        ("access-older", 0, "access-old"),  # a stale token was refused: the stored one serves
    ],
)
async def test_usable_profile_refreshes_only_when_its_access_was_rejected(
    h: Harness, rejected: str | None, calls: int, access: str
) -> None:
    """A usable profile is refreshed only when the caller reports that very access rejected."""
    h.write("main", {PID: {**OLD, "expires": NOW + HOUR}})
    cred = await h.refresher().fresh("main", await h.view(), rejected_access=rejected)
    assert (h.endpoint.calls, cred.access.reveal()) == (calls, access)


async def test_new_refresh_token_is_on_disk_when_fresh_returns(h: Harness) -> None:
    """fresh() returns after the rotated token is written; other profiles and state untouched."""
    other = {"type": "api_key", "provider": "openai", "key": "sk-other"}
    invalid = {"type": "mystery", "provider": "x", "keep": True}
    h.write("main", {"openai:manual": other, PID: OLD, "x:odd": invalid})
    state = h.path().with_name("auth-state.json")
    state.write_bytes(dump({"version": 1, "lastGood": {"openai-codex": PID}}))
    state_before = state.read_bytes()
    cred = await h.refresher().fresh("main", await h.view())
    expected = {
        "version": 1,
        "profiles": {"openai:manual": other, PID: refreshed(), "x:odd": invalid},
    }
    assert h.path().read_bytes() == dump(expected)
    assert state.read_bytes() == state_before
    assert h.endpoint.valid == {cred.refresh.reveal()} == {"rt_new_1"}
    assert (cred.id, cred.email, cred.account_id, cred.expires) == (
        PID,
        "alice@example.com",
        "acc-1",
        NOW + HOUR,
    )


@pytest.mark.parametrize(
    "work_profiles",
    [None, {"anthropic:work": {"type": "token", "provider": "anthropic", "token": "sk-ant-w"}}],
    ids=["no-own-store", "own-store-without-the-profile"],
)
async def test_inherited_profile_refresh_writes_mains_file(
    h: Harness, work_profiles: dict[str, Any] | None
) -> None:
    """Agent ``work`` refreshing main's profile writes main's file and nothing of work's."""
    h.write("main", {PID: OLD})
    work_before = h.write("work", work_profiles) if work_profiles is not None else None
    view = await h.view("work")
    assert view.owner == "main"
    cred = await h.refresher().fresh("work", view)
    assert cred.access.reveal() == "access-1"
    assert h.on_disk("main")["profiles"][PID] == refreshed()
    if work_before is None:
        assert not h.path("work").parent.exists()
    else:
        assert h.path("work").read_bytes() == work_before


async def test_unreachable_endpoint_is_refresh_unavailable(h: Harness) -> None:
    """A connection error becomes RefreshUnavailable, and the stored credential is unchanged."""
    before = h.write("main", {PID: OLD})
    h.endpoint.error = httpx.ConnectError("connection refused")
    with pytest.raises(RefreshUnavailable) as info:
        await h.refresher().fresh("main", await h.view())
    assert info.value.message == (
        "cannot reach the token endpoint of openai-codex (ConnectError, profile "
        f"{PID}); the old token is kept"
    )
    assert h.path().read_bytes() == before


async def test_slow_endpoint_times_out_as_refresh_unavailable(h: Harness) -> None:
    """An endpoint slower than timeout_s becomes RefreshUnavailable; nothing is written."""
    before = h.write("main", {PID: OLD})
    never = anyio.Event()

    async def stall(_request: httpx.Request) -> None:
        await never.wait()

    h.endpoint.hook = stall
    with anyio.fail_after(5), pytest.raises(RefreshUnavailable) as info:
        await h.refresher(timeout_s=0.2).fresh("main", await h.view())
    assert "did not answer within 0.2 s" in info.value.message
    assert h.path().read_bytes() == before


async def test_provider_without_endpoint_is_refresh_unavailable(h: Harness) -> None:
    """No refresh method for the provider: RefreshUnavailable naming it and the command that
    signs in again, no call."""
    before = h.write("main", {PID: OLD})
    h.auths.clear()
    with pytest.raises(RefreshUnavailable) as info:
        await h.refresher().fresh("main", await h.view())
    assert info.value.message == (
        f"the openai-codex login in profile {PID} has expired, and the sidecar has no refresh "
        "method for openai-codex (OpenClaw's plugin for it refreshes it): sign in again with "
        f"`openclaw models auth login --provider openai-codex --profile-id {PID}`, or run "
        "OpenClaw once, which refreshes it"
    )
    assert (h.endpoint.calls, h.path().read_bytes()) == (0, before)


async def test_rejected_refresh_requires_reauth_naming_a_command(h: Harness) -> None:
    """A reused refresh token is ReauthRequired whose message says which command signs in."""
    before = h.write("main", {PID: {**OLD, "refresh": "rt_reused"}})
    with pytest.raises(ReauthRequired) as info:
        await h.refresher().fresh("main", await h.view())
    assert isinstance(info.value, TokenRejected)
    assert info.value.reason == "refresh_token_reused"
    assert "openclaw-sidecar login --provider openai-codex" in info.value.message
    assert h.path().read_bytes() == before


@pytest.mark.parametrize(
    ("written", "adopted"),
    [
        (oauth("access-other", "rt_other", NOW + HOUR, email="alice@example.com"), True),
        (oauth("access-other", "rt_other", NOW - MIN), False),  # rotated but not usable
    ],
    ids=["fresher", "rotated-but-expired"],
)
async def test_reject_after_outside_rotation_adopts_fresher_credential(
    h: Harness, written: dict[str, Any], adopted: bool
) -> None:
    """A 401 after someone else rotated the store: a usable fresher credential is adopted."""
    h.write("main", {PID: {**OLD, "refresh": "rt_stolen"}})

    async def someone_else_rotates(_request: httpx.Request) -> None:
        h.write("main", {PID: written})

    h.endpoint.hook = someone_else_rotates
    refresher = h.refresher()
    if adopted:
        cred = await refresher.fresh("main", await h.view())
        assert (cred.access.reveal(), cred.refresh.reveal()) == ("access-other", "rt_other")
    else:
        with pytest.raises(TokenRejected):
            await refresher.fresh("main", await h.view())
    assert (h.endpoint.calls, h.on_disk()["profiles"][PID]) == (1, written)


async def test_cancelled_caller_does_not_cut_the_refresh(h: Harness) -> None:
    """Cancelling the caller while the token call is in flight still writes the new token."""
    h.write("main", {PID: OLD})
    in_flight, release = anyio.Event(), anyio.Event()

    async def hold(_request: httpx.Request) -> None:
        in_flight.set()
        await release.wait()

    h.endpoint.hook = hold
    refresher = h.refresher()
    view = await h.view()
    scope = anyio.CancelScope()

    async def caller() -> None:
        with scope:
            await refresher.fresh("main", view)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await in_flight.wait()
            scope.cancel()
            release.set()
    assert h.on_disk()["profiles"][PID] == refreshed()
    assert h.endpoint.valid == {"rt_new_1"}
    again = await refresher.fresh("main", await h.view())
    assert (again.access.reveal(), h.endpoint.calls) == ("access-1", 1)


@pytest.mark.parametrize(
    ("expires_in", "hinted", "done"),
    [
        (7 * MIN, True, 1),  # usable now, but due within margin + lookahead
        (2 * MIN, True, 1),  # already due
        (60 * MIN, True, 0),  # not due within the lookahead
        (7 * MIN, False, 0),  # never used: left alone
    ],
)
async def test_background_pass_refreshes_profiles_in_use_due_within_lookahead(
    h: Harness, expires_in: int, hinted: bool, done: int
) -> None:
    """refresh_due() refreshes a profile in use that expires within the lookahead, only that."""
    stored = {**OLD, "expires": NOW + expires_in}
    h.write("main", {PID: stored})
    refresher = h.refresher()
    if hinted:
        refresher.fresh_hint("main", await h.view())
    assert await refresher.refresh_due(lookahead_ms=10 * MIN) == done
    assert h.endpoint.calls == done
    assert h.on_disk()["profiles"][PID] == (refreshed() if done else stored)


async def test_the_token_request_carries_each_header_once(h: Harness) -> None:
    """The refresh POST names its body's type and what it accepts once each (a repeated
    Content-Type is a 400 at aiohttp's server); no header is repeated."""
    h.write("main", {PID: OLD})
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    h.endpoint.hook = keep
    await h.refresher().fresh("main", await h.view())
    [request] = sent
    names = [name.lower() for name, _ in request.headers.raw]
    wanted = [(n, v) for n, v in request.headers.raw if n.lower() in (b"content-type", b"accept")]
    assert wanted == [
        (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"Accept", b"application/json"),
    ]
    assert sorted(names) == sorted(set(names))


async def test_background_pass_logs_failures_and_goes_on(h: Harness) -> None:
    """A failing background refresh is logged with its code, not raised."""
    h.write("main", {PID: OLD})
    h.endpoint.error = httpx.ConnectError("down")
    refresher = h.refresher()
    refresher.fresh_hint("main", await h.view())
    with capture_logs() as logs:
        assert await refresher.refresh_due(lookahead_ms=MIN) == 0
    assert logs[-1] == {
        "event": "background_refresh_failed",
        "log_level": "warning",
        "agent": "main",
        "profile": PID,
        "code": "refresh_unavailable",
    }


async def test_refresh_outcomes_are_reported(h: Harness) -> None:
    """on_refresh hears (provider, profile, outcome) for a refresh and for a failure."""
    h.write("main", {PID: OLD})
    heard: list[tuple[str, str, str]] = []
    refresher = h.refresher(on_refresh=lambda *event: heard.append(event))
    await refresher.fresh("main", await h.view())
    h.write("main", {PID: {**OLD, "refresh": "rt_reused"}})
    with pytest.raises(TokenRejected):
        await refresher.fresh("main", await h.view())
    assert heard == [("openai-codex", PID, "refreshed"), ("openai-codex", PID, "failed")]


@pytest.mark.parametrize(
    ("expires", "due"),
    [(NOW + 5 * MIN, True), (NOW + 5 * MIN + 1, False), (None, True)],
)
async def test_is_due_uses_the_margin(h: Harness, expires: int | None, due: bool) -> None:
    """A credential is due when it is within the 5-minute margin of expiry (or has none)."""
    h.write("main", {PID: {**OLD, "expires": expires}})
    profile = (await h.view()).profile
    assert isinstance(profile, OAuthCredential)
    assert h.refresher().is_due(profile) is due


async def test_waiter_whose_token_the_flight_produced_refreshes_again(h: Harness) -> None:
    """A waiter reporting the very token the running flight yields leads a second refresh."""
    h.write("main", {PID: OLD})
    in_flight, release = anyio.Event(), anyio.Event()

    async def hold(_request: httpx.Request) -> None:
        if h.endpoint.calls == 1:
            in_flight.set()
            await release.wait()

    h.endpoint.hook = hold
    refresher = h.refresher()
    view = await h.view()
    got: dict[str, str] = {}

    async def call(name: str, rejected: str | None) -> None:
        got[name] = (await refresher.fresh("main", view, rejected_access=rejected)).access.reveal()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "leader", None)
            await in_flight.wait()
            tg.start_soon(call, "waiter", "access-1")
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert (got, h.endpoint.calls) == ({"leader": "access-1", "waiter": "access-2"}, 2)


@pytest.mark.parametrize(("max_idle_s", "kept"), [(3600.0, True), (-1.0, False)])
async def test_idle_profiles_leave_the_in_use_set(
    h: Harness, max_idle_s: float, kept: bool
) -> None:
    """in_use() forgets profiles idle for longer than max_idle_s."""
    h.write("main", {PID: OLD})
    refresher = h.refresher()
    refresher.fresh_hint("main", await h.view())
    assert refresher.in_use(max_idle_s) == ([("main", PID)] if kept else [])
    assert refresher.in_use(3600.0) == ([("main", PID)] if kept else [])


async def test_run_refreshes_due_profiles_in_the_background(h: Harness) -> None:
    """The background loop refreshes an expired profile in use without any request waiting."""
    h.write("main", {PID: OLD})
    refreshed_event = anyio.Event()
    refresher = h.refresher(on_refresh=lambda *_: refreshed_event.set())
    refresher.fresh_hint("main", await h.view())
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(refresher.run, 0)
            await refreshed_event.wait()
            tg.cancel_scope.cancel()
    assert h.on_disk()["profiles"][PID] == refreshed()


async def test_a_slow_endpoint_answers_the_request_but_its_rotation_is_still_saved(
    h: Harness,
) -> None:
    """Under running(): a request stops waiting after timeout_s (refresh_unavailable), but the
    token call goes on and its new refresh token reaches the disk, so the rotation the provider
    made is not lost; the next request uses it without a token call."""
    h.write("main", {PID: OLD})
    view = await h.view()
    release, answered = anyio.Event(), anyio.Event()

    async def hold(_: httpx.Request) -> None:
        answered.set()
        await release.wait()

    h.endpoint.hook = hold
    refresher = h.refresher(timeout_s=0.2)
    with anyio.fail_after(10):
        async with refresher.running():
            with pytest.raises(RefreshUnavailable, match="refresh goes on"):
                await refresher.fresh("main", view)
            await answered.wait()
            release.set()
            await refresher.fresh("main", view)  # waits for the same flight, or adopts
        assert h.on_disk()["profiles"][PID] == refreshed()
    assert h.endpoint.calls == 1


async def test_waiters_that_all_saw_the_flights_token_rejected_start_one_next_flight(
    h: Harness,
) -> None:
    """Callers whose rejected token the running flight turns out to hand back: one next flight
    among them, not one each, and none of them breaks another's bookkeeping."""
    h.write("main", {PID: {**OLD, "expires": NOW + HOUR}})
    view = await h.view()
    release = anyio.Event()

    async def hold(_: httpx.Request) -> None:
        await release.wait()

    h.endpoint.hook = hold
    refresher = h.refresher()
    results: dict[str, list[str]] = {"first": [], "next": []}

    async def call(rejected: str, into: str) -> None:
        cred = await refresher.fresh("main", view, rejected_access=rejected)
        results[into].append(cred.access.reveal())

    with anyio.fail_after(10):
        async with refresher.running(), anyio.create_task_group() as tg:
            tg.start_soon(call, "access-old", "first")
            await anyio.wait_all_tasks_blocked()
            for _ in range(20):
                tg.start_soon(call, "access-1", "next")  # the token the first flight brings
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert (results, h.endpoint.calls) == ({"first": ["access-1"], "next": ["access-2"] * 20}, 2)
