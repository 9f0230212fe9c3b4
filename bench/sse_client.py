"""An SSE client on raw asyncio that times every event: time to first event from the request's
send, and each event's transit (receive time minus the upstream's send stamp, both
CLOCK_MONOTONIC). Lean on purpose, so that the client's own cost stays small and constant."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

REQUEST = (
    "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    "authorization: Bearer unused\r\naccept: text/event-stream\r\n"
    "x-bench-events: {events}\r\nx-bench-interval-ms: {interval}\r\nx-bench-hold-s: {hold}\r\n"
    "content-length: {length}\r\n\r\n{body}"
)
BODY = '{"model":"gpt-bench","stream":true,"messages":[{"role":"user","content":"hi"}]}'


@dataclass
class StreamTiming:
    ttfe_ms: float = 0.0
    total_ms: float = 0.0
    transit_ms: list[float] = field(default_factory=list)
    events: int = 0


class _Chunked:
    """Decodes a chunked body incrementally into whole SSE events."""

    def __init__(self) -> None:
        self.raw = b""
        self.text = b""
        self.finished = False

    def feed(self, data: bytes) -> list[bytes]:
        self.raw += data
        while True:
            size_end = self.raw.find(b"\r\n")
            if size_end < 0:
                break
            size = int(self.raw[:size_end].split(b";")[0], 16)
            if size == 0:
                self.finished = self.raw.find(b"\r\n\r\n") >= 0
                break
            if len(self.raw) < size_end + 2 + size + 2:
                break
            self.text += self.raw[size_end + 2 : size_end + 2 + size]
            self.raw = self.raw[size_end + 2 + size + 2 :]
        *events, self.text = self.text.split(b"\n\n")
        return events


async def _read_head(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"SSE request failed: {head[:200]!r}")
    if b"chunked" not in head.lower():
        raise RuntimeError("SSE response is not chunked")


async def one_stream(
    port: int,
    path: str,
    *,
    events: int,
    interval_ms: float,
    hold_s: float = 0,
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
    opened: asyncio.Event | None = None,
) -> StreamTiming:
    reader, writer = connection or await asyncio.open_connection("127.0.0.1", port)
    request = REQUEST.format(
        path=path, events=events, interval=interval_ms, hold=hold_s, length=len(BODY), body=BODY
    ).encode()
    timing = StreamTiming()
    sent = time.monotonic_ns()
    writer.write(request)
    await _read_head(reader)
    decoder = _Chunked()
    while not decoder.finished:
        data = await reader.read(65536)
        if not data:
            raise RuntimeError("SSE stream cut off")
        now = time.monotonic_ns()
        for event in decoder.feed(data):
            payload = event.removeprefix(b"data: ")
            if payload == b"[DONE]":
                continue
            stamp = json.loads(payload)["t"]
            if timing.events == 0:
                timing.ttfe_ms = (now - sent) / 1e6
                if opened is not None:
                    opened.set()
            timing.transit_ms.append((now - stamp) / 1e6)
            timing.events += 1
    timing.total_ms = (time.monotonic_ns() - sent) / 1e6
    if connection is None:
        writer.close()
    return timing


async def sequential(
    port: int, path: str, *, streams: int, events: int, interval_ms: float
) -> list[StreamTiming]:
    """``streams`` streams one after another on one keep-alive connection."""
    connection = await asyncio.open_connection("127.0.0.1", port)
    out = [
        await one_stream(port, path, events=events, interval_ms=interval_ms, connection=connection)
        for _ in range(streams)
    ]
    connection[1].close()
    return out


async def concurrent(
    port: int, path: str, *, streams: int, events: int, interval_ms: float
) -> list[StreamTiming]:
    async def staggered(i: int) -> StreamTiming:
        await asyncio.sleep(interval_ms / 1000 * i / streams)  # spread the event phases
        return await one_stream(port, path, events=events, interval_ms=interval_ms)

    return list(await asyncio.gather(*(staggered(i) for i in range(streams))))
