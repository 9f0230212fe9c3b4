"""The HTTP/1.1 protocol each listener runs: uvicorn's httptools protocol (llhttp, the parser
``uvicorn[standard]`` uses), with two changes so the edge's rules hold as they did on h11.

- **The request target is kept as it came when it is not a path.** uvicorn keeps only the path
  of what httptools parses: an absolute-form target (``POST http://evil.example/v1/...``, what a
  client configured to use the sidecar as a forward proxy sends) would reach the app as
  ``/v1/...``. Such a target, and any other not starting with ``/`` (CONNECT's authority form),
  goes into the scope unchanged, as h11 gives it, so the edge and routing refuse it
  (``invalid_path``, 405 for CONNECT) and no listener answers from a path hidden inside it.
- **A request the parser refuses gets the sidecar's error**, not uvicorn's plain text: llhttp
  refuses some framing (Content-Length beside Transfer-Encoding, a malformed length) and
  methods it does not know before the app could see them; the answer is the same JSON error
  and status the edge gives (``invalid_framing``, ``method_not_allowed``), else
  ``malformed_request``, and the connection closes.
"""

from __future__ import annotations

from typing import Any, Final

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sidecar.config.settings import ClientSettings
from sidecar.errors import RouteError
from sidecar.proxy.admission import admitting, refuse_connection
from sidecar.proxy.edge import ALLOWED, InvalidFraming, MethodNotAllowed
from sidecar.proxy.metrics import Metrics

_STAND_IN: Final = b"/"  # parsed in place of a target that is not a path; put back after


class MalformedRequest(RouteError):
    code = "malformed_request"
    status = 400


def parser_refusal(error: httptools.HttpParserError) -> RouteError:
    """The sidecar's error for a request llhttp refused (its reasons are fixed texts)."""
    reason = str(error) or type(error).__name__
    if isinstance(error, httptools.HttpParserInvalidMethodError):
        return MethodNotAllowed(f"unknown method; the sidecar forwards {ALLOWED.decode()}")
    if any(word in reason for word in ("Content-Length", "Transfer-Encoding", "chunk")):
        return InvalidFraming(f"the request's body framing is malformed ({reason})")
    return MalformedRequest(f"the request is not well-formed HTTP/1.1 ({reason})")


def protocol_class(metrics: Metrics) -> type[HttpToolsProtocol]:
    class SidecarHttp(HttpToolsProtocol):
        """httptools, keeping a target that is not a path whole, answering parser refusals."""

        def on_headers_complete(self) -> None:
            target: bytes = self.url
            if target.startswith(b"/"):
                super().on_headers_complete()
                return
            self.url = _STAND_IN  # uvicorn would fail to parse an authority-form target
            super().on_headers_complete()
            self.url = target
            # The scope is the one the request's task reads: that task has not run yet.
            scope: Any = self.scope
            scope["raw_path"] = target
            scope["path"] = target.decode("latin-1")
            scope["query_string"] = b""

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                # CONNECT, or an Upgrade the sidecar does not take: the app answers it (405,
                # upgrade_unsupported); nothing after it on this connection is read.
                if self.cycle is not None:
                    self.cycle.keep_alive = False
            except httptools.HttpParserError as error:
                refusal = parser_refusal(error)
                extra = [(b"allow", ALLOWED)] if isinstance(refusal, MethodNotAllowed) else []
                refuse_connection(self.transport, refusal, metrics, extra)

    return SidecarHttp


def listener_protocol(clients: ClientSettings, metrics: Metrics) -> type[HttpToolsProtocol]:
    """The protocol class for a listener, under [clients]' admission rules."""
    return admitting(protocol_class(metrics), clients, metrics)
