"""A string that must not leak: its ``repr``/``str`` are masked, ``reveal()`` gives the value."""

from __future__ import annotations

from typing import Final

_HIDDEN: Final = "***"


def mask(value: str) -> str:
    """OpenClaw's label for a secret (``mask-api-key`` in 2026.6.1): trimmed, then the first and
    last 1, 2 or 8 characters around ``...`` for up to 6, up to 16, or more characters."""
    trimmed = value.strip()
    if not trimmed:
        return "missing"
    keep = 1 if len(trimmed) <= 6 else 2 if len(trimmed) <= 16 else 8
    return f"{trimmed[:keep]}...{trimmed[-keep:]}"


class Secret:
    """Wraps a secret so printing, logging or formatting an object holding it shows no value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

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
