"""The upstream side: requests go straight through the configured transport, with no headers
and no cookies of its own, and only real timeouts count as timeouts."""

from __future__ import annotations

import traceback

import aiohttp
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from sidecar.config import UpstreamSettings
from sidecar.proxy.transport import Upstream, env_proxy, is_timeout
from tests.fakes.raw_server import RawServer
from tests.fakes.server import serve_in_thread


def echo_app() -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        response = JSONResponse({"headers": [[k, v] for k, v in request.headers.items()]})
        response.set_cookie("session", "agent-a")
        return response

    return Starlette(routes=[Route("/echo", echo)])


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_requests_carry_only_their_own_headers_and_no_cookies(transport: str) -> None:
    """What goes upstream is exactly the headers given (plus Host and the body framing); a
    Set-Cookie of one answer never rides on the next request, whichever transport."""
    settings = UpstreamSettings(transport=transport)  # type: ignore[arg-type]
    with serve_in_thread(echo_app()) as server:  # type: ignore[arg-type]
        async with Upstream(settings, environ={}) as upstream:
            seen = []
            for _ in range(2):
                request = upstream.request("GET", f"{server.url}/echo", [(b"x-a", b"1")], b"")
                response = await upstream.send(request)
                seen.append(
                    dict(map(tuple, (await response.aread() and response.json())["headers"]))
                )
                await response.aclose()
    assert [sorted(h) for h in seen] == [["host", "x-a"], ["host", "x-a"]]


def test_aiohttp_is_the_default_transport() -> None:
    """The default config talks to upstreams through aiohttp's pool (bench/ chose it)."""
    assert isinstance(Upstream(UpstreamSettings(), environ={}).transport, AiohttpTransport)


@pytest.mark.parametrize(
    ("environ", "proxy"),
    [({}, None), ({"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"), ({"http_proxy": "x"}, "x")],
)
def test_env_proxy(environ: dict[str, str], proxy: str | None) -> None:
    """A proxy from the usual variables is honoured (and only then paid for, with aiohttp)."""
    assert env_proxy(environ) == proxy


def test_is_timeout() -> None:
    """httpx-aiohttp maps a dropped connection to ConnectTimeout: that is not a timeout; aiohttp's
    own timeout errors and httpx's are."""
    dropped = httpx.ConnectTimeout("mapped")
    dropped.__cause__ = aiohttp.ServerDisconnectedError()
    slow = httpx.ReadTimeout("mapped")
    slow.__cause__ = aiohttp.ServerTimeoutError()
    assert [
        is_timeout(e) for e in (dropped, slow, httpx.ReadTimeout("x"), httpx.ConnectError("x"))
    ] == [False, True, True, False]


ECHOED = "zq7Xk2PvLmN9wR4tY8uB3cD6fG1hJ5aS"  # a key of no known shape, echoed by the upstream
SENT = "Qm9vdGxlZ0NyZWRlbnRpYWwtNzc0MQ"  # the credential our request carried
MALFORMED = {
    "header-without-colon": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Echo " + ECHOED.encode(),
    "control-character": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Echo: "
    + ECHOED.encode()
    + b"\x00",
    "status-line": b"HTTP/1.1 2OO " + ECHOED.encode(),
}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("head", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_answer_is_a_protocol_error_that_quotes_nothing(
    transport: str, head: bytes
) -> None:
    """An answer no parser takes, with a key echoed into its head, is a RemoteProtocolError whose
    whole traceback (causes and contexts shown) holds neither that key nor our credential."""
    settings = UpstreamSettings(transport=transport)  # type: ignore[arg-type]
    with RawServer(head + b"\r\n\r\nok") as server:
        async with Upstream(settings, environ={}) as upstream:
            request = upstream.request("GET", server.url, [(b"x-api-key", SENT.encode())], b"")
            with pytest.raises(httpx.RemoteProtocolError) as caught:
                await upstream.send(request)
    shown = "".join(traceback.format_exception(caught.value))
    assert (ECHOED in shown, SENT in shown, server.served) == (False, False, 1)
    assert str(caught.value).startswith("the upstream's answer is not valid HTTP (")
