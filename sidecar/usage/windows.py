"""Rate-limit and subscription windows, read from an answer's headers (pure).

- Anthropic subscriptions (Claude logins): ``anthropic-ratelimit-unified-<w>-utilization``
  (a fraction), ``-reset`` (epoch seconds) and ``-status``, for the windows ``5h``, ``7d`` and
  whichever others it names (``7d_opus``, ``overage``...).
- Anthropic API keys: ``anthropic-ratelimit-<requests|tokens|input-tokens|output-tokens>-
  <limit|remaining|reset>``, the reset in RFC 3339.
- OpenAI: ``x-ratelimit-<limit|remaining|reset>-<requests|tokens>``, the reset a duration
  (``6m0s``, ``20ms``).
- Codex (ChatGPT logins): ``x-codex-<primary|secondary>-<used-percent|window-minutes|
  reset-after-seconds|reset-at>``; the primary window is the short one (300 minutes on Plus).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Literal

Kind = Literal["anthropic-unified", "anthropic", "openai", "codex"]

_UNIFIED: Final = "anthropic-ratelimit-unified-"
_ANTHROPIC: Final = "anthropic-ratelimit-"
_OPENAI: Final = "x-ratelimit-"
_CODEX: Final = "x-codex-"
_PREFIXES: Final = (_ANTHROPIC.encode(), _OPENAI.encode(), _CODEX.encode())
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Window:
    """One limit a profile is counted against, as the latest answer described it."""

    name: str  # 5h, 7d, requests, tokens, primary, secondary...
    kind: Kind
    utilization: float | None = None  # 0..1, above 1 past the limit (Codex: percent / 100)
    reset_at: int | None = None  # epoch ms
    limit: int | None = None
    remaining: int | None = None
    window_minutes: int | None = None
    status: str | None = None  # Anthropic's allowed / allowed_warning / rejected


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # no NaN, no inf


def _count(text: str) -> int | None:
    digits = text.strip()
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None  # fits SQLite


def _epoch_ms(text: str) -> int | None:
    seconds = _float(text)
    return None if seconds is None or not 0 <= seconds < 1e11 else int(seconds * 1000)


def _rfc3339_ms(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if moment.tzinfo is None else int(moment.timestamp() * 1000)


def duration_ms(text: str) -> int | None:
    """OpenAI's reset durations (``1s``, ``6m0s``, ``1h2m3.5s``, ``20ms``) in milliseconds."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    return round(sum(float(n) * scale[u] for n, u in parts))


def _used(limit: int | None, remaining: int | None) -> float | None:
    if limit is None or remaining is None or limit <= 0:
        return None
    return min(max((limit - remaining) / limit, 0.0), 1.0)


class _Windows:
    """The windows being read from one answer's headers, by (kind, name)."""

    def __init__(self) -> None:
        self.found: dict[tuple[Kind, str], Window] = {}

    def set(self, kind: Kind, name: str, **fields: object) -> None:
        if _NAME.fullmatch(name) is None:
            return
        current = self.found.get((kind, name)) or Window(name=name, kind=kind)
        self.found[(kind, name)] = replace(current, **fields)  # type: ignore[arg-type]


def _unified(w: _Windows, rest: str, value: str) -> None:
    name, _, field = rest.rpartition("-")
    if field == "utilization" and (used := _float(value)) is not None:
        w.set("anthropic-unified", name, utilization=max(used, 0.0))
    elif field == "reset" and name:
        w.set("anthropic-unified", name, reset_at=_epoch_ms(value))
    elif field == "status" and name:
        w.set("anthropic-unified", name, status=value.strip()[:32])


def _anthropic(w: _Windows, rest: str, value: str) -> None:
    name, _, field = rest.rpartition("-")
    if field in ("limit", "remaining"):
        w.set("anthropic", name, **{field: _count(value)})
    elif field == "reset":
        w.set("anthropic", name, reset_at=_rfc3339_ms(value))


def _openai(w: _Windows, rest: str, value: str, now_ms: int) -> None:
    field, _, name = rest.partition("-")
    if field in ("limit", "remaining"):
        w.set("openai", name, **{field: _count(value)})
    elif field == "reset" and (after := duration_ms(value)) is not None and after < 1e12:
        w.set("openai", name, reset_at=now_ms + after)


def _codex(w: _Windows, rest: str, value: str, now_ms: int) -> None:
    name, _, field = rest.partition("-")
    if name not in ("primary", "secondary"):
        return
    if field == "used-percent" and (used := _float(value)) is not None:
        w.set("codex", name, utilization=max(used / 100, 0.0))
    elif field == "window-minutes":
        w.set("codex", name, window_minutes=_count(value))
    elif field == "reset-at":
        w.set("codex", name, reset_at=_epoch_ms(value))
    elif field == "reset-after-seconds" and (after := _float(value)) is not None and after < 1e9:
        current = w.found.get(("codex", name))
        if current is None or current.reset_at is None:  # reset-at, when given, is exact
            w.set("codex", name, reset_at=now_ms + int(after * 1000))


def windows_from_headers(headers: Iterable[tuple[bytes, bytes]], now_ms: int) -> list[Window]:
    """Every window the headers describe, in a stable order; headers of no window are skipped
    at the cost of one ``startswith`` each."""
    w = _Windows()
    for raw_name, raw_value in headers:
        lowered = raw_name.lower()
        if not lowered.startswith(_PREFIXES):
            continue
        name, value = lowered.decode("latin-1"), raw_value.decode("latin-1")
        if name.startswith(_UNIFIED):
            _unified(w, name[len(_UNIFIED) :], value)
        elif name.startswith(_ANTHROPIC):
            _anthropic(w, name[len(_ANTHROPIC) :], value)
        elif name.startswith(_OPENAI):
            _openai(w, name[len(_OPENAI) :], value, now_ms)
        else:
            _codex(w, name[len(_CODEX) :], value, now_ms)
    if not w.found:
        return []
    windows = [_completed(window) for window in w.found.values()]
    return sorted(
        (x for x in windows if x.utilization is not None or x.reset_at is not None or x.status),
        key=lambda x: (x.kind, x.name),
    )


def _completed(window: Window) -> Window:
    if window.utilization is None and window.kind in ("anthropic", "openai"):
        return replace(window, utilization=_used(window.limit, window.remaining))
    return window


def label(window: Window) -> str:
    """What a person calls the window: Codex's primary and secondary by their length (``5h``,
    ``7d``), every other by its name."""
    minutes = window.window_minutes
    if window.kind != "codex" or not minutes:
        return window.name
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
