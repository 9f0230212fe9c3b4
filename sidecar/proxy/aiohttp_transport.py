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

import functools
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence

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
        length = request.headers.get("content-length")
        try:
            content: bytes | AsyncIterable[bytes] = request.content
        except httpx.RequestNotRead:  # streamed: chunked unless a Content-Length frames it
            content = request.stream  # type: ignore[assignment]
        response = await self.send_parts(
            request.method,
            request.url,
            request.headers.raw,
            content,
            None if length is None else int(length),
            request.extensions.get("timeout", {}),
            sni_hostname=request.extensions.get("sni_hostname"),
            framed=True,
        )
        response.request = request
        return response

    async def send_parts(
        self,
        method: str,
        url: yarl.URL | httpx.URL,
        headers: Sequence[tuple[bytes, bytes]],
        content: bytes | AsyncIterable[bytes],
        length: int | None,
        timeouts: Mapping[str, float | None],
        *,
        sni_hostname: str | None = None,
        framed: bool = False,
    ) -> httpx.Response:
        """A request from its parts, with no ``httpx.Request`` built for it (the proxy's path).
        Framed by ``length`` when given, else by ``content`` as bytes (none when empty), else
        chunked; ``framed``: ``headers`` carry the framing already (an httpx request's)."""
        if not isinstance(self.client, ClientSession):
            self.client = self.get_client()
        if not framed:
            if length is None and isinstance(content, bytes) and content:
                length = len(content)
            if length is not None:
                headers = [*headers, (b"content-length", str(length).encode("ascii"))]
        body, data = _body(content, length)
        with map_aiohttp_exceptions():
            response = await self.client.request(
                method=method,
                url=url if isinstance(url, yarl.URL) else yarl.URL(str(url), encoded=True),
                headers=_headers(headers),
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_timeout(
                    timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool")
                ),
                server_hostname=sni_hostname,
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=PooledStream(response, body),
            extensions=extensions,
        )


@functools.lru_cache(maxsize=64)
def _timeout(connect: float | None, read: float | None, pool: float | None) -> ClientTimeout:
    return ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


def _body(
    content: bytes | AsyncIterable[bytes], declared: int | None
) -> tuple[WholeBody | None, bytes | WholeBody | None]:
    """The streamed body to watch (None: nothing streams), and what aiohttp is to send. Bytes
    go as they are: aiohttp writes them with the request's head, in one write, and with no
    generator between (bench/: the held 1 KiB body); they are whole by then, or the request
    failed."""
    if isinstance(content, bytes):
        if declared is not None and declared != len(content):
            raise BodyLengthMismatch(f"the body is {len(content)} bytes, not {declared}")
        return None, content or None
    body = WholeBody(content, declared)
    return body, body


def _headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Every header line in order, repeated ones apart. Transfer-Encoding is aiohttp's to set
    (it chunks a body that has no Content-Length)."""
    return [
        (name.decode("ascii"), _text(value))
        for name, value in headers
        if name.lower() != b"transfer-encoding"
    ]


def _text(value: bytes) -> str:
    # aiohttp writes header values as UTF-8: UTF-8 bytes pass unchanged; other (obs-text)
    # bytes cannot, and go as their Latin-1 reading, as httpx's own decoding would give.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
