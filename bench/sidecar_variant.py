"""A bench-only launcher: ``openclaw-sidecar serve`` with its upstream httpx client on the
``httpx-aiohttp`` transport, swapped in without editing sidecar code.

    python -m bench.sidecar_variant --transport aiohttp serve --config FILE

The upstream client is the one ``sidecar.server.serve`` builds with ``limits=``; the token
client is left alone. This is a prototype of an ``[upstream] transport = "aiohttp"`` setting.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import httpx


def aiohttp_module() -> types.ModuleType:
    """A stand-in for ``httpx`` inside ``sidecar.server`` whose AsyncClient, when given
    ``limits`` (the upstream client), runs on ``httpx_aiohttp.AiohttpTransport``."""
    from httpx_aiohttp import AiohttpTransport

    class AsyncClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if "limits" in kwargs and "transport" not in kwargs:
                kwargs["transport"] = AiohttpTransport(limits=kwargs["limits"])
            super().__init__(*args, **kwargs)

    shim = types.ModuleType("httpx")
    shim.__dict__.update(httpx.__dict__)
    shim.AsyncClient = AsyncClient  # type: ignore[attr-defined]
    return shim


def main(argv: list[str]) -> int:
    transport = "httpx"
    if argv[:1] == ["--transport"]:
        transport, argv = argv[1], argv[2:]
    from sidecar import cli, server

    if transport == "aiohttp":
        server.httpx = aiohttp_module()  # type: ignore[attr-defined]
    elif transport != "httpx":
        raise SystemExit(f"--transport: httpx or aiohttp, not {transport!r}")
    return int(cli.main(argv) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
