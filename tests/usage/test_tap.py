"""The tap on one answer: a stream read as it passes, JSON kept aside and parsed after, by the
answer's content type and coding; the request's model from its kept body."""

from __future__ import annotations

import gc
import gzip
import json
import weakref
import zlib
from dataclasses import dataclass

import pytest

from sidecar.usage.tap import NO_TAP, Tap
from sidecar.usage.tokens import Found, Tokens
from sidecar.usage.windows import Window

NOW = 1_800_000_000_000
USAGE = {"prompt_tokens": 5, "completion_tokens": 2}
BODY = json.dumps({"object": "chat.completion", "model": "gpt-a", "usage": USAGE}).encode()
EVENT = b'data: {"object": "chat.completion.chunk", "model": "gpt-s", "usage": ' + (
    json.dumps(USAGE).encode() + b"}\n\n"
)
FOUND_JSON = Found(Tokens(input=5, output=2), "gpt-a")
FOUND_SSE = Found(Tokens(input=5, output=2), "gpt-s")


@dataclass
class Kept:
    body: bytes
    replayable: bool = True

    def kept(self) -> bytes:
        return self.body


def tap(content_type: bytes, coding: bytes | None = None, **kw: int) -> Tap:
    headers = [(b"Content-Type", content_type)]
    if coding is not None:
        headers.append((b"Content-Encoding", coding))
    return Tap(headers, None, NOW, **kw)


def fed(t: Tap, data: bytes, size: int = 7) -> Found:
    for i in range(0, len(data), size):
        t.feed(data[i : i + size])
    return t.found()


@pytest.mark.parametrize(
    ("content_type", "coding", "data", "found"),
    [
        (b"application/json", None, BODY, FOUND_JSON),
        (b"Application/JSON; charset=utf-8", b"identity", BODY, FOUND_JSON),
        (b"application/problem+json", None, BODY, FOUND_JSON),
        (b"application/json", b"gzip", gzip.compress(BODY), FOUND_JSON),
        (b"application/json", b"deflate", zlib.compress(BODY), FOUND_JSON),
        (b"application/json", b"br", b"\x1b\x00", Found()),
        (b"application/json", b"gzip", b"not gzip", Found()),
        (b"text/event-stream; charset=utf-8", None, EVENT, FOUND_SSE),
        (b"text/event-stream", b"gzip", gzip.compress(EVENT), FOUND_SSE),
        (b"text/event-stream", b"gzip", b"garbage" * 3, Found()),
        (b"text/html", None, BODY, Found()),
        (b"application/octet-stream", None, BODY, Found()),
    ],
)
def test_what_an_answer_is_read_for(
    content_type: bytes, coding: bytes | None, data: bytes, found: Found
) -> None:
    """JSON (plain, gzip, deflate) and SSE are read; other types and codings are not."""
    assert fed(tap(content_type, coding), data) == found


def test_a_json_answer_above_the_limit_is_not_kept() -> None:
    """Past the limit the chunks are let go, and the tokens stay unknown."""
    t = tap(b"application/json", json_limit=len(BODY) - 1)
    assert (fed(t, BODY), t._json is not None and t._json.chunks) == (Found(), None)
    big = gzip.compress(BODY + b" " * 1000)  # small on the wire, larger than the limit inflated
    assert fed(tap(b"application/json", b"gzip", json_limit=len(BODY) + 10), big) == Found()


def test_the_request_model_and_the_windows() -> None:
    """The model comes from a kept JSON request body; windows from the answer's headers."""
    headers = [(b"x-codex-primary-used-percent", b"50"), (b"content-type", b"text/plain")]
    assert (
        Tap(headers, Kept(b'{"model": "gpt-r"}'), NOW).request_model(),
        Tap(headers, Kept(b'{"model": "gpt-r"}', replayable=False), NOW).request_model(),
        Tap(headers, None, NOW).request_model(),
        Tap(headers, None, NOW).windows(),
    ) == ("gpt-r", None, None, [Window("primary", "codex", 0.5)])


def test_no_tap() -> None:
    """The tap of a request that got no answer finds nothing and ignores what it is fed."""
    NO_TAP.feed(EVENT)
    assert (NO_TAP.found(), NO_TAP.windows(), NO_TAP.request_model()) == (Found(), [], None)


@pytest.mark.parametrize(
    ("content_type", "coding", "body"),
    [
        (b"application/json", None, BODY),
        (b"text/event-stream", None, EVENT),
        (b"text/event-stream", b"gzip", gzip.compress(EVENT)),
        (b"text/plain", None, b"hi"),
    ],
    ids=["json", "sse", "sse-gzip", "other"],
)
def test_a_tap_is_freed_when_dropped_not_by_the_collector(
    content_type: bytes, coding: bytes | None, body: bytes
) -> None:
    """A tap in a reference cycle outlived its request until a full collection found it
    (thousands of objects walked per collection, the p99's stalls, #20). Dropped, a tap goes
    at once, whatever it was fed."""
    t = tap(content_type, coding)
    t.feed(body)
    ref = weakref.ref(t)
    gc.disable()
    try:
        del t
        assert ref() is None
    finally:
        gc.enable()


def test_an_ended_tap_keeps_the_request_body_not_the_request() -> None:
    """At the end of a request the tap keeps the body's bytes, not the request object (and what
    it holds: the ASGI cycle, the connection)."""
    kept = Kept(b'{"model": "gpt-r"}')
    t = Tap([], kept, NOW)
    ref = weakref.ref(kept)
    t.end()
    del kept
    assert (ref(), t.request_model()) == (None, "gpt-r")
