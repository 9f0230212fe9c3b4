"""httpx requests over aiohttp's connection pool, sent as given and pooled only when whole.

httpx-aiohttp's transport, with its one request method rewritten for a proxy:

- the URL goes to aiohttp as already encoded: yarl would re-quote it (``%2F`` in a query
  arrived as ``/``), and the target must reach the upstream byte for byte;
- headers go as a list: given as a mapping, repeated ones were merged into one line;
- a connection goes back to the pool only when its request body was sent whole (exactly its
  Content-Length) and its response was read to the end. Any other connection is closed: bytes
  left unsent or unread on it would become part of the next request, another agent's with its
  credential.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import httpx
import yarl
from aiohttp import ClientResponse, ClientSession, ClientTimeout
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

CHUNK_SIZE = 16 * 1024


class BodyLengthMismatch(Exception):
    """A request body ended before, or ran past, the Content-Length that frames it."""


class WholeBody:
    """A request body as aiohttp sends it, held to its Content-Length; ``whole`` once it ended
    exactly there. Ending short or running long raises, so aiohttp drops the connection."""

    def __init__(self, chunks: AsyncIterable[bytes], length: int | None) -> None:
        self._chunks = chunks
        self._length = length
        self.whole = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self._chunks:
            sent += len(chunk)
            if self._length is not None and sent > self._length:
                raise BodyLengthMismatch(f"the body ran past its Content-Length {self._length}")
            yield chunk
        if self._length is not None and sent != self._length:
            raise BodyLengthMismatch(f"the body ended at {sent} of {self._length} bytes")
        self.whole = True


class PooledStream(httpx.AsyncByteStream):
    """The response body; closing it pools the connection only if the exchange was whole."""

    def __init__(self, response: ClientResponse, body: WholeBody | None) -> None:
        self._response = response
        self._body = body
        self._read_whole = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_aiohttp_exceptions():
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk
        self._read_whole = True

    @property
    def reusable(self) -> bool:
        return self._read_whole and (self._body is None or self._body.whole)

    async def aclose(self) -> None:
        with map_aiohttp_exceptions():
            if self.reusable:
                await self._response.__aexit__(None, None, None)  # back to the pool
            else:
                self._response.close()


class PooledTransport(AiohttpTransport):
    """``AiohttpTransport`` whose requests keep their bytes and poison no pooled connection.
    Proxies come from the session (``trust_env``), not from this transport."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        body = _body(request)
        with map_aiohttp_exceptions():
            response = await self.client.request(
                method=request.method,
                url=yarl.URL(str(request.url), encoded=True),
                headers=_headers(request),
                data=body,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=PooledStream(response, body),
            request=request,
            extensions=extensions,
        )


def _body(request: httpx.Request) -> WholeBody | None:
    length = request.headers.get("content-length")
    declared = int(length) if length is not None else None
    try:
        content = request.content
    except httpx.RequestNotRead:  # streamed: chunked unless a Content-Length frames it
        return WholeBody(request.stream, declared)  # type: ignore[arg-type]
    return WholeBody(_once(content), declared) if content else None


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


def _headers(request: httpx.Request) -> list[tuple[str, str]]:
    """Every header line in order, repeated ones apart. Transfer-Encoding is aiohttp's to set
    (it chunks a body that has no Content-Length)."""
    return [
        (name.decode("ascii"), _text(value))
        for name, value in request.headers.raw
        if name.lower() != b"transfer-encoding"
    ]


def _text(value: bytes) -> str:
    # aiohttp writes header values as UTF-8: UTF-8 bytes pass unchanged; other (obs-text)
    # bytes cannot, and go as their Latin-1 reading, as httpx's own decoding would give.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
