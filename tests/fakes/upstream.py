"""A fake model API (OpenAI, Codex backend, Anthropic) on 127.0.0.1, for end-to-end tests.

Answers in shapes the official openai / anthropic SDKs parse, checks credentials (static keys
and/or OAuth access tokens validated by the fake token server), records every request, and has
streaming controls (hold after N events until released, reset mid-stream, hang, slow first
byte, error statuses), per-key limits (a key rate-limited, overloaded or out of credit, answered
in the provider's own error shape with any reset headers) plus disconnect detection.

Endpoints are matched on the path's *suffix*, so any prefix works (``/v1/chat/completions``,
``/api/v1/chat/completions``, ``/backend-api/codex/responses`` ...). Per request, the header
``X-Fake-Usage`` (a JSON object) is the usage reported instead of the estimate, and
``X-Fake-Reply-Headers`` (a JSON object) adds headers to the answer (rate-limit windows).

Run as a process: ``python -m tests.fakes.upstream --port 0 --port-file F
[--token-server URL] [--expect PREFIX=KEY[,KEY...]] [--expect-oauth PREFIX] [--events N]
[--interval-ms MS] [--text T]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import Gate, RunningServer, abort_connection, run_main, start_in_thread
from tests.fakes.token_server import FakeTokenServer, TokenRegistry

DEFAULT_TEXT = "Hello from the fake upstream."
MODES = ("normal", "hold", "reset", "hang", "slow", "error", "rate_limit")
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


# --------------------------------------------------------------------------- recording


@dataclass
class RecordedRequest:
    """One request as the upstream saw it. Header names are lower-cased."""

    n: int
    time: float
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes
    body_chunks: int
    endpoint: str = ""
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "raw_headers": [list(h) for h in self.raw_headers],
            "body": self.body.decode("utf-8", "replace"),
            "body_b64": base64.b64encode(self.body).decode("ascii"),
            "body_bytes": len(self.body),
            "body_chunks": self.body_chunks,
            "endpoint": self.endpoint,
            "status": self.status,
        }


class Recorder:
    """Thread-safe list of RecordedRequest; `wait_for(n)` blocks until n have arrived."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[RecordedRequest] = []
        self._counter = itertools.count(1)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._items)

    @property
    def last(self) -> RecordedRequest:
        with self._cond:
            return self._items[-1]

    def next_number(self) -> int:
        return next(self._counter)

    def add(self, item: RecordedRequest) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._items) >= count, timeout)

    def for_path(self, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(suffix)]


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Expect:
    """Accepted credentials under a path prefix: static keys and/or valid OAuth access tokens.

    A key matches ``Authorization: Bearer K``, ``x-api-key: K`` or ``api-key: K``. With
    `account_header`, an OAuth token also needs ``chatgpt-account-id`` = the token's account.
    """

    keys: frozenset[str] = frozenset()
    oauth: bool = False
    account_header: bool = False


class TokenChecker(Protocol):
    async def introspect(self, token: str) -> dict[str, Any]: ...


class RegistryChecker:
    """Validates access tokens against an in-process TokenRegistry."""

    def __init__(self, registry: TokenRegistry) -> None:
        self.registry = registry

    async def introspect(self, token: str) -> dict[str, Any]:
        return self.registry.introspect(token)


class HttpTokenChecker:
    """Validates access tokens by asking a token server's ``GET /__fake/introspect``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def introspect(self, token: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(
                f"{self.base_url}/__fake/introspect", params={"token": token}
            )
        data: dict[str, Any] = response.json()
        return data


def make_checker(tokens: object) -> TokenChecker | None:
    """TokenRegistry | FakeTokenServer | URL str | TokenChecker | None -> TokenChecker."""
    if tokens is None:
        return None
    if isinstance(tokens, FakeTokenServer):
        return RegistryChecker(tokens.registry)
    if isinstance(tokens, TokenRegistry):
        return RegistryChecker(tokens)
    if isinstance(tokens, str):
        return HttpTokenChecker(tokens)
    if hasattr(tokens, "introspect"):
        return cast(TokenChecker, tokens)
    raise TypeError(f"cannot check tokens with {tokens!r}")


def _presented(headers: Mapping[str, str]) -> tuple[list[str], str | None]:
    """(every credential value presented, the bearer token if any)."""
    values: list[str] = []
    bearer = None
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        bearer = auth[7:].strip()
        values.append(bearer)
    values += [headers[h] for h in ("x-api-key", "api-key") if headers.get(h)]
    return values, bearer


# --------------------------------------------------------------------------- modes, replies


@dataclass
class Mode:
    """Upstream behaviour for model requests (see MODES); `times`=None: until changed.

    hold: send `after` SSE events, then wait for release(). reset: drop the connection after
    `after` events (0 = before any response). hang: never answer. slow: wait `delay_ms` before
    the first byte. error: answer `status`. rate_limit: 429 with Retry-After `retry_after`.
    `path`: apply only to requests whose path contains it.
    """

    name: str = "normal"
    after: int = 1
    delay_ms: int = 0
    status: int = 500
    retry_after: str | None = "1"
    times: int | None = None
    path: str | None = None

    def applies(self, path: str) -> bool:
        return self.name != "normal" and (self.path is None or self.path in path)


@dataclass
class Reply:
    status: int
    chunks: list[bytes]
    sse: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _rid() -> str:
    return "req_fake_" + uuid.uuid4().hex[:16]


def _json_reply(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Reply(status, [body], headers={"content-type": "application/json", **(headers or {})})


def sse(data: Mapping[str, Any] | str, event: str | None = None) -> bytes:
    """One SSE event (``event:`` line optional)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _estimate_tokens(obj: object) -> int:
    return max(1, len(json.dumps(obj, default=str)) // 4)


def is_anthropic(path: str, headers: Mapping[str, str]) -> bool:
    return "/messages" in path or "anthropic-version" in headers


ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
OPENAI_ERROR_TYPES = {429: "requests"}


def error_reply(
    path: str, headers: Mapping[str, str], status: int, message: str, code: str | None = None
) -> Reply:
    """An error in the provider's own shape (Anthropic on /messages or anthropic-version)."""
    if is_anthropic(path, headers):
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        default = "server_error" if status >= 500 else "invalid_request_error"
        kind = OPENAI_ERROR_TYPES.get(status, default)
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json_reply(body, status)


# --------------------------------------------------------------------------- per-key limits


@dataclass
class Limit:
    """A key the upstream refuses, as the provider would: ``kind`` is rate_limit, overloaded,
    billing or usage_limit (Codex's subscription window); ``status`` overrides the kind's usual
    one; ``headers`` are added (reset headers); ``times``=None: until lifted."""

    kind: str = "rate_limit"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None
    resets_in_s: int = 3600  # Codex's usage_limit_reached body


# (anthropic, codex, openai) bodies per kind: (status, error type, message)
_ANTHROPIC_LIMITS = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed your account's rate limit. Please try again later.",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "billing": (
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
        "Billing to upgrade or purchase credits.",
    ),
}
_OPENAI_LIMITS = {
    "rate_limit": (
        429,
        "requests",
        "Rate limit reached for gpt-fake in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1.",
        "rate_limit_exceeded",
    ),
    "overloaded": (
        503,
        "server_error",
        "The engine is currently overloaded, please try again later.",
        None,
    ),
    "billing": (
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
    ),
}


def limit_reply(path: str, headers: Mapping[str, str], limit: Limit) -> Reply:
    """The refusal ``limit`` stands for, in the shape of the provider ``path`` belongs to."""
    if limit.kind == "usage_limit" or ("/codex/" in path and limit.kind == "rate_limit"):
        body: dict[str, Any] = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_at": int(time.time()) + limit.resets_in_s,
                "resets_in_seconds": limit.resets_in_s,
            }
        }
        reply = _json_reply(body, limit.status or 429)
    elif is_anthropic(path, headers):
        status, kind, message = _ANTHROPIC_LIMITS[limit.kind]
        body = {"type": "error", "error": {"type": kind, "message": message}}
        reply = _json_reply(body, limit.status or status)
    else:
        status, kind, message, code = _OPENAI_LIMITS[limit.kind]
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        reply = _json_reply(body, limit.status or status)
    reply.headers.update(limit.headers)
    return reply


# --------------------------------------------------------------------------- answer builders


@dataclass
class Ctx:
    """What an endpoint builder needs for one request."""

    body: dict[str, Any]
    deltas: list[str]
    rid: str
    usage: dict[str, Any] | None = None  # X-Fake-Usage: the usage to report instead of estimates

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "fake-model")

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


def _sse_reply(events: list[bytes], rid: str) -> Reply:
    headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
    return Reply(200, events, sse=True, headers={**headers, "x-request-id": rid})


def chat_completions(ctx: Ctx) -> Reply:
    created, cid = int(time.time()), "chatcmpl-" + uuid.uuid4().hex[:24]
    ptok, ctok = _estimate_tokens(ctx.body.get("messages")), len(ctx.deltas)
    usage = ctx.usage or {
        "prompt_tokens": ptok,
        "completion_tokens": ctok,
        "total_tokens": ptok + ctok,
    }
    base: dict[str, Any] = {
        "id": cid,
        "created": created,
        "model": ctx.model,
        "system_fingerprint": "fp_fake",
    }
    if not ctx.stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": ctx.text,
            "refusal": None,
            "annotations": [],
        }
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return _json_reply(
            {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "object": "chat.completion.chunk", "choices": [choice]})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": d}) for d in ctx.deltas]
    events.append(chunk({}, "stop"))
    if (ctx.body.get("stream_options") or {}).get("include_usage"):
        events.append(
            sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
    events.append(sse("[DONE]"))
    return _sse_reply(events, ctx.rid)


def _response_object(ctx: Ctx, resp_id: str, status: str, output: list[Any]) -> dict[str, Any]:
    itok, otok = _estimate_tokens(ctx.body.get("input")), len(ctx.deltas)
    usage = ctx.usage or {
        "input_tokens": itok,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": otok,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": itok + otok,
    }
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": ctx.body.get("instructions"),
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage if status == "completed" else None,
        "metadata": {},
    }


def responses(ctx: Ctx) -> Reply:
    """OpenAI Responses API (also the Codex backend's /codex/responses)."""
    resp_id, msg_id = "resp_" + uuid.uuid4().hex[:24], "msg_" + uuid.uuid4().hex[:24]
    part = {"type": "output_text", "text": ctx.text, "annotations": [], "logprobs": []}
    item = {
        "id": msg_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    if not ctx.stream:
        return _json_reply(_response_object(ctx, resp_id, "completed", [item]))
    seq = itertools.count()

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    at = {"item_id": msg_id, "output_index": 0, "content_index": 0}
    started = _response_object(ctx, resp_id, "in_progress", [])
    events = [
        ev("response.created", response=started),
        ev("response.in_progress", response=started),
        ev(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        ),
        ev("response.content_part.added", **at, part={**part, "text": ""}),
    ]
    events += [ev("response.output_text.delta", **at, delta=d, logprobs=[]) for d in ctx.deltas]
    events += [
        ev("response.output_text.done", **at, text=ctx.text, logprobs=[]),
        ev("response.content_part.done", **at, part=part),
        ev("response.output_item.done", output_index=0, item=item),
        ev("response.completed", response=_response_object(ctx, resp_id, "completed", [item])),
    ]
    return _sse_reply(events, ctx.rid)


def codex_responses(ctx: Ctx) -> Reply:
    """The ChatGPT Codex backend: SSE only, like the real one."""
    if not ctx.stream:
        return _json_reply({"detail": "Stream must be set to true"}, 400)
    return responses(ctx)


def messages(ctx: Ctx) -> Reply:
    """Anthropic Messages API."""
    mid, model = "msg_" + uuid.uuid4().hex[:24], str(ctx.body.get("model") or "claude-fake")
    itok = _estimate_tokens([ctx.body.get("system"), ctx.body.get("messages")])
    usage = ctx.usage or {
        "input_tokens": itok,
        "output_tokens": len(ctx.deltas),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    head = {"id": mid, "type": "message", "role": "assistant", "model": model}
    if not ctx.stream:
        content = [{"type": "text", "text": ctx.text}]
        done = {"stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
        return _json_reply({**head, "content": content, **done}, headers={"request-id": ctx.rid})

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    start: dict[str, Any] = {
        **head,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events = [
        ev("message_start", message=start),
        ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ev("ping"),
    ]
    events += [
        ev("content_block_delta", index=0, delta={"type": "text_delta", "text": d})
        for d in ctx.deltas
    ]
    events += [
        ev("content_block_stop", index=0),
        ev(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": usage["output_tokens"]},
        ),
        ev("message_stop"),
    ]
    reply = _sse_reply(events, ctx.rid)
    reply.headers["request-id"] = ctx.rid
    return reply


def count_tokens(ctx: Ctx) -> Reply:
    keys = ("system", "messages", "tools")
    return _json_reply({"input_tokens": _estimate_tokens([ctx.body.get(k) for k in keys])})


def embeddings(ctx: Ctx) -> Reply:
    raw = ctx.body.get("input", "")
    inputs = raw if isinstance(raw, list) else [raw]
    dims = int(ctx.body.get("dimensions") or 8)
    data = []
    for i, item in enumerate(inputs):
        digest = hashlib.sha256(json.dumps(item).encode()).digest()
        vector = [(digest[j % 32] - 128) / 128 for j in range(dims)]
        encoded: Any = vector
        if ctx.body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    tokens = _estimate_tokens(inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json_reply({"object": "list", "data": data, "model": ctx.model, "usage": usage})


def models(ctx: Ctx) -> Reply:
    ids = ["fake-model", "gpt-fake", "claude-fake"]
    data = [
        {
            "id": m,
            "object": "model",
            "created": 1700000000,
            "owned_by": "fake-upstream",
            "type": "model",
            "display_name": m,
            "created_at": "2025-01-01T00:00:00Z",
        }
        for m in ids
    ]
    page = {"has_more": False, "first_id": ids[0], "last_id": ids[-1]}
    return _json_reply({"object": "list", "data": data, **page})


Builder = Callable[[Ctx], Reply]
# (method, path suffix, name, builder, needs a JSON body); first match wins.
ENDPOINTS: list[tuple[str, str, str, Builder, bool]] = [
    ("POST", "/chat/completions", "chat.completions", chat_completions, True),
    ("POST", "/codex/responses", "codex.responses", codex_responses, True),
    ("POST", "/responses", "responses", responses, True),
    ("POST", "/messages/count_tokens", "messages.count_tokens", count_tokens, True),
    ("POST", "/messages", "messages", messages, True),
    ("POST", "/embeddings", "embeddings", embeddings, True),
    ("GET", "/models", "models", models, False),
]


def find_endpoint(method: str, path: str) -> tuple[str, Builder, bool] | None:
    trimmed = path.rstrip("/")
    for m, suffix, name, builder, needs_body in ENDPOINTS:
        if method == m and trimmed.endswith(suffix):
            return name, builder, needs_body
    return None


def _deltas(text: str, events: int | None) -> list[str]:
    if events:
        return [f"tok{i} " for i in range(events)]
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] or [""]


# --------------------------------------------------------------------------- delivery


class Delivery(Response):
    """Sends a Reply under a Mode, watching for the client going away meanwhile."""

    def __init__(self, fake: FakeUpstream, reply: Reply, mode: Mode, interval: float) -> None:
        self.fake, self.reply, self.mode, self.interval = fake, reply, mode, interval
        self.status_code = reply.status
        self.background = None
        self.done = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        gone = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch, receive, gone, tg.cancel_scope)
            try:
                await self._deliver(scope, send, gone)
            finally:
                self.done = True
                tg.cancel_scope.cancel()

    async def _watch(self, receive: Any, gone: anyio.Event, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()
        if not self.done:
            self.fake._on_disconnect()
            scope.cancel()

    async def _drop(self, scope: Any, gone: anyio.Event) -> None:
        self.done = True
        self.fake._count("aborted")
        await abort_connection(scope, gone)

    async def _deliver(self, scope: Any, send: Any, gone: anyio.Event) -> None:
        mode, reply = self.mode, self.reply
        if mode.name == "slow":
            await anyio.sleep(mode.delay_ms / 1000)
        if mode.name == "hang":
            await self.fake._closing.wait()
            return await self._drop(scope, gone)
        if mode.name == "reset" and (mode.after == 0 or not reply.sse):
            return await self._drop(scope, gone)
        if mode.name == "hold" and not reply.sse:
            await self._hold()
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        if not reply.sse:
            headers.append((b"content-length", str(len(reply.chunks[0])).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for i, chunk in enumerate(reply.chunks):
            if reply.sse and i == mode.after and mode.name in ("hold", "reset"):
                if mode.name == "reset":
                    return await self._drop(scope, gone)
                await self._hold()
            if i and self.interval:
                await anyio.sleep(self.interval)
            last = i == len(reply.chunks) - 1
            if last:
                self.done = True
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if reply.sse:
                self.fake._count("events_sent")
        self.fake._count("completed")
        return None

    async def _hold(self) -> None:
        self.fake._count("holds")
        self.fake.held.set()
        await self.fake.gate.wait()


# --------------------------------------------------------------------------- the fake


class FakeUpstream:
    """The fake model API. `recorder` has the requests; `url` once started.

    Use as a context manager (`with FakeUpstream(tokens=ts) as up: up.url`) or start()/stop().
    """

    def __init__(
        self,
        *,
        text: str = DEFAULT_TEXT,
        tokens: object = None,
        expect: Mapping[str, Expect] | None = None,
        events: int | None = None,
        interval_ms: float = 0.0,
    ) -> None:
        self.text = text
        self.events = events
        self.interval_ms = interval_ms
        self.tokens = make_checker(tokens)
        self.expectations: dict[str, Expect] = dict(expect or {})
        self.limits: dict[str, Limit] = {}
        self.recorder = Recorder()
        self.gate = Gate()
        self._closing = Gate()
        self._lock = threading.Condition()
        self.held = threading.Event()
        self.disconnected = threading.Event()
        self.first_event = threading.Event()
        self._reset_state()
        self.app = self._build_app()
        self._running: RunningServer | None = None

    def _reset_state(self) -> None:
        with self._lock:
            self.mode = Mode()
            self.counters = dict.fromkeys(
                ("events_sent", "disconnects", "completed", "aborted", "holds", "body_bytes"), 0
            )
        self.gate.arm()
        for event in (self.held, self.disconnected, self.first_event):
            event.clear()

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._running is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._running.url

    def start(self, port: int = 0) -> FakeUpstream:
        self._closing.arm()
        self._running = start_in_thread(self.app, port=port, on_stop=self.close)
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None

    def close(self) -> None:
        """Let every held or hanging request finish (called on stop)."""
        self.gate.release()
        self._closing.release()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- control (Python API)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def expect(
        self,
        prefix: str,
        keys: Iterable[str] = (),
        *,
        oauth: bool = False,
        account_header: bool = False,
    ) -> None:
        """Require credentials under `prefix` (longest prefix wins)."""
        self.expectations[prefix] = Expect(frozenset(keys), oauth, account_header)

    def clear_expectations(self) -> None:
        self.expectations.clear()

    def limit(
        self,
        key: str,
        kind: str = "rate_limit",
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
        resets_in_s: int = 3600,
    ) -> Limit:
        """Refuse model requests made with ``key`` (see ``Limit``); ``unlimit`` lifts it."""
        rule = Limit(kind, status, dict(headers or {}), times, resets_in_s)
        with self._lock:
            self.limits[key] = rule
        return rule

    def unlimit(self, key: str | None = None) -> None:
        """Lift the limit on ``key`` (every key's when None)."""
        with self._lock:
            if key is None:
                self.limits.clear()
            else:
                self.limits.pop(key, None)

    def set_mode(self, name: str = "normal", **params: Any) -> Mode:
        """normal|hold|reset|hang|slow|error|rate_limit, or "500"/"429"-style statuses.

        Params: after, delay_ms, status, retry_after, times, path. Re-arms the release gate."""
        if name.isdigit():
            params.setdefault("status", int(name))
            name = "rate_limit" if name == "429" else "error"
        if name not in MODES:
            raise ValueError(f"unknown upstream mode {name!r}")
        mode = Mode(name=name, **params)
        with self._lock:
            self.mode = mode
        self.gate.arm()
        self.held.clear()
        return mode

    def release(self) -> None:
        """Open the hold gate: held streams continue (until the next set_mode/reset)."""
        self.gate.release()

    def reset(self) -> None:
        """Forget requests, counters, events, mode and limits; re-arm the gate."""
        self.recorder.clear()
        self.unlimit()
        self._reset_state()

    def stat(self, name: str) -> int:
        with self._lock:
            return self.counters[name]

    @property
    def events_sent(self) -> int:
        return self.stat("events_sent")

    @property
    def disconnects(self) -> int:
        return self.stat("disconnects")

    def wait_body_bytes(self, n: int, timeout: float = 5.0) -> bool:
        """Block until request bodies totalling >= n bytes have arrived (since reset)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.counters["body_bytes"] >= n, timeout)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.counters,
                "mode": vars(replace(self.mode)),
                "gate_open": self.gate.is_open,
                "held": self.held.is_set(),
                "disconnected": self.disconnected.is_set(),
                "requests": len(self.recorder.requests),
                "expect": {
                    p: {
                        "keys": sorted(e.keys),
                        "oauth": e.oauth,
                        "account_header": e.account_header,
                    }
                    for p, e in self.expectations.items()
                },
            }

    # ----------------------------------------------------------------- internals

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] += amount
            self._lock.notify_all()
        if name == "events_sent":
            self.first_event.set()

    def _on_disconnect(self) -> None:
        self._count("disconnects")
        self.disconnected.set()

    def _take_mode(self, path: str) -> Mode:
        with self._lock:
            mode = self.mode
            if not mode.applies(path):
                return Mode()
            if mode.times is not None:
                mode.times -= 1
                if mode.times <= 0:
                    self.mode = Mode()
            return mode

    def _take_limit(self, headers: Mapping[str, str]) -> Limit | None:
        values, _ = _presented(headers)
        with self._lock:
            for value in values:
                rule = self.limits.get(value)
                if rule is None:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self.limits[value]
                return rule
        return None

    def _expectation_for(self, path: str) -> Expect | None:
        matches = [p for p in self.expectations if path.startswith(p)]
        return self.expectations[max(matches, key=len)] if matches else None

    async def _auth_failure(self, request: Request) -> tuple[str, str] | None:
        """(message, code) if the request's credential is not accepted, else None."""
        expect = self._expectation_for(request.url.path)
        if expect is None:
            return None
        values, bearer = _presented(request.headers)
        if any(v in expect.keys for v in values):
            return None
        if expect.oauth and bearer and self.tokens is not None:
            info = await self.tokens.introspect(bearer)
            if info.get("active"):
                account = request.headers.get("chatgpt-account-id")
                if expect.account_header and account != info.get("account_id"):
                    return "chatgpt-account-id does not match the access token", "account_mismatch"
                return None
            if info.get("reason") == "expired":
                return "Provided authentication token is expired.", "token_expired"
        return "fake upstream: missing or wrong credential", "invalid_api_key"

    async def _read_body(self, request: Request) -> tuple[bytes, int]:
        parts: list[bytes] = []
        async for chunk in request.stream():
            if chunk:
                parts.append(chunk)
                self._count("body_bytes", len(chunk))
        return b"".join(parts), len(parts)

    def _record(self, request: Request, body: bytes, chunks: int) -> RecordedRequest:
        raw = [
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.scope["headers"]
        ]
        entry = RecordedRequest(
            n=self.recorder.next_number(),
            time=time.time(),
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=dict(raw),
            raw_headers=raw,
            body=body,
            body_chunks=chunks,
        )
        self.recorder.add(entry)
        return entry

    def _interval(self, request: Request) -> float:
        value = request.headers.get("x-fake-interval-ms")
        return (float(value) if value else self.interval_ms) / 1000

    def _ctx(self, request: Request, body: dict[str, Any]) -> Ctx:
        value = request.headers.get("x-fake-events")
        events = int(value) if value else self.events
        usage = request.headers.get("x-fake-usage")
        return Ctx(body, _deltas(self.text, events), _rid(), json.loads(usage) if usage else None)

    # ----------------------------------------------------------------- model routes

    async def _handle(self, request: Request) -> Response:
        body, chunks = await self._read_body(request)
        entry = self._record(request, body, chunks)
        reply, mode = await self._answer(request, entry)
        extra = request.headers.get("x-fake-reply-headers")  # a JSON object, added to the answer
        reply.headers.update(json.loads(extra) if extra else {})
        entry.status = reply.status
        return Delivery(self, reply, mode, self._interval(request))

    async def _answer(self, request: Request, entry: RecordedRequest) -> tuple[Reply, Mode]:
        path, headers = request.url.path, request.headers
        failure = await self._auth_failure(request)
        if failure is not None:
            entry.endpoint = "auth-reject"
            return error_reply(path, headers, 401, *failure), Mode()
        if request.method == "GET" and headers.get("upgrade", "").lower() == "websocket":
            entry.endpoint = "websocket-refused"
            return error_reply(path, headers, 426, "no WebSocket transport", "websocket"), Mode()
        if path.rstrip("/").endswith("/echo"):
            entry.endpoint = "echo"
            return self._echo(entry), self._take_mode(path)
        found = find_endpoint(request.method, path)
        if found is None:
            entry.endpoint = "404"
            message = f"fake upstream: no handler for {request.method} {path}"
            return error_reply(path, headers, 404, message, "not_found"), Mode()
        entry.endpoint, builder, needs_body = found
        data = entry.json() if needs_body and entry.body else {}
        if needs_body and not isinstance(data, dict):
            return error_reply(path, headers, 400, "body must be a JSON object"), Mode()
        limit = self._take_limit(headers)
        if limit is not None:
            entry.endpoint += ":limited"
            return limit_reply(path, headers, limit), Mode()
        mode = self._take_mode(path)
        if mode.name in ("error", "rate_limit"):
            return self._failure_reply(path, headers, mode), mode
        return builder(self._ctx(request, data)), mode

    def _failure_reply(self, path: str, headers: Mapping[str, str], mode: Mode) -> Reply:
        if mode.name == "rate_limit":
            reply = error_reply(path, headers, 429, "Rate limit reached", "rate_limit_exceeded")
            if mode.retry_after is not None:
                reply.headers["retry-after"] = mode.retry_after
            return reply
        return error_reply(path, headers, mode.status, f"fake upstream error {mode.status}")

    def _echo(self, entry: RecordedRequest) -> Reply:
        digest = hashlib.sha256(entry.body).hexdigest()
        return _json_reply(
            {"bytes": len(entry.body), "chunks": entry.body_chunks, "sha256": digest}
        )

    # ----------------------------------------------------------------- control routes

    def _build_app(self) -> Starlette:
        control: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
            ("GET", "/__fake/requests", self._c_requests),
            ("GET", "/__fake/state", self._c_state),
            ("POST", "/__fake/reset", self._c_reset),
            ("POST", "/__fake/release", self._c_release),
            ("POST", "/__fake/mode", self._c_mode),
            ("POST", "/__fake/expect", self._c_expect),
            ("POST", "/__fake/limit", self._c_limit),
            ("POST", "/__fake/config", self._c_config),
        ]
        routes = [Route(path, fn, methods=[m]) for m, path, fn in control]
        routes.append(Route("/{path:path}", self._handle, methods=ALL_METHODS))
        return Starlette(routes=routes)

    async def _c_requests(self, request: Request) -> Response:
        return JSONResponse([r.to_dict() for r in self.recorder.requests])

    async def _c_state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def _c_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _c_release(self, request: Request) -> Response:
        self.release()
        return JSONResponse({"ok": True})

    async def _c_mode(self, request: Request) -> Response:
        data = await _json_object(request)
        try:
            mode = self.set_mode(str(data.pop("mode", "normal")), **data)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(vars(replace(mode)))

    async def _c_expect(self, request: Request) -> Response:
        data = await _json_object(request)
        if data.get("clear"):
            self.clear_expectations()
        if "prefix" in data:
            self.expect(
                str(data["prefix"]),
                data.get("keys", []),
                oauth=bool(data.get("oauth")),
                account_header=bool(data.get("account_header")),
            )
        return JSONResponse(self.state()["expect"])

    async def _c_limit(self, request: Request) -> Response:
        """``{"key": K, "kind": ..., "status": ..., "headers": {...}, "times": N}`` limits K;
        ``{"key": K, "lift": true}`` (or no key) lifts K's limit (every limit)."""
        data = await _json_object(request)
        key = data.pop("key", None)
        if data.pop("lift", False) or key is None:
            self.unlimit(None if key is None else str(key))
            return JSONResponse({"ok": True})
        rule = self.limit(str(key), **data)
        return JSONResponse(vars(replace(rule)))

    async def _c_config(self, request: Request) -> Response:
        data = await _json_object(request)
        self.text = str(data.get("text", self.text))
        self.events = data.get("events", self.events)
        self.interval_ms = float(data.get("interval_ms", self.interval_ms))
        return JSONResponse(
            {"text": self.text, "events": self.events, "interval_ms": self.interval_ms}
        )


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}


def _parse_expect(values: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for value in values:
        prefix, _, keys = value.partition("=")
        out.setdefault(prefix, set()).update(k for k in keys.split(",") if k)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fake model API upstream (loopback only)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--events", type=int, default=None, help="content deltas per stream")
    ap.add_argument("--interval-ms", type=float, default=0.0, help="pause between SSE events")
    ap.add_argument("--token-server", help="token server URL for OAuth introspection")
    ap.add_argument("--expect", action="append", default=[], help="PREFIX=KEY[,KEY...]")
    ap.add_argument("--expect-oauth", action="append", default=[], help="PREFIX")
    args = ap.parse_args(argv)
    fake = FakeUpstream(
        text=args.text, tokens=args.token_server, events=args.events, interval_ms=args.interval_ms
    )
    keys = _parse_expect(args.expect)
    for prefix in {*keys, *args.expect_oauth}:
        fake.expect(prefix, keys.get(prefix, ()), oauth=prefix in args.expect_oauth)
    return run_main(
        fake.app,
        host=args.host,
        port=args.port,
        port_file=args.port_file,
        name="upstream",
        on_stop=fake.close,
    )


if __name__ == "__main__":
    raise SystemExit(main())
