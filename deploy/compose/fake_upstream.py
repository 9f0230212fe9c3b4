"""A fake OpenAI-style upstream and OAuth token endpoint, for trying compose.yaml without real
credentials (deploy/compose/compose.test.yaml runs it; tests/deploy uses it).

- ``POST .../chat/completions``: 401 unless ``Authorization: Bearer <key>`` is one of
  $FAKE_UPSTREAM_KEYS (comma-separated; unset = any key, or an access token it issued); else a
  chat completion whose text names the key's last 4 characters.
- ``POST .../responses`` (Codex style): 401 unless the bearer is an access token it issued.
- ``POST /oauth/token``: ``grant_type=refresh_token`` rotates a refresh token it knows (seeded
  from $FAKE_REFRESH_TOKENS, comma-separated), once: a reused one gets 400 invalid_grant.
- ``GET /_fake/requests``: every request recorded (method, path, credential headers).

Runs with the sidecar image's own starlette + uvicorn: ``python3 fake_upstream.py`` (port
$FAKE_UPSTREAM_PORT, default 8080, on 0.0.0.0 inside its container).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import urllib.parse
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEYS = {k for k in os.environ.get("FAKE_UPSTREAM_KEYS", "").split(",") if k}
lock = threading.Lock()
recorded: list[dict[str, Any]] = []
refresh_tokens = {t for t in os.environ.get("FAKE_REFRESH_TOKENS", "").split(",") if t}
access_tokens: set[str] = set()
token_calls: list[dict[str, Any]] = []


def record(request: Request, **extra: Any) -> None:
    headers = request.headers
    with lock:
        recorded.append(
            {
                "time": time.time(),
                "method": request.method,
                "path": request.url.path,
                "authorization": headers.get("authorization"),
                "x_api_key": headers.get("x-api-key"),
                "x_openclaw_token": headers.get("x-openclaw-token"),
                **extra,
            }
        )


def openai_error(status: int, message: str, code: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status)


async def chat_completions(request: Request) -> JSONResponse:
    body = await request.json()
    messages = body.get("messages") or [{}]
    record(request, model=body.get("model"), prompt=messages[-1].get("content"))
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    known = key in KEYS or key in access_tokens or (not KEYS and key)
    if scheme.lower() != "bearer" or not known:
        return openai_error(401, "Incorrect API key provided.", "invalid_api_key")
    text = f"Hello from the fake upstream (key ...{key[-4:]})."
    return JSONResponse(
        {
            "id": f"chatcmpl-{secrets.token_hex(8)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 8, "total_tokens": 9},
        }
    )


async def responses(request: Request) -> JSONResponse:
    """A Codex-style ``/responses`` call: only an access token this server issued is good."""
    record(request)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or key not in access_tokens:
        return openai_error(401, "Invalid or expired access token.", "invalid_token")
    return JSONResponse(
        {
            "id": f"resp_{secrets.token_hex(8)}",
            "object": "response",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": f"token ...{key[-4:]}"}],
                }
            ],
        }
    )


async def token(request: Request) -> JSONResponse:
    # Parsed by hand: starlette's request.form() needs python-multipart, which the image lacks.
    form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
    old = str(form.get("refresh_token", ""))
    with lock:
        token_calls.append({"time": time.time(), "grant_type": form.get("grant_type")})
        if form.get("grant_type") != "refresh_token" or old not in refresh_tokens:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        refresh_tokens.discard(old)  # single use, like the real ones
        new_refresh, new_access = f"rt-{secrets.token_hex(12)}", f"at-{secrets.token_hex(12)}"
        refresh_tokens.add(new_refresh)
        access_tokens.add(new_access)
    return JSONResponse(
        {
            "access_token": new_access,
            "refresh_token": new_refresh,
            "token_type": "Bearer",
            "expires_in": int(os.environ.get("FAKE_EXPIRES_IN", "3600")),
        }
    )


async def requests_seen(_: Request) -> JSONResponse:
    with lock:
        return JSONResponse({"requests": recorded, "token_calls": token_calls})


async def anything(request: Request) -> JSONResponse:
    record(request)
    return openai_error(404, f"no such fake endpoint: {request.url.path}", "not_found")


app = Starlette(
    routes=[
        Route("/_fake/requests", requests_seen, methods=["GET"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/{prefix:path}/chat/completions", chat_completions, methods=["POST"]),
        Route("/{prefix:path}/responses", responses, methods=["POST"]),
        Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
)

if __name__ == "__main__":
    port = int(os.environ.get("FAKE_UPSTREAM_PORT", "8080"))
    uvicorn.run(app, host="0.0.0.0", port=port, log_level="warning")
