"""Fake token endpoints for the OAuth flavours beyond OpenAI and Anthropic, on one loopback
server: xAI (OIDC discovery and a refresh grant), Chutes' IdP, Google's token endpoint and
GitHub's Copilot endpoints. Each behaves like the real one where the sidecar depends on it:

- **xAI** (``/xai``): discovery names the token endpoint; the grant checks the client id and
  rotates the refresh token (single use, reuse refused with ``invalid_grant``); the answer has
  an id token with the identity; ``mode("challenge")`` answers Cloudflare's HTML challenge.
- **Chutes** (``/idp/token``): client id (and secret, when the fake has one) checked; rotates.
- **Google** (``/google/token``): client id and secret checked; never rotates (Google's answer to
  a refresh has no ``refresh_token``); ``invalid_grant`` "Token has been expired or revoked.".
- **GitHub** (``/github``): ``GET /copilot_internal/v2/token`` exchanges a GitHub token for a
  Copilot token (``proxy-ep`` inside, ``expires_at`` in epoch seconds), ``GET
  /copilot_internal/user`` answers the account and its ``endpoints``; an unknown token gets
  GitHub's ``401 {"message": "Bad credentials"}``.

Issued access tokens go into a shared ``TokenRegistry``, so the fake upstream accepts exactly
the valid ones. ``mode("omit", fields=[...])`` drops optional fields from the next answers,
``mode("reject")`` refuses every grant, ``mode("hold")`` parks requests until ``release()``.
Strict: a repeated header gets aiohttp's 400 (``StrictHeaders``).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import Gate, RunningServer, start_in_thread
from tests.fakes.token_server import AccessRecord, Identity, StrictHeaders, TokenRegistry, make_jwt

XAI_CLIENT_ID = "b1a00492-073a-47ea-816f-4c329264a828"
CHUTES_CLIENT_ID = "cid_fake_chutes_app"
GOOGLE_CLIENT_ID = "123456789-fake.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-fake-secret"
XAI_TOKEN_PATH = "/xai/oauth2/token"
FLAVOURS = ("xai", "chutes", "google", "copilot")
CLOUDFLARE_HTML = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"


@dataclass
class Refresh:
    token: str
    flavour: str
    identity: Identity
    status: str = "active"  # active | rotated | revoked


@dataclass
class Mode:
    name: str = "normal"  # normal | omit | reject | challenge | hold | <http status>
    fields: tuple[str, ...] = ()
    times: int | None = None


@dataclass
class Seeded:
    """What a store profile holds for a seeded login."""

    access: str
    refresh: str
    expires_ms: int
    identity: Identity
    extra: dict[str, Any] = field(default_factory=dict)


class FlavourServer:
    """The fake; ``url`` once started; ``calls`` logs every request (flavour, method, path,
    headers, params, status, outcome)."""

    def __init__(self, registry: TokenRegistry, *, chutes_secret: str | None = None) -> None:
        self.registry = registry
        self.chutes_secret = chutes_secret
        self.lifetime = 3600
        self._lock = threading.Lock()
        self.refresh_tokens: dict[str, Refresh] = {}
        self.github_tokens: dict[str, Identity] = {}
        self.calls: list[dict[str, Any]] = []
        self.mode = Mode()
        self.gate = Gate()
        self.held = threading.Event()
        self.user_api: str | None = None  # endpoints.api the user endpoint names
        self.proxy_ep = "proxy.individual.githubcopilot.com"
        self.app = StrictHeaders(self._build())
        self._running: RunningServer | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        assert self._running is not None, "not started"
        return self._running.url

    def __enter__(self) -> FlavourServer:
        self._running = start_in_thread(self.app, on_stop=self.gate.release)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._running is not None:
            self._running.stop()

    def set_mode(
        self, name: str, *, fields: tuple[str, ...] = (), times: int | None = None
    ) -> None:
        with self._lock:
            self.mode = Mode(name, tuple(fields), times)
        self.gate.arm()
        self.held.clear()

    def release(self) -> None:
        self.gate.release()

    def calls_of(self, flavour: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["flavour"] == flavour]

    # ----------------------------------------------------------------- seeding

    def seed(
        self, flavour: str, *, expires_in: int = 3600, email: str = "ada@example.com"
    ) -> Seeded:
        """A login of ``flavour`` as OpenClaw stores it (``expires_in`` <= 0: already expired)."""
        identity = Identity(f"user-{uuid.uuid4().hex[:8]}", email)
        if flavour == "copilot":
            github = "gho_" + secrets.token_urlsafe(30)
            with self._lock:
                self.github_tokens[github] = identity
            access, expires_ms = self._copilot_token(identity, expires_in)
            return Seeded(access, github, expires_ms, identity)
        refresh = self._new_refresh(flavour, identity)
        access, expires_ms = self._issue(flavour, identity, expires_in)
        extra = {"clientId": CHUTES_CLIENT_ID} if flavour == "chutes" else {}
        return Seeded(access, refresh, expires_ms, identity, extra)

    def seed_github_token(self, email: str = "ada@example.com") -> str:
        token = "gho_" + secrets.token_urlsafe(30)
        with self._lock:
            self.github_tokens[token] = Identity(f"user-{uuid.uuid4().hex[:8]}", email)
        return token

    def _new_refresh(self, flavour: str, identity: Identity) -> str:
        prefix = {"xai": "xai-rt-", "chutes": "crt_", "google": "1//0g"}[flavour]
        token = prefix + secrets.token_urlsafe(40)
        with self._lock:
            self.refresh_tokens[token] = Refresh(token, flavour, identity)
        return token

    def _issue(self, flavour: str, identity: Identity, lifetime: int) -> tuple[str, int]:
        now = self.registry.now()
        if flavour == "xai":
            exp = int(now + lifetime)
            access = make_jwt(
                {
                    "iss": "https://auth.x.ai",
                    "sub": identity.account_id,
                    "exp": exp,
                    "email": identity.email,
                }
            )
        elif flavour == "google":
            access = "ya29." + secrets.token_urlsafe(60)
        else:
            access = "cpk_" + secrets.token_urlsafe(40)
        self._register(access, identity, flavour, now + lifetime)
        return access, int((now + lifetime) * 1000)

    def _copilot_token(self, identity: Identity, lifetime: int) -> tuple[str, int]:
        now = self.registry.now()
        expires_at = int(now + lifetime)
        fields = f"tid={uuid.uuid4().hex};exp={expires_at};sku=free;proxy-ep={self.proxy_ep};8kp=1"
        token = f"{fields}:{secrets.token_hex(32)}"
        self._register(token, identity, "copilot", float(expires_at))
        return token, expires_at * 1000 - 300_000

    def _register(self, access: str, identity: Identity, flavour: str, expires_at: float) -> None:
        record = AccessRecord(access, identity, flavour, flavour, expires_at)  # type: ignore[arg-type]
        with self.registry._lock:
            self.registry.access_tokens[access] = record

    # ----------------------------------------------------------------- HTTP

    def _build(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/xai/.well-known/openid-configuration", self._xai_discovery),
                Route(XAI_TOKEN_PATH, self._xai_token, methods=["POST"]),
                Route("/idp/token", self._chutes_token, methods=["POST"]),
                Route("/google/token", self._google_token, methods=["POST"]),
                Route("/github/copilot_internal/v2/token", self._copilot_exchange),
                Route("/github/copilot_internal/user", self._copilot_user),
            ]
        )

    async def _enter(self, request: Request, flavour: str) -> tuple[dict[str, Any], Mode]:
        """Log the call, apply hold; the params and the mode for this request."""
        raw = await request.body()
        params = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            mode = self.mode
            if mode.name != "normal" and mode.times is not None:
                mode.times -= 1
                if mode.times <= 0:
                    self.mode = Mode()
        entry = {
            "flavour": flavour,
            "method": request.method,
            "path": request.url.path,
            "headers": dict(request.headers),
            "params": params,
        }
        with self._lock:
            self.calls.append(entry)
        self.registry.arrived()
        if mode.name == "hold":
            self.held.set()
            await self.gate.wait()
        return params, mode

    def _done(self, response: Response, outcome: str) -> Response:
        with self._lock:
            self.calls[-1].update(status=response.status_code, outcome=outcome)
        return response

    async def _xai_discovery(self, request: Request) -> Response:
        await self._enter(request, "xai-discovery")
        base = f"{request.url.scheme}://{request.url.netloc}/xai"
        return self._done(
            JSONResponse(
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/oauth2/auth",
                    "token_endpoint": f"{base}/oauth2/token",
                    "device_authorization_endpoint": f"{base}/oauth2/device/code",
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                }
            ),
            "ok",
        )

    async def _xai_token(self, request: Request) -> Response:
        params, mode = await self._enter(request, "xai")
        if mode.name == "challenge":
            return self._done(Response(CLOUDFLARE_HTML, 403, media_type="text/html"), "challenge")
        failure = self._grant_failure(params, mode, "xai", XAI_CLIENT_ID)
        if failure is not None:
            return failure
        identity = self._rotate(params["refresh_token"], rotate=True)
        access, _ = self._issue("xai", identity, self.lifetime)
        id_token = make_jwt({"sub": identity.account_id, "email": identity.email, "name": "Ada L"})
        body = {
            "access_token": access,
            "refresh_token": self._new_refresh("xai", identity),
            "id_token": id_token,
            "expires_in": self.lifetime,
            "token_type": "Bearer",
            "scope": "openid profile email offline_access grok-cli:access api:access",
        }
        return self._answer(body, mode, access)

    async def _chutes_token(self, request: Request) -> Response:
        params, mode = await self._enter(request, "chutes")
        failure = self._grant_failure(params, mode, "chutes", CHUTES_CLIENT_ID)
        secret = params.get("client_secret")
        if failure is None and self.chutes_secret is not None and secret != self.chutes_secret:
            failure = self._error(401, "invalid_client", "Client authentication failed")
        if failure is not None:
            return failure
        identity = self._rotate(params["refresh_token"], rotate=True)
        access, _ = self._issue("chutes", identity, self.lifetime)
        body = {
            "access_token": access,
            "refresh_token": self._new_refresh("chutes", identity),
            "expires_in": self.lifetime,
            "token_type": "Bearer",
        }
        return self._answer(body, mode, access)

    async def _google_token(self, request: Request) -> Response:
        params, mode = await self._enter(request, "google")
        failure = self._grant_failure(params, mode, "google", GOOGLE_CLIENT_ID)
        if failure is None and params.get("client_secret") != GOOGLE_CLIENT_SECRET:
            failure = self._error(401, "invalid_client", "Unauthorized")
        if failure is not None:
            return failure
        identity = self._rotate(params["refresh_token"], rotate=False)
        access, _ = self._issue("google", identity, self.lifetime)
        body = {
            "access_token": access,
            "expires_in": self.lifetime - 1,
            "scope": "https://www.googleapis.com/auth/cloud-platform openid",
            "token_type": "Bearer",
        }
        return self._answer(body, mode, access)

    async def _copilot_exchange(self, request: Request) -> Response:
        _, mode = await self._enter(request, "copilot")
        identity = self._github_identity(request)
        if identity is None or mode.name == "reject":
            return self._bad_credentials()
        if mode.name.isdigit():
            return self._done(JSONResponse({"message": "Server Error"}, int(mode.name)), "mode")
        token, expires_ms = self._copilot_token(identity, self.lifetime)
        body = {
            "token": token,
            "expires_at": (expires_ms + 300_000) // 1000,
            "refresh_in": self.lifetime - 300,
            "endpoints": {"api": "https://api.individual.githubcopilot.com"},
        }
        return self._answer(body, mode, token)

    async def _copilot_user(self, request: Request) -> Response:
        _, mode = await self._enter(request, "copilot-user")
        identity = self._github_identity(request)
        if identity is None or mode.name == "reject":
            return self._bad_credentials()
        body: dict[str, Any] = {"login": "ada", "copilot_plan": "individual"}
        if self.user_api is not None:
            body["endpoints"] = {"api": self.user_api}
        return self._done(JSONResponse(body), "ok")

    # ----------------------------------------------------------------- grant logic

    def _grant_failure(
        self, params: Mapping[str, str], mode: Mode, flavour: str, client_id: str
    ) -> Response | None:
        if mode.name.isdigit():
            return self._error(int(mode.name), "server_error", "fake outage")
        if params.get("grant_type") != "refresh_token":
            return self._error(400, "unsupported_grant_type", "refresh_token only")
        if params.get("client_id") != client_id:
            return self._error(401, "invalid_client", "Unknown client")
        record = self.refresh_tokens.get(params.get("refresh_token", ""))
        if mode.name == "reject" or record is None or record.flavour != flavour:
            return self._error(400, "invalid_grant", "Token has been expired or revoked.")
        if record.status != "active":
            return self._error(400, "invalid_grant", "Refresh token already used")
        return None

    def _rotate(self, token: str, *, rotate: bool) -> Identity:
        with self._lock:
            record = self.refresh_tokens[token]
            if rotate:
                record.status = "rotated"
            return record.identity

    def _answer(self, body: dict[str, Any], mode: Mode, access: str) -> Response:
        if mode.name == "omit":
            body = {k: v for k, v in body.items() if k not in mode.fields}
        response = self._done(JSONResponse(body), "ok")
        with self._lock:
            self.calls[-1].update(issued_access=access, issued_refresh=body.get("refresh_token"))
        return response

    def _error(self, status: int, error: str, description: str) -> Response:
        body = {"error": error, "error_description": description}
        return self._done(JSONResponse(body, status), error)

    def _github_identity(self, request: Request) -> Identity | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self.github_tokens.get(token)

    def _bad_credentials(self) -> Response:
        body = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        return self._done(JSONResponse(body, 401), "bad_credentials")
