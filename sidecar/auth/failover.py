"""Failover decisions, pure: what an upstream's error answer means (OpenClaw 2026.9.6's
``classifyFailoverSignal`` for an HTTP status and its body), whether the request moves on to the
next profile, and whether the profile itself is marked (``resolveAuthProfileFailureReason``).

A request moves on for the failures another account of the same provider may not share: a rate
or usage limit, an overloaded answer, a billing or credit failure. The profile is marked for
what is its own fault; an overload is the provider's, so it rotates without a cooldown.
"""

from __future__ import annotations

import re
from typing import Final

from sidecar.auth import error_messages as msgs
from sidecar.auth.error_messages import Reason
from sidecar.sources.openclaw.usage import FailureReason

FAILS_OVER: Final = frozenset({"rate_limit", "overloaded", "billing"})
# resolveAuthProfileFailureReason (2026.9.6): what marks the profile. Overloaded, server_error,
# format, context_overflow and no_error_details never do. A 404 is model_not_found to OpenClaw,
# which only calls model endpoints; a proxy also forwards files, batches and any other path, so
# a 404 does not mark the profile either.
_PROFILE_FAILURES: Final[dict[str, FailureReason]] = {
    "rate_limit": "rate_limit",
    "timeout": "timeout",
    "auth": "auth",
    "billing": "billing",
    "auth_permanent": "auth_permanent",
    "session_expired": "session_expired",
}
_OPENAI_CODES: Final[dict[str, Reason]] = {
    "SERVER_ERROR": "server_error",
    "INSUFFICIENT_QUOTA": "billing",
}
_TIMING_5XX: Final = frozenset({499, 504, 522, 524})


def classify(status: int, body: str, provider: str) -> Reason | None:
    """OpenClaw's reason for an error answer of ``status`` with ``body`` from ``provider``
    (None: no failure it knows, e.g. a success or a 409)."""
    if status < 400:
        return None
    info = msgs.api_error(body)
    message = msgs.from_message(body) or msgs.from_error_type(info.type)
    plugin = _provider_rule(provider, body, info.code)
    code = msgs.from_code(info.code)
    if plugin is not None:
        effective: Reason | None = plugin
    elif code == "format":
        effective = "format"
    else:
        effective = _merge(message, code)
    if code == "auth_permanent":
        return code
    by_status = _from_status(status, body, effective, provider, preserve=plugin is not None)
    return by_status or code or effective


def fails_over(reason: Reason | None) -> bool:
    """Whether a request answered with ``reason`` is sent again with the next profile."""
    return reason in FAILS_OVER


def profile_failure(reason: Reason | None) -> FailureReason | None:
    """What the answer counts against the profile that got it (None: nothing)."""
    return _PROFILE_FAILURES.get(reason) if reason is not None else None


def _merge(message: Reason | None, detail: Reason | None) -> Reason | None:
    """``mergeMessageAndDetailClassification``: billing beats rate_limit, a format reading
    gives way to the other."""
    if message is None or detail is None:
        return message or detail
    if message == "context_overflow":
        return message
    if detail == "context_overflow" or (detail == "billing" and message == "rate_limit"):
        return detail
    return detail if message == "format" else message


def _provider_rule(provider: str, body: str, code: str | None) -> Reason | None:
    """The provider plugins' own ``classifyFailoverReason`` (openai, openrouter)."""
    if provider in ("openai", "openai-codex"):
        return _OPENAI_CODES.get((code or "").strip().upper())
    if provider == "openrouter":
        if re.search(
            r"\b(?:api\s+key\s+budget|key)\s+limit\s*(?:exceeded|reached|hit)\b", body, re.I
        ):
            return "billing"
        if re.search(r"provider returned error", body, re.I):
            return "timeout"
    return None


def _from_status(
    status: int, body: str, effective: Reason | None, provider: str, *, preserve: bool
) -> Reason | None:
    """``classifyFailoverClassificationFromHttpStatus``."""
    if status == 402:
        return msgs.classify_402(body) if body.strip() else "billing"
    if status == 429:
        return "billing" if _is_billing_429(body, effective, provider) else "rate_limit"
    if status in (401, 403):
        if preserve and effective is not None:
            return effective
        if msgs.is_auth_permanent(body):
            return "auth_permanent"
        return "billing" if effective == "billing" else "auth"
    if status == 408:
        return "timeout"
    if status == 410:
        keep = effective in ("session_expired", "billing", "auth_permanent", "auth")
        return effective if keep else "timeout"
    return _from_other_status(status, body, effective)


def _from_other_status(status: int, body: str, effective: Reason | None) -> Reason | None:
    if effective == "context_overflow":
        return effective
    if status == 404:
        keep = ("session_expired", "billing", "auth_permanent", "auth", "format")
        return effective if effective in keep else "model_not_found"
    if status == 529:
        return "overloaded"
    if status == 499 or 500 <= status < 600:
        if effective in ("overloaded", "server_error") or (status >= 500 and effective == "format"):
            return effective
        return "timeout" if status in _TIMING_5XX else "server_error"
    if status in (400, 422):
        if effective is not None and effective != "server_error":
            return effective
        return "format" if body.strip() else None
    return None


def _is_billing_429(body: str, effective: Reason | None, provider: str) -> bool:
    """A 429 is billing when its text says so, except OpenClaw's ambiguous "insufficient
    account balance" without a billing error type (xai, moonshot and kimi excepted)."""
    ambiguous = bool(
        re.search(r"\binsufficient\s+account\s+balance\b", body, re.I)
    ) and not _billing_error_type(body)
    if effective == "billing" and not ambiguous:
        return True
    if not body or not msgs.is_billing(body):
        return False
    return any(p in provider for p in ("xai", "moonshot", "kimi")) or not ambiguous


def _billing_error_type(body: str) -> bool:
    kind = (msgs.api_error(body).type or "").lower()
    return bool(kind) and (msgs.is_billing(kind) or msgs.is_billing(kind.replace("_", " ")))
