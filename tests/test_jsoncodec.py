"""JSON on the hot path (orjson) reads and writes what Python's json module does."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar import jsoncodec

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_what_json_writes_is_read_the_same(value: Any) -> None:
    """Any value, any string (lone surrogates, which orjson refuses, are read by json)."""
    text = json.dumps(value)
    assert jsoncodec.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "data",
    [b"NaN", b'{"a": Infinity}', b'"\\ud800"', b" [1] "],
    ids=["nan", "infinity", "lone-surrogate", "spaces"],
)
def test_what_orjson_refuses_json_still_reads(data: bytes) -> None:
    got, want = jsoncodec.loads(data), json.loads(data)
    assert repr(got) == repr(want) or (math.isnan(got) and math.isnan(want))


def test_an_integer_past_64_bits_is_a_float() -> None:
    """The one difference from json: orjson reads such an integer as a float (no token count
    is that large; json's int would not fit the usage database's INTEGER either)."""
    assert jsoncodec.loads(b"[18446744073709551616]") == [float(2**64)]


@pytest.mark.parametrize("data", [b"<html>", b'{"a": ', b"", b"[" * 100_000])
def test_what_json_refuses_is_refused(data: bytes) -> None:
    """The same kind of error as json's: a ValueError, or a RecursionError for deep nesting."""
    with pytest.raises((ValueError, RecursionError)) as ours:
        jsoncodec.loads(data)
    with pytest.raises((ValueError, RecursionError)) as theirs:
        json.loads(data)
    assert type(ours.value) is type(theirs.value) or issubclass(type(ours.value), ValueError)


@given(VALUES)
def test_a_line_written_reads_back_as_the_value(value: Any) -> None:
    line = jsoncodec.dumps(value, default=repr)
    assert "\n" not in line
    assert json.loads(line) == value


def test_the_fallback_writes_what_json_has_no_type_for_as_text() -> None:
    line = jsoncodec.dumps({"x": object.__new__(_Odd), "é": "ü"}, default=repr)
    assert json.loads(line) == {"x": "<odd>", "é": "ü"}
    assert "ü" in line  # non-ASCII as UTF-8, not \\u escapes


class _Odd:
    def __repr__(self) -> str:
        return "<odd>"


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ({"n": 2**70}, '{"n":1180591620717411303424}'),
        ({200: "ok", None: 1}, '{"200":"ok","null":1}'),
    ],
    ids=["big-int", "non-string-keys"],
)
def test_what_orjson_cannot_write_is_written_as_json_would(value: Any, line: str) -> None:
    """A log line is never lost to its encoder: json's text for what orjson refuses."""
    assert jsoncodec.dumps(value, default=repr) == line
    assert json.loads(line) == json.loads(json.dumps(value))
