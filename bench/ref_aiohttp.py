"""Reference proxy: starlette + aiohttp's client, streaming both bodies and injecting one
header. A yardstick for the sidecar; run by bench/run.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.refcommon import METHODS, inbound, outbound, parse_args, serve


def make_app(upstream: str) -> Starlette:
    session: dict[str, aiohttp.ClientSession] = {}

    async def proxy(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in outbound(request.headers.raw)
        ]
        has_body = request.method not in ("GET", "HEAD")
        response = await session["s"].request(
            request.method,
            upstream + target,
            headers=headers,
            data=request.stream() if has_body else None,
            allow_redirects=False,
            auto_decompress=False,
        )
        reply = StreamingResponse(
            response.content.iter_any(),
            status_code=response.status,
            background=BackgroundTask(response.release),
        )
        reply.raw_headers = inbound(response.raw_headers)
        return reply

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=600)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        ) as s:
            session["s"] = s
            yield

    return Starlette(routes=[Route("/{path:path}", proxy, methods=METHODS)], lifespan=lifespan)


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    serve(make_app(args.upstream), args.port)
