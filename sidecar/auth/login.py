"""The browser login's I/O: a one-shot callback server on loopback, a paste fallback on stdin,
and the code exchange over httpx. The decisions (URL, state check, token answer) live in
``pkce`` and ``grants``; this module only waits, serves one page and posts one request.

Waiting uses two daemon threads and a queue rather than anyio: a blocking read of stdin cannot
be cancelled, and a daemon thread blocked in ``os.read`` is simply dropped at exit.
"""

from __future__ import annotations

import html
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Final
from urllib.parse import urlsplit

import httpx

from sidecar.auth import pkce
from sidecar.auth.pkce import LoginError, LoginStart
from sidecar.errors import RefreshUnavailable
from sidecar.providers import grants
from sidecar.providers.grants import Grant, ProviderAuth

DEFAULT_CALLBACK_PORT: Final = 1455  # the Codex CLI's port (spec §9)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1"})
_READ_CHUNK: Final = 4096
_SHUTDOWN_POLL_S: Final = 0.05  # how soon serve_forever sees shutdown(); stdlib default 0.5

Answer = str | LoginError  # a checked authorization code, or why there is none


class LoginTimeout(LoginError):
    code = "login_timeout"
    status = 408


@dataclass(frozen=True)
class Callback:
    """Where the browser comes back to: 127.0.0.1:``port``, ``path``, as ``url`` shows it."""

    port: int
    path: str
    url: str


def callback_of(redirect_uri: str) -> Callback | None:
    """The local callback of an ``http://localhost[:port]/path`` redirect; None when the
    provider redirects elsewhere (Anthropic's console page), so only pasting can finish."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_NAMES:
        return None
    port = parts.port or DEFAULT_CALLBACK_PORT
    path = parts.path or "/"
    return Callback(port, path, f"http://{parts.hostname}:{port}{path}")


# --- the callback server --------------------------------------------------------------------

_PAGE: Final = (
    '<!doctype html><html><head><meta charset="utf-8"><title>openclaw-sidecar login</title>'
    "</head><body><h1>{title}</h1><p>{text}</p></body></html>"
)


class _Server(HTTPServer):
    def __init__(self, callback: Callback, state: str, answers: queue.Queue[Answer]) -> None:
        self.callback = callback
        self.state = state
        self.answers = answers
        super().__init__(("127.0.0.1", callback.port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that connects and sends nothing cannot hold the login

    def do_GET(self) -> None:  # the name http.server calls
        parts = urlsplit(self.path)
        if parts.path != self.server.callback.path:
            self._page(404, "Not found", "This is the openclaw-sidecar login callback.")
            return
        try:
            answer: Answer = pkce.parse_callback(f"?{parts.query}", self.server.state)
        except LoginError as exc:
            answer = exc
        try:
            self._respond(answer)
        finally:
            self.server.answers.put(answer)

    def _respond(self, answer: Answer) -> None:
        if isinstance(answer, LoginError):
            self._page(400, "Sign-in failed", f"{answer.message}. Return to the terminal.")
        else:
            text = "openclaw-sidecar is finishing the login: return to the terminal."
            self._page(200, "Sign-in received", text)

    def _page(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # http.server's names
        """Silent: the request line holds the authorization code."""


class CallbackServer:
    """Serves ``callback.path`` on 127.0.0.1 in a daemon thread until ``close``."""

    def __init__(self, callback: Callback, state: str, answers: queue.Queue[Answer]) -> None:
        self._server = _Server(callback, state, answers)  # OSError when the port is taken
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_S},
            name="login-callback",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stops after the request in hand is answered, so the browser gets its page."""
        self._server.shutdown()
        self._server.server_close()


# --- the paste fallback ---------------------------------------------------------------------


def read_pastes(fd: int, state: str, answers: queue.Queue[Answer]) -> None:
    """Parses the first non-blank line on ``fd``; end of input just leaves the callback."""
    pending = b""
    while True:
        chunk = os.read(fd, _READ_CHUNK)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if not chunk and pending:
            lines.append(pending)
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text:
                answers.put(_parse_paste(text, state))
                return
        if not chunk:
            return


def _parse_paste(text: str, state: str) -> Answer:
    try:
        return pkce.parse_callback(text, state)
    except LoginError as exc:
        return exc


def read_pastes_in_background(fd: int, state: str, answers: queue.Queue[Answer]) -> None:
    """Reads ``fd`` in a daemon thread; its first non-blank line becomes an answer."""
    thread = threading.Thread(
        target=read_pastes, args=(fd, state, answers), name="login-paste", daemon=True
    )
    thread.start()


# --- the flow -------------------------------------------------------------------------------


def listen(callback: Callback, state: str, answers: queue.Queue[Answer]) -> CallbackServer:
    """The callback server, or a clear error when its port is taken."""
    try:
        return CallbackServer(callback, state, answers)
    except OSError as exc:
        raise LoginError(
            f"cannot listen on 127.0.0.1:{callback.port} for the login callback "
            f"({exc.strerror}); is another login running? Stop it and try again"
        ) from exc


def first_answer(answers: queue.Queue[Answer], timeout_s: float) -> str:
    """The first code to arrive; a refusal, a bad paste or the timeout is a LoginError."""
    try:
        answer = answers.get(timeout=timeout_s)
    except queue.Empty:
        raise LoginTimeout(
            f"no callback and nothing pasted within {timeout_s:g} s; run the login again "
            "(--timeout sets how long to wait)"
        ) from None
    if isinstance(answer, LoginError):
        raise answer
    return answer


def exchange(
    auth: ProviderAuth, code: str, start: LoginStart, client: httpx.Client, now_ms: int
) -> Grant:
    """The authorization-code grant at ``auth.token_url``; a Grant or the error it means."""
    request = grants.code_request(auth, code, start.verifier, start.state)
    try:
        response = client.post(request.url, content=request.body, headers=list(request.headers))
    except httpx.HTTPError as exc:
        raise RefreshUnavailable(
            f"cannot reach the {auth.provider} token endpoint {request.url} "
            f"({type(exc).__name__}); nothing was stored, run the login again"
        ) from exc
    return grants.parse_token_response(auth, response.status_code, response.content, now_ms)


def instructions(provider: str, url: str, callback: Callback | None, timeout_s: float) -> str:
    """What the user must do while the login waits."""
    head = f"Sign in to {provider}: open this URL in a browser:\n\n  {url}\n\n"
    if callback is None:
        return head + (
            "After signing in, the page shows a code (code#state). Paste it here and press "
            f"Enter (waiting up to {timeout_s:g} s).\n"
        )
    return head + (
        f"Waiting for the callback on {callback.url} (up to {timeout_s:g} s).\n"
        "If the browser is on another machine, or the page does not load after signing in, "
        "paste the redirect URL from its address bar here (or the code) and press Enter.\n"
    )


def profile_fields(auth: ProviderAuth, grant: Grant) -> dict[str, object]:
    """The OpenClaw ``oauth`` profile a login stores (store spec §3)."""
    return {"type": "oauth", "provider": auth.provider, **grant.fields()}


def profile_id_for(provider: str, email: str | None) -> str:
    """``<provider>:<email>`` as OpenClaw names logins, else ``<provider>:default``."""
    return f"{provider}:{email or 'default'}"


def run_login(
    auth: ProviderAuth,
    *,
    timeout_s: float,
    notify: Callable[[str], object],
    open_browser: Callable[[str], object] | None,
    stdin_fd: int | None,
    client: httpx.Client,
    now_ms: Callable[[], int],
) -> dict[str, object]:
    """One whole login: URL, wait for the code, exchange; returns the profile's fields."""
    start = pkce.start_login(auth)
    callback = callback_of(auth.redirect_uri or "")
    answers: queue.Queue[Answer] = queue.Queue()
    server = listen(callback, start.state, answers) if callback else None
    try:
        notify(instructions(auth.provider, start.url, callback, timeout_s))
        if open_browser is not None:
            open_browser(start.url)
        if stdin_fd is not None:
            read_pastes_in_background(stdin_fd, start.state, answers)
        code = first_answer(answers, timeout_s)
    finally:
        if server is not None:
            server.close()
    return profile_fields(auth, exchange(auth, code, start, client, now_ms()))
