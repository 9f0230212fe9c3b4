"""The proxy driven directly as an ASGI callable (so a stream's order of events is the test's to
choose): what a request without a profile is told, the request's log line, and a client that
leaves once it has the whole answer."""

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
from sidecar.proxy import forward
from sidecar.proxy.agents import KnownAgents
from sidecar.proxy.forward import Proxy
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.transport import Upstream
from sidecar.server import agent_listing
from sidecar.sources.choice import open_source
from sidecar.sources.openclaw.layout import Layout
from tests.proxy.stub_upstream import StubUpstream

NOW = 1_800_000_000_000
KEY = "sk-forward-0123456789abcdefghij"
WHERE = ("--state-dir", "/srv/openclaw")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Upstream_(StubUpstream):
    """Answers each request with ``answer(request)``; keeps the requests."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def send(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


class Body(httpx.AsyncByteStream):
    """An upstream body as it streams in (a Response built from bytes is already read)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def make_proxy(tmp_path: Path, upstream: Upstream_, *, with_key: bool = True) -> Proxy:
    store = open_source(
        Layout.from_env({}, state_dir=tmp_path / "state"), home=tmp_path, clock=lambda: NOW
    )
    if with_key:
        store.put_profile_sync(
            "main", "openai:main", {"type": "api_key", "provider": "openai", "key": KEY}
        )
    credentials = CredentialResolver(
        cast(Refresher, None),  # API keys only: no refresh
        environ={},
        home=tmp_path,
        secret_providers=lambda: {},
        clock=lambda: NOW,
    )
    return Proxy(
        Settings(),
        Listener(port=18801),
        source=store,
        credentials=credentials,
        outcomes=Outcomes(store, clock=lambda: NOW),
        upstream=cast(Upstream, upstream),
        metrics=Metrics(),
        clock=lambda: NOW,
        hint_args=WHERE,
        agents=KnownAgents(agent_listing(store), interval_s=0),
    )


def scope(method: str, path: str, query: bytes = b"") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:18801")],
    }


async def call(proxy: Proxy, request: Scope) -> list[Message]:
    """One request without a body, the client staying until the answer is complete."""
    sent: list[Message] = []
    incoming, receive = anyio.create_memory_object_stream[Message](4)
    await incoming.send({"type": "http.request", "body": b"", "more_body": False})

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await incoming.send({"type": "http.disconnect"})  # as uvicorn: done, so gone

    async with incoming, receive:
        await proxy(request, receive.receive, send)
    proxy.ledger.settle()  # as serve's loop does once it has run what was ready
    return sent


def completed(logs: list[dict[str, Any]]) -> dict[str, Any]:
    (line,) = [e for e in logs if e["event"] == "request_completed"]
    return line


# --- what a request without a profile is told --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "commands", "never"),
    [
        (
            "/openai-codex/responses",
            [
                "`openclaw-sidecar login --provider openai-codex --state-dir /srv/openclaw`",
                "`openclaw-sidecar import codex-cli --state-dir /srv/openclaw`",
            ],
            "paste-api-key",
        ),
        (
            "/agents/work/openai/v1/chat/completions",
            ["`openclaw-sidecar paste-api-key --provider openai --agent work --state-dir "
             "/srv/openclaw`"],
            "login",
        ),
        (
            "/anthropic@anthropic:team/v1/messages",
            ["`openclaw-sidecar paste-api-key --provider anthropic --profile-id anthropic:team "
             "--state-dir /srv/openclaw`",
             "`openclaw-sidecar login --provider anthropic --profile-id anthropic:team "
             "--state-dir /srv/openclaw`"],
            "paste-token",
        ),
    ],
)  # fmt: skip
async def test_no_profile_names_commands_that_work_for_the_route(
    tmp_path: Path, path: str, commands: list[str], never: str
) -> None:
    """The 404 no_profile message names only commands that store a profile this route can use:
    a ChatGPT sign-in for the Codex backend, never an API key; the agent and the pinned
    profile of the route; the install's --state-dir."""
    (tmp_path / "state" / "agents" / "work" / "agent").mkdir(parents=True)  # work exists
    proxy = make_proxy(tmp_path, Upstream_(lambda r: httpx.Response(200)), with_key=False)
    sent = await call(proxy, scope("POST", path))
    assert sent[0]["status"] == 404
    body = json.loads(sent[1]["body"])
    message = body["error"]["message"]
    assert all(command in message for command in commands), message
    assert never not in message


# --- the request's log line --------------------------------------------------------------------


async def test_the_log_line_has_method_and_path_but_never_the_query(tmp_path: Path) -> None:
    """request_completed names the method and the path as requested, without the query."""
    proxy = make_proxy(tmp_path, Upstream_(lambda r: httpx.Response(200, stream=Body(b"{}"))))
    with capture_logs() as logs:
        await call(proxy, scope("GET", "/openai/v1/models", b"key=sk-in-the-query-0123456789"))
    line = completed(logs)
    assert {k: line[k] for k in ("method", "path", "status", "error")} == {
        "method": "GET",
        "path": "/openai/v1/models",
        "status": 200,
        "error": None,
    }
    assert "sk-in-the-query" not in repr(logs)


# --- a client that leaves once it has the whole answer ---------------------------------------


class Scripted(httpx.AsyncByteStream):
    """The upstream's body: ``chunks``; then, once ``then`` is set, ``more`` and the end (an
    upstream's last bytes and the end of its message can arrive apart)."""

    def __init__(self, chunks: list[bytes], then: anyio.Event, more: list[bytes]) -> None:
        self.chunks, self.then, self.more = chunks, then, more

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        await self.then.wait()
        for chunk in self.more:
            yield chunk


async def leave_after(
    proxy: Proxy, request: Scope, total: int, gone: anyio.Event | None = None
) -> list[Message]:
    """The client goes away once ``total`` body bytes arrived; ``gone`` is set when the proxy
    has read that disconnect."""
    sent: list[Message] = []
    incoming, outgoing = anyio.create_memory_object_stream[Message](4)
    await incoming.send({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> Message:
        message = await outgoing.receive()
        if message["type"] == "http.disconnect" and gone is not None:
            gone.set()
        return message

    async def send(message: Message) -> None:
        before = sum(len(m.get("body", b"")) for m in sent)
        sent.append(message)
        if before < total <= before + len(message.get("body", b"")):
            await incoming.send({"type": "http.disconnect"})

    async with incoming, outgoing:
        with anyio.fail_after(10):  # a safety net; the order is set by the streams above
            await proxy(request, receive, send)
    proxy.ledger.settle()
    return sent


def answering(stream: httpx.AsyncByteStream, **headers: str) -> Upstream_:
    return Upstream_(lambda request: httpx.Response(200, headers=headers, stream=stream))


SSE = {"content-type": "text/event-stream"}
EVENTS = [b"data: {}\n\n" * 3, b"data: [DONE]\n\n"]
RESPONSES = scope("POST", "/openai/v1/responses")


async def test_a_client_leaving_with_the_whole_answer_is_not_a_disconnect(tmp_path: Path) -> None:
    """A long answer with a Content-Length: the client closes as soon as the last byte is in,
    before the upstream's end reached the sidecar. The exchange is a 200 without error."""
    chunks = [b"a" * 40_000, b"b" * 40_000]
    size = sum(map(len, chunks))
    stream = Scripted(chunks, anyio.Event(), [])  # the end never comes
    proxy = make_proxy(tmp_path, answering(stream, **{"content-length": str(size)}))
    with capture_logs() as logs:
        sent = await leave_after(proxy, RESPONSES, size)
    assert b"".join(m.get("body", b"") for m in sent) == b"".join(chunks)
    assert (completed(logs)["status"], completed(logs)["error"]) == (200, None)


async def test_a_client_leaving_at_the_last_event_is_not_a_disconnect(tmp_path: Path) -> None:
    """The OpenAI SDK closes the connection at `data: [DONE]`: when the upstream's end comes
    just after, with nothing more, the stream completed and is logged without error."""
    gone = anyio.Event()
    proxy = make_proxy(tmp_path, answering(Scripted(EVENTS, gone, []), **SSE))
    with capture_logs() as logs:
        await leave_after(proxy, RESPONSES, sum(map(len, EVENTS)), gone)
    assert (completed(logs)["status"], completed(logs)["error"]) == (200, None)


async def test_a_client_leaving_before_more_data_is_a_disconnect(tmp_path: Path) -> None:
    """A client gone after the first event, with more coming from the upstream after it left,
    is logged client_disconnected."""
    gone = anyio.Event()
    proxy = make_proxy(tmp_path, answering(Scripted(EVENTS[:1], gone, EVENTS[1:]), **SSE))
    with capture_logs() as logs:
        await leave_after(proxy, RESPONSES, len(EVENTS[0]), gone)
    assert (completed(logs)["status"], completed(logs)["error"]) == (200, "client_disconnected")


async def test_a_silent_upstream_is_cancelled_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client gone mid-stream while the upstream says nothing more: the upstream request is
    cancelled once the grace is over, and the exchange is client_disconnected."""
    monkeypatch.setattr(forward, "END_GRACE_S", 0)
    proxy = make_proxy(tmp_path, answering(Scripted(EVENTS[:1], anyio.Event(), []), **SSE))
    with capture_logs() as logs:
        await leave_after(proxy, RESPONSES, len(EVENTS[0]))
    assert (completed(logs)["status"], completed(logs)["error"]) == (200, "client_disconnected")


@pytest.mark.parametrize(
    ("expected", "left_after", "sent", "ended", "early"),
    [
        (None, None, 10, False, False),  # never left
        (100, 100, 100, False, False),  # had every announced byte
        (0, 0, 0, False, False),  # HEAD, 204, 304: nothing to miss
        (100, 40, 40, False, True),  # left with bytes still announced
        (None, 40, 40, True, False),  # chunked: the end came, nothing after it left
        (None, 40, 70, True, True),  # chunked: 30 more bytes came after it left
        (None, 40, 40, False, True),  # chunked: the end did not come in time
    ],
)
async def test_left_early(
    expected: int | None, left_after: int | None, sent: int, ended: bool, early: bool
) -> None:
    """Whether a client that went away missed part of the answer."""
    ex = forward.Exchange(
        "POST", body_expected=expected, client_left_after=left_after, body_sent=sent
    )
    if ended:
        ex.upstream_ended.set()
    assert ex.left_early() is early
