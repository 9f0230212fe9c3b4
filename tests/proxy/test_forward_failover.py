"""Failover in-process (issue #19 §1), the proxy driven as an ASGI callable with a fake clock: a
profile the upstream rate-limits, overloads or refuses for billing gives way to the next usable
one in the same request, before a byte reaches the client; a pinned request, a body over the
replay limit and a stream already under way never move."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
from starlette.types import Message, Scope
from structlog.testing import capture_logs

from sidecar.auth.credentials import CredentialResolver
from sidecar.auth.outcomes import Outcomes
from sidecar.auth.refresh import Refresher
from sidecar.config import Listener, Settings
from sidecar.config.settings import RefreshSettings
from sidecar.proxy.agents import KnownAgents
from sidecar.proxy.forward import Proxy
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.transport import Upstream
from sidecar.server import agent_listing
from sidecar.sources.choice import open_source
from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import AuthState, parse_usage
from tests.proxy.stub_upstream import StubUpstream

NOW = 1_800_000_000_000
KEYS = {
    "openai:a": "sk-key-a-0123456789abcdef",
    "openai:b": "sk-key-b-0123456789abcdef",
    "openrouter:a": "sk-or-a-0123456789abcdef",
    "openrouter:b": "sk-or-b-0123456789abcdef",
    "openai-codex:me@example.com": "access-codex-0123456789abcdef",
}
CHAT = b'{"model": "gpt-fake", "messages": []}'

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def openai_error(message: str, kind: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


RATE_LIMITED = (429, openai_error("Rate limit reached for gpt-fake", "requests", "rate_limit"))
OVERLOADED = (503, openai_error("The server is overloaded or not ready yet.", "server_error"))
NO_CREDIT = (429, openai_error("You exceeded your current quota", "insufficient_quota"))


class Stream(httpx.AsyncByteStream):
    """An upstream body as it streams in; ``fail_after`` chunks, it breaks like a reset."""

    def __init__(self, *chunks: bytes, fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_after:
                raise httpx.ReadError("connection reset by the fake")
            yield chunk


class Fake(StubUpstream):
    """The upstream: answers by the key a request carries (``by_key``; else 200)."""

    def __init__(self) -> None:
        self.by_key: dict[str, Callable[[], httpx.Response]] = {}
        self.keys: list[str] = []  # the profile of each request, in order

    async def send(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        key = request.headers["authorization"].removeprefix("Bearer ")  # the access token too
        profile = next(p for p, k in KEYS.items() if k == key)
        self.keys.append(profile)
        answer = self.by_key.get(profile)
        if answer is not None:
            return answer()
        ok = {"content-type": "application/json"}
        return httpx.Response(200, headers=ok, stream=Stream(b"{}"))

    def answers(self, profile: str, status: int, body: bytes, **headers: str) -> None:
        self.by_key[profile] = lambda: httpx.Response(
            status, headers={"content-type": "application/json", **headers}, stream=Stream(body)
        )


class NoRefresh:
    """The refresher of logins that are never due (their tokens last a month here)."""

    def is_due(self, profile: Any) -> bool:
        return False

    def fresh_hint(self, agent: str, view: Any) -> None:
        pass

    def refreshes(self, provider: str) -> bool:
        return True  # a refreshable login, never due


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


class Rig:
    def __init__(self, tmp_path: Path, *, replay_limit: int = 1_048_576) -> None:
        self.clock = Clock()
        self.store = open_source(
            Layout.from_env({}, state_dir=tmp_path / "state"), home=tmp_path, clock=self.clock
        )
        for pid, key in KEYS.items():
            provider = pid.split(":")[0]
            fields: dict[str, Any] = {"type": "api_key", "provider": provider, "key": key}
            if provider == "openai-codex":
                far = NOW + 30 * 24 * 3600 * 1000
                fields = {"type": "oauth", "provider": provider, "access": key, "refresh": "r"}
                fields |= {"expires": far, "accountId": "acct"}
            self.store.put_profile_sync("main", pid, fields)
        self.fake = Fake()
        self.metrics = Metrics()
        self.outcomes = Outcomes(self.store, clock=self.clock)
        credentials = CredentialResolver(
            cast(Refresher, NoRefresh()),
            environ={},
            home=tmp_path,
            secret_providers=dict,
            clock=self.clock,
        )
        self.proxy = Proxy(
            Settings(refresh=RefreshSettings(replay_body_limit_bytes=replay_limit)),
            Listener(port=18801),
            source=self.store,
            credentials=credentials,
            outcomes=self.outcomes,
            upstream=cast(Upstream, self.fake),
            metrics=self.metrics,
            clock=self.clock,
            agents=KnownAgents(agent_listing(self.store), interval_s=0),
        )

    def usage(self, profile: str) -> dict[str, Any]:
        stats = self.store.view_sync("main").state.usage.get(profile)
        return dict(stats.raw) if stats else {}

    def failovers(self) -> dict[str, float]:
        out = {}
        for line in self.metrics.render().decode().splitlines():
            if line.startswith("openclaw_sidecar_failovers_total{"):
                labels, _, value = line.partition("{")[2].rpartition("} ")
                out[labels] = float(value)
        return out


async def call(
    proxy: Proxy, path: str, body: bytes = CHAT, headers: list[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes, list[Message]]:
    """One request (its body in one message); the status and the body the client got."""
    sent: list[Message] = []
    incoming, receive = anyio.create_memory_object_stream[Message](4)
    await incoming.send({"type": "http.request", "body": body, "more_body": False})
    request: Scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:18801"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await incoming.send({"type": "http.disconnect"})

    async with incoming, receive:
        await proxy(request, receive.receive, send)
    proxy.ledger.settle()  # as serve's loop does once it has run what was ready
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body_out, sent


def completed(logs: list[dict[str, Any]]) -> dict[str, Any]:
    (line,) = [e for e in logs if e["event"] == "request_completed"]
    return line


CHAT_PATH = "/openai/v1/chat/completions"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(RATE_LIMITED, "rate_limit"), (OVERLOADED, "overloaded"), (NO_CREDIT, "billing")],
)
async def test_a_failing_profile_gives_way_to_the_next_in_the_same_request(
    tmp_path: Path, answer: tuple[int, bytes], reason: str
) -> None:
    """A rate limit, an overload or a billing refusal of key A: the client gets B's 200 from
    its one request; the log line and the metrics say A was left and why."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *answer)
    with capture_logs() as logs:
        status, body, _ = await call(rig.proxy, CHAT_PATH)
    assert (status, body, rig.fake.keys) == (200, b"{}", ["openai:a", "openai:b"])
    line = completed(logs)
    assert (line["profile"], line["tried"]) == (
        "openai:b",
        [{"profile": "openai:a", "status": answer[0], "reason": reason}],
    )
    assert rig.failovers() == {f'agent="main",provider="openai",reason="{reason}"': 1.0}


async def test_the_rate_limited_profile_cools_down_and_is_used_again_after(
    tmp_path: Path,
) -> None:
    """A's cooldown is written (30 s, OpenClaw's first step); the next request goes to B
    without trying A; once the window has passed, A (first in order) is used again."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *RATE_LIMITED)
    await call(rig.proxy, CHAT_PATH)
    await rig.outcomes.flush()
    usage = rig.usage("openai:a")
    assert (usage["cooldownUntil"], usage["cooldownReason"]) == (NOW + 30_000, "rate_limit")
    await call(rig.proxy, CHAT_PATH)
    assert rig.fake.keys == ["openai:a", "openai:b", "openai:b"]
    del rig.fake.by_key["openai:a"]
    rig.clock.now = NOW + 30_001
    status, _, _ = await call(rig.proxy, CHAT_PATH)
    assert (status, rig.fake.keys[-1]) == (200, "openai:a")


async def test_the_last_failure_is_the_answer_when_no_profile_is_left(tmp_path: Path) -> None:
    """Both keys rate-limited: the client sees B's 429 (the last failure), byte for byte."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *OVERLOADED)
    rig.fake.answers("openai:b", *RATE_LIMITED)
    status, body, _ = await call(rig.proxy, CHAT_PATH)
    assert (status, body, rig.fake.keys) == (429, RATE_LIMITED[1], ["openai:a", "openai:b"])


async def test_a_pinned_request_never_moves(tmp_path: Path) -> None:
    """@openai:a and X-OpenClaw-Profile: openai:a both get A's 429, and B is never called."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *RATE_LIMITED)
    by_path = await call(rig.proxy, "/openai@openai:a/v1/chat/completions")
    by_header = await call(rig.proxy, CHAT_PATH, headers=[(b"x-openclaw-profile", b"openai:a")])
    assert (by_path[0], by_header[0], rig.fake.keys) == (429, 429, ["openai:a", "openai:a"])


async def test_a_body_over_the_replay_limit_is_not_sent_again(tmp_path: Path) -> None:
    """A body larger than replay_body_limit_bytes: A's 429 goes back, B is not tried."""
    rig = Rig(tmp_path, replay_limit=16)
    rig.fake.answers("openai:a", *RATE_LIMITED)
    with capture_logs() as logs:
        status, _, _ = await call(rig.proxy, CHAT_PATH)
    assert (status, rig.fake.keys) == (429, ["openai:a"])
    assert [e["event"] for e in logs if e["event"] == "failover_skipped"] == ["failover_skipped"]


async def test_a_stream_that_already_sent_bytes_is_never_replayed(tmp_path: Path) -> None:
    """A 200 stream breaking after its first event: the client keeps that event and the stream
    ends; no other profile is tried."""
    rig = Rig(tmp_path)
    event = b'data: {"choices": []}\n\n'
    rig.fake.by_key["openai:a"] = lambda: httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        stream=Stream(event, b"data: [DONE]\n\n", fail_after=1),
    )
    status, body, _ = await call(rig.proxy, CHAT_PATH)
    assert (status, body, rig.fake.keys) == (200, event, ["openai:a"])


async def test_an_error_the_profile_is_not_to_blame_for_does_not_move(tmp_path: Path) -> None:
    """A 400 (a malformed request) is the same with any key: it goes back from A alone."""
    rig = Rig(tmp_path)
    bad = openai_error("messages: text content blocks must be non-empty", "invalid_request_error")
    rig.fake.answers("openai:a", 400, bad)
    status, body, _ = await call(rig.proxy, CHAT_PATH)
    assert (status, body, rig.fake.keys) == (400, bad, ["openai:a"])
    await rig.outcomes.flush()
    assert rig.usage("openai:a") == {}


# --- every profile cooling (issue #19 §2) ---------------------------------------------------------


def header(sent: list[Message], name: bytes) -> str | None:
    found = [v for k, v in sent[0]["headers"] if k == name]
    return found[0].decode() if found else None


async def test_every_profile_cooling_is_one_429_and_no_upstream_call(tmp_path: Path) -> None:
    """Both keys rate-limited: the next request is the sidecar's own 429
    all_profiles_cooling, Retry-After the soonest window's end, and reaches no upstream."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *RATE_LIMITED)
    rig.fake.answers("openai:b", *RATE_LIMITED)
    await call(rig.proxy, CHAT_PATH)
    rig.clock.now = NOW + 10_500
    status, body, sent = await call(rig.proxy, CHAT_PATH)
    assert (status, header(sent, b"x-openclaw-sidecar-error"), header(sent, b"retry-after")) == (
        429,
        "all_profiles_cooling",
        "20",
    )
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    assert rig.fake.keys == ["openai:a", "openai:b"]


async def test_a_pinned_profile_in_cooldown_is_still_asked(tmp_path: Path) -> None:
    """A pin is the caller's explicit choice: it goes upstream even while its profile rests,
    and the provider's own answer comes back."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *RATE_LIMITED)
    rig.fake.answers("openai:b", *RATE_LIMITED)
    await call(rig.proxy, CHAT_PATH)
    del rig.fake.by_key["openai:a"]
    status, _, _ = await call(rig.proxy, "/openai@openai:a/v1/chat/completions")
    assert (status, rig.fake.keys) == (200, ["openai:a", "openai:b", "openai:a"])


# --- cooldowns as OpenClaw 2026.9.6 keeps them (issue #19 §2) -------------------------------------


async def test_a_providers_retry_after_ends_the_cooldown(tmp_path: Path) -> None:
    """Retry-After: 2 makes A's cooldown end 2 s after the failure (not the ladder's 30 s);
    once it has passed, A (first in order) is used again."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *RATE_LIMITED, **{"retry-after": "2"})
    await call(rig.proxy, CHAT_PATH)
    await rig.outcomes.flush()
    assert rig.usage("openai:a")["cooldownUntil"] == NOW + 2_000
    del rig.fake.by_key["openai:a"]
    await call(rig.proxy, CHAT_PATH)
    rig.clock.now = NOW + 2_001
    await call(rig.proxy, CHAT_PATH)
    assert rig.fake.keys == ["openai:a", "openai:b", "openai:b", "openai:a"]


def chat(model: str) -> bytes:
    return json.dumps({"model": model, "messages": []}).encode()


async def test_a_rate_limit_rests_the_profile_for_its_model_only(tmp_path: Path) -> None:
    """A rate limit of A on gpt-a is scoped to gpt-a (cooldownModel): the next gpt-b request
    still goes to A first, the next gpt-a request straight to B."""
    rig = Rig(tmp_path)
    rig.fake.answers("openai:a", *RATE_LIMITED)
    await call(rig.proxy, CHAT_PATH, chat("gpt-a"))
    del rig.fake.by_key["openai:a"]
    await rig.outcomes.flush()
    assert rig.usage("openai:a")["cooldownModel"] == "gpt-a"
    await call(rig.proxy, CHAT_PATH, chat("gpt-a"))
    await call(rig.proxy, CHAT_PATH, chat("gpt-b"))
    assert rig.fake.keys == ["openai:a", "openai:b", "openai:b", "openai:a"]


async def test_a_scoped_cooldown_in_the_store_is_read_with_the_requests_model(
    tmp_path: Path,
) -> None:
    """The same from the store alone (the cooldown written before this process started)."""
    rig = Rig(tmp_path)
    stats = {
        "cooldownUntil": NOW + 60_000,
        "cooldownReason": "rate_limit",
        "cooldownModel": "gpt-a",
    }
    rig.store.update_state_sync(
        "main", lambda s: usage.with_usage(s, "openai:a", parse_usage(stats))
    )
    await call(rig.proxy, CHAT_PATH, chat("gpt-b"))
    await call(rig.proxy, CHAT_PATH, chat("gpt-a"))
    assert rig.fake.keys == ["openai:a", "openai:b"]


async def test_openrouter_keys_fail_over_but_never_rest(tmp_path: Path) -> None:
    """OpenRouter rotates its own keys (OpenClaw exempts it from cooldowns): A's 429 moves
    the request to B, but nothing is written and the next request tries A again."""
    rig = Rig(tmp_path)
    rig.fake.answers("openrouter:a", *RATE_LIMITED)
    path = "/openrouter/v1/chat/completions"
    await call(rig.proxy, path)
    await rig.outcomes.flush()
    await call(rig.proxy, path)
    assert rig.fake.keys == ["openrouter:a", "openrouter:b", "openrouter:a", "openrouter:b"]
    assert rig.usage("openrouter:a") == {}


async def test_an_openai_order_does_not_hide_the_codex_login(tmp_path: Path) -> None:
    """An explicit ``openai`` order of API keys once hid the ``openai-codex`` login from the
    Codex route (the two orders were merged): the login serves it again."""
    rig = Rig(tmp_path)
    order = {"openai": ("openai:b", "openai:a")}
    rig.store.update_state_sync("main", lambda s: AuthState(order=order, raw=s.raw))
    status, _, _ = await call(rig.proxy, "/openai-codex/responses", chat("gpt-5"))
    assert (status, rig.fake.keys) == (200, ["openai-codex:me@example.com"])
