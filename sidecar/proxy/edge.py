"""The listener's edge: requests refused before anything reads them or sends them on.

Checked on the ASGI scope (the server passes the header lines through as they came), so the
rules hold whichever HTTP parser serves the listener, even where it is laxer than h11.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from sidecar.errors import RouteError
from sidecar.log import get_logger
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.problems import error_body

log = get_logger("sidecar.proxy")

# TRACE: an upstream that echoes it would hand the caller the credential injected on the way.
# CONNECT: a tunnel would carry bytes past every rule of the proxy.
REFUSED_METHODS: Final = frozenset({"TRACE", "CONNECT"})
ALLOWED: Final = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_DIGITS: Final = re.compile(rb"[0-9]{1,18}")  # below 2**63: no length overflows anywhere


class InvalidFraming(RouteError):
    """The request's body framing is ambiguous or malformed (RFC 9112 §6.1, §6.3)."""

    code = "invalid_framing"
    status = 400


class MethodNotAllowed(RouteError):
    code = "method_not_allowed"
    status = 405


def refusal(
    method: str, http_version: str, headers: Sequence[tuple[bytes, bytes]]
) -> RouteError | None:
    """Why the request must be refused before it is read, or None."""
    if method.upper() in REFUSED_METHODS:
        return MethodNotAllowed(f"{method} is not proxied; the sidecar forwards {ALLOWED.decode()}")
    return framing_error(http_version, headers)


def framing_error(
    http_version: str, headers: Sequence[tuple[bytes, bytes]]
) -> InvalidFraming | None:
    """RFC 9112 §6.1 and §6.3: one well-formed Content-Length, or Transfer-Encoding: chunked
    alone (HTTP/1.1 only), or neither. Anything else could be read two ways by two servers."""
    lengths = [v for n, v in headers if n.lower() == b"content-length"]
    codings = [v for n, v in headers if n.lower() == b"transfer-encoding"]
    if lengths and codings:
        return InvalidFraming("the request has both Content-Length and Transfer-Encoding")
    if codings and (http_version == "1.0" or [c.strip().lower() for c in codings] != [b"chunked"]):
        return InvalidFraming("Transfer-Encoding must be exactly 'chunked', on HTTP/1.1")
    values = {item.strip() for value in lengths for item in value.split(b",")}
    if len(values) > 1:
        return InvalidFraming("the request has several different Content-Length values")
    if any(_DIGITS.fullmatch(value) is None for value in values):
        return InvalidFraming("the request's Content-Length is not a number of bytes")
    return None


def guarded(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """``app`` behind the edge's rules: a refused request is answered here and never reaches it."""

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = refusal(scope["method"], scope["http_version"], scope["headers"])
            if refused is not None:
                await _refuse(send, refused, metrics, scope["method"])
                return
        await app(scope, receive, send)

    return edge


async def _refuse(send: Send, error: RouteError, metrics: Metrics, method: str) -> None:
    status, headers, body = error_body(error, "openai")
    if isinstance(error, MethodNotAllowed):
        headers.append((b"allow", ALLOWED))  # RFC 9110 §15.5.6
    else:
        # RFC 9112 §6.3: the body's end is unknown, so nothing after it on this connection can
        # be trusted to start a request.
        headers.append((b"connection", b"close"))
    metrics.errors.labels(error.code).inc()
    log.info("request_refused", method=method, status=status, error=error.code)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
