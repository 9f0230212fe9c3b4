"""The JSON log lines and their redaction: a secret never reaches the rendered line, whether it
is a Secret, a secret-named field, nested, inside an object's repr, or embedded in a message."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from sidecar import log
from sidecar.secret import Secret

CANARY = "CANARY0123456789abcdefXYZ"
SK = f"sk-proj-{CANARY}"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJlQ0FOQVJZ"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """structlog writing JSON lines to a StringIO; reset to its defaults afterwards."""
    buf = io.StringIO()
    log.configure("info", stream=buf)
    try:
        yield buf
    finally:
        structlog.reset_defaults()


def lines(buf: io.StringIO) -> list[dict[str, Any]]:
    """The rendered lines, parsed, without their (real-clock) timestamps."""
    out = []
    for line in buf.getvalue().splitlines():
        doc = json.loads(line)
        assert doc.pop("timestamp").endswith("Z")
        out.append(doc)
    return out


@pytest.mark.parametrize(
    ("event", "fields", "expected"),
    [
        ("used", {"cred": Secret(SK)}, {"cred": "Secret(***)"}),
        (
            "sent",
            {"token": CANARY, "Authorization": f"Bearer {CANARY}", "refresh_token": SK},
            {"token": "***", "Authorization": "***", "refresh_token": "***"},
        ),
        (
            "forwarded",
            {
                "headers": {"authorization": f"Bearer {CANARY}", "inner": {"x-api-key": CANARY}},
                "items": [{"access": CANARY, "n": 1}, Secret(CANARY), None, 2.5],
            },
            {
                "headers": {"authorization": "***", "inner": {"x-api-key": "***"}},
                "items": [{"access": "***", "n": 1}, "Secret(***)", None, 2.5],
            },
        ),
        (f"upstream said {SK}", {}, {}),
        (f"auth header Bearer {CANARY}", {}, {}),
        (f"auth header bearer {CANARY}", {}, {}),
        ("decoded", {"detail": f"jwt={JWT};"}, {"detail": "jwt=eyJhbGci...Q0FOQVJZ;"}),
        (
            "refused",
            {"error": ValueError(f"bad {SK}")},
            {"error": "ValueError('bad sk-proj-...bcdefXYZ')"},
        ),
    ],
    ids=[
        "secret",
        "secret-named-fields",
        "nested",
        "sk-in-message",
        "bearer-in-message",
        "lowercase-bearer",
        "jwt-in-field",
        "object-repr",
    ],
)
def test_canary_never_reaches_the_line(
    stream: io.StringIO, event: str, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Each way a secret can enter a log call renders masked, and the canary is absent."""
    structlog.get_logger("test").info(event, **fields)
    assert CANARY not in stream.getvalue()
    masked_event = (
        event.replace(SK, "sk-proj-...bcdefXYZ")
        .replace(f"Bearer {CANARY}", "Bearer CANARY01...bcdefXYZ")
        .replace(f"bearer {CANARY}", "bearer CANARY01...bcdefXYZ")
    )
    assert lines(stream) == [{"event": masked_event, "level": "info", **expected}]


def test_bearer_scheme_does_not_count_towards_the_mask(stream: io.StringIO) -> None:
    """A short bearer credential is masked as itself, not as "Bearer <credential>"."""
    structlog.get_logger("test").info("auth Bearer abc123def4")
    assert lines(stream) == [{"event": "auth Bearer ab...f4", "level": "info"}]


def test_exception_text_is_redacted(stream: io.StringIO) -> None:
    """A logged exception's formatted traceback carries no credential-shaped text."""
    try:
        raise RuntimeError(f"upstream refused {SK}")
    except RuntimeError:
        structlog.get_logger("test").exception("upstream_failed")
    [line] = lines(stream)
    assert CANARY not in stream.getvalue()
    assert (line["event"], line["level"]) == ("upstream_failed", "error")
    assert line["exception"].endswith("RuntimeError: upstream refused sk-proj-...bcdefXYZ")


def test_level_filters_lower_levels(tmp_path: Any) -> None:
    """configure(level) drops events below that level."""
    buf = io.StringIO()
    log.configure("warning", stream=buf)
    try:
        logger = structlog.get_logger("test")
        logger.info("dropped")
        logger.warning("kept", n=1)
    finally:
        structlog.reset_defaults()
    assert lines(buf) == [{"event": "kept", "level": "warning", "n": 1}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("rt_abcdefgh12345678", "rt_abcde...12345678"),
        ("sk-ant-api03-xyz", "sk...yz"),  # a short match keeps less
        (7, 7),
        (True, True),
        (None, None),
        (("a", {"Secret": "x"}), ["a", {"Secret": "***"}]),
    ],
)
def test_redact_value(value: Any, expected: Any) -> None:
    """Values keep their JSON shape; only credential-shaped text and secret keys change."""
    assert log.redact_value(value) == expected
