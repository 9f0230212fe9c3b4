"""``Secret``: a string whose every printed form is masked, OpenClaw's label mask, and the values
of the secrets the process holds (``HELD``), which the log masks by value."""

from __future__ import annotations

import copy
import gc
import logging
import pickle
import uuid

import pytest

from sidecar.secret import DEAD_KEPT, HELD, MIN_HELD_LENGTH, HeldValues, Secret, mask

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


A, B, C, D = (f"held-value-{n}-0123456789" for n in "abcd")


def test_held_values_keep_every_live_value_and_the_newest_dead_ones():
    """Live values always stay; of the dead, only the newest ``dead_kept``, oldest dropped first."""
    held = HeldValues(dead_kept=2)
    for value in (A, B, C, D):
        held.hold(value)
    for value in (A, B, C):
        held.release(value)
    assert held.values()[1] == [D, B, C]


def test_held_values_count_each_holder():
    """A value held by two Secrets stays live until both are gone; with nothing kept of the
    dead it is then dropped."""
    held = HeldValues(dead_kept=0)
    held.hold(A)
    held.hold(A)
    held.release(A)
    assert held.values()[1] == [A]
    held.release(A)
    assert held.values()[1] == []


def test_held_values_version_moves_only_when_the_set_changes():
    """New values and dropped ones change the version; a value dying, or coming back while
    still kept, does not (the matcher is rebuilt only when it must)."""
    held = HeldValues(dead_kept=1)
    versions = [held.values()[0]]
    for step in (
        lambda: held.hold(A),  # new: +1
        lambda: held.release(A),  # dead, kept: same
        lambda: held.hold(A),  # back: same
        lambda: held.hold("short-value"),  # under MIN_HELD_LENGTH: not held at all
        lambda: held.hold(B),  # new: +1
        lambda: (held.release(A), held.release(B)),  # both dead, one kept: A dropped, +1
    ):
        step()
        versions.append(held.values()[0])
    assert versions == [0, 1, 1, 1, 1, 2, 3]
    assert held.values()[1] == [B]


@pytest.mark.parametrize(
    ("value", "held"),
    [("x" * (MIN_HELD_LENGTH - 1), False), ("x" * MIN_HELD_LENGTH, True), ("", False)],
)
def test_values_shorter_than_the_minimum_are_not_held(value, held):
    """Too short a value would mask innocent text: it is not held (nor released)."""
    values = HeldValues()
    values.hold(value)
    values.release(value)
    assert values.values()[1] == ([value] if held else [])


def test_a_secret_is_held_while_alive_and_kept_a_while_after():
    """Making a Secret holds its value in HELD; once it is gone the value is kept until
    DEAD_KEPT newer ones have died."""
    value = f"secret-held-{uuid.uuid4().hex}"
    secret = Secret(value)
    assert value in HELD.values()[1]
    del secret
    gc.collect()
    assert value in HELD.values()[1]
    for n in range(DEAD_KEPT):
        Secret(f"secret-pushing-{n}-{uuid.uuid4().hex}")
    assert value not in HELD.values()[1]
