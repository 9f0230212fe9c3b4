"""A fake OAuth authorization server for OpenAI (Codex) and Anthropic, on 127.0.0.1.

Behaves like the real token endpoints where the sidecar cares: short-lived access tokens,
single-use rotating refresh tokens (reuse is rejected and counted), PKCE-checked code exchange,
and failure modes. State lives in a thread-safe `TokenRegistry` that tests (and the fake
upstream, to validate bearer tokens) use directly, or over HTTP at ``/__fake/*``.

Strict by default: a request that repeats a header name gets the 400 aiohttp's server gives a
repeated ``Content-Type`` (``StrictHeaders``), so nothing passes here that the strictest real
token endpoint would refuse; ``strict=False`` (``--lenient``) accepts it like most servers do.

Run as a process: ``python -m tests.fakes.token_server --port 0 --port-file F
[--access-lifetime 3600] [--seed RT[:ACCOUNT[:EMAIL]]]... [--lenient]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.server import Gate, RunningServer, abort_connection, run_main, start_in_thread

OPENAI_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ANTHROPIC_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
OPENAI_SCOPE = "openid profile email offline_access"
ANTHROPIC_SCOPE = "org:create_api_key user:profile user:inference"

Style = Literal["openai", "anthropic"]
MODES = ("normal", "down", "slow", "hold", "malformed", "missing_fields", "reject")


# --------------------------------------------------------------------------- token formats


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped string (header.payload.signature); the signature is random bytes."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "fake-token-server"}
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), secrets.token_bytes(32)]
    return ".".join(b64url(p) for p in parts)


def decode_jwt(token: str) -> dict[str, Any]:
    """The payload of a JWT, without verification (what the sidecar does too)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge for `verifier`."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_refresh_token(style: Style | None) -> str:
    if style == "anthropic":
        return "sk-ant-ort01-" + secrets.token_urlsafe(64)
    return "rt_" + secrets.token_urlsafe(48)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Identity:
    account_id: str = "acct_fake_0001"
    email: str = "user@example.com"
    plan: str = "plus"


@dataclass
class RefreshRecord:
    token: str
    identity: Identity
    style: Style | None  # None: accepted by both endpoints
    family: str
    status: Literal["active", "rotated", "revoked"] = "active"
    replaced_by: str | None = None


@dataclass
class AccessRecord:
    token: str
    identity: Identity
    style: Style
    family: str
    expires_at: float
    revoked: bool = False

    def active(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    challenge: str
    state: str
    scope: str
    identity: Identity
    used: bool = False


@dataclass
class Grant:
    """Tokens issued by the fake: what a store profile would hold."""

    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: float
    account_id: str
    email: str
    style: Style
    id_token: str | None = None

    @property
    def expires_ms(self) -> int:
        """`expires` as OpenClaw stores it for OpenAI (ms since epoch)."""
        return int(self.expires_at * 1000)


@dataclass
class Mode:
    """A failure mode for the token endpoints (see MODES). `times`=None: until changed."""

    name: str = "normal"
    delay_ms: int = 0
    times: int | None = None
    fields: tuple[str, ...] = ("refresh_token", "expires_in")
    status: int = 500

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fields": list(self.fields)}


class OAuthError(Exception):
    def __init__(self, status: int, body: dict[str, Any], outcome: str) -> None:
        super().__init__(outcome)
        self.status = status
        self.body = body
        self.outcome = outcome


def _grant_error(description: str) -> OAuthError:
    return OAuthError(
        400, {"error": "invalid_grant", "error_description": description}, "invalid_grant"
    )


def _reuse_error(style: Style) -> OAuthError:
    if style == "openai":
        body = {
            "error": {
                "message": "Your refresh token has already been used to generate a new access "
                "token. Please try signing in again.",
                "type": "invalid_request_error",
                "param": None,
                "code": "refresh_token_reused",
            }
        }
        return OAuthError(401, body, "reused")
    err = _grant_error("Refresh token has already been used")
    err.outcome = "reused"
    return err


def _request_error(error: str, description: str, status: int = 400) -> OAuthError:
    return OAuthError(status, {"error": error, "error_description": description}, error)


class TokenRegistry:
    """All tokens the fake knows; thread-safe. Times are seconds on the fake's clock."""

    def __init__(
        self,
        *,
        access_lifetime: int = 3600,
        openai_client_id: str = OPENAI_CLIENT_ID,
        anthropic_client_id: str = ANTHROPIC_CLIENT_ID,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Condition(threading.RLock())
        self.access_lifetime = access_lifetime
        self.client_ids: dict[Style, str] = {
            "openai": openai_client_id,
            "anthropic": anthropic_client_id,
        }
        self._clock = clock
        self.login_identity = Identity("acct_fake_login", "login@example.com")
        self._reset_state()

    def _reset_state(self) -> None:
        self.offset = 0.0
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        self.access_tokens: dict[str, AccessRecord] = {}
        self.codes: dict[str, AuthCode] = {}
        self.exchanges: list[dict[str, Any]] = []
        self.authorizations: list[dict[str, Any]] = []
        self.calls = 0
        self.arrivals = 0
        self.reused = 0
        self.mode = Mode()

    # ----------------------------------------------------------------- clock, modes, reset

    def now(self) -> float:
        return self._clock() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (access tokens expire without sleeping)."""
        with self._lock:
            self.offset += seconds

    def reset(self) -> None:
        """Forget every token, code, log entry and counter; mode back to normal."""
        with self._lock:
            self._reset_state()

    def set_mode(self, name: str = "normal", **params: Any) -> Mode:
        """Failure mode for the token endpoints: normal|down|slow|hold|malformed|
        missing_fields|reject, or an HTTP status such as "500"/"503".
        Params: delay_ms, times, fields. (hold: wait for FakeTokenServer.release().)"""
        if name not in MODES and not (name.isdigit() and len(name) == 3):
            raise ValueError(f"unknown token-server mode {name!r}")
        if "fields" in params:
            params["fields"] = tuple(params["fields"])
        mode = Mode(name=name, **params)
        if name.isdigit():
            mode.status = int(name)
        with self._lock:
            self.mode = mode
        return mode

    def take_mode(self) -> Mode:
        """The mode for this request; consumes one of `times`."""
        with self._lock:
            mode = self.mode
            if mode.name != "normal" and mode.times is not None:
                mode.times -= 1
                if mode.times <= 0:
                    self.mode = Mode()
            return mode

    # ----------------------------------------------------------------- seeding, minting

    def seed(
        self,
        refresh_token: str | None = None,
        *,
        account_id: str = "acct_fake_0001",
        email: str = "user@example.com",
        plan: str = "plus",
        style: Style = "openai",
        any_endpoint: bool = True,
        access_expires_in: int | None = None,
    ) -> Grant:
        """Register a refresh token (generated if None) plus a fresh access token for it.

        `style` picks the access-token format of the returned grant; `any_endpoint=False` makes
        the refresh token valid only at that style's endpoint. `access_expires_in` <= 0 gives
        an already expired access token."""
        identity = Identity(account_id, email, plan)
        token = refresh_token or new_refresh_token(style)
        family = uuid.uuid4().hex
        with self._lock:
            self.refresh_tokens[token] = RefreshRecord(
                token, identity, None if any_endpoint else style, family
            )
            lifetime = self.access_lifetime if access_expires_in is None else access_expires_in
            return self._grant(identity, style, family, token, lifetime)

    def _grant(
        self, identity: Identity, style: Style, family: str, refresh: str, lifetime: int
    ) -> Grant:
        now = self.now()
        expires_at = now + lifetime
        if style == "openai":
            access = make_jwt(self._access_claims(identity, now, expires_at))
            id_token: str | None = make_jwt(self._id_claims(identity, now, expires_at))
        else:
            access, id_token = "sk-ant-oat01-" + secrets.token_urlsafe(64), None
        self.access_tokens[access] = AccessRecord(access, identity, style, family, expires_at)
        return Grant(
            access,
            refresh,
            lifetime,
            expires_at,
            identity.account_id,
            identity.email,
            style,
            id_token,
        )

    def _access_claims(self, identity: Identity, now: float, exp: float) -> dict[str, Any]:
        return {
            "iss": "https://auth.openai.com",
            "aud": ["https://api.openai.com/v1"],
            "client_id": self.client_ids["openai"],
            "sub": f"user-{identity.account_id}",
            "iat": int(now),
            "exp": int(exp),
            "jti": uuid.uuid4().hex,
            "scp": OPENAI_SCOPE.split(),
            "https://api.openai.com/auth": {
                "chatgpt_account_id": identity.account_id,
                "chatgpt_plan_type": identity.plan,
                "chatgpt_user_id": f"user-{identity.account_id}",
            },
            "https://api.openai.com/profile": {"email": identity.email, "email_verified": True},
        }

    def _id_claims(self, identity: Identity, now: float, exp: float) -> dict[str, Any]:
        return {
            "iss": "https://auth.openai.com",
            "aud": [self.client_ids["openai"]],
            "sub": f"user-{identity.account_id}",
            "email": identity.email,
            "email_verified": True,
            "iat": int(now),
            "exp": int(exp),
            "https://api.openai.com/auth": {
                "chatgpt_account_id": identity.account_id,
                "chatgpt_plan_type": identity.plan,
            },
        }

    # ----------------------------------------------------------------- access checks

    def introspect(self, token: str, now: float | None = None) -> dict[str, Any]:
        """{"active", "reason", "account_id", "email", "style", "exp"} for an access token."""
        with self._lock:
            rec = self.access_tokens.get(token)
            when = self.now() if now is None else now
            if rec is None:
                return {"active": False, "reason": "unknown"}
            reason = "revoked" if rec.revoked else ("expired" if when >= rec.expires_at else "")
            return {
                "active": rec.active(when),
                "reason": reason,
                "account_id": rec.identity.account_id,
                "email": rec.identity.email,
                "style": rec.style,
                "exp": rec.expires_at,
            }

    def is_valid_access(self, token: str, now: float | None = None) -> bool:
        return bool(self.introspect(token, now)["active"])

    def valid_access_tokens(self) -> list[dict[str, Any]]:
        """Currently valid access tokens with their expiry."""
        now = self.now()
        with self._lock:
            return [
                {"token": r.token, "expires_at": r.expires_at, "account_id": r.identity.account_id}
                for r in self.access_tokens.values()
                if r.active(now)
            ]

    def revoke(self, token: str | None = None) -> int:
        """Revoke one access token, or all of them (token=None). Returns how many."""
        with self._lock:
            targets = [self.access_tokens[token]] if token in self.access_tokens else []
            if token is None:
                targets = list(self.access_tokens.values())
            for rec in targets:
                rec.revoked = True
            return len(targets)

    # ----------------------------------------------------------------- grants

    def refresh(
        self, style: Style, client_id: str, refresh_token: str, *, rotate: bool = True
    ) -> Grant:
        """Rotate `refresh_token`; raises OAuthError like the real endpoint would.

        rotate=False: issue an access token but keep the refresh token (no new one)."""
        with self._lock:
            self._check_client(style, client_id)
            rec = self.refresh_tokens.get(refresh_token)
            if rec is None or (rec.style is not None and rec.style != style):
                raise _grant_error("Invalid refresh token")
            if rec.status == "rotated":
                self.reused += 1
                raise _reuse_error(style)
            if rec.status == "revoked":
                raise _grant_error("Refresh token has been revoked")
            if not rotate:
                return self._grant(rec.identity, style, rec.family, rec.token, self.access_lifetime)
            new = new_refresh_token(style)
            rec.status, rec.replaced_by = "rotated", new
            self.refresh_tokens[new] = RefreshRecord(new, rec.identity, rec.style, rec.family)
            return self._grant(rec.identity, style, rec.family, new, self.access_lifetime)

    def reject_refresh(self, refresh_token: str) -> None:
        """Mark a refresh token revoked (server-side logout): later use gets invalid_grant."""
        with self._lock:
            if refresh_token in self.refresh_tokens:
                self.refresh_tokens[refresh_token].status = "revoked"

    def authorize(self, params: dict[str, str]) -> AuthCode:
        """Validate an authorize request and issue a code bound to it (raises OAuthError)."""
        with self._lock:
            self.authorizations.append({"time": self.now(), "params": dict(params)})
            if params.get("client_id") not in self.client_ids.values():
                raise _request_error("invalid_client", "Unknown client_id", 400)
            for key in ("redirect_uri", "code_challenge", "state"):
                if not params.get(key):
                    raise _request_error("invalid_request", f"Missing {key}")
            if params.get("response_type") != "code":
                raise _request_error("unsupported_response_type", "response_type must be code")
            if params.get("code_challenge_method") != "S256":
                raise _request_error("invalid_request", "code_challenge_method must be S256")
            code = AuthCode(
                "ac_" + secrets.token_urlsafe(24),
                params["client_id"],
                params["redirect_uri"],
                params["code_challenge"],
                params["state"],
                params.get("scope", ""),
                self.login_identity,
            )
            self.codes[code.code] = code
            return code

    def exchange_code(self, style: Style, params: dict[str, Any]) -> Grant:
        """authorization_code grant: code single-use, PKCE S256 and redirect_uri checked."""
        with self._lock:
            self._check_client(style, str(params.get("client_id", "")))
            code = self.codes.get(str(params.get("code", "")))
            if code is None or code.used:
                raise _grant_error("Invalid or already used authorization code")
            code.used = True
            if code.client_id != params.get("client_id"):
                raise _grant_error("Code was issued to another client")
            if code.redirect_uri != params.get("redirect_uri"):
                raise _grant_error("redirect_uri does not match the authorize request")
            if s256(str(params.get("code_verifier", ""))) != code.challenge:
                raise _grant_error("PKCE verification failed")
            if style == "anthropic" and params.get("state") not in (None, code.state):
                raise _grant_error("state does not match")
            refresh = new_refresh_token(style)
            family = uuid.uuid4().hex
            self.refresh_tokens[refresh] = RefreshRecord(refresh, code.identity, style, family)
            return self._grant(code.identity, style, family, refresh, self.access_lifetime)

    def _check_client(self, style: Style, client_id: str) -> None:
        if client_id != self.client_ids[style]:
            raise _request_error("invalid_client", "Unknown or wrong client_id", 401)

    # ----------------------------------------------------------------- bookkeeping

    def arrived(self) -> None:
        """Count a token request as soon as it arrives (before any mode delay or hold)."""
        with self._lock:
            self.arrivals += 1
            self._lock.notify_all()

    def wait_arrivals(self, n: int, timeout: float = 5.0) -> bool:
        """Block until `n` token requests have arrived (since reset)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.arrivals >= n, timeout)

    def log_exchange(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.calls += 1
            self.exchanges.append({"n": self.calls, "time": self.now(), **entry})

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (GET /__fake/state)."""
        now = self.now()
        with self._lock:
            return {
                "now": now,
                "calls": self.calls,
                "arrivals": self.arrivals,
                "reused": self.reused,
                "mode": self.mode.to_dict(),
                "access_lifetime": self.access_lifetime,
                "refresh_tokens": [
                    {
                        "token": r.token,
                        "status": r.status,
                        "family": r.family,
                        "replaced_by": r.replaced_by,
                        "style": r.style,
                        **asdict(r.identity),
                    }
                    for r in self.refresh_tokens.values()
                ],
                "access_tokens": [
                    {
                        "token": a.token,
                        "expires_at": a.expires_at,
                        "active": a.active(now),
                        "revoked": a.revoked,
                        "style": a.style,
                        **asdict(a.identity),
                    }
                    for a in self.access_tokens.values()
                ],
                "exchanges": list(self.exchanges),
                "authorizations": list(self.authorizations),
            }


# --------------------------------------------------------------------------- HTTP


def _token_response(grant: Grant, style: Style) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "expires_in": grant.expires_in,
        "token_type": "Bearer",
    }
    if style == "openai":
        body["id_token"] = grant.id_token
        body["scope"] = OPENAI_SCOPE
    else:
        body["scope"] = ANTHROPIC_SCOPE
        body["account"] = {"uuid": grant.account_id, "email_address": grant.email}
        body["organization"] = {"uuid": f"org-{grant.account_id}", "name": "Fake Org"}
    return body


async def _params(request: Request) -> tuple[dict[str, Any], str]:
    """Form or JSON body (either is accepted on both endpoints); and which it was."""
    ctype = request.headers.get("content-type", "")
    raw = await request.body()
    if "json" in ctype:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}, "invalid-json"
        return (data if isinstance(data, dict) else {}), "json"
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs), "form"


def repeated_header(raw: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first header name that occurs twice (case-insensitively), if any, capitalised as
    ``Content-Type`` (uvicorn hands the app lower-cased names)."""
    seen: set[bytes] = set()
    for name, _ in raw:
        key = name.lower()
        if key in seen:
            return "-".join(part.capitalize() for part in key.decode("latin-1").split("-"))
        seen.add(key)
    return None


def duplicate_header_text(name: str) -> str:
    """aiohttp's answer (3.14, ``http_parser``) to a repeated singleton header."""
    return f"Duplicate '{name}' header found."


class StrictHeaders:
    """ASGI wrapper: a request repeating a header name gets 400 before the app sees it.

    aiohttp's server refuses a repeated singleton header (Content-Type, Content-Length, Host,
    ... RFC 9110 §5.3) this way; here any repeated name is refused, Accept included: nothing in
    a token request has a reason to repeat, and a server may refuse what it cannot combine.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = repeated_header(scope["headers"]) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(duplicate_header_text(name), 400)
        await response(scope, receive, send)


class FakeTokenServer:
    """The fake token server: `registry` (state), `app` (ASGI), `url` once started.

    Use as a context manager (`with FakeTokenServer() as ts: ts.url`) or start()/stop().
    ``strict`` (the default) refuses requests that repeat a header (see ``StrictHeaders``).
    """

    def __init__(
        self, registry: TokenRegistry | None = None, *, strict: bool = True, **registry_kwargs: Any
    ) -> None:
        self.registry = registry or TokenRegistry(**registry_kwargs)
        self.gate = Gate()
        self.held = threading.Event()
        app = self._build_app()
        self.app: ASGIApp = StrictHeaders(app) if strict else app
        self._running: RunningServer | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._running is None:
            raise RuntimeError("FakeTokenServer is not started")
        return self._running.url

    @property
    def openai_token_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def anthropic_token_url(self) -> str:
        return f"{self.url}/v1/oauth/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth/authorize"

    def start(self, port: int = 0) -> FakeTokenServer:
        self._running = start_in_thread(self.app, port=port, on_stop=self.gate.release)
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None

    def __enter__(self) -> FakeTokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- shortcuts

    def seed(self, refresh_token: str | None = None, **kwargs: Any) -> Grant:
        return self.registry.seed(refresh_token, **kwargs)

    def set_mode(self, name: str = "normal", **params: Any) -> Mode:
        mode = self.registry.set_mode(name, **params)
        self.gate.arm()
        self.held.clear()
        return mode

    def reset(self) -> None:
        """Registry reset, and the hold gate closed again."""
        self.registry.reset()
        self.gate.arm()
        self.held.clear()

    def release(self) -> None:
        """Let token requests parked by mode "hold" proceed (until reset/set_mode)."""
        self.gate.release()

    @property
    def calls(self) -> int:
        return self.registry.calls

    @property
    def reused(self) -> int:
        return self.registry.reused

    @property
    def exchanges(self) -> list[dict[str, Any]]:
        return list(self.registry.exchanges)

    # ----------------------------------------------------------------- routes

    def _build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self._openai_token, methods=["POST"]),
                Route("/v1/oauth/token", self._anthropic_token, methods=["POST"]),
                Route("/oauth/authorize", self._authorize, methods=["GET"]),
                Route("/__fake/state", self._state, methods=["GET"]),
                Route("/__fake/reset", self._reset, methods=["POST"]),
                Route("/__fake/seed", self._seed, methods=["POST"]),
                Route("/__fake/mode", self._mode, methods=["POST"]),
                Route("/__fake/release", self._release, methods=["POST"]),
                Route("/__fake/advance", self._advance, methods=["POST"]),
                Route("/__fake/revoke", self._revoke, methods=["POST"]),
                Route("/__fake/config", self._config, methods=["POST"]),
                Route("/__fake/introspect", self._introspect, methods=["GET"]),
            ]
        )

    async def _openai_token(self, request: Request) -> Response:
        return await self._token(request, "openai")

    async def _anthropic_token(self, request: Request) -> Response:
        return await self._token(request, "anthropic")

    async def _token(self, request: Request, style: Style) -> Response:
        params, body_format = await _params(request)
        entry: dict[str, Any] = {
            "endpoint": style,
            "path": request.url.path,
            "content_type": request.headers.get("content-type", ""),
            "body_format": body_format,
            "grant_type": params.get("grant_type"),
            "client_id": params.get("client_id"),
            "refresh_token": params.get("refresh_token"),
            "params": params,
        }
        self.registry.arrived()
        mode = self.registry.take_mode()
        if mode.delay_ms:
            await anyio.sleep(mode.delay_ms / 1000)
        if mode.name == "hold":
            self.held.set()
            await self.gate.wait()
        early = await self._early_failure(request, mode)
        if early is not None:
            self.registry.log_exchange(
                {**entry, "status": early.status_code, "outcome": f"mode:{mode.name}"}
            )
            return early
        rotate = not (mode.name == "missing_fields" and "refresh_token" in mode.fields)
        try:
            grant = self._grant_for(style, params, rotate=rotate)
        except OAuthError as err:
            self.registry.log_exchange({**entry, "status": err.status, "outcome": err.outcome})
            return JSONResponse(err.body, err.status)
        body = _token_response(grant, style)
        if mode.name == "missing_fields":
            body = {k: v for k, v in body.items() if k not in mode.fields}
        response = JSONResponse(body)
        outcome = "mode:missing_fields" if mode.name == "missing_fields" else "ok"
        self.registry.log_exchange(
            {
                **entry,
                "status": response.status_code,
                "outcome": outcome,
                "issued_refresh": grant.refresh_token,
                "issued_access": grant.access_token,
            }
        )
        return response

    async def _early_failure(self, request: Request, mode: Mode) -> Response | None:
        """Modes that fail before any token work (no state change)."""
        if mode.name == "down":
            await abort_connection(request.scope)
            return Response(status_code=503)
        if mode.name.isdigit():
            body = {"error": "server_error", "error_description": f"fake status {mode.status}"}
            return JSONResponse(body, mode.status)
        if mode.name == "reject":
            return JSONResponse(_grant_error("Rejected by fake mode").body, 400)
        if mode.name == "malformed":
            html = b"<html><body>upstream connect error</body></html>"
            return Response(html, 200, media_type="text/html")
        return None

    def _grant_for(self, style: Style, params: dict[str, Any], *, rotate: bool) -> Grant:
        grant_type = params.get("grant_type")
        if grant_type == "refresh_token":
            if not params.get("refresh_token"):
                raise _request_error("invalid_request", "Missing refresh_token")
            return self.registry.refresh(
                style, str(params.get("client_id", "")), str(params["refresh_token"]), rotate=rotate
            )
        if grant_type == "authorization_code":
            return self.registry.exchange_code(style, params)
        raise _request_error("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            code = self.registry.authorize(params)
        except OAuthError as err:
            return JSONResponse(err.body, err.status)
        return RedirectResponse(
            _with_query(code.redirect_uri, code=code.code, state=code.state), 302
        )

    async def _state(self, request: Request) -> Response:
        return JSONResponse(self.registry.snapshot())

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _release(self, request: Request) -> Response:
        self.release()
        return JSONResponse({"ok": True})

    async def _seed(self, request: Request) -> Response:
        data = await _json_body(request)
        try:
            grant = self.registry.seed(data.pop("refresh_token", None), **data)
        except TypeError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({**asdict(grant), "expires_ms": grant.expires_ms})

    async def _mode(self, request: Request) -> Response:
        data = await _json_body(request)
        try:
            mode = self.set_mode(str(data.pop("mode", "normal")), **data)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(mode.to_dict())

    async def _advance(self, request: Request) -> Response:
        data = await _json_body(request)
        self.registry.advance(float(data.get("seconds", 0)))
        return JSONResponse({"now": self.registry.now()})

    async def _revoke(self, request: Request) -> Response:
        data = await _json_body(request)
        return JSONResponse({"revoked": self.registry.revoke(data.get("token"))})

    async def _config(self, request: Request) -> Response:
        data = await _json_body(request)
        reg = self.registry
        if "access_lifetime" in data:
            reg.access_lifetime = int(data["access_lifetime"])
        if "login_account_id" in data or "login_email" in data:
            old = reg.login_identity
            reg.login_identity = Identity(
                data.get("login_account_id", old.account_id), data.get("login_email", old.email)
            )
        return JSONResponse(
            {"access_lifetime": reg.access_lifetime, "login_identity": asdict(reg.login_identity)}
        )

    async def _introspect(self, request: Request) -> Response:
        return JSONResponse(self.registry.introspect(request.query_params.get("token", "")))


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# --------------------------------------------------------------------------- helpers for tests


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = b64url(secrets.token_bytes(32))
    return verifier, s256(verifier)


def iter_seeds(values: list[str]) -> Iterator[tuple[str, str, str]]:
    """Parse --seed RT[:ACCOUNT[:EMAIL]] values."""
    for value in values:
        token, account, email = ([*value.split(":", 2), "", ""])[:3]
        yield token, account or "acct_fake_0001", email or "user@example.com"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fake OAuth token server (loopback only)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--access-lifetime", type=int, default=3600)
    ap.add_argument("--seed", action="append", default=[], help="RT[:ACCOUNT[:EMAIL]]")
    ap.add_argument("--lenient", action="store_true", help="accept repeated headers")
    args = ap.parse_args(argv)
    fake = FakeTokenServer(access_lifetime=args.access_lifetime, strict=not args.lenient)
    for token, account, email in iter_seeds(args.seed):
        fake.seed(token, account_id=account, email=email)
    return run_main(
        fake.app, host=args.host, port=args.port, port_file=args.port_file, name="token_server"
    )


if __name__ == "__main__":
    raise SystemExit(main())
