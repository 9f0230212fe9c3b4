"""Token usage read from answers: each provider's JSON shape, and streams fed in any chunking."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.usage.tokens import (
    Found,
    StreamUsage,
    Tokens,
    from_answer,
    from_body,
    model_of_request,
    tokens_from,
)

CHAT_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
RESPONSES_USAGE = {
    "input_tokens": 200,
    "input_tokens_details": {"cached_tokens": 50},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 25},
    "total_tokens": 240,
}
ANTHROPIC_USAGE = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 2000,
    "output_tokens": 55,
}


@pytest.mark.parametrize(
    ("doc", "found"),
    [
        (
            {"object": "chat.completion", "model": "gpt-x", "usage": CHAT_USAGE},
            Found(Tokens(input=120, output=30, cached=100, reasoning=12), "gpt-x"),
        ),
        (
            {"object": "response", "model": "gpt-5", "usage": RESPONSES_USAGE},
            Found(Tokens(input=200, output=40, cached=50, reasoning=25), "gpt-5"),
        ),
        (
            {"type": "message", "model": "claude-x", "usage": ANTHROPIC_USAGE},
            Found(Tokens(input=2310, output=55, cached=2000, cache_write=300), "claude-x"),
        ),
        (  # Anthropic without any cache: told apart by "type": "message"
            {"type": "message", "model": "c", "usage": {"input_tokens": 7, "output_tokens": 3}},
            Found(Tokens(input=7, output=3), "c"),
        ),
        (  # embeddings
            {"object": "list", "model": "e", "usage": {"prompt_tokens": 8, "total_tokens": 8}},
            Found(Tokens(input=8), "e"),
        ),
        ({"object": "list", "model": "m", "data": []}, Found(None, "m")),
        ({"usage": "lots", "model": 5}, Found()),
        ([1, 2], Found()),
        ({"usage": {"prompt_tokens": -4, "completion_tokens": True}}, Found(Tokens(), None)),
    ],
)
def test_a_json_answer(doc: Any, found: Found) -> None:
    """Each provider's usage object, in one shape: input counts cached tokens in."""
    assert from_answer(doc) == found


def test_a_body_that_is_not_json_finds_nothing() -> None:
    """An HTML error page or a truncated body is no usage at all."""
    assert (from_body(b"<html>"), from_body(b'{"usage": {'), from_body(b"[" * 100_000)) == (
        Found(),
        Found(),
        Found(),
    )


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (b'{"messages": [], "model": "claude-opus"}', "claude-opus"),
        (b'  {"model": "gpt"}', "gpt"),
        (b'{"model": 3}', None),
        (b'{"model": ""}', None),
        (b"[]", None),
        (b"", None),
        (b"model=gpt", None),
        (b'{"model": "x"', None),
        (b'{"tools": [{"model": "inner"}], "model": "outer"}', "outer"),
        (b'{"messages": [{"content": "say \\"model\\": \\"no\\""}], "model": "yes"}', "yes"),
        (b'{"model": "gpt\\u002d4"}', "gpt-4"),
    ],
)
def test_the_model_of_a_request(body: bytes, model: str | None) -> None:
    """The top-level ``model`` of a JSON request body, nothing else."""
    assert model_of_request(body) == model


def sse(event: dict[str, Any] | str, name: str | None = None) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event)
    return (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()


def chat_stream() -> bytes:
    chunk = {"object": "chat.completion.chunk", "model": "gpt-x", "usage": None}
    deltas = [{**chunk, "choices": [{"delta": {"content": w}}]} for w in ("a", "b", "c")]
    last = {**chunk, "choices": [], "usage": CHAT_USAGE}
    return b"".join(sse(e) for e in [*deltas, last]) + sse("[DONE]")


def responses_stream() -> bytes:
    created = {"type": "response.created", "response": {"model": "gpt-5", "usage": None}}
    delta = {"type": "response.output_text.delta", "delta": "usage"}
    done = {"type": "response.completed", "response": {"model": "gpt-5", "usage": RESPONSES_USAGE}}
    return b"".join(sse(e, e["type"]) for e in (created, delta, done))


def anthropic_stream() -> bytes:
    start_usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
    start = {"type": "message_start", "message": {"model": "claude-x", "usage": start_usage}}
    text = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": '"usage"'}}
    delta = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 55}}
    return b"".join(sse(e, e["type"]) for e in (start, text, delta, {"type": "message_stop"}))


STREAMS = {
    "chat": (chat_stream(), Found(Tokens(input=120, output=30, cached=100, reasoning=12), "gpt-x")),
    "responses": (
        responses_stream(),
        Found(Tokens(input=200, output=40, cached=50, reasoning=25), "gpt-5"),
    ),
    "anthropic": (
        anthropic_stream(),
        Found(Tokens(input=2310, output=55, cached=2000, cache_write=300), "claude-x"),
    ),
}


def fed(data: bytes, cuts: list[int]) -> Found:
    stream = StreamUsage()
    start = 0
    for cut in sorted(cuts):
        stream.feed(data[start:cut])
        start = cut
    stream.feed(data[start:])
    return stream.found()


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_stream_in_one_chunk_and_byte_by_byte(name: str) -> None:
    """The same usage whether the events come whole or one byte at a time."""
    data, found = STREAMS[name]
    assert (fed(data, []), fed(data, list(range(1, len(data))))) == (found, found)


@given(st.sampled_from(sorted(STREAMS)), st.lists(st.integers(0, 4000), max_size=12))
def test_a_stream_cut_anywhere(name: str, cuts: list[int]) -> None:
    """Chunk boundaries never change what is found."""
    data, found = STREAMS[name]
    assert fed(data, [c % (len(data) + 1) for c in cuts]) == found


def test_crlf_lines_and_an_unfinished_stream() -> None:
    """CRLF line ends are fine; a stream cut before its usage event finds no tokens."""
    data, found = STREAMS["anthropic"]
    assert fed(data.replace(b"\n", b"\r\n"), []) == found
    assert fed(data[: data.index(b"message_delta") - 10], []) == Found(
        Tokens(input=2310, output=1, cached=2000, cache_write=300), "claude-x"
    )
    assert fed(chat_stream()[:200], []) == Found()


def test_an_overlong_line_is_dropped_not_held() -> None:
    """A line longer than the limit without an end is not kept in memory."""
    stream = StreamUsage()
    stream.feed(b"data: " + b"x" * (1 << 20))
    stream.feed(b'y data: {"usage": {"prompt_tokens": 9}}')
    assert stream._tail == b""
    stream.feed(b"\n" + sse({"usage": {"prompt_tokens": 1}}))
    assert stream.found() == Found(Tokens(input=1), None)


def test_tokens_from_guesses_the_style() -> None:
    """Without a hint the keys tell the shapes apart."""
    assert [tokens_from(u) for u in (CHAT_USAGE, RESPONSES_USAGE, ANTHROPIC_USAGE)] == [
        Tokens(input=120, output=30, cached=100, reasoning=12),
        Tokens(input=200, output=40, cached=50, reasoning=25),
        Tokens(input=2310, output=55, cached=2000, cache_write=300),
    ]
    assert Tokens(input=3, output=4).total == 7


@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(sorted(STREAMS)))
def test_any_bytes_are_fed_without_an_error(chunks: list[bytes], name: str) -> None:
    """Garbage, or garbage mixed into a real stream, never raises: a stream is never failed
    for its usage."""
    stream = StreamUsage()
    for chunk in [*chunks, STREAMS[name][0], *chunks]:
        stream.feed(chunk)
    stream.feed(b'data: {"type": "message_start", "message": {"usage": {"input_tokens": []}}}\n')
    stream.feed(b'data: {"type": "message_delta", "usage": {"output_tokens": "9"}}\n')
    assert isinstance(stream.found(), Found)
