"""A string that must not leak: its ``repr``/``str`` are masked, ``reveal()`` gives the value.

Every Secret also enters ``HELD``, the values of the secrets this process holds, so the log can
mask them by value wherever they turn up (an upstream echoing a key into an error). Registering
where a Secret is made means no store, grant or config path can forget to. ``HELD`` is the one
piece of process-wide state outside logging's configuration, and it exists for the log.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Final

_HIDDEN: Final = "***"
# Shorter values are not masked by value: a 6-character "secret" would mask innocent words.
# Real credentials (API keys, OAuth tokens, the fleet key) are far longer; shorter ones are
# still masked where they have a credential's shape or sit in a secret-named field.
MIN_HELD_LENGTH: Final = 12
# Values of Secrets no longer alive kept for masking (the newest); all live ones always are.
DEAD_KEPT: Final = 256


def mask(value: str) -> str:
    """OpenClaw's label for a secret (``mask-api-key`` in 2026.6.1): trimmed, then the first and
    last 1, 2 or 8 characters around ``...`` for up to 6, up to 16, or more characters."""
    trimmed = value.strip()
    if not trimmed:
        return "missing"
    keep = 1 if len(trimmed) <= 6 else 2 if len(trimmed) <= 16 else 8
    return f"{trimmed[:keep]}...{trimmed[-keep:]}"


class HeldValues:
    """The values of every live Secret and of the last ``dead_kept`` that are gone.

    ``version`` changes whenever the set changes, so a matcher over it is rebuilt only then.
    Thread-safe. A Secret's ``__del__`` only queues its value, lock-free (it may run inside
    ``hold`` itself, when an allocation there sets off the garbage collector); the queue is
    folded in by the next ``hold`` or ``values``.
    """

    def __init__(self, dead_kept: int = DEAD_KEPT) -> None:
        self.version = 0
        self._dead_kept = dead_kept
        self._lock = threading.Lock()
        self._live: dict[str, int] = {}  # value -> how many live Secrets hold it
        self._dead: OrderedDict[str, None] = OrderedDict()  # oldest first
        self._released: deque[str] = deque()

    def hold(self, value: str) -> None:
        if len(value) < MIN_HELD_LENGTH:
            return
        with self._lock:
            self._fold()
            count = self._live.get(value, 0)
            self._live[value] = count + 1
            if count == 0 and value in self._dead:
                del self._dead[value]  # back from the dead: the set is the same
            elif count == 0:
                self.version += 1

    def release(self, value: str) -> None:
        if len(value) >= MIN_HELD_LENGTH:
            self._released.append(value)  # atomic: no lock, see the class docstring

    def values(self) -> tuple[int, list[str]]:
        """The version and the values (live and recently dead), consistent with each other."""
        with self._lock:
            self._fold()
            return self.version, [*self._live, *self._dead]

    def _fold(self) -> None:
        while self._released:
            value = self._released.popleft()
            count = self._live.pop(value, 0)
            if count > 1:
                self._live[value] = count - 1
            elif count == 1:
                self._dead[value] = None
        while len(self._dead) > self._dead_kept:
            self._dead.popitem(last=False)
            self.version += 1


HELD: Final = HeldValues()


class Secret:
    """Wraps a secret so printing, logging or formatting an object holding it shows no value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        HELD.hold(value)

    def __del__(self) -> None:
        try:
            release = HELD.release
        except AttributeError:  # at interpreter exit this module's globals may go first
            return
        release(self._value)

    def reveal(self) -> str:
        return self._value

    def label(self) -> str:
        return mask(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({_HIDDEN})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not picklable")
