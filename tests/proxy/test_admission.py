"""Tests for sidecar.proxy.admission: the answer a refused connection gets."""

from __future__ import annotations

import json

from sidecar.proxy.admission import HeadTimeout, TooManyConnections, refusal_bytes


def test_refusal_bytes_are_a_whole_closing_answer() -> None:
    """A refusal is a complete HTTP/1.1 response in the OpenAI error shape, framed by its
    Content-Length and announcing the close (RFC 9110 §15.5.9 for the 408)."""
    data = refusal_bytes(HeadTimeout("the request head did not arrive within 1 s"))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 408 Request Timeout",
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"x-openclaw-sidecar-error: request_timeout",
        b"connection: close",
    ]
    assert json.loads(body) == {
        "error": {
            "message": "the request head did not arrive within 1 s",
            "type": "invalid_request_error",
            "code": "request_timeout",
        }
    }


def test_too_many_connections_is_a_503() -> None:
    """Over the cap: 503, which clients treat as retryable."""
    assert refusal_bytes(TooManyConnections("full")).startswith(
        b"HTTP/1.1 503 Service Unavailable\r\n"
    )
