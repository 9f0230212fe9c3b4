"""Tests for sidecar.providers.conversation: a model call's API, model and turns, as the request
quirks read them from a path and a held body."""

from __future__ import annotations

import json

import pytest

from sidecar.providers.conversation import ModelCall, contains_type, model_call

USER = {"role": "user", "content": "hi"}
TOOL = {"role": "tool", "tool_call_id": "c1", "content": "42"}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "42"}


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("path", "raw", "expected"),
    [
        ("/chat/completions", body({"model": "m", "messages": [USER, TOOL]}),
         ModelCall("chat", "m", (USER, TOOL))),
        ("/v1/chat/completions", body({"messages": [USER]}), ModelCall("chat", None, (USER,))),
        ("/v1/responses", body({"model": "m", "input": [USER, OUTPUT]}),
         ModelCall("responses", "m", (USER, OUTPUT))),
        # Responses' shorthand: a string input is one user message.
        ("/responses", body({"model": "m", "input": "hi"}), ModelCall("responses", "m", (USER,))),
        ("/v1/messages", body({"model": "c", "messages": [USER]}),
         ModelCall("messages", "c", (USER,))),
        # Nothing to read: a body not held, empty, not JSON, not an object, no list of turns.
        ("/chat/completions", None, ModelCall("chat", None, ())),
        ("/chat/completions", b"", ModelCall("chat", None, ())),
        ("/chat/completions", b"\xff{not json", ModelCall("chat", None, ())),
        ("/chat/completions", body([USER]), ModelCall("chat", None, ())),
        ("/chat/completions", body({"model": "", "messages": {"0": USER}}),
         ModelCall("chat", None, ())),
        ("/responses", body({"model": 7, "input": 7}), ModelCall("responses", None, ())),
        # Not model calls.
        ("/models", None, None),
        ("/v1/embeddings", body({"model": "m", "input": "hi"}), None),
        ("/v1/messages/count_tokens", body({"messages": [USER]}), None),
    ],
)  # fmt: skip
def test_model_call(path: str, raw: bytes | None, expected: ModelCall | None) -> None:
    """The API by the path's end, the model and the turns by the API's field."""
    assert model_call(path, raw) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([{"type": "text"}, {"type": "tool_result", "content": "x"}], True),
        ({"type": "tool_result"}, True),
        ([{"type": "text", "content": [[{"type": "tool_result"}]]}], True),
        ({"type": "x", "output": [{"type": "tool_result"}]}, True),
        ([{"type": "text"}, {"kind": "tool_result"}], False),
        ("tool_result", False),
        ([{"type": ["tool_result"]}, {"type": {"a": 1}}, None, 3], False),
        (None, False),
    ],
)
def test_contains_type(value: object, expected: bool) -> None:
    """A part of the type anywhere in lists, ``content`` and ``output``; other values and
    unhashable types are simply not it."""
    assert contains_type(value, frozenset({"tool_result"})) is expected


def test_contains_type_walks_deep_nesting_without_recursion() -> None:
    """A conversation nested deeper than Python's recursion limit is still read."""
    value: object = {"type": "tool_result"}
    for _ in range(5000):
        value = [{"type": "text", "content": value}]
    assert contains_type(value, frozenset({"tool_result"}))
