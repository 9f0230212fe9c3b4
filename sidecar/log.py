"""structlog set-up: JSON lines on stderr, with a redaction processor that runs last.

This is the one module with global state (structlog's configuration), set once by the CLI.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from sidecar.secret import Secret, mask

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


def redact_value(value: Any) -> Any:
    if isinstance(value, Secret):
        return repr(value)
    if isinstance(value, str):
        return _SECRET_SHAPES.sub(_mask_shape, value) if _may_hold_secret(value) else value
    if isinstance(value, Mapping):
        return {
            k: ("***" if str(k).lower() in _SECRET_KEYS else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else would be rendered by its repr (JSONRenderer's fallback), and an exception's
    # repr can quote a token: redact that text here, before the renderer sees the object.
    return redact_value(repr(value))


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Processor: masks Secrets, secret-named fields and credential-shaped strings."""
    return {
        k: ("***" if k.lower() in _SECRET_KEYS else redact_value(v)) for k, v in event_dict.items()
    }


def configure(level: str = "info", stream: Any = None) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
