"""The JSON log lines and their redaction: a secret never reaches the rendered line, whether it
is a Secret, a secret-named field, nested, inside an object's repr, or embedded in a message,
by its shape or, for the values the process holds, by value."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from sidecar import log
from sidecar.config import load_settings
from sidecar.providers.grants import OPENAI_CODEX, parse_token_response
from sidecar.secret import HeldValues, Secret, mask
from sidecar.sources.fleet.crypto import Keyring, parse_keys
from sidecar.sources.openclaw.model import SecretRef, parse_profiles
from sidecar.sources.openclaw.refs import resolve_ref

CANARY = "CANARY0123456789abcdefXYZ"
SK = f"sk-proj-{CANARY}"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJlQ0FOQVJZ"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Our log and library records as JSON lines in a StringIO; reset to the defaults after."""
    buf = io.StringIO()
    log.configure("info", stream=buf)
    try:
        yield buf
    finally:
        log.reset()


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


def test_a_line_json_has_no_type_for_is_still_written(stream: io.StringIO) -> None:
    """The line's encoder (orjson) refuses integers past 64 bits and keys that are not strings;
    the line is written anyway, as json would write it, and still redacted."""
    structlog.get_logger("test").info("odd", n=2**70, counts={200: 1}, token=SK)
    assert lines(stream) == [
        {"event": "odd", "level": "info", "n": 2**70, "counts": {"200": 1}, "token": "***"}
    ]


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
        log.reset()
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


ODD = "Zq7Xk2PvLmN9wR4tY8uB3cD6"  # a held key of no known shape: only its value gives it away
LONGER = "other-key-" + ODD[-12:]  # ends as ODD does: the same tail in the matcher
OUTER = f"wrap-{ODD}-end-of-wrap"  # a held value holding another
REGEXY = "key.with*regex+chars(ok)[1]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ODD, mask(ODD)),
        (f"X-Echo {ODD}\x00 and again:{ODD}", f"X-Echo {mask(ODD)}\x00 and again:{mask(ODD)}"),
        (f"{LONGER}/{ODD}", f"{mask(LONGER)}/{mask(ODD)}"),
        (f"<{OUTER}>", f"<{mask(OUTER)}>"),
        (f"{ODD}{ODD}", f"{mask(ODD)}{mask(ODD)}"),
        (f"{ODD[-12:]} then {ODD}", f"{ODD[-12:]} then {mask(ODD)}"),  # a bare tail: skipped
        (ODD[1:], ODD[1:]),  # a part of a value is not the value
        (f"{REGEXY}!", f"{mask(REGEXY)}!"),
        ("short", "short"),
        ("", ""),
    ],
    ids=[
        "alone",
        "embedded-twice",
        "shared-tail",
        "nested",
        "adjacent",
        "bare-tail",
        "part",
        "regex-chars",
        "short",
        "empty",
    ],
)
def test_held_matcher_masks_whole_held_values(text: str, expected: str) -> None:
    """Every held value in a text becomes its label; anything else is left exactly as it was."""
    held = HeldValues()
    for value in (ODD, LONGER, OUTER, REGEXY):
        held.hold(value)
    assert log.HeldMatcher(held).mask_in(text) == expected


def test_held_matcher_follows_the_held_set() -> None:
    """A value made after the matcher was built is masked from the next call; one dropped from
    the set no longer is."""
    held = HeldValues(dead_kept=0)
    matcher = log.HeldMatcher(held)
    seen = [matcher.mask_in(ODD)]
    held.hold(ODD)
    seen.append(matcher.mask_in(ODD))
    held.release(ODD)
    held.hold(REGEXY)  # folds the release in: ODD is dropped
    seen.append(matcher.mask_in(ODD))
    assert seen == [ODD, mask(ODD), ODD]


def test_a_held_secret_of_no_known_shape_never_reaches_the_line(stream: io.StringIO) -> None:
    """A Secret's value is masked by value wherever it turns up: the event, a field, nested
    values, an object's repr and a logged exception's traceback."""
    key = Secret(f"odd{uuid.uuid4().hex}")
    value = key.reveal()
    logger = structlog.get_logger("test")
    logger.info(f"upstream said {value}", detail=f"X-Echo {value}\x01", nested={"h": [value]})
    try:
        raise ValueError(f"illegal header line: bytearray(b'X-Echo {value}')")
    except ValueError as exc:
        logger.exception("request_failed", error=exc)
    first, second = lines(stream)
    assert value not in stream.getvalue()
    label = mask(value)
    assert first == {
        "event": f"upstream said {label}",
        "level": "info",
        "detail": f"X-Echo {label}\x01",
        "nested": {"h": [label]},
    }
    assert second["error"] == f"""ValueError("illegal header line: bytearray(b'X-Echo {label}')")"""
    assert second["exception"].endswith(
        f"ValueError: illegal header line: bytearray(b'X-Echo {label}')"
    )


def _stored(kind: str) -> Callable[[str, Path], object]:
    fields = {
        "api_key": lambda v: {"type": "api_key", "provider": "p", "key": v},
        "token": lambda v: {"type": "token", "provider": "p", "token": v},
        "access": lambda v: {"type": "oauth", "provider": "p", "access": v, "refresh": "r"},
        "refresh": lambda v: {"type": "oauth", "provider": "p", "access": "a", "refresh": v},
    }[kind]
    return lambda value, _: parse_profiles(json.dumps({"profiles": {"p:x": fields(value)}}))


def _granted(value: str, _: Path) -> object:
    body = {"access_token": "a", "refresh_token": value, "expires_in": 60}
    return parse_token_response(OPENAI_CODEX, 200, json.dumps(body).encode(), 0)


def _client_token(value: str, tmp_path: Path) -> object:
    (tmp_path / "client.token").write_text(value + "\n")
    config = tmp_path / "sidecar.toml"
    config.write_text(
        f'[[listeners]]\nport = 8080\nclient_token_file = "{tmp_path / "client.token"}"\n'
    )
    return load_settings(config, {})


def _from_env(value: str, tmp_path: Path) -> object:
    return resolve_ref(SecretRef("env", "default", "THE_KEY"), {}, {"THE_KEY": value}, tmp_path)


def _fleet_key(_: str, __: Path) -> object:
    return parse_keys(base64.b64encode(os.urandom(32)).decode(), "fleet.key_file (test)")


@pytest.mark.parametrize(
    "holder",
    [
        _stored("api_key"),
        _stored("token"),
        _stored("access"),
        _stored("refresh"),
        _granted,
        _client_token,
        _from_env,
        _fleet_key,
    ],
    ids=["api-key", "token", "access", "refresh", "granted", "client-token", "ref", "fleet-key"],
)
def test_every_secret_the_process_holds_is_masked_by_value(
    stream: io.StringIO, tmp_path: Path, holder: Callable[[str, Path], object]
) -> None:
    """Stored keys and tokens, granted tokens, client tokens, resolved refs and the fleet key
    are held from the moment they are read: their value in a log line shows as its label."""
    value = f"held{uuid.uuid4().hex}"
    held = holder(value, tmp_path)
    if isinstance(held, Keyring):  # the key is the keyring's own: log it as its file holds it
        value = base64.b64encode(held.keys[0]).decode()
    structlog.get_logger("test").info("echoed", detail=f"<{value}>")
    assert lines(stream) == [{"event": "echoed", "level": "info", "detail": f"<{mask(value)}>"}]


def test_library_records_are_redacted_json_lines(stream: io.StringIO) -> None:
    """A library's error with a traceback (uvicorn's, asyncio's) is a JSON line on the same
    stream, its message and traceback masked like ours; its INFO records stay out."""
    key = Secret(f"odd{uuid.uuid4().hex}")
    label = key.label()
    try:
        raise ValueError(f"bad header {key.reveal()}")
    except ValueError:
        logging.getLogger("uvicorn.error").error("Exception in %s", key.reveal(), exc_info=True)
    logging.getLogger("uvicorn.error").info("Started server process")
    [line] = lines(stream)
    assert key.reveal() not in stream.getvalue()
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert {**line, "exception": line["exception"].splitlines()[-1]} == {
        "event": f"Exception in {label}",
        "logger": "uvicorn.error",
        "level": "error",
        "exception": f"ValueError: bad header {label}",
    }


def test_reconfiguring_keeps_one_library_handler() -> None:
    """configure() twice leaves one handler of ours on the root logger; reset() none."""
    root = logging.getLogger()
    before = list(root.handlers)
    log.configure("info", stream=io.StringIO())
    log.configure("warning", stream=io.StringIO())
    added = [h for h in root.handlers if h not in before]
    log.reset()
    assert (len(added), [h for h in root.handlers if h not in before]) == (1, [])


def test_the_matcher_keeps_one_pattern_however_often_tokens_rotate() -> None:
    """A rotating login changes the held set every few minutes for as long as the sidecar runs.
    Each rebuild's pattern replaces the last one: none is kept elsewhere (``re``'s own cache
    keeps up to 512, ~30 KB each at 300 values, which is how the soak once grew)."""
    held = HeldValues(dead_kept=256)
    matcher = log.HeldMatcher(held)
    tails = [uuid.uuid4().hex for _ in range(400)]  # real tokens end in random characters
    token = "rotating-" + "t" * 30 + "-{:06d}"
    for n in range(300):  # a full set: 44 live, 256 dead
        held.hold(token.format(n) + tails[n])
        if n >= 44:
            held.release(token.format(n - 44) + tails[n - 44])
    matcher.mask_in("warm " * 10)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300, 400):
            held.hold(token.format(n) + tails[n])
            held.release(token.format(n - 44) + tails[n - 44])
            assert matcher.mask_in("warm " * 10) == "warm " * 10
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 512 * 1024, grown


def test_a_text_found_clean_is_masked_once_its_value_is_held(stream: io.StringIO) -> None:
    """Texts found free of secrets are remembered (the request line repeats its names), but
    only until the process holds a new secret: the same text then renders masked."""
    value = f"late{uuid.uuid4().hex}"
    logger = structlog.get_logger("test")
    logger.info("routed", profile=value, event_text=f"p {value}")
    key = Secret(value)
    logger.info("routed", profile=value, event_text=f"p {value}")
    first, second = lines(stream)
    assert first == {
        "event": "routed",
        "level": "info",
        "profile": value,
        "event_text": f"p {value}",
    }
    assert value not in json.dumps(second)
    assert second["profile"] == mask(value)
    del key


def test_the_direct_line_is_the_chains_line(stream: io.StringIO) -> None:
    """The configured logger writes each line in one call; a line made by structlog's own
    path (%-arguments, or ``log``) through the same processor reads the same."""
    logger = structlog.get_logger("test")
    logger.info("same", a=1, token=SK, path="/v1")
    logger.info("same%s", "", a=1, token=SK, path="/v1")
    logger.log(logging.INFO, "same", a=1, token=SK, path="/v1")
    logger.warn("warned")
    logger.msg("said")
    one, two, three, warned, said = lines(stream)
    assert (
        one
        == two
        == three
        == {"event": "same", "level": "info", "a": 1, "token": "***", "path": "/v1"}
    )
    assert (warned["level"], said["level"]) == ("warning", "info")


def test_a_captured_chain_sees_the_events() -> None:
    """Reconfigured processors (``capture_logs``, as tests use) see the event dict, not a line."""
    log.configure("info", stream=io.StringIO())
    try:
        with structlog.testing.capture_logs() as captured:
            structlog.get_logger("fresh-name").info("seen", n=1)
    finally:
        log.reset()
    assert captured == [{"event": "seen", "n": 1, "log_level": "info"}]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1_764_945_863.123456, "2025-12-05T14:44:23.123456Z"),
        (1_764_945_863.0, "2025-12-05T14:44:23.000000Z"),
        (1_764_945_864.999_999_4, "2025-12-05T14:44:24.999999Z"),
    ],
)
def test_the_timestamp_is_iso_utc_to_the_microsecond(
    monkeypatch: pytest.MonkeyPatch, now: float, expected: str
) -> None:
    monkeypatch.setattr("sidecar.log.time.time", lambda: now)
    assert log._Stamps().now() == expected


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_logged_together_are_written_at_once_in_order() -> None:
    """``together``: the same lines, in order, in one write at its end; none before it ends;
    and written even when the block fails."""
    buf = _Writes()
    log.configure("info", stream=buf)
    try:
        logger = structlog.get_logger("test")
        with log.together():
            logger.info("one", token=SK)
            logger.info("two")
            with log.together():  # nested: the outer block writes
                logger.warning("three")
            assert (buf.getvalue(), buf.writes) == ("", 0)
        assert buf.writes == 1

        def failing() -> None:
            with log.together():
                logger.info("four")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            failing()
        logger.info("five")
    finally:
        log.reset()
    assert [line["event"] for line in lines(buf)] == ["one", "two", "three", "four", "five"]
    assert buf.writes == 3
    assert CANARY not in buf.getvalue()


def test_together_without_our_configuration_holds_nothing() -> None:
    """Before ``configure`` (or after ``reset``) there is no stream of ours: lines go wherever
    structlog sends them, at once."""
    log.reset()
    with structlog.testing.capture_logs() as captured, log.together():
        structlog.get_logger("test").info("seen")
    assert [e["event"] for e in captured] == ["seen"]
