"""The upstream client: no default headers of its own, no cookie jar, the configured transport."""

from __future__ import annotations

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from sidecar.config import UpstreamSettings
from sidecar.proxy.transport import is_timeout, upstream_client

pytestmark = pytest.mark.filterwarnings("error")


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_the_client_adds_no_headers_and_keeps_no_cookies(transport: str) -> None:
    """A Set-Cookie from one answer never rides on the next request; httpx's defaults stay out."""
    seen: list[httpx.Headers] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, headers={"set-cookie": "session=agent-a; Path=/"})

    async with upstream_client(UpstreamSettings(transport=transport)) as client:  # type: ignore[arg-type]
        client._transport = httpx.MockTransport(upstream)  # the I/O edge, replaced
        for _ in range(2):
            await client.send(client.build_request("GET", "http://u.test/x", headers=[]))
    assert [dict(h) for h in seen] == [{"host": "u.test"}, {"host": "u.test"}]


@pytest.mark.anyio
async def test_aiohttp_is_the_default_transport() -> None:
    """The default config talks to upstreams through aiohttp's pool (bench/ chose it)."""
    async with upstream_client(UpstreamSettings()) as client:
        assert isinstance(client._transport, AiohttpTransport)


@pytest.mark.parametrize(
    ("error", "timeout"),
    [
        (httpx.ReadTimeout("slow"), True),
        (httpx.ConnectError("refused"), False),
    ],
)
def test_is_timeout(error: httpx.TransportError, timeout: bool) -> None:
    """Only real timeouts count as upstream_timeout."""
    assert is_timeout(error) is timeout


def test_an_aiohttp_connection_error_is_not_a_timeout() -> None:
    """httpx-aiohttp maps a refused connection to ConnectTimeout; it is upstream_unavailable."""
    import aiohttp

    mapped = httpx.ConnectTimeout("mapped")
    mapped.__cause__ = aiohttp.ServerDisconnectedError()
    timed_out = httpx.ReadTimeout("mapped")
    timed_out.__cause__ = aiohttp.ServerTimeoutError()
    assert (is_timeout(mapped), is_timeout(timed_out)) == (False, True)
