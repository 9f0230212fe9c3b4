"""structlog set-up: JSON lines on stderr, with a redaction processor that runs last.

Redaction masks Secrets, secret-named fields, credential-shaped text and, by value, every secret
the process holds (``sidecar.secret.HELD``) wherever it appears, exception text included.

This is the one module with global state (structlog's configuration, the handler it adds to
the standard library's root logger, and the matcher over the held values), set by the CLI.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, TextIO, cast

import structlog

from sidecar import jsoncodec
from sidecar.secret import HELD, MIN_HELD_LENGTH, HeldValues, Secret, mask

# Shapes of credentials a log line must never carry, whatever field they hide in.
_SECRET_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9_-]{16,}|rt_[A-Za-z0-9_.-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.?[A-Za-z0-9_-]*|(?i:bearer)\s+(?P<bearer>\S+))"
)
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "key",
        "token",
        "access",
        "refresh",
        "secret",
        "password",
        "cookie",
        "refresh_token",
        "access_token",
        "id_token",
        "client_token",
    }
)


def _mask_shape(match: re.Match[str]) -> str:
    # The credential after "Bearer" is masked on its own: the scheme must not use up the
    # visible prefix (mask("Bearer abc123def4") would show most of a short token).
    bearer = match.group("bearer")
    if bearer is None:
        return mask(match.group(0))
    return match.group(0)[: match.start("bearer") - match.start()] + mask(bearer)


def _may_hold_secret(text: str) -> bool:
    """A cheap pre-check (substring tests in C) so the regex runs only on likely strings: every
    shape above starts with one of these."""
    return len(text) >= 8 and (
        "sk-" in text or "rt_" in text or "eyJ" in text or "bearer" in text.lower()
    )


@dataclass(frozen=True)
class _Compiled:
    version: int
    pattern: re.Pattern[str] | None
    by_tail: dict[str, list[str]]  # the last MIN_HELD_LENGTH characters -> values, longest first


class HeldMatcher:
    """Finds the held values in text: one regex over the last ``MIN_HELD_LENGTH`` characters of
    each value, shaped as a trie (the engine tries a character once per position, not once per
    value), rebuilt only when the held set changes. A hit is confirmed by comparing the whole
    value that ends there, so texts shorter than that minimum are skipped by the regex at once.
    """

    def __init__(self, held: HeldValues) -> None:
        self.held = held
        self._state = _Compiled(-1, None, {})

    def mask_in(self, text: str) -> str:
        """``text`` with every held value in it replaced by its label (``mask``)."""
        state = self._state
        if state.version != self.held.version:
            state = self._rebuild()
        if state.pattern is None:
            return text
        found = state.pattern.search(text)
        if found is None:
            return text
        return _masked(text, state.pattern, found, state.by_tail)

    def _rebuild(self) -> _Compiled:
        version, values = self.held.values()
        by_tail: dict[str, list[str]] = {}
        for value in sorted(values, key=len, reverse=True):  # the longest value wins
            by_tail.setdefault(value[-MIN_HELD_LENGTH:], []).append(value)
        pattern = _compile_uncached(_trie(by_tail)) if by_tail else None
        self._state = _Compiled(version, pattern, by_tail)  # one assignment: thread-safe
        return self._state


def _compile_uncached(source: str) -> re.Pattern[str]:
    """``re.compile`` without ``re``'s cache: that cache would keep up to 512 of these patterns
    (each is used by one matcher state only, and at 300 held values one is ~30 KB), so a
    rotating login made a long-running sidecar grow by megabytes. ``re._compiler`` is the
    function ``re.compile`` calls (Python 3.11 to 3.14); if it is ever gone, the cached path
    is used and the pattern is evicted again at once."""
    compiler = getattr(re, "_compiler", None)
    if compiler is not None:
        return cast(re.Pattern[str], compiler.compile(source, 0))
    pattern = re.compile(source)
    re.purge()
    return pattern


def _masked(
    text: str, pattern: re.Pattern[str], found: re.Match[str] | None, by_tail: dict[str, list[str]]
) -> str:
    """Every tail found is checked for its whole value; tails may overlap, so the search goes
    on one character after each (a value can hold another: both must go)."""
    spans: list[tuple[int, int, str]] = []
    while found is not None:
        value = _ending_at(text, found.end(), by_tail[found.group()])
        if value is not None:
            spans.append((found.end() - len(value), found.end(), value))
        found = pattern.search(text, found.start() + 1)
    parts: list[str] = []
    done = 0
    for start, end, value in _merged(spans):
        parts += (text[done:start], mask(value))
        done = end
    parts.append(text[done:])
    return "".join(parts)


def _ending_at(text: str, end: int, values: list[str]) -> str | None:
    for value in values:  # the longest first
        if end >= len(value) and text.startswith(value, end - len(value)):
            return value
    return None


def _merged(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans as one, labelled by its longest value."""
    merged: list[tuple[int, int, str]] = []
    for start, end, value in sorted(spans):
        if merged and start < merged[-1][1]:
            first, last, longest = merged.pop()
            merged.append((first, max(end, last), max(value, longest, key=len)))
        else:
            merged.append((start, end, value))
    return merged


def _trie(words: Any) -> str:
    """An alternation of same-length ``words`` as a trie: ``ab(?:c|d)`` for abc, abd."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
    return _branches(root)


def _branches(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _branches(child) for char, child in sorted(node.items())]
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")" if branches else ""


_HELD_MATCHER = HeldMatcher(HELD)


def redact_value(value: Any) -> Any:
    # Ordered by how often each kind is logged: most fields are plain numbers, None or short
    # names, and an ABC isinstance (Mapping) costs as much as the rest of a line's checks.
    if value is None or type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, str):
        return _redacted_text(value)
    if isinstance(value, Secret):
        return repr(value)
    if isinstance(value, dict | Mapping):
        return {
            k: ("***" if str(k).lower() in _SECRET_KEYS else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, bool | int | float):
        return value
    # Anything else would be rendered by its repr (JSONRenderer's fallback), and an exception's
    # repr can quote a token: redact that text here, before the renderer sees the object.
    return redact_value(repr(value))


_PLAIN_TYPES: Final = frozenset({bool, int, float})


# Short texts found to need no masking (no held value, no credential shape) are remembered
# until the held set changes: a request's line repeats its method, path, agent, provider and
# profile, and a set look-up is ~20x cheaper than the regex over 1,000 held values.
_CLEAN_MEMO_SIZE = 1024
_CLEAN_MEMO_TEXT = 128


class _CleanTexts:
    """The texts found clean, valid while the held set is the one they were checked against."""

    def __init__(self) -> None:
        self._state: tuple[int, set[str]] = (-1, set())

    def current(self) -> set[str]:
        version = HELD.version
        state = self._state
        if state[0] != version:
            state = self._state = (version, set())  # one assignment: thread-safe
        return state[1]


_CLEAN = _CleanTexts()


def _redacted_text(value: str) -> str:
    clean = _CLEAN.current()
    if value in clean:
        return value
    text = value
    # Held values first: a shape can cover part of one, and the rest would then show.
    if len(text) >= MIN_HELD_LENGTH:
        text = _HELD_MATCHER.mask_in(text)
    if _may_hold_secret(text):
        text = _SECRET_SHAPES.sub(_mask_shape, text)
    if text is value and len(value) <= _CLEAN_MEMO_TEXT:
        if len(clean) >= _CLEAN_MEMO_SIZE:
            clean.clear()
        clean.add(value)
    return text


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Processor: masks Secrets, secret-named fields, credential-shaped strings and held values."""
    out = {}
    clean = _CLEAN.current()
    for k, v in event_dict.items():
        secret_name = _SECRET_NAME.get(k)
        if secret_name is None:
            secret_name = _secret_name(k)
        if secret_name:
            out[k] = "***"
        # None, numbers and texts already found clean hold nothing; the timestamp is the
        # stamper's own ISO text (it overwrites any given value).
        elif (
            v is None
            or type(v) in _PLAIN_TYPES
            or k == "timestamp"
            or (type(v) is str and v in clean)
        ):
            out[k] = v
        else:
            out[k] = redact_value(v)
    return out


# Field name -> whether it names a secret: a line's dozen names, looked up, not lowercased and
# searched (the request line, 1.5 us). Bounded: a name is code's, but kept at a few hundred.
_SECRET_NAME: dict[str, bool] = {}


def _secret_name(name: str) -> bool:
    verdict = name.lower() in _SECRET_KEYS
    if len(_SECRET_NAME) < 512:
        _SECRET_NAME[name] = verdict
    return verdict


def _render(event_dict: Any, **_: Any) -> str:
    """One line by orjson (``jsoncodec``): 3.1 -> 0.3 us. ``repr`` is the fallback, as
    structlog's own; redact() has already turned anything else into redacted text."""
    return jsoncodec.dumps(event_dict, default=repr)


class _Stamps:
    """The ISO time of a line in UTC, to the microsecond (``2026-12-05T14:44:23.123456Z``; always
    six digits, where structlog's ``TimeStamper`` drops a zero fraction), its date and time
    formatted once a second: 1.3 -> 0.4 us."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> str:
        now = time.time()
        second, prefix = self._second
        whole = int(now)
        if whole != second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self._second = (whole, prefix)  # one assignment: thread-safe
        return f"{prefix}.{int((now - whole) * 1_000_000):06d}Z"


_STAMPS = _Stamps()
# add_log_level's names: structlog calls error() from exception(), warning() from warn().
_LEVEL_NAMES: Final = {"warn": "warning", "exception": "error"}


def _line(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
    """The one processor: level, time, traceback, redaction and JSON in one call, in that order
    (structlog's add_log_level, TimeStamper, format_exc_info, ``redact``, JSONRenderer as a
    chain cost ~4 us of calls more per line)."""
    event_dict["level"] = _LEVEL_NAMES.get(method, method)
    event_dict["timestamp"] = _STAMPS.now()
    if "exc_info" in event_dict:
        event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    return _render(redact(logger, method, event_dict))


_WRITE_LOCK = threading.Lock()  # the usage writer's thread logs too: lines stay whole
_HELD = threading.local()  # .lines: this thread's lines kept for one write (``together``)


class _LineWriter:
    """Writes each rendered line whole (structlog's WriteLogger, without its per-call layers),
    or keeps it for the one write at the end of ``together``."""

    def __init__(self, out: Any) -> None:
        self._out = out

    def msg(self, message: str) -> None:
        held: list[str] | None = getattr(_HELD, "lines", None)
        if held is not None:
            held.append(message)
            return
        _write(self._out, message + "\n")

    log = debug = info = warning = warn = error = critical = fatal = exception = msg


def _write(out: Any, text: str) -> None:
    with _WRITE_LOCK:
        out.write(text)
        out.flush()


_OUT: list[Any] = []  # the configured stream, once configured


@contextlib.contextmanager
def together() -> Iterator[None]:
    """The lines this thread logs inside are written at its end, in one write: the ledger
    settles ~15 requests at a time at 32 connections, one system call instead of fifteen. The
    lines are the same, in the same order; lines of other threads are written as they come."""
    if getattr(_HELD, "lines", None) is not None or not _OUT:  # nested, or not configured
        yield
        return
    held: list[str] = []
    _HELD.lines = held
    try:
        yield
    finally:
        _HELD.lines = None
        if held:
            _write(_OUT[0], "\n".join(held) + "\n")


def _wrapper_class(min_level: int) -> type[Any]:
    """structlog's filtering logger for ``min_level``, whose enabled methods run ``_line`` and
    write in one call when the chain is ours and the event has no %-arguments. A chain
    configured since (``structlog.testing.capture_logs``) goes structlog's way."""
    base: type[Any] = structlog.make_filtering_bound_logger(min_level)
    methods: dict[str, Callable[..., Any]] = {}
    for name in ("debug", "info", "warning", "error", "critical"):
        if logging.getLevelNamesMapping()[name.upper()] >= min_level:
            methods[name] = _direct(name, getattr(base, name))
    for alias, name in (("msg", "info"), ("warn", "warning"), ("fatal", "critical")):
        if name in methods:
            methods[alias] = methods[name]
    return type("SidecarLogger", (base,), methods)


def _direct(name: str, structlogs: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Any, event: str, *args: Any, **kw: Any) -> Any:
        processors = self._processors  # capture_logs swaps the list's content
        if args or len(processors) != 1 or processors[0] is not _line:
            return structlogs(self, event, *args, **kw)
        event_dict = {**self._context, **kw} if self._context else kw
        event_dict["event"] = event
        try:
            line = _line(self._logger, name, event_dict)
        except structlog.DropEvent:
            return None
        return self._logger.msg(line)

    method.__name__ = name
    return method


class _Stderr:
    """``sys.stderr`` as it is at each write, not as it was when logging was configured: a
    command run in-process (tests) may configure logging while stderr is a capture stream that is
    closed soon after."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", stream: Any = None) -> None:
    out = stream or cast(TextIO, _Stderr())  # structlog needs only write and flush
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[_line],
        wrapper_class=_wrapper_class(threshold),
        logger_factory=lambda *_: _LineWriter(out),
        cache_logger_on_first_use=True,
    )
    _OUT[:] = [out]
    _route_library_records(out, max(threshold, logging.WARNING))


def reset() -> None:
    """structlog's defaults again, and no handler of ours on the root logger (tests)."""
    structlog.reset_defaults()
    _OUT.clear()
    _route_library_records(None, logging.WARNING)


_library_handler: logging.Handler | None = None


def _route_library_records(stream: Any, threshold: int) -> None:
    """Other libraries' records from WARNING up (uvicorn's "Exception in ASGI application",
    asyncio's unretrieved task errors, both with tracebacks) go through the same redaction, as
    JSON lines on the same stream, instead of Python's last-resort handler printing them raw.
    ``stream`` None: only remove the handler added before."""
    global _library_handler
    root = logging.getLogger()
    if _library_handler is not None:
        root.removeHandler(_library_handler)
        _library_handler = None
    if stream is None:
        return
    handler = logging.StreamHandler(stream)
    handler.setLevel(threshold)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root.addHandler(handler)
    _library_handler = handler


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
