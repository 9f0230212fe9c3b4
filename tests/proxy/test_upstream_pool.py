"""The upstream pool never hands out a connection with bytes of an earlier exchange on it:
a connection is reused only after its request was sent whole and its response read whole."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import yarl

from sidecar.config import UpstreamSettings
from sidecar.proxy.aiohttp_transport import BodyLengthMismatch
from sidecar.proxy.transport import Upstream
from tests.fakes.raw_upstream import RawUpstream

TRANSPORTS = ["aiohttp", "httpx"]


def upstream_for(transport: str) -> Upstream:
    settings = UpstreamSettings(transport=transport, read_timeout_seconds=5)  # type: ignore[arg-type]
    return Upstream(settings, environ={})


async def short_body() -> AsyncIterator[bytes]:
    yield b"hello"


async def exchange(upstream: Upstream, request: httpx.Request, *, read: bool = True) -> None:
    response = await upstream.send(request)
    try:
        if read:
            await response.aread()
        else:
            await anext(aiter(response.aiter_raw()))
    finally:
        await response.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_body_short_of_its_length_never_poisons_the_next_request(transport: str) -> None:
    """A body that ends before its Content-Length, sent to an upstream that answers at once:
    the connection is dropped, and the next request (another agent's, with its credential)
    arrives whole on a new one instead of becoming the first one's missing bytes."""
    with RawUpstream(answer="early") as raw:
        async with upstream_for(transport) as upstream:
            first = upstream.request(
                "POST", f"{raw.url}/first", [(b"content-length", b"10")], short_body()
            )
            with contextlib.suppress(Exception):  # how it fails is the transport's affair
                await exchange(upstream, first)
            second = [(b"authorization", b"Bearer other-agent")]
            await exchange(upstream, upstream.request("POST", f"{raw.url}/second", second, b"{}"))
        seen = sorted(raw.wait_for(2), key=lambda r: r.connection)
    assert [(r.connection, r.target, r.body, r.framing) for r in seen] == [
        (1, b"/first", b"hello", "incomplete"),
        (2, b"/second", b"{}", "length"),
    ]
    assert seen[1].header(b"authorization") == [b"Bearer other-agent"]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_response_left_unread_closes_its_connection(transport: str) -> None:
    """An answer closed before its end (a client that went away mid-stream) takes its
    connection with it: the next request goes on a new connection."""
    with RawUpstream(padding=256 * 1024) as raw:
        async with upstream_for(transport) as upstream:
            await exchange(upstream, upstream.request("GET", f"{raw.url}/a", [], b""), read=False)
            await exchange(upstream, upstream.request("GET", f"{raw.url}/b", [], b""))
        seen = raw.wait_for(2)
    assert [(r.connection, r.target) for r in seen] == [(1, b"/a"), (2, b"/b")]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_whole_exchange_keeps_its_connection(transport: str) -> None:
    """Whole exchanges, bodies streamed with a length, chunked or none, reuse one connection:
    the guard costs no pooling."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    with RawUpstream() as raw:
        async with upstream_for(transport) as upstream:
            requests = [
                upstream.request("POST", f"{raw.url}/length", [], chunks(), length=4),
                upstream.request("POST", f"{raw.url}/chunked", [], chunks()),
                upstream.request("POST", f"{raw.url}/bytes", [], b"abcd"),
                upstream.request("GET", f"{raw.url}/none", [], b""),
            ]
            for request in requests:
                await exchange(upstream, request)
        seen = raw.wait_for(4)
    assert [(r.connection, r.target, r.body, r.framing) for r in seen] == [
        (1, b"/length", b"abcd", "length"),
        (1, b"/chunked", b"abcd", "chunked"),
        (1, b"/bytes", b"abcd", "length"),
        (1, b"/none", b"", "none"),
    ]


@pytest.mark.anyio
async def test_the_proxys_own_path_sends_bytes_whole_and_keeps_its_connection() -> None:
    """``send_parts`` (the proxy's path on aiohttp): a held body goes as bytes with its
    length, a streamed one by its declared length, an empty one as Content-Length 0, and all
    on one connection; bytes that are not the length declared are refused before anything is
    sent, and the connection stays clean for the next request."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    async def send(upstream: Upstream, path: str, content: object, length: int | None) -> None:
        url = yarl.URL(f"{raw.url}{path}")
        response = await upstream.send_parts("POST", url, [], content, length=length)  # type: ignore[arg-type]
        try:
            await response.aread()
        finally:
            await response.aclose()

    with RawUpstream() as raw:
        async with upstream_for("aiohttp") as upstream:
            await send(upstream, "/bytes", b"abcd", 4)
            await send(upstream, "/bytes-unsaid", b"abcd", None)
            await send(upstream, "/stream", chunks(), 4)
            with pytest.raises(BodyLengthMismatch):
                await send(upstream, "/wrong", b"abcd", 10)
            await send(upstream, "/empty", b"", None)
        seen = raw.wait_for(4)
    assert [(r.connection, r.target, r.body, r.framing) for r in seen] == [
        (1, b"/bytes", b"abcd", "length"),
        (1, b"/bytes-unsaid", b"abcd", "length"),
        (1, b"/stream", b"abcd", "length"),
        (1, b"/empty", b"", "length"),  # aiohttp frames a POST's empty body: Content-Length 0
    ]
