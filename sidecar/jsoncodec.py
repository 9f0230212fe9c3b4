"""JSON read and written on every request (an answer's usage, the request's log line), by orjson:
a 1 KiB answer reads in 1.0 us instead of 4.0, a log line writes in 0.3 us instead of 3.1
(docs/benchmarks.md). The results are Python's json module's: what orjson refuses and json
reads (NaN, lone surrogates, nesting past 1,024 levels) is read by json. One difference: an
integer past 64 bits is read as a float (no token count is that large, and json's int would
not fit the usage database's INTEGER either)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``: the same value (but for integers past 64 bits), or the same
    ``ValueError``/``RecursionError``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any, default: Callable[[Any], Any]) -> str:
    """One compact line of JSON; ``default`` for what JSON has no type for. Non-ASCII stays as it
    is (UTF-8), as json's ``ensure_ascii=False`` would write it; a key that is not a string is
    written as json writes it. What orjson cannot write (an integer past 64 bits) json writes:
    a log line is never lost to its encoder."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":"))
