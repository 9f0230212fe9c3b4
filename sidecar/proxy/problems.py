"""Errors the sidecar makes itself, in the provider's own error shape so the agent's SDK shows
the message, with the stable code in ``X-OpenClaw-Sidecar-Error``.
"""

from __future__ import annotations

import json
from typing import Final

from sidecar.errors import SidecarError
from sidecar.providers.catalog import ErrorStyle, ProviderSpec

ERROR_HEADER: Final = b"x-openclaw-sidecar-error"
_TYPE_BY_STATUS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def style_for(provider: ProviderSpec | None) -> ErrorStyle:
    """The error shape an agent talking to ``provider`` expects (OpenAI's when unknown)."""
    return "openai" if provider is None else provider.error_style


def error_type(status: int, style: ErrorStyle) -> str:
    """The provider-style ``type`` for an HTTP status."""
    # Anthropic's SDKs treat overloaded_error as retryable, which suits a 503.
    if status == 503 and style == "anthropic":
        return "overloaded_error"
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_payload(error: SidecarError, style: ErrorStyle) -> dict[str, object]:
    kind = error_type(error.status, style)
    if style == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": error.message}}
    return {"error": {"message": error.message, "type": kind, "code": error.code}}


def error_body(
    error: SidecarError, style: ErrorStyle
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and JSON body of the response that reports ``error``."""
    body = json.dumps(error_payload(error, style), ensure_ascii=False).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (ERROR_HEADER, error.code.encode("ascii")),
    ]
    if error.retry_after_s is not None:
        headers.append((b"retry-after", str(error.retry_after_s).encode("ascii")))
    return error.status, headers, body
