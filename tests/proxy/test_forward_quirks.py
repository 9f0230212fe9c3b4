"""The proxy and the providers' request quirks (sidecar/providers/quirks.py), driven as an ASGI
callable: a quirk provider's body is held (up to the replay limit) and read before the request
goes, what it adds is never over a client's own, a rewritten body is framed by its own length,
and every other provider's body still streams as it comes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
from starlette.types import Message, Scope

from sidecar.auth.credentials import CredentialResolver
from sidecar.auth.outcomes import Outcomes
from sidecar.auth.refresh import Refresher
from sidecar.config import Listener, Settings
from sidecar.config.settings import RefreshSettings
from sidecar.proxy.agents import KnownAgents
from sidecar.proxy.body import HELD_BODY
from sidecar.proxy.forward import Proxy
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.transport import Upstream
from sidecar.server import agent_listing
from sidecar.sources.choice import open_source
from sidecar.sources.openclaw.layout import Layout
from tests.proxy.stub_upstream import StubUpstream

NOW = 1_800_000_000_000
LIMIT = 4096  # refresh.replay_body_limit_bytes here
KEYS = {
    "github-copilot": ("token", "token", "gho_copilot0123456789abcdefghij"),
    "comfy": ("api_key", "key", "comfyui-key-0123456789abcdef"),
    "openai": ("api_key", "key", "sk-openai-0123456789abcdefghij"),
}
TOOL_TURN = {"model": "gpt-5", "messages": [{"role": "user", "content": "go"},
                                            {"role": "tool", "content": "done"}]}  # fmt: skip

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Answer(httpx.AsyncByteStream):
    """An upstream answer as it streams in (one built from bytes is already read)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"ok": true}'


class Recording(StubUpstream):
    """A fake upstream that keeps what it was asked to send: headers, body and framing."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        content: Any,
        *,
        length: int | None = None,
    ) -> httpx.Request:
        self.sent.append({"url": url, "headers": headers, "content": content, "length": length})
        return super().request(method, url, headers, content, length=length)

    async def send(self, request: httpx.Request) -> httpx.Response:
        self.sent[-1]["body"] = await request.aread()
        return httpx.Response(200, stream=Answer())

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.sent[-1]["headers"] if key == name]


def make_proxy(tmp_path: Path, upstream: Recording) -> Proxy:
    store = open_source(
        Layout.from_env({}, state_dir=tmp_path / "state"), home=tmp_path, clock=lambda: NOW
    )
    for provider, (kind, field, secret) in KEYS.items():
        profile = {"type": kind, "provider": provider, field: secret}
        store.put_profile_sync("main", f"{provider}:main", profile)
    credentials = CredentialResolver(
        cast(Refresher, None),  # keys and tokens only: no refresh
        environ={},
        home=tmp_path,
        secret_providers=lambda: {},
        clock=lambda: NOW,
    )
    return Proxy(
        Settings(refresh=RefreshSettings(replay_body_limit_bytes=LIMIT)),
        Listener(port=18801),
        source=store,
        credentials=credentials,
        outcomes=Outcomes(store, clock=lambda: NOW),
        upstream=cast(Upstream, upstream),
        metrics=Metrics(),
        clock=lambda: NOW,
        agents=KnownAgents(agent_listing(store), interval_s=0),
    )


async def post(
    proxy: Proxy, path: str, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> int:
    """A POST with a Content-Length, its body in two chunks; the status answered."""
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:18801"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    }
    sent: list[Message] = []
    incoming, receive = anyio.create_memory_object_stream[Message](8)
    half = len(body) // 2
    await incoming.send({"type": "http.request", "body": body[:half], "more_body": True})
    await incoming.send({"type": "http.request", "body": body[half:], "more_body": False})

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await incoming.send({"type": "http.disconnect"})

    async with incoming, receive:
        await proxy(scope, receive.receive, send)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b'{"ok": true}'
    return int(sent[0]["status"])


async def test_copilot_s_initiator_is_read_from_the_held_body(tmp_path: Path) -> None:
    """The conversation ends with a tool's result: x-initiator agent, read from the body the
    proxy held (sent as bytes, framed by the client's length)."""
    upstream = Recording()
    body = json.dumps(TOOL_TURN).encode()
    assert (
        await post(make_proxy(tmp_path, upstream), "/github-copilot/chat/completions", body) == 200
    )
    assert upstream.header(b"x-initiator") == [b"agent"]
    assert (upstream.sent[-1]["content"], upstream.sent[-1]["length"]) == (body, len(body))


async def test_a_client_s_own_initiator_wins(tmp_path: Path) -> None:
    """A client that says who initiated the request is believed, as OpenClaw lets its caller's
    headers win."""
    upstream = Recording()
    body = json.dumps(TOOL_TURN).encode()
    proxy = make_proxy(tmp_path, upstream)
    status = await post(
        proxy, "/github-copilot/chat/completions", body, [(b"X-Initiator", b"user")]
    )
    assert status == 200
    assert [(k, v) for k, v in upstream.sent[-1]["headers"] if k.lower() == b"x-initiator"] == [
        (b"X-Initiator", b"user")
    ]


async def test_a_body_over_the_limit_streams_and_reads_as_an_empty_conversation(
    tmp_path: Path,
) -> None:
    """Over the replay limit the body is not held: it streams as it comes, and Copilot gets
    OpenClaw's answer for a conversation it cannot see into, x-initiator user."""
    upstream = Recording()
    doc = {**TOOL_TURN, "padding": "x" * LIMIT}
    body = json.dumps(doc).encode()
    assert (
        await post(make_proxy(tmp_path, upstream), "/github-copilot/chat/completions", body) == 200
    )
    assert upstream.header(b"x-initiator") == [b"user"]
    assert not isinstance(upstream.sent[-1]["content"], bytes)  # streamed, not held
    assert upstream.sent[-1]["body"] == body


async def test_comfy_s_submission_is_rewritten_with_its_own_length(tmp_path: Path) -> None:
    """A workflow submission to Comfy Cloud gets the key in extra_data, and the request is
    framed by the new body's length, not the client's."""
    upstream = Recording()
    body = json.dumps({"prompt": {"1": {"inputs": {}}}, "client_id": "c1"}).encode()
    assert await post(make_proxy(tmp_path, upstream), "/comfy/api/prompt", body) == 200
    key = KEYS["comfy"][2]
    sent = upstream.sent[-1]
    assert json.loads(sent["body"]) == {
        "prompt": {"1": {"inputs": {}}},
        "client_id": "c1",
        "extra_data": {"api_key_comfy_org": key},
    }
    assert sent["length"] == len(sent["body"]) != len(body)
    assert upstream.header(b"x-api-key") == [key.encode()]
    assert sent["url"] == "https://cloud.comfy.org/api/prompt"


async def test_another_provider_s_large_body_streams(tmp_path: Path) -> None:
    """A provider without a quirk: a body larger than ``HELD_BODY`` streams upstream as it
    comes; a small one is read first and sent whole (in one write with the request's head)."""
    upstream = Recording()
    proxy = make_proxy(tmp_path, upstream)
    small = json.dumps(TOOL_TURN).encode()
    large = json.dumps({**TOOL_TURN, "pad": "x" * HELD_BODY}).encode()
    for body in (small, large):
        assert await post(proxy, "/openai/v1/chat/completions", body) == 200
    (held, streamed) = upstream.sent[-2:]
    assert (isinstance(held["content"], bytes), isinstance(streamed["content"], bytes)) == (
        True,
        False,
    )
    assert [(s["body"], s["length"]) for s in (held, streamed)] == [
        (small, len(small)),
        (large, len(large)),
    ]
    assert upstream.header(b"x-initiator") == []
