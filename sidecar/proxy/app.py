"""The ASGI app of one listener: the operational endpoints, then the proxy for everything else."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sidecar.errors import SidecarError
from sidecar.proxy.edge import guarded
from sidecar.proxy.forward import Proxy
from sidecar.proxy.metrics import CONTENT_TYPE, Metrics
from sidecar.proxy.routing import RESERVED_PATHS, is_ui_path


def create_ops(proxy: Proxy, metrics: Metrics) -> Starlette:
    """The operational endpoints of ``proxy``'s listener; /readyz speaks for the agent it serves
    by default (a bound listener's own), with the profiles that listener may use."""
    agent = proxy.listener.agent or proxy.settings.default_agent

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await proxy.agents.check(agent)
            view = proxy.listener_view(await proxy.source.view(agent))
        except SidecarError as exc:
            return JSONResponse(
                {"status": "unready", "code": exc.code, "reason": exc.message}, status_code=503
            )
        return JSONResponse(
            {
                "status": "ready",
                "agent": view.agent,
                "store": view.era.value,
                "profiles": len(view.profiles),
            }
        )

    async def metrics_page(_: Request) -> Response:
        proxy.ledger.settle()  # every request that has ended counts
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ]
    )


def create_app(proxy: Proxy, ops: ASGIApp, ui: ASGIApp | None = None) -> ASGIApp:
    """The listener's app: the edge's refusals first (``edge.py``), then ops, the page
    (``sidecar.ui``, under ``/ui``) or the proxy."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in RESERVED_PATHS:
            await ops(scope, receive, send)
        elif scope["type"] == "http" and ui is not None and is_ui_path(scope["path"]):
            await ui(scope, receive, send)
        elif scope["type"] == "http":
            await proxy(scope, receive, send)
        elif scope["type"] == "lifespan":
            await ops(scope, receive, send)
        else:  # websockets are not proxied; clients such as Codex then fall back to HTTP
            await send({"type": "websocket.close", "code": 1008})

    return guarded(app, proxy.metrics)
