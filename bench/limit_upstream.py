"""A JSON upstream on raw asyncio that answers after a fixed delay (the round trip to a real
provider) and refuses one key: ``Authorization: Bearer <--limited>`` gets OpenAI's 429
``rate_limit_exceeded`` with ``retry-after-ms: 1`` (so the key is tried again on the next
request, and every request of a run fails over); any other key gets a small chat completion.

    python -m bench.limit_upstream --port P --limited sk-a --delay-ms 20
"""

from __future__ import annotations

import argparse
import asyncio

OK = b'{"id":"chatcmpl-bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}'  # noqa: E501
LIMITED = (
    b'{"error":{"message":"Rate limit reached for gpt-bench on requests per min (RPM): Limit 3,'
    b' Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
)


def _answer(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args: Args) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")[1:]
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines if x)
            }
            length = int(headers.get(b"content-length", b"0"))
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(args.delay)
            if headers.get(b"authorization") == b"Bearer " + args.limited:
                writer.write(_answer(b"429 Too Many Requests", LIMITED, b"retry-after-ms: 1\r\n"))
            else:
                writer.write(_answer(b"200 OK", OK))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class Args(argparse.Namespace):
    port: int
    limited: bytes
    delay: float


async def main(args: Args) -> None:
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, args), "127.0.0.1", args.port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--limited", required=True, help="the key answered 429")
    ap.add_argument("--delay-ms", type=float, default=20.0, help="each answer's delay")
    parsed = ap.parse_args(namespace=Args())
    parsed.limited = str(parsed.limited).encode()
    parsed.delay = parsed.delay_ms / 1000
    asyncio.run(main(parsed))
