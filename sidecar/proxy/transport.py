"""The upstream side of the proxy: httpx requests and responses over a swappable transport
(``[upstream] transport``), sent straight through it.

The default is aiohttp's connection pool through ``httpx-aiohttp`` (bench/: ~5x httpx's own
pool on this kind of machine), its request method made exact (``aiohttp_transport.py``).
Requests skip ``httpx.AsyncClient``: a proxy wants none of its redirects, auth flows or cookie
jar (a jar shared by every agent would carry one agent's upstream cookie into another agent's
request), and that layer cost ~18% of a request's CPU. Neither transport adds headers of its
own: a request goes upstream with the client's headers, minus credentials, hop-by-hop and
framing ones, plus ours. The body's framing is the sidecar's own: the Content-Length it was
given as a number, or chunked.

An answer that does not parse as HTTP is ``httpx.RemoteProtocolError`` with a fixed text, from
either transport: the parsers quote the offending line, which may echo a credential, and
aiohttp's error also carries the request's headers, ours included.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable
from types import TracebackType

import aiohttp
import httpx
import yarl

from sidecar.config import UpstreamSettings
from sidecar.proxy.aiohttp_transport import PooledTransport

MAX_CONNECTIONS = 1000
KEEPALIVE = 200
# aiohttp adds these when a request lacks them; a proxy must forward what it was sent.
_AIOHTTP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


class Upstream:
    """Sends ``httpx.Request``s through one transport; responses stream (``aiter_raw``)."""

    def __init__(self, settings: UpstreamSettings, *, environ: dict[str, str] | None = None):
        env = dict(os.environ if environ is None else environ)
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=KEEPALIVE)
        self.transport: httpx.AsyncBaseTransport = (
            _aiohttp(limits, env) if settings.transport == "aiohttp" else _httpx(limits, env)
        )
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=60.0,
            pool=30.0,
        ).as_dict()

    def request(
        self,
        method: str,
        url: httpx.URL | str,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterable[bytes],
        *,
        length: int | None = None,
    ) -> httpx.Request:
        """A request framed by ``length`` when given (the client's Content-Length, 0 included),
        else by the body given as bytes, else chunked."""
        if length is not None:
            headers = [*headers, (b"content-length", str(length).encode("ascii"))]
        return httpx.Request(
            method, url, headers=headers, content=content, extensions={"timeout": self._timeout}
        )

    async def send_parts(
        self,
        method: str,
        url: yarl.URL,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterable[bytes],
        *,
        length: int | None = None,
    ) -> httpx.Response:
        """``request(...)`` sent; on aiohttp's pool without an ``httpx.Request`` made for it."""
        if not isinstance(self.transport, PooledTransport):
            return await self.send(self.request(method, str(url), headers, content, length=length))
        try:
            return await self.transport.send_parts(
                method, url, headers, content, length, self._timeout
            )
        except (aiohttp.ClientResponseError, httpx.RemoteProtocolError) as exc:
            raise _not_http(exc) from None

    async def send(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.transport.handle_async_request(request)
        except (aiohttp.ClientResponseError, httpx.RemoteProtocolError) as exc:
            # httpx-aiohttp passes aiohttp's parse errors through untranslated. ``from None``:
            # the original, with the quoted line, must not ride along in a traceback.
            raise _not_http(exc) from None
        response.request = request
        return response

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.transport.aclose()


def _not_http(exc: Exception) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        f"the upstream's answer is not valid HTTP ({_parser_error(exc)})"
    )


def _parser_error(exc: Exception) -> str:
    """The parser's error class, the one part of its report that quotes nothing."""
    return type(exc.__cause__ or exc).__name__


def env_proxy(environ: dict[str, str]) -> str | None:
    return next((environ[v] for v in _PROXY_VARIABLES if environ.get(v)), None)


def _aiohttp(limits: httpx.Limits, environ: dict[str, str]) -> PooledTransport:
    # With trust_env, aiohttp reads the proxy variables and ~/.netrc on every request (an
    # executor hop each): only pay for that when a proxy is actually configured.
    trust_env = env_proxy(environ) is not None

    def session() -> aiohttp.ClientSession:  # made lazily, inside the running event loop
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, keepalive_timeout=limits.keepalive_expiry or 5.0
        )
        return aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_AIOHTTP_AUTO_HEADERS,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # shared by every agent: keep no cookies
            trust_env=trust_env,  # HTTPS_PROXY / NO_PROXY, as httpx honours them
        )

    return PooledTransport(limits=limits, client=session)


def _httpx(limits: httpx.Limits, environ: dict[str, str]) -> httpx.AsyncHTTPTransport:
    proxy = env_proxy(environ)
    return httpx.AsyncHTTPTransport(limits=limits, proxy=httpx.Proxy(proxy) if proxy else None)


def is_timeout(exc: httpx.TransportError) -> bool:
    """Whether a transport error is the upstream being too slow. httpx-aiohttp maps every
    ``aiohttp.ClientConnectionError`` (a refused or dropped connection included) to
    ``httpx.ConnectTimeout``; only aiohttp's own timeout errors are timeouts."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError)
    return isinstance(exc, httpx.TimeoutException)
