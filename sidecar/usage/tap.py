"""The tap on one answer: fed each chunk as the proxy relays it, it never holds the stream up.

A stream of events is read as it passes (``tokens.StreamUsage``: only the trailing partial line
is kept). A JSON answer is kept aside as the chunks it came in (references, no copy), up to
``JSON_LIMIT``, and parsed after the answer has gone out, when the recorder notes the request,
as are the headers (windows) and the request body (model).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from sidecar.usage.tokens import Found, StreamUsage, from_body, model_of_request
from sidecar.usage.windows import Window, windows_from_headers

# A JSON answer bigger than this (embeddings of a large batch) is not kept to be parsed.
JSON_LIMIT: Final = 4 << 20
_WBITS: Final = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 0}


class KeptBody(Protocol):
    """The request body as the proxy kept it for a replay (``proxy.body.RequestBody``)."""

    @property
    def replayable(self) -> bool: ...

    def kept(self) -> bytes: ...


def _ignore(_: bytes) -> None:
    return None


def _media(headers: Sequence[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """(media type, content coding), lowercased; empty when absent."""
    media = coding = b""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-type":
            media = value.partition(b";")[0].strip().lower()
        elif lowered == b"content-encoding":
            coding = value.strip().lower()
    return media, coding


def _inflater(coding: bytes) -> Callable[[], zlib._Decompress] | None:
    """A decompressor factory for a coding zlib can read, or None (br, zstd: not read)."""
    if coding in (b"", b"identity"):
        return None
    wbits = _WBITS.get(coding.decode("latin-1"))
    if wbits is None:
        raise LookupError(coding)
    if wbits == 0:  # "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2); a raw one is tried after
        return lambda: zlib.decompressobj(zlib.MAX_WBITS)
    return lambda: zlib.decompressobj(wbits)


class _Chunks:
    """A JSON answer's chunks as they came (references, no copy), until it passes the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] | None = []
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        if self.chunks is None:
            return
        self.size += len(chunk)
        if self.size <= self.limit:
            self.chunks.append(chunk)
        else:
            self.chunks = None


class _Inflating:
    """A compressed stream of events, inflated as it passes; a corrupt one is given up."""

    def __init__(self, stream: StreamUsage, inflater: zlib._Decompress, limit: int) -> None:
        self.stream = stream
        self.inflater: zlib._Decompress | None = inflater
        self.limit = limit

    def feed(self, chunk: bytes) -> None:
        if self.inflater is None:
            return
        try:
            self.stream.feed(self.inflater.decompress(chunk, self.limit))
        except zlib.error:
            self.inflater = None


class Tap:
    """What one answer teaches, gathered as it is relayed. ``feed`` is the one call on the
    request path; ``found``, ``windows`` and ``request_model`` run after the answer.

    ``feed`` is another object's method (never this one's), so a tap is freed as soon as it
    is dropped, not left in a reference cycle for the collector."""

    feed: Callable[[bytes], None]

    def __init__(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        request: KeptBody | None,
        now_ms: int,
        *,
        json_limit: int = JSON_LIMIT,
    ) -> None:
        self.headers = headers
        self.request = request
        self._request_body: bytes | None = None
        self.at_ms = now_ms  # OpenAI's and Codex's resets are relative to the answer
        self._limit = json_limit
        self._stream: StreamUsage | None = None
        self._json: _Chunks | None = None
        self.feed = _ignore
        media, self._coding = _media(headers)
        try:
            inflater = _inflater(self._coding)
        except LookupError:
            return  # a coding zlib cannot read: the tokens stay unknown
        if media == b"text/event-stream":
            self._stream = StreamUsage()
            self.feed = (
                self._stream.feed
                if inflater is None
                else _Inflating(self._stream, inflater(), json_limit).feed
            )
        elif media == b"application/json" or media.endswith(b"+json"):
            self._json = _Chunks(json_limit)
            self.feed = self._json.feed

    def end(self) -> None:
        """The answer is over: the request body becomes the bytes it was. A batch waiting for
        the writer then holds bytes and strings, not each request's objects (the ASGI cycle,
        its connection), which the collector would walk again and again (bench/: ~150 us of
        CPU per request at 32 connections, and the 1-connection p99's stalls)."""
        request, self.request = self.request, None
        if request is not None and request.replayable:
            self._request_body = request.kept()

    def found(self) -> Found:
        """The answer's tokens and model (a JSON answer is parsed here, off the request path)."""
        if self._stream is not None:
            return self._stream.found()
        chunks = self._json.chunks if self._json is not None else None
        if not chunks:
            return Found()
        body = self._decoded(b"".join(chunks))
        return Found() if body is None else from_body(body)

    def _decoded(self, body: bytes) -> bytes | None:
        coding = self._coding
        if coding in (b"", b"identity"):
            return body
        for wbits in (_WBITS.get(coding.decode("latin-1"), 0) or zlib.MAX_WBITS, -zlib.MAX_WBITS):
            inflater = zlib.decompressobj(wbits)
            try:
                out = inflater.decompress(body, self._limit)
            except zlib.error:
                continue
            return out if not inflater.unconsumed_tail else None  # larger than the limit
        return None

    def windows(self) -> list[Window]:
        return windows_from_headers(self.headers, self.at_ms)

    def request_model(self) -> str | None:
        """The model the request's JSON body named, when the proxy kept the whole body."""
        self.end()
        return None if self._request_body is None else model_of_request(self._request_body)


NO_TAP: Final = Tap((), None, 0)  # feeds nothing, finds nothing: for requests without answer
