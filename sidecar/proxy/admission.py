"""Admission: how many connections a listener holds open, and how long a client may take to
send a request head ([clients] in the config).

uvicorn has neither: a connection that trickles its head one byte every few seconds is held for
good. Both rules sit on uvicorn's HTTP protocol class, subclassed, and use only what its h11
and httptools protocols share (``connections``, ``cycle``, ``transport``, ``loop``); the answer
is written straight to the socket, which is closed after it, whatever state the parser is in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sidecar.config.settings import ClientSettings
from sidecar.errors import SidecarError
from sidecar.log import get_logger
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.problems import error_body

log = get_logger("sidecar.proxy")


class HeadTimeout(SidecarError):
    code = "request_timeout"
    status = 408


class TooManyConnections(SidecarError):
    code = "too_many_connections"
    status = 503


def admitting(
    base: type[HttpToolsProtocol], clients: ClientSettings, metrics: Metrics
) -> type[HttpToolsProtocol]:
    """``base`` with the listener's connection cap and request-head deadline."""

    class Admitting(base):  # type: ignore[valid-type,misc]
        head_timeout = clients.head_timeout_seconds
        max_connections = clients.max_connections

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_timer: asyncio.TimerHandle | None = None
            self._head_cycle: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > self.max_connections:
                self._refuse(
                    TooManyConnections(
                        f"this port holds at most {self.max_connections} open connections; "
                        "retry, or raise clients.max_connections"
                    )
                )
            else:
                self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and self._awaits_head():
                self._arm()  # the first byte of a later request head on this connection
            super().data_received(data)
            if self._head_timer is not None and self.cycle is not self._head_cycle:
                self._head_timer.cancel()  # a new request cycle: its head arrived whole
                self._head_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def _awaits_head(self) -> bool:
            # Bytes that come once the last response is complete start the next head (or end
            # an unread body, which then is held to the same deadline).
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self) -> None:
            self._head_cycle = self.cycle
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)

        def _head_late(self) -> None:
            self._head_timer = None
            self._refuse(
                HeadTimeout(
                    f"the request head did not arrive within {self.head_timeout:g} s "
                    "(clients.head_timeout_seconds)"
                )
            )

        def _refuse(self, error: SidecarError) -> None:
            refuse_connection(self.transport, error, metrics, open=len(self.connections))

    return Admitting


def refuse_connection(
    transport: asyncio.Transport,
    error: SidecarError,
    metrics: Metrics,
    extra: Sequence[tuple[bytes, bytes]] = (),
    **fields: object,
) -> None:
    """Answer ``error`` straight on the socket, whatever state the parser is in, and close."""
    if transport.is_closing():
        return
    metrics.errors.labels(error.code).inc()
    log.warning("connection_refused", error=error.code, **fields)
    transport.write(refusal_bytes(error, extra))
    transport.close()  # sends what was written, then FIN


def refusal_bytes(error: SidecarError, extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole HTTP/1.1 response reporting ``error``, after which the connection closes."""
    status, headers, body = error_body(error, "openai")
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in [*headers, *extra, (b"connection", b"close")]]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
