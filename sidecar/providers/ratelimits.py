"""When a provider says a refused account may be used again, read from its answer (pure):
``Retry-After`` and ``retry-after-ms``; Anthropic's ``anthropic-ratelimit-*-reset`` for a limit
whose ``-remaining`` is 0 and its unified (subscription) windows that are ``rejected``; OpenAI's
``x-ratelimit-reset-*`` for a limit whose ``x-ratelimit-remaining-*`` is 0; the Codex backend's
usage windows (``x-codex-primary-*`` / ``x-codex-secondary-*`` at 100 %, or the
``usage_limit_reached`` error's ``resets_at`` / ``resets_in_seconds``).

Every limit still exhausted must have reset before the account can be used, so the latest of
them is the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

_CLASSIC: Final = ("requests", "tokens", "input-tokens", "output-tokens")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


@dataclass(frozen=True)
class Reset:
    at_ms: int
    window: bool = False  # a subscription usage window (Codex), not a short throttle


def reset_of(headers: Mapping[str, str], body: str, now_ms: int) -> Reset | None:
    """The latest reset the answer states (epoch ms), or None when it states none."""
    throttles = [*_retry_after(headers, now_ms), *_anthropic(headers), *_openai(headers, now_ms)]
    windows = [*_codex_headers(headers, now_ms), *_codex_body(body, now_ms)]
    latest = max((t for t in (*throttles, *windows) if t > now_ms), default=None)
    if latest is None:
        return None
    return Reset(latest, window=bool(windows) and latest == max(windows))


def _retry_after(headers: Mapping[str, str], now: int) -> Iterator[int]:
    ms = headers.get("retry-after-ms")
    if ms is not None and _is_number(ms):
        yield now + int(float(ms))
    value = (headers.get("retry-after") or "").strip()
    if _is_number(value):
        yield now + int(float(value) * 1000)
    elif value:
        when = _http_date(value)
        if when is not None:
            yield when


def _anthropic(headers: Mapping[str, str]) -> Iterator[int]:
    for kind in _CLASSIC:
        if headers.get(f"anthropic-ratelimit-{kind}-remaining", "").strip() == "0":
            when = _iso(headers.get(f"anthropic-ratelimit-{kind}-reset", ""))
            if when is not None:
                yield when
    # Subscription (unified) windows: anthropic-ratelimit-unified[-<window>]-status: rejected
    for name, value in headers.items():
        match = re.fullmatch(r"anthropic-ratelimit-unified(-[a-z0-9_]+)?-status", name.lower())
        if match and value.strip().lower() == "rejected":
            reset = headers.get(f"anthropic-ratelimit-unified{match.group(1) or ''}-reset", "")
            if _is_number(reset):
                yield int(float(reset) * 1000)


def _openai(headers: Mapping[str, str], now: int) -> Iterator[int]:
    for kind in ("requests", "tokens"):
        if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
            wait = _duration_ms(headers.get(f"x-ratelimit-reset-{kind}", ""))
            if wait is not None:
                yield now + wait


def _codex_headers(headers: Mapping[str, str], now: int) -> Iterator[int]:
    for window in ("primary", "secondary"):
        used = headers.get(f"x-codex-{window}-used-percent", "")
        if not (_is_number(used) and float(used) >= 100):
            continue
        at = headers.get(f"x-codex-{window}-reset-at", "")
        after = headers.get(f"x-codex-{window}-reset-after-seconds", "")
        if _is_number(at):
            yield int(float(at) * 1000)
        elif _is_number(after):
            yield now + int(float(after) * 1000)


def _codex_body(body: str, now: int) -> Iterator[int]:
    if "usage_limit_reached" not in body:
        return
    try:
        error: Any = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return
    if not isinstance(error, dict) or error.get("type") != "usage_limit_reached":
        return
    at, after = error.get("resets_at"), error.get("resets_in_seconds")
    if _is_number(at):
        yield int(float(str(at)) * 1000)
    elif _is_number(after):
        yield now + int(float(str(after)) * 1000)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == value and value >= 0
    return isinstance(value, str) and re.fullmatch(r"\d+(?:\.\d+)?", value.strip()) is not None


def _http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso(value: str) -> int | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(when.timestamp() * 1000) if when.tzinfo is not None else None


def _duration_ms(value: str) -> int | None:
    """OpenAI's reset durations: ``1s``, ``6m0s``, ``1h2m3.5s``, ``20ms``."""
    text = value.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    return int(sum(float(n) * scale[u] for n, u in parts))
