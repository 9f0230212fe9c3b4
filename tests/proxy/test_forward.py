"""The proxy driven directly as an ASGI callable (so a stream's order of events is the test's to
choose): what a request without a profile is told."""

from __future__ import annotations

import json
from collections.abc import Callable
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
from sidecar.proxy.forward import Proxy
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.transport import Upstream
from sidecar.store.layout import Layout
from sidecar.store.sources import open_source

NOW = 1_800_000_000_000
KEY = "sk-forward-0123456789abcdefghij"
WHERE = ("--state-dir", "/srv/openclaw")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Upstream_:
    """Answers each request with ``answer(request)``; keeps the requests."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def request(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: Any
    ) -> httpx.Request:
        return httpx.Request(method, url, headers=headers, content=content)

    async def send(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


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
    return sent


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
    proxy = make_proxy(tmp_path, Upstream_(lambda r: httpx.Response(200)), with_key=False)
    sent = await call(proxy, scope("POST", path))
    assert sent[0]["status"] == 404
    body = json.loads(sent[1]["body"])
    message = body["error"]["message"]
    assert all(command in message for command in commands), message
    assert never not in message
