"""Header rules: what goes upstream and what comes back, with a provider's ``Injection`` applied.

Pure functions over ASGI-style header lists; order and duplicates are preserved.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Final

from sidecar.providers.injection import ANTHROPIC_BETA, Injection

RawHeaders = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1; proxy-connection is not standard but old clients still send it.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# RFC 9112 §6: the body's framing. The caller's is never forwarded: the upstream request is
# framed by the sidecar (Content-Length it counted, or chunked), so no caller can make the two
# hops disagree on where a body ends.
FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})
INBOUND_CREDENTIALS: Final = frozenset(
    {b"authorization", b"x-api-key", b"api-key", b"cookie", b"chatgpt-account-id"}
)
OPENCLAW_PREFIX: Final = b"x-openclaw-"
CLIENT_TOKEN_HEADERS: Final = (b"x-api-key", b"api-key", b"x-openclaw-token")
# What never goes upstream from the client (with Connection's own names and x-openclaw-*):
# hop-by-hop, the client's credentials, its framing and its Host.
_NOT_FORWARDED: Final = HOP_BY_HOP | INBOUND_CREDENTIALS | FRAMING | {b"host"}


def connection_named(headers: Sequence[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in ``Connection:``, which are hop-by-hop for this message."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    )


def _is_hop_by_hop(name: bytes, named: frozenset[bytes]) -> bool:
    return name in HOP_BY_HOP or name in named


def outbound_request_headers(
    inbound: Sequence[tuple[bytes, bytes]], injection: Injection
) -> RawHeaders:
    """The client's headers minus hop-by-hop, framing, credentials and Host, plus the
    injection."""
    named = connection_named(inbound)
    kept = []
    for name, value in inbound:
        lowered = name.lower()
        if not (
            lowered in _NOT_FORWARDED or lowered in named or lowered.startswith(OPENCLAW_PREFIX)
        ):
            kept.append((name, value))
    return _injected(kept, injection)


def _injected(headers: RawHeaders, injection: Injection) -> RawHeaders:
    replaced = {name.encode("ascii") for name, _ in injection.set}
    out = [(name, value) for name, value in headers if name.lower() not in replaced]
    out += [_encoded(pair) for pair in injection.set]
    present = {name.lower() for name, _ in out}
    out += [_encoded(pair) for pair in injection.set_if_absent if pair[0].encode() not in present]
    if injection.merge_beta is not None:
        out = _merged_beta(out, injection.merge_beta)
    return out


def _encoded(pair: tuple[str, str]) -> tuple[bytes, bytes]:
    return (pair[0].encode("ascii"), pair[1].encode("ascii"))


def _merged_beta(headers: RawHeaders, flag: str) -> RawHeaders:
    """One anthropic-beta header: the client's flags in order, deduplicated, plus ``flag``."""
    name = ANTHROPIC_BETA.encode()
    positions = [i for i, (key, _) in enumerate(headers) if key.lower() == name]
    flags: list[bytes] = []
    for i in positions:
        for item in headers[i][1].split(b","):
            if item.strip() and item.strip() not in flags:
                flags.append(item.strip())
    if flag.encode() not in flags:
        flags.append(flag.encode())
    merged = (name, b",".join(flags))
    out = [pair for i, pair in enumerate(headers) if i not in positions]
    out.insert(positions[0] if positions else len(out), merged)
    return out


def response_headers(upstream: Sequence[tuple[bytes, bytes]]) -> RawHeaders:
    """The upstream's headers minus hop-by-hop; the body passes as raw bytes, so the
    content-encoding and content-length stay as received."""
    named = connection_named(upstream)
    return [(name, value) for name, value in upstream if not _is_hop_by_hop(name.lower(), named)]


def body_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length; None when it has none (chunked, or no body). The edge
    (``proxy/edge.py``) has already refused a malformed, repeated or contradicted one."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value.partition(b",")[0])
    return None


def declares_body(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether a request has a body: RFC 9112 §6.3, a request with neither Content-Length nor
    Transfer-Encoding has none, and must not gain chunked framing on the way upstream."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value != b"0"):
            return True
    return False


def client_token_from(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The caller's token: ``Authorization: Bearer``, x-api-key, api-key or x-openclaw-token."""
    first: dict[bytes, bytes] = {}
    for name, value in headers:
        first.setdefault(name.lower(), value.strip())
    scheme, _, token = first.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and token.strip():
        return token.strip().decode("latin-1")
    for name in CLIENT_TOKEN_HEADERS:
        if first.get(name):
            return first[name].decode("latin-1")
    return None


def tokens_match(given: str | None, expected: str) -> bool:
    """Whether the caller's token is the expected one, in constant time."""
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
