"""The upstream HTTP client: httpx's API over a swappable transport (``[upstream] transport``).

The default is aiohttp's connection pool through ``httpx-aiohttp`` (bench/: ~5x httpx's own
pool on this kind of machine). Neither transport may add headers of its own: the request
goes upstream with the client's headers, minus credentials and hop-by-hop ones, plus ours.
"""

from __future__ import annotations

import http.cookiejar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from sidecar.config import UpstreamSettings

MAX_CONNECTIONS = 1000
KEEPALIVE = 200
# aiohttp adds these when a request lacks them; a proxy must forward what it was sent.
_AIOHTTP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def upstream_client(settings: UpstreamSettings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_seconds,
        read=settings.read_timeout_seconds,
        write=60.0,
        pool=30.0,
    )
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=KEEPALIVE)
    transport = _aiohttp(limits) if settings.transport == "aiohttp" else None
    client = httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        transport=transport,
        follow_redirects=False,
        cookies=_no_cookies(),
    )
    client.headers.clear()  # httpx's defaults (User-Agent: python-httpx, Accept, ...) stay out
    return client


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: the client is shared by every agent, and a cookie one
    upstream answer set must never ride along on another agent's request. (A jar, not an
    ``httpx.Cookies``: httpx copies the latter into a default jar.)"""
    return http.cookiejar.CookieJar(_RefuseCookies())


class _RefuseCookies(http.cookiejar.CookiePolicy):
    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: object) -> bool:
        return False

    def path_return_ok(self, path: str, request: object) -> bool:
        return False


def _aiohttp(limits: httpx.Limits) -> AiohttpTransport:
    def session() -> aiohttp.ClientSession:  # made lazily, inside the running event loop
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, keepalive_timeout=limits.keepalive_expiry or 5.0
        )
        return aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_AIOHTTP_AUTO_HEADERS,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # shared by every agent: keep no cookies
            trust_env=True,  # HTTPS_PROXY and friends, as httpx honours them
        )

    return AiohttpTransport(limits=limits, client=session)


def is_timeout(exc: httpx.TransportError) -> bool:
    """Whether a transport error is the upstream being too slow. httpx-aiohttp maps every
    ``aiohttp.ClientConnectionError`` (a refused or dropped connection included) to
    ``httpx.ConnectTimeout``; only aiohttp's own timeout errors are timeouts."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError)
    return isinstance(exc, httpx.TimeoutException)
