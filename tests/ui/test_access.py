"""The page's access rule and anti-forgery checks, pure over headers."""

from __future__ import annotations

import base64

import pytest

from sidecar.config import Listener
from sidecar.secret import Secret
from sidecar.ui.access import forgery, is_loopback_host, refusal, token_of

TOKEN = "client-token-0123456789abcdef"
LOOPBACK = Listener(port=18801)
GUARDED = Listener(host="0.0.0.0", port=18443, client_token=Secret(TOKEN), plaintext=True)
CSRF = "page-token"


def basic(user: str, password: str) -> tuple[bytes, bytes]:
    return (b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode()))


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([(b"Authorization", f"Bearer {TOKEN}".encode())], TOKEN),
        ([(b"X-OpenClaw-Token", TOKEN.encode())], TOKEN),
        ([basic("anyone", TOKEN)], TOKEN),
        ([basic("", "pass:with:colons")], "pass:with:colons"),
        ([basic("user", "")], None),
        ([(b"authorization", b"Basic not-base64!")], None),
        ([(b"authorization", b"Basic " + base64.b64encode(b"\xff:\xfe"))], None),
        ([(b"authorization", b"Digest x")], None),
        ([], None),
    ],
)
def test_token_of(headers: list[tuple[bytes, bytes]], token: str | None) -> None:
    """The proxy's ways of sending the token, and a browser's Basic password."""
    assert token_of(headers) == token


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:18801", True),
        ("localhost:18801", True),
        ("LOCALHOST", True),
        ("[::1]:18801", True),
        ("127.9.9.9", True),
        ("evil.example:18801", False),
        ("127.0.0.1.evil.example", False),
        ("10.0.0.5:18801", False),
        ("", False),
        (None, False),
    ],
)
def test_a_token_less_page_answers_only_to_this_machines_names(
    host: str | None, allowed: bool
) -> None:
    """DNS rebinding: another name resolving to 127.0.0.1 does not get the page."""
    assert is_loopback_host(host, LOOPBACK) is allowed


def test_refusal() -> None:
    """A listener with a token wants it (whatever the Host); one without, a loopback Host."""
    assert [
        refusal(GUARDED, [(b"host", b"sidecar.internal")]),
        refusal(GUARDED, [(b"host", b"x"), basic("u", "wrong")]),
        refusal(GUARDED, [(b"host", b"sidecar.internal"), basic("u", TOKEN)]),
        refusal(LOOPBACK, [(b"host", b"127.0.0.1:18801")]),
        refusal(LOOPBACK, [(b"host", b"rebound.example")]),
    ] == ["token", "token", None, None, "host"]


OWN = [
    (b"host", b"127.0.0.1:18801"),
    (b"origin", b"http://127.0.0.1:18801"),
    (b"sec-fetch-site", b"same-origin"),
    (b"content-type", b"application/json"),
    (b"x-openclaw-csrf", CSRF.encode()),
]


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in OWN if k != name]


def replaced(name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    return [*without(name), (name, value)]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (OWN, None),
        (without(b"origin"), None),
        (without(b"sec-fetch-site"), None),
        (replaced(b"sec-fetch-site", b"cross-site"), "a cross-site request"),
        (replaced(b"sec-fetch-site", b"same-site"), "a same-site request"),
        (replaced(b"origin", b"http://evil.example"), "another origin"),
        (replaced(b"origin", b"https://127.0.0.1:18801"), "another origin"),
        (replaced(b"content-type", b"text/plain"), "not JSON"),
        (replaced(b"content-type", b"application/x-www-form-urlencoded"), "not JSON"),
        (without(b"x-openclaw-csrf"), "no page token"),
        (replaced(b"x-openclaw-csrf", b"guess"), "no page token"),
    ],
)
def test_forgery(headers: list[tuple[bytes, bytes]], reason: str | None) -> None:
    """Only the page's own JSON request with its token may change state."""
    assert forgery(headers, "http", CSRF) == reason
