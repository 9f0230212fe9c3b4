"""Reference proxy: starlette + stock httpx (httpx's own connection pool), streaming both bodies
and injecting one header. A yardstick for the sidecar; run by bench/run.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.refcommon import METHODS, inbound, outbound, parse_args, serve


def make_app(upstream: str) -> Starlette:
    client = httpx.AsyncClient(
        base_url=upstream,
        timeout=httpx.Timeout(connect=10, read=600, write=60, pool=30),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
    )

    async def proxy(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        outgoing = client.build_request(
            request.method,
            target,
            headers=outbound(request.headers.raw),
            content=request.stream(),
        )
        response = await client.send(outgoing, stream=True)
        reply = StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            background=BackgroundTask(response.aclose),
        )
        reply.raw_headers = inbound(response.headers.raw)
        return reply

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with client:
            yield

    return Starlette(routes=[Route("/{path:path}", proxy, methods=METHODS)], lifespan=lifespan)


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    serve(make_app(args.upstream), args.port)
