"""A minimal SSE upstream on raw asyncio: each response is ``x-bench-events`` events
``x-bench-interval-ms`` apart, each event carrying the send time (CLOCK_MONOTONIC, shared by all
processes) so the client measures every event's transit, then ``data: [DONE]``.
``x-bench-hold-s`` keeps the stream open (idle) after the first event.

    python -m bench.sse_upstream --port P
"""

from __future__ import annotations

import argparse
import asyncio
import time

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(i: int) -> bytes:
    return b'data: {"i":%d,"t":%d,"choices":[{"delta":{"content":"tok"}}]}\n\n' % (
        i,
        time.monotonic_ns(),
    )


async def _read_request(reader: asyncio.StreamReader) -> dict[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.split(b"\r\n")[1:]
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines if x)}
    length = int(headers.get(b"content-length", b"0"))
    if length:
        await reader.readexactly(length)
    return headers


async def _stream(writer: asyncio.StreamWriter, headers: dict[bytes, bytes]) -> None:
    events = int(headers.get(b"x-bench-events", b"10"))
    interval = float(headers.get(b"x-bench-interval-ms", b"10")) / 1000
    hold = float(headers.get(b"x-bench-hold-s", b"0"))
    writer.write(HEAD)
    for i in range(events):
        if i:
            await asyncio.sleep(interval)
        writer.write(_chunk(_event(i)))
        await writer.drain()
        if hold and i == 0:
            await asyncio.sleep(hold)
    writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while (headers := await _read_request(reader)) is not None:
            await _stream(writer, headers)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve_one, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    asyncio.run(main(ap.parse_args().port))
