"""Streaming through the real sidecar: SSE events reach the client as the upstream sends them,
request bodies stream upstream chunk by chunk, a client disconnect cancels the upstream request,
and an upstream that drops mid-stream ends the client's stream cleanly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import PREFIXES, Running, SidecarFactory, provider_tables
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}], "stream": True}
WAIT_S = 5.0
# "Hello from the fake upstream." is five deltas: role chunk + 5 + finish chunk + [DONE].
EVENTS = 8


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """One shared listener in front of the fake, which accepts only main's OpenAI key."""
    running = sidecar_factory.start([{"host": "127.0.0.1"}], provider_tables(fake.url))
    fake.expect(PREFIXES["openai"], [running.canaries.keys["openai:main"]])
    return running


def data_lines(lines: Iterator[str]) -> Iterator[str]:
    return (line for line in lines if line.startswith("data:"))


def chat_url(sidecar: Running) -> str:
    return sidecar.url() + "/openai/v1/chat/completions"


def test_first_event_arrives_before_upstream_sends_the_second(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """With the upstream holding after one event, the client already has that event."""
    fake.set_mode("hold", after=1)
    with http.stream("POST", chat_url(sidecar), json=CHAT) as response:
        events = data_lines(response.iter_lines())
        first = json.loads(next(events).removeprefix("data: "))
        assert first["choices"][0]["delta"]["role"] == "assistant"
        assert fake.held.wait(WAIT_S)
        assert (fake.events_sent, fake.stat("completed")) == (1, 0)
        fake.release()
        rest = list(events)
    assert (response.status_code, len(rest), rest[-1]) == (200, EVENTS - 1, "data: [DONE]")


def test_request_body_streams_upstream(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """Each chunk of a chunked upload reaches the upstream before the client sends the next."""
    chunks = [b"a" * 1000, b"b" * 2000, b"c" * 3000]
    arrived: list[bool] = []

    def body() -> Iterator[bytes]:
        sent = 0
        for chunk in chunks:
            if sent:
                arrived.append(fake.wait_body_bytes(sent, timeout=WAIT_S))
            sent += len(chunk)
            yield chunk

    response = http.post(sidecar.url() + "/openai/v1/echo", content=body())
    assert arrived == [True, True]
    assert response.status_code == 200
    assert response.json()["bytes"] == 6000
    assert response.json()["chunks"] == 3
    assert fake.requests[0].body == b"".join(chunks)


def test_client_disconnect_cancels_upstream(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """A client that goes away mid-stream makes the sidecar drop its upstream request."""
    fake.set_mode("hold", after=1)
    with http.stream("POST", chat_url(sidecar), json=CHAT) as response:
        next(data_lines(response.iter_lines()))
        assert fake.held.wait(WAIT_S)
    # Leaving the block closes the half-read response, and with it the connection.
    assert fake.disconnected.wait(WAIT_S)
    assert fake.stat("completed") == 0


def test_upstream_reset_ends_the_stream_cleanly(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """An upstream dropping the connection after two events: the client gets those two and a
    normally terminated response; the sidecar stays healthy and serves the next request."""
    fake.set_mode("reset", after=2, times=1)
    with http.stream("POST", chat_url(sidecar), json=CHAT) as response:
        received = list(data_lines(response.iter_lines()))
    assert response.status_code == 200
    assert len(received) == 2
    assert fake.stat("aborted") == 1
    assert http.get(sidecar.url() + "/healthz").json() == {"status": "ok"}
    with http.stream("POST", chat_url(sidecar), json=CHAT) as again:
        after = list(data_lines(again.iter_lines()))
    assert (again.status_code, len(after), after[-1]) == (200, EVENTS, "data: [DONE]")


def test_upstream_reset_before_any_event(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """An upstream dropping the connection before answering is a 502 upstream_unavailable."""
    fake.set_mode("reset", after=0, times=1)
    response = http.post(chat_url(sidecar), json=CHAT)
    assert response.status_code == 502
    assert response.headers["x-openclaw-sidecar-error"] == "upstream_unavailable"
    assert http.post(chat_url(sidecar), json=CHAT).status_code == 200


def test_events_are_relayed_unchanged(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The SSE bytes and content type the client gets are the upstream's, many events long."""
    headers = {"x-fake-events": "50"}
    with http.stream("POST", chat_url(sidecar), json=CHAT, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = [e for e in raw.split(b"\n\n") if e]
    assert len(events) == 50 + 3
    texts = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events[1:51]]
    assert texts == [f"tok{i} " for i in range(50)]
