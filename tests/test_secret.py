"""``Secret``: a string whose every printed form is masked, and OpenClaw's label mask."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from sidecar.secret import Secret, mask

CANARY = "sk-ant-oat01-CANARY-secret-0123456789"


@pytest.mark.parametrize(
    "show",
    [
        repr,
        str,
        lambda s: f"{s}",
        lambda s: f"{s!r}",
        lambda s: f"{s:>50}",
        lambda s: "%s" % s,  # noqa: UP031 - the old style is a way of printing too
        lambda s: str([s]),
        lambda s: str({"k": s}),
    ],
    ids=["repr", "str", "fstring", "fstring-repr", "format-spec", "percent", "list", "dict"],
)
def test_printed_forms_are_masked(show):
    """No way of turning a Secret into text shows the value."""
    assert CANARY not in show(Secret(CANARY))


def test_logging_shows_no_secret(caplog):
    """A Secret passed as a log argument is masked."""
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("token %s", Secret(CANARY))
    assert CANARY not in caplog.text


def test_reveal_label_bool_eq_hash():
    """reveal() gives the value; equality and hashing follow it; empty is falsy."""
    a, b = Secret(CANARY), Secret(CANARY)
    assert (
        a.reveal(),
        a == b,
        a != Secret("x"),
        hash(a) == hash(b),
        bool(a),
        bool(Secret("")),
    ) == (
        CANARY,
        True,
        True,
        True,
        True,
        False,
    )
    assert (a == CANARY, a.label()) == (False, "sk-ant-o...23456789")


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("", "missing"),
        ("  ", "missing"),
        ("abcdef", "a...f"),
        ("short", "s...t"),
        ("abcdefg", "ab...fg"),
        ("x" * 15 + "y", "xx...xy"),
        ("0123456789abcdefg", "01234567...9abcdefg"),
        ("abcdefgh-middle-12345678", "abcdefgh...12345678"),
    ],
)
def test_mask(value, label):
    """OpenClaw's label: first 8 + '...' + last 8; 16 characters or fewer fully hidden."""
    assert mask(value) == label


@pytest.mark.parametrize("dump", [pickle.dumps, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_secret_is_not_serialisable(dump):
    """A Secret cannot be pickled (nor deep-copied), so it cannot leak into a cache or a queue."""
    with pytest.raises(TypeError):
        dump(Secret(CANARY))
