"""Token usage as the providers report it, in one shape: pure parsers of answer bodies (JSON) and
of streamed events (SSE), fed as the bytes pass.

The shapes: OpenAI Chat Completions ``usage`` (``prompt_tokens``, ``completion_tokens``, their
``*_details``), the Responses API's (``input_tokens``, ``output_tokens``, their ``*_details``;
the Codex backend's too) and Anthropic's (``input_tokens`` without the cache, which comes in
``cache_read_input_tokens`` and ``cache_creation_input_tokens``; streamed in ``message_start``,
then ``message_delta`` with the running totals).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sidecar.jsoncodec import loads

Style = Literal["chat", "responses", "anthropic"]

# A stream line longer than this is never a usage event worth holding on to.
MAX_LINE: Final = 1 << 20
_NULL_USAGE: Final = re.compile(rb'"usage"\s*:\s*null')
_MODEL_KEY: Final = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True)
class Tokens:
    """One answer's tokens. ``input`` counts every token the model read, cached ones included
    (Anthropic's three input figures added up, as OpenAI's ``prompt_tokens`` already are);
    ``cached`` (cache reads) and ``cache_write`` are part of it, ``reasoning`` part of
    ``output``."""

    input: int = 0
    output: int = 0
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output


# What JSON decodes to is a dict, an int (never a bool: type() tells them apart), a str: exact
# type checks here, not the Mapping ABC's isinstance (~0.3 us each, ten in an answer).


def _int(value: object) -> int:
    return value if type(value) is int and value > 0 else 0


def _detail(usage: Mapping[str, Any], key: str, field: str) -> int:
    inner = usage.get(key)
    return _int(inner.get(field)) if type(inner) is dict else 0


def style_of(usage: Mapping[str, Any]) -> Style:
    """Which provider's shape a ``usage`` object has, when nothing around it says."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return "chat"
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        return "anthropic"
    return "responses"


def tokens_from(usage: Mapping[str, Any], style: Style | None = None) -> Tokens:
    """A ``usage`` object in ``style`` (guessed from its keys when None) as ``Tokens``."""
    style = style or style_of(usage)
    if style == "chat":
        return Tokens(
            input=_int(usage.get("prompt_tokens")),
            output=_int(usage.get("completion_tokens")),
            cached=_detail(usage, "prompt_tokens_details", "cached_tokens"),
            reasoning=_detail(usage, "completion_tokens_details", "reasoning_tokens"),
        )
    if style == "responses":
        return Tokens(
            input=_int(usage.get("input_tokens")),
            output=_int(usage.get("output_tokens")),
            cached=_detail(usage, "input_tokens_details", "cached_tokens"),
            reasoning=_detail(usage, "output_tokens_details", "reasoning_tokens"),
        )
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    return Tokens(
        input=_int(usage.get("input_tokens")) + read + write,
        output=_int(usage.get("output_tokens")),
        cached=read,
        cache_write=write,
    )


@dataclass(frozen=True)
class Found:
    """What an answer said about itself: its tokens (None when it gave none) and model."""

    tokens: Tokens | None = None
    model: str | None = None


def _model(value: object) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= 200 else None


def from_answer(doc: object) -> Found:
    """A whole JSON answer: a chat completion, a response, an Anthropic message, embeddings."""
    if type(doc) is not dict:
        return Found()
    usage = doc.get("usage")
    model = _model(doc.get("model"))
    if type(usage) is not dict:
        return Found(model=model)
    style: Style | None = None
    if doc.get("type") == "message":
        style = "anthropic"
    elif doc.get("object") == "response":
        style = "responses"
    return Found(tokens_from(usage, style), model)


def from_body(body: bytes) -> Found:
    """``from_answer`` of a body that may not be JSON at all."""
    try:
        return from_answer(loads(body))
    except (ValueError, RecursionError):
        return Found()


def model_of_request(body: bytes) -> str | None:
    """The top-level ``model`` a JSON request body names, if it is one. Agents' bodies run to
    megabytes of conversation, so they are searched, not parsed: a quote inside a JSON string is
    escaped, so the pattern only matches keys, and one ``"model"`` key in the whole body is
    taken as the top-level one (a model API's request always has it). A body naming several
    models, or one the pattern cannot read, is parsed."""
    if not body.lstrip().startswith(b"{"):
        return None
    named = {m.group(1) for m in _MODEL_KEY.finditer(body)}
    if len(named) == 1 and body.rstrip().endswith(b"}"):
        return _model(named.pop().decode("utf-8", "replace"))
    return _parsed_model(body) if named or b'"model"' in body else None


def _parsed_model(body: bytes) -> str | None:
    try:
        doc = loads(body)
    except (ValueError, RecursionError):
        return None
    return _model(doc.get("model")) if isinstance(doc, dict) else None


def _has_usage(block: bytes) -> bool:
    """Whether some ``"usage"`` in ``block`` is not ``null``: OpenAI's chunks before the last
    say ``"usage":null`` (counted in C; the regex only for spacing OpenAI does not send)."""
    named = block.count(b'"usage"')
    nulls = block.count(b'"usage":null')
    if nulls < named:
        nulls += block.count(b'"usage": null')
    return named != nulls and named != len(_NULL_USAGE.findall(block))


class StreamUsage:
    """Usage read from a stream of server-sent events as its bytes pass, keeping only the last
    incomplete line. Cheap on the common path: a chunk whose complete lines do not mention
    ``"usage"`` costs two byte searches; only the few events that carry one are parsed."""

    def __init__(self) -> None:
        self._tail = b""
        self._skipping = False
        self._anthropic: dict[str, Any] | None = None
        self.tokens: Tokens | None = None
        self.model: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self._tail or self._skipping or not chunk.endswith(b"\n"):
            self._feed_partial(chunk)
        elif b'"usage"' in chunk and _has_usage(chunk):  # the common case: whole events
            self._lines(chunk)

    def _feed_partial(self, chunk: bytes) -> None:
        if self._skipping:  # the rest of a line too long to keep
            end = chunk.find(b"\n")
            if end < 0:
                return
            self._skipping, chunk = False, chunk[end + 1 :]
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n")
        tail = data[cut + 1 :] if cut >= 0 else data
        self._skipping = len(tail) > MAX_LINE
        self._tail = b"" if self._skipping else tail
        if cut >= 0 and data.find(b'"usage"', 0, cut) >= 0 and _has_usage(data[:cut]):
            self._lines(data[:cut])

    def _lines(self, block: bytes) -> None:
        for line in block.split(b"\n"):
            try:
                self._line(line)
            except Exception:  # noqa: S112 -- usage is best effort: never the stream's failure
                continue

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:") or b'"usage"' not in line:
            return
        if not _has_usage(line):
            return
        try:
            event = loads(line[5:])
        except (ValueError, RecursionError):
            return
        if isinstance(event, dict):
            self._event(event)

    def _event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start" and type(event.get("message")) is dict:
            message = event["message"]
            self.model = _model(message.get("model")) or self.model
            self._merge_anthropic(message.get("usage"))
        elif kind == "message_delta":
            self._merge_anthropic(event.get("usage"))
        elif isinstance(kind, str) and type(event.get("response")) is dict:
            response = event["response"]  # the Responses API: response.completed and the like
            self.model = _model(response.get("model")) or self.model
            if type(response.get("usage")) is dict:
                self.tokens = tokens_from(response["usage"], "responses")
        elif type(event.get("usage")) is dict:
            self.model = _model(event.get("model")) or self.model
            self.tokens = tokens_from(event["usage"])

    def _merge_anthropic(self, usage: object) -> None:
        """``message_delta`` carries running totals: its figures replace ``message_start``'s."""
        if type(usage) is not dict:
            return
        merged = dict(self._anthropic or {})
        merged.update({k: v for k, v in usage.items() if v is not None})
        self._anthropic = merged
        self.tokens = tokens_from(merged, "anthropic")

    def found(self) -> Found:
        return Found(self.tokens, self.model)
