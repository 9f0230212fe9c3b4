"""What the two reference proxies share: hop-by-hop filtering, the injected header, and serving
a Starlette app on a socket bound like the sidecar's (IPPROTO_TCP, so asyncio sets TCP_NODELAY),
in uvicorn's fastest standard configuration: httptools and uvloop where installed
(``uvicorn[standard]``), as users and peers run it."""

from __future__ import annotations

import argparse
import importlib.util
import socket
from collections.abc import Iterable

import uvicorn
from starlette.types import ASGIApp

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"authorization",
    }
)
INJECTED = (b"authorization", b"Bearer sk-bench-ref-000000000000000000000000")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def outbound(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP] + [INJECTED]


def inbound(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]


def parse_args(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="origin, e.g. http://127.0.0.1:8080")
    return ap.parse_args()


def fastest() -> tuple[str, str]:
    """uvicorn's ``http`` and ``loop`` at their fastest here: what ``uvicorn[standard]`` gives."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return http, loop


def serve(app: ASGIApp, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    http, loop = fastest()
    config = uvicorn.Config(
        app,
        http=http,
        loop=loop,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
