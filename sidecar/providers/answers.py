"""Reading a token endpoint's JSON answer the same way for every flavour: the object, its string
fields, a sane lifetime, the RFC 6749 §5.2 error code, and which codes a message may name (any
other text could echo a token). Pure."""

from __future__ import annotations

import json
from typing import Final

# Codes after which only a new login helps: RFC 6749 §5.2 and OpenAI's refresh_token_* family
# (the Codex CLI treats these as permanent failures; OpenClaw 2026.9.6 adds invalid_refresh_token,
# openai-chatgpt-oauth-token.runtime TOKEN_FAILURE_REASON_BY_CODE).
REJECTED: Final = frozenset(
    {"invalid_grant", "invalid_token", "unauthorized_client", "invalid_refresh_token"}
    | {"refresh_token_reused", "refresh_token_expired", "refresh_token_invalidated"}
)
# Other codes a message may name. Anything else is provider text that could echo a token.
NAMEABLE: Final = (
    REJECTED
    | {"invalid_request", "invalid_client", "invalid_scope"}
    | {"unsupported_grant_type", "server_error", "temporarily_unavailable", "rate_limit_exceeded"}
)
# A sanity bound: more than ten years is not a lifetime but a broken answer.
MAX_EXPIRES_IN: Final = 10 * 366 * 86_400


def json_object(body: bytes) -> dict[str, object] | None:
    """The body as a JSON object, or None for anything else (HTML, a list, bad bytes)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return data if isinstance(data, dict) else None


def string(data: dict[str, object] | dict[object, object], key: str) -> str | None:
    """A non-empty string field (trimmed strings stay as sent), else None."""
    value = data.get(key)
    return value if isinstance(value, str) and value.strip() else None


def lifetime_ms(expires_in: object) -> int | None:
    """``expires_in`` seconds as milliseconds, if it is a sane positive number."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        return None
    if not 0 < expires_in <= MAX_EXPIRES_IN:  # also refuses NaN and infinity
        return None
    return int(expires_in * 1000)


def error_code(data: dict[str, object] | None) -> str | None:
    """RFC 6749 §5.2 ``{"error": "invalid_grant"}``, or OpenAI's ``{"error": {"code": ...}}``."""
    error = data.get("error") if data is not None else None
    if isinstance(error, dict):
        error = error.get("code") or error.get("type")
    return error if isinstance(error, str) else None


def is_rejection(status: int, code: str | None) -> bool:
    """Whether an error answer means the grant is refused for good (a new login helps)."""
    return status in (400, 401, 403) and code in REJECTED


def shown_code(code: str | None) -> str:
    """How a message may name an error code: itself when known, never provider text."""
    if code in NAMEABLE:
        return str(code)
    return "an unrecognised error" if code else "no error code"
