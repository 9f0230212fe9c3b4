"""The page's ASGI app for one listener: ``/ui`` (HTML), its script and style, ``/ui/api/state``
(the JSON it polls) and ``POST /ui/api/cooldown/clear``. Every path is behind the listener's
access rule (``access.refusal``); every answer forbids framing, sniffing and outside assets."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidecar.auth.outcomes import Outcomes
from sidecar.config import Listener
from sidecar.errors import SidecarError
from sidecar.log import get_logger
from sidecar.proxy.routing import UI_PREFIX
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw.layout import is_valid_agent_id
from sidecar.sources.openclaw.views import AgentView
from sidecar.ui import access
from sidecar.ui.state import BUCKET_MS, EMPTY, Usage, page_state, series_start
from sidecar.usage import db, queries

log = get_logger("sidecar.ui")

PREFIX: Final = UI_PREFIX
MAX_BODY: Final = 4096
SECURITY_HEADERS: Final = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _asset(name: str) -> bytes:
    return resources.files("sidecar.ui").joinpath("static", name).read_bytes()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


class Page:
    """The page of one listener: what it may show (one agent on a bound listener) and do."""

    def __init__(
        self,
        listener: Listener,
        *,
        source: CredentialSource,
        outcomes: Outcomes,
        database: Path | None,
        clock: Callable[[], int],
        csrf: str | None = None,
    ) -> None:
        self.listener = listener
        self.source = source
        self.outcomes = outcomes
        self.database = database
        self.clock = clock
        # The anti-forgery token: in the page (a meta tag), required on the one POST. Another
        # site's page cannot read it, nor send the header without a preflight we never allow.
        self.csrf = csrf or secrets.token_urlsafe(32)
        self._html = _asset("index.html").replace(b"{{csrf}}", self.csrf.encode())
        self._router = Starlette(
            routes=[
                Route(PREFIX, self._index, methods=["GET", "HEAD"]),
                Route(PREFIX + "/", self._index, methods=["GET", "HEAD"]),
                Route(PREFIX + "/app.js", self._script, methods=["GET", "HEAD"]),
                Route(PREFIX + "/app.css", self._style, methods=["GET", "HEAD"]),
                Route(PREFIX + "/api/state", self._state, methods=["GET"]),
                Route(PREFIX + "/api/cooldown/clear", self._clear, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refused = access.refusal(self.listener, scope["headers"])
        if refused is None:
            await self._router(scope, receive, secured)
        elif refused == "token":
            response = _error(401, "caller_unauthorized", "this page needs the listener's token")
            response.headers["www-authenticate"] = access.CHALLENGE
            await response(scope, receive, secured)
        else:
            message = "open the page as localhost or 127.0.0.1 (this Host is not this machine)"
            await _error(403, "host_refused", message)(scope, receive, secured)

    # --- the page ----------------------------------------------------------------------------

    async def _index(self, _: Request) -> Response:
        return Response(self._html, media_type="text/html; charset=utf-8")

    async def _script(self, _: Request) -> Response:
        return Response(_asset("app.js"), media_type="text/javascript; charset=utf-8")

    async def _style(self, _: Request) -> Response:
        return Response(_asset("app.css"), media_type="text/css; charset=utf-8")

    # --- the state it polls ------------------------------------------------------------------

    def _agents(self) -> list[str]:
        return [self.listener.agent] if self.listener.agent else self.source.agents()

    async def _views(self) -> tuple[list[AgentView], list[dict[str, str]]]:
        views, errors = [], []
        for agent in self._agents():
            try:
                views.append(await self.source.view(agent))
            except SidecarError as exc:
                errors.append({"agent": agent, "code": exc.code, "message": exc.message})
        return views, errors

    def _usage(self, now_ms: int) -> Usage:
        """The usage database's part, read in a worker thread; its problem shown, not raised."""
        if self.database is None:
            return EMPTY
        try:
            conn = db.open_for_reading(self.database)
            if conn is None:
                return EMPTY
            try:
                return Usage(
                    windows=queries.windows_by_profile(queries.latest_windows(conn)),
                    series=queries.series(conn, since_ms=series_start(now_ms), bucket_ms=BUCKET_MS),
                    failures=queries.recent_failures(conn),
                    events=queries.recent_events(conn),
                )
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return Usage({}, (), (), (), problem=f"cannot read {self.database}: {exc}")

    async def _state(self, _: Request) -> Response:
        now = self.clock()
        views, errors = await self._views()
        usage = await anyio.to_thread.run_sync(self._usage, now)
        doc = page_state(views, errors, now, self.outcomes.cooling_until, usage)
        return JSONResponse(doc)

    # --- the one action ----------------------------------------------------------------------

    async def _clear(self, request: Request) -> Response:
        forged = access.forgery(request.scope["headers"], request.url.scheme, self.csrf)
        if forged is not None:
            log.warning("ui_request_refused", reason=forged)
            return _error(403, "forbidden", f"refused: {forged}; use the page's own button")
        asked = await _json_body(request)
        if asked is None:
            return _error(400, "invalid_request", 'send {"agent": ..., "profile": ...}')
        agent, profile_id = asked
        if agent not in self._agents():
            return _error(404, "unknown_agent", f"this page does not show agent {agent!r}")
        try:
            view = (await self.source.view(agent)).get(profile_id)
            if view is None:
                return _error(404, "no_profile", f"agent {agent!r} has no {profile_id!r}")
            await self.outcomes.clear_cooldown(view.owner, view.id)
        except SidecarError as exc:
            return _error(exc.status, exc.code, exc.message)
        return JSONResponse({"cleared": view.id, "owner": view.owner})


async def _json_body(request: Request) -> tuple[str, str] | None:
    """(agent, profile id) from a small JSON body, or None."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    agent, profile = doc.get("agent"), doc.get("profile")
    if not isinstance(agent, str) or not is_valid_agent_id(agent):
        return None
    if not isinstance(profile, str) or not 0 < len(profile) <= 200:
        return None
    return agent, profile


def create_ui(
    listener: Listener,
    *,
    source: CredentialSource,
    outcomes: Outcomes,
    database: Path | None,
    clock: Callable[[], int],
) -> ASGIApp:
    return Page(listener, source=source, outcomes=outcomes, database=database, clock=clock)
