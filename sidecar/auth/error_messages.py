"""OpenClaw 2026.9.6's reading of a provider's error text (``failover/message-patterns.ts`` and
``classifyFailoverClassificationFromMessage`` in ``classify-core.ts``), ported table for table:
what a message says went wrong, before the HTTP status is taken into account.

Patterns match the lower-cased text, as OpenClaw's ``matchesErrorPatterns`` does. Only what an
HTTP answer can carry is ported (no CLI-runtime, transcript or image-size rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

Reason = Literal[
    "rate_limit",
    "overloaded",
    "billing",
    "auth",
    "auth_permanent",
    "timeout",
    "server_error",
    "format",
    "model_not_found",
    "session_expired",
    "context_overflow",
    "no_error_details",
]
Pattern: TypeAlias = "str | re.Pattern[str]"


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


RATE_LIMIT: Sequence[Pattern] = (
    _re(r"rate[_ ]limit|too many requests"),
    _re(
        r"^\s*429\b|\b(?:https?|status(?:[ _-]?code)?|response(?:[ _-]?code)?|"
        r"http(?:[ _-]?status)?)\b[\s:=#\"'(]{0,6}429\b|[\"'](?:status|code)[\"']\s*:\s*429\b|"
        r"\b429\b[\s:)\].,-]*"
        r"(?:rate[_ -]?limit(?:ed|ing)?|too many requests|resource has been exhausted|quota"
        r"(?:\s+(?:exceeded|exhausted|depleted|reached))?)\b"
    ),
    _re(r"too many (?:concurrent )?requests"),
    _re(r"\bthrottl(?:ing[_]?exception|ing|ed)\b"),
    _re(r"\bconcurrency limit\b.*\b(?:breached|reached)\b"),
    "model_cooldown",
    "exceeded your current quota",
    _re(r"\bresource[_ -]?exhausted\b"),
    _re(r"\bquota[_ -]?exceeded\b"),
    "usage limit",
    _re(r"\btpm\b"),
    "tokens per minute",
    "tokens per day",
    "请求过于频繁",
    "调用频率",
    "频率限制",
    "配额不足",
    "配额已用尽",
    "额度不足",
    "额度已用尽",
)
OVERLOADED: Sequence[Pattern] = (
    "overloaded",
    _re(r"\b(?:selected\s+)?model\s+(?:is\s+)?at capacity\b"),
    _re(r"\bservice(?:[_ ]temporarily)?[_ ]unavailable\b"),
    "high demand",
    "high load",
    "服务过载",
    "当前负载过高",
    "访问量过大",
)
SERVER_ERROR: Sequence[Pattern] = (
    "an error occurred while processing",
    "internal server error",
    "internal_error",
    "server_error",
    "bad gateway",
    "gateway timeout",
    "upstream error",
    "upstream connect error",
    "connection reset",
    "内部错误",
    "服务器错误",
    "系统错误",
    "系统繁忙",
    "系统异常",
)
TIMEOUT: Sequence[Pattern] = (
    "timeout",
    "timed out",
    "deadline exceeded",
    "connection error",
    "network error",
    "network request failed",
    "fetch failed",
    "socket hang up",
    _re(r"\boperation was aborted\b"),
    _re(r"\bstream (?:was )?(?:closed|aborted)\b"),
    _re(
        r"\b(?:econn(?:refused|reset|aborted)|enet(?:unreach|reset)|ehost(?:unreach|down)|"
        r"e(?:socket)?timedout|epipe|enotfound|eai_again)\b"
    ),
    "网络错误",
    "网络异常",
    "服务暂时不可用",
    "服务繁忙",
    "请求超时",
    "连接超时",
    "连接错误",
)
BILLING: Sequence[Pattern] = (
    _re(
        r"[\"']?(?:status|code)[\"']?\s*[:=]\s*402\b|\bhttp\s*402\b|\berror(?:\s+code)?\s*[:=]?\s*"
        r"402\b|^\s*402\s+payment"
    ),
    _re(r"\b(?:got|returned|received)\s+(?:a\s+)?402\b(?!\s+records\b)"),
    "payment required",
    "insufficient credits",
    _re(r"used\s+all\s+available\s+credits"),
    _re(r"(?:monthly\s+)?spend(?:ing)?\s+limit"),
    _re(r"insufficient[_ ]quota"),
    _re(r"\b(?:go|free)usagelimiterror\b"),
    "available balance",
    "out of budget",
    "credit balance",
    "plans & billing",
    _re(r"insufficient[_ ]balance"),
    _re(r"\binsufficient\s+\w+\s+balance\b"),
    "insufficient usd or diem balance",
    _re(r"requires?\s+more\s+credits"),
    _re(r"out of extra usage"),
    _re(r"draw from your extra usage"),
    _re(r"extra usage is required(?: for long context requests)?"),
    "余额不足",
    "欠费",
    _re(r"\"code\"\s*:\s*\"InvalidSubscription\""),
    _re(r"\bdoes not have a valid coding\s*plan subscription\b"),
    _re(r"\"code\"\s*:\s*1311\b"),
    _re(r"\bcurrent\s+subscription\s+plan\b.*\b(?:does\s+not|doesn't|not)\b.*\binclude\s+access\b"),
    _re(r"\bmodel\b.*\bnot\s+available\b.*\bcurrent\s+plan\b"),
)
AUTH_PERMANENT: Sequence[Pattern] = (
    _re(r"api[_ ]?key[_ ]?(?:revoked|deactivated|deleted)"),
    _re(r"deactivated[_ ]workspace"),
    "key has been disabled",
    "key has been revoked",
    "account has been deactivated",
    "not allowed for this organization",
)
AUTH: Sequence[Pattern] = (
    _re(
        r"(?:invalid[_ ]?api[_ ]?key(?![a-z0-9])|api[_ ]?key(?:[_ ]?(?:is[_ ]?)?"
        r"(?:invalid(?![a-z0-9])|not[_ ]?valid(?![a-z0-9]))))"
    ),
    _re(r"could not (?:authenticate|validate).*(?:api[_ ]?key|credentials)"),
    "permission_error",
    "incorrect api key",
    "invalid token",
    "authentication",
    "re-authenticate",
    "oauth token refresh failed",
    "unauthorized",
    "forbidden",
    "access denied",
    "insufficient permissions",
    "insufficient permission",
    _re(r"missing scopes?:"),
    "expired",
    _re(r"\b401\b"),
    _re(r"\b403\b"),
    "no credentials found",
    "no api key found",
    _re(r"\bfailed to (?:extract|parse|validate|decode)\b.*\btoken\b"),
    _re(r"\"code\"\s*:\s*1113\b"),
)
FORMAT: Sequence[Pattern] = (
    "string should match pattern",
    "tool_use.id",
    "tool_use_id",
    "invalid request format",
    _re(r"tool call id was.*must be"),
    "does not support assistant message prefill",
    "conversation must end with a user message",
)
# The explicit context-overflow wordings the failover docs of 2026.9.6 list (the full tables
# live in @openclaw/ai); an overflow is neither a profile failure nor a reason to fail over.
CONTEXT_OVERFLOW: Sequence[Pattern] = (
    "request_too_large",
    "input token count exceeds the maximum number of input tokens",
    "input exceeds the maximum number of tokens",
    "input too long for the model",
    "context length exceeded",
    "prompt is too long",
    _re(r"maximum context length"),
    _re(r"context[_ ]length[_ ]exceeded"),
    _re(r"context window"),
)
PERIODIC_USAGE_LIMIT = _re(
    r"\b(?:daily|weekly|monthly)(?:/(?:daily|weekly|monthly))* (?:usage )?limit(?:s)?"
    r"(?: (?:exhausted|reached|exceeded))?\b"
)
_BILLING_HEAD = _re(
    r"^(?:error[:\s-]+)?billing(?:\s+error)?(?:[:\s-]+|$)|^(?:error[:\s-]+)?(?:credit balance|"
    r"insufficient credits?|payment required|http\s*402\b)"
)
_MODEL_NOT_FOUND = (
    _re(r"no endpoints found for"),
    _re(r"\brouter not found\b"),
    _re(r"unknown model"),
    _re(r"model(?:[_\-\s])?not(?:[_\-\s])?found|\bmodel\b.{0,60}?\bnot found\b"),
    _re(r"not_found_error"),
    _re(r"\bnot supported model\b"),
    _re(r"models/[^\s]+ is not found"),
    _re(r"is not a valid model id"),
    _re(r"model(?:_is)?_deactivated|model has been deactivated"),
)
_SESSION_EXPIRED = re.compile(
    r"\b(?:session (?:not found|does not exist|expired|invalid)|conversation (?:not found|does not "
    r"exist|expired|invalid)|no conversation found|no such session|invalid session|(?:session|"
    r"conversation) id not found)\b"
)
_REPLAY_INVALID = _re(
    r"\bprevious_response_id\b.*\b(?:invalid|unknown|not found|does not exist|expired|mismatch)\b"
    r"|\btool_(?:use|call)\.(?:input|arguments)\b.*\b(?:missing|required)\b|\bincorrect role "
    r"information\b|\broles must alternate\b|\binput item id does not belong to this connection\b"
)
_API_TRANSIENT = _re(
    r"internal server error|overload|temporarily unavailable|service unavailable|unknown error|"
    r"server error|bad gateway|gateway timeout|upstream error|backend error|try again later|"
    r"temporarily.+unable|unexpected error"
)


def matches(text: str, patterns: Sequence[Pattern]) -> bool:
    """OpenClaw's ``matchesErrorPatterns``: strings are looked for in the lower-cased text."""
    value = text.lower()
    return any(p.search(value) if isinstance(p, re.Pattern) else p in value for p in patterns)


def is_billing(text: str) -> bool:
    if not text.strip() or len(re.findall(r"(?:^|\n)##\s+\S", text)) > 1:
        return False
    if matches(text, BILLING):
        return True
    if not _BILLING_HEAD.search(text):
        return False
    value = text.lower()
    return any(
        w in value for w in ("upgrade", "credits", "payment", "purchase", "subscription", "plan")
    )


def is_rate_limit(text: str) -> bool:
    return matches(text, RATE_LIMIT)


def is_auth_permanent(text: str) -> bool:
    return matches(text, AUTH_PERMANENT)


@dataclass(frozen=True)
class ApiError:
    """What a JSON error body names (OpenClaw's ``parseApiErrorInfo``)."""

    type: str | None = None
    code: str | None = None


def api_error(text: str) -> ApiError:
    try:
        payload = json.loads(text)
    except ValueError:
        return ApiError()
    if not isinstance(payload, dict):
        return ApiError()
    error = payload.get("error")
    if isinstance(error, dict):
        code, kind = _str(error.get("code")), _str(error.get("type"))
        return ApiError(
            type=kind if kind or code is None else code, code=code or _str(payload.get("code"))
        )
    return ApiError(type=_str(error), code=_str(payload.get("code")))


def _str(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def from_message(text: str) -> Reason | None:
    """``classifyFailoverClassificationFromMessage``, in its order."""
    if not text.strip():
        return None
    value = text.lower()
    if _SESSION_EXPIRED.search(value):
        return "session_expired"
    if any(p.search(value) for p in _MODEL_NOT_FOUND):
        return "model_not_found"
    if re.search(r"\bworkers_ai\b.*\bquota limit exceeded\b", value):
        return "rate_limit"
    if "modelnotreadyexception" in value:
        return "overloaded"
    if matches(text, CONTEXT_OVERFLOW) and not _tpm_rate_limit(text):
        return "context_overflow"
    if _REPLAY_INVALID.search(text):
        return "format"
    return _from_message_rest(text, value)


def _from_message_rest(text: str, value: str) -> Reason | None:
    reason_402 = from_402_text(text)
    if reason_402 is not None:
        return reason_402
    if is_billing(text):
        return "billing"
    if PERIODIC_USAGE_LIMIT.search(text):
        return "rate_limit"  # a billing periodic limit was caught just above
    if is_rate_limit(text):
        return "rate_limit"
    if matches(text, OVERLOADED):
        return "overloaded"
    if re.search(r"\bfinish_reason:\s*error\b|\breason:\s*error\b", value):
        return "server_error"
    if _is_structured_server_error(value) and not (is_auth_permanent(text) or matches(text, AUTH)):
        return "server_error"
    return _from_message_tail(text, value)


def _from_message_tail(text: str, value: str) -> Reason | None:
    if is_auth_permanent(text):
        return "auth_permanent"
    if matches(text, AUTH):
        return "auth"
    if re.fullmatch(r"\s*an unknown error occurred\.?\s*", value):
        return "timeout"
    if _is_server_error(text, value) or _is_json_api_internal_error(text, value):
        return "timeout"
    if matches(text, FORMAT):
        return "format"
    if value.strip() == "unknown error (no error details in response)":
        return "no_error_details"
    if matches(text, TIMEOUT):
        return "timeout"
    return from_error_type(api_error(text).type)


def from_error_type(kind: str | None) -> Reason | None:
    """``classifyCoreFailoverReasonFromErrorType``."""
    return _ERROR_TYPES.get((kind or "").lower())


_ERROR_TYPES: Final[dict[str, Reason]] = {
    "invalid_request_error": "format",
    "server_error": "server_error",
    "upstream_error": "server_error",
    "overloaded_error": "overloaded",
}


def from_code(code: str | None) -> Reason | None:
    """``classifyFailoverReasonFromCode``."""
    normalized = (code or "").strip().upper()
    if normalized == "UNKNOWN_PARAMETER":
        return "format"
    if normalized in _RATE_LIMIT_CODES:
        return "rate_limit"
    if normalized == "DEACTIVATED_WORKSPACE":
        return "auth_permanent"
    if normalized in ("OVERLOADED", "OVERLOADED_ERROR"):
        return "overloaded"
    return None


_RATE_LIMIT_CODES = frozenset(
    {
        "RESOURCE_EXHAUSTED",
        "RATE_LIMIT",
        "RATE_LIMITED",
        "RATE_LIMIT_EXCEEDED",
        "TOO_MANY_REQUESTS",
        "THROTTLED",
        "THROTTLING",
        "THROTTLINGEXCEPTION",
        "THROTTLING_EXCEPTION",
    }
)


def _tpm_rate_limit(text: str) -> bool:
    return bool(re.search(r"\btpm\b|tokens per minute", text, re.IGNORECASE))


def _is_structured_server_error(value: str) -> bool:
    kind = (api_error(value).type or "").lower()
    if kind in ("server_error", "upstream_error"):
        return True
    compact = value.replace(" ", "")
    return any(
        marker in compact
        for marker in (
            '"type":"server_error"',
            '"code":"server_error"',
            '"type":"upstream_error"',
            '"code":"upstream_error"',
        )
    )


def _is_server_error(text: str, value: str) -> bool:
    if re.search(r"\bhttp\s+5\d\d\b", value):
        return True
    return matches(text, SERVER_ERROR)


def _is_json_api_internal_error(text: str, value: str) -> bool:
    if '"type":"api_error"' not in value.replace(" ", ""):
        return False
    if is_billing(text) or matches(text, AUTH) or is_auth_permanent(text):
        return False
    return bool(_API_TRANSIENT.search(text))


# --- HTTP 402 (``classify402Message``) -------------------------------------------------------

_BILLING_402 = (
    "insufficient credits",
    "insufficient quota",
    "credit balance",
    "insufficient balance",
    "plans & billing",
    "add more credits",
    "top up",
)
_BILLING_402_PLAN = ("upgrade your plan", "upgrade plan", "current plan", "subscription")
_RAW_402 = _re(
    r"[\"']?(?:status|code)[\"']?\s*[:=]\s*402\b|\bhttp\s*402\b|\berror(?:\s+code)?\s*[:=]?\s*402\b|"
    r"\b(?:got|returned|received)\s+(?:a\s+)?402\b|^\s*402\s+(?:payment required\b|.*used up your "
    r"points\b|no available asset for api access\b)"
)
_LEADING_402 = _re(
    r"^(?:error[:\s-]+)?(?:(?:http\s*)?402(?:\s+payment required)?|payment required)(?:[:\s-]+|$)"
)


def classify_402(message: str) -> Reason:
    """A 402 is billing unless its text reads as a temporary usage window or spend limit."""
    text = _LEADING_402.sub("", message.lower(), count=1)
    text = re.sub(r"\bhttps?://[^\s<>\"']+", " ", text).strip()
    if not text:
        return "billing"
    if "subscription quota limit" in text and (
        "automatic quota refresh" in text or "rolling time window" in text
    ):
        return "rate_limit"
    if _explicit_402_billing(text):
        return "billing"
    if is_rate_limit(text) or _retryable_402(text):
        return "rate_limit"
    return "billing"


def from_402_text(raw: str) -> Reason | None:
    if _RAW_402.search(raw):
        return classify_402(raw)
    return None


def _explicit_402_billing(text: str) -> bool:
    return (
        any(h in text for h in _BILLING_402)
        or (any(h in text for h in _BILLING_402_PLAN) and "limit" in text)
        or "billing hard limit" in text
        or "hard limit reached" in text
        or ("maximum allowed" in text and "limit" in text)
    )


def _retryable_402(text: str) -> bool:
    periodic = any(h in text for h in ("daily", "weekly", "monthly"))
    spend = "spend limit" in text or "spending limit" in text
    scoped = "organization" in text or "workspace" in text
    retry = any(h in text for h in ("try again", "retry", "temporary", "cooldown"))
    limit_hint = any(h in text for h in ("usage limit", "rate limit", "organization usage"))
    result = any(h in text for h in ("billing period", "exceeded", "reached", "exhausted"))
    return (
        (retry and limit_hint)
        or (periodic and ("usage limit" in text or spend))
        or (periodic and "limit" in text and "reset" in text)
        or (scoped and "limit" in text and (spend or result))
    )
