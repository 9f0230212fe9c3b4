"""Tests for sidecar.proxy.edge: the requests refused before anything reads them."""

from __future__ import annotations

import pytest

from sidecar.proxy.edge import refusal

CL, TE = b"content-length", b"transfer-encoding"


@pytest.mark.parametrize(
    ("method", "version", "headers", "expected"),
    [
        ("POST", "1.1", [(CL, b"5")], None),
        ("POST", "1.1", [(CL, b"0005")], None),
        ("POST", "1.1", [(CL, b"5"), (b"Content-Length", b"5")], None),
        ("POST", "1.1", [(CL, b"5, 5")], None),
        ("POST", "1.1", [(TE, b"chunked")], None),
        ("POST", "1.1", [(b"Transfer-Encoding", b" Chunked ")], None),
        ("GET", "1.1", [], None),
        ("GET", "1.0", [], None),
        ("PATCH", "2", [(CL, b"0")], None),
        ("POST", "1.1", [(CL, b"5"), (TE, b"chunked")], "invalid_framing"),
        ("POST", "1.1", [(TE, b"chunked"), (CL, b"0")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"5"), (CL, b"6")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"5, 6")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"-1")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"+5")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"0x5")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"5 5")], "invalid_framing"),
        ("POST", "1.1", [(CL, b"1" * 19)], "invalid_framing"),
        ("POST", "1.1", [(TE, b"gzip, chunked")], "invalid_framing"),
        ("POST", "1.1", [(TE, b"chunked, chunked")], "invalid_framing"),
        ("POST", "1.1", [(TE, b"chunked"), (TE, b"chunked")], "invalid_framing"),
        ("POST", "1.1", [(TE, b"identity")], "invalid_framing"),
        ("POST", "1.0", [(TE, b"chunked")], "invalid_framing"),
        ("TRACE", "1.1", [], "method_not_allowed"),
        ("trace", "1.1", [], "method_not_allowed"),
        ("CONNECT", "1.1", [], "method_not_allowed"),
        ("TRACE", "1.1", [(CL, b"5"), (TE, b"chunked")], "method_not_allowed"),
    ],
)  # fmt: skip
def test_refusal(
    method: str, version: str, headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    """One well-formed Content-Length, or chunked alone on HTTP/1.1, or neither; never TRACE
    or CONNECT (RFC 9112 §6.1, §6.3)."""
    refused = refusal(method, version, headers)
    assert (refused.code if refused else None, refused.status if refused else None) == (
        expected,
        {None: None, "invalid_framing": 400, "method_not_allowed": 405}[expected],
    )
