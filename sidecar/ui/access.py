"""Who may use the page, pure over the request's headers: the listener's own rule (its client
token when it has one, else loopback only, with the Host checked against DNS rebinding), and
for the one action a same-origin request carrying the page's anti-forgery token."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Sequence
from typing import Final

from sidecar.config import Listener
from sidecar.proxy.headers import client_token_from, tokens_match

# What a browser answers with the token typed as the password (any user name).
CHALLENGE: Final = 'Basic realm="openclaw-sidecar", charset="UTF-8"'
CSRF_HEADER: Final = "x-openclaw-csrf"
RawHeaders = Sequence[tuple[bytes, bytes]]


def header(headers: RawHeaders, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_of(headers: RawHeaders) -> str | None:
    """The client token as the proxy takes it (Bearer, x-api-key, X-OpenClaw-Token), or the
    password of HTTP Basic, which is what a browser sends once it has asked for it."""
    token = client_token_from(headers)
    if token is not None:
        return token
    scheme, _, encoded = (header(headers, b"authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def host_name(host: str) -> str:
    """The host of a Host header, without its port (``[::1]:18801`` is ``::1``)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback_host(host: str | None, listener: Listener) -> bool:
    """Whether the Host names this machine: a page on a token-less (loopback) listener must
    not be readable through another name that resolves here (DNS rebinding)."""
    if not host:
        return False
    name = host_name(host).lower()
    if name in ("localhost", listener.host.lower()):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(listener: Listener, headers: RawHeaders) -> str | None:
    """Why the page is refused to this request (``token``, ``host``), or None."""
    expected = listener.client_token
    if expected is not None:
        return None if tokens_match(token_of(headers), expected.reveal()) else "token"
    return None if is_loopback_host(header(headers, b"host"), listener) else "host"


def forgery(headers: RawHeaders, scheme: str, csrf: str) -> str | None:
    """Why a state-changing request is not the page's own (or None): another site's, by
    Fetch Metadata or Origin; not JSON (a form can send no other type without a preflight);
    without the token only the page holds."""
    site = header(headers, b"sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"a {site} request"
    origin = header(headers, b"origin")
    if origin is not None and origin != f"{scheme}://{header(headers, b'host')}":
        return "another origin"
    media = (header(headers, b"content-type") or "").partition(";")[0].strip().lower()
    if media != "application/json":
        return "not JSON"
    given = header(headers, CSRF_HEADER.encode()) or ""
    if not hmac.compare_digest(given.encode(), csrf.encode()):
        return "no page token"
    return None
