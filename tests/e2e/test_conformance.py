"""Bytes pass through unchanged (issue #17 §6): a table of unusual but valid requests, sent over
raw sockets to the real ``serve`` process, each compared with what a raw-socket upstream
received, minus the credential and the hop-by-hop headers. Both upstream transports.

What the sidecar may change, and nothing else: Host (the upstream's), the body framing (its
own Content-Length, or chunked; the chunk boundaries are its own), the hop-by-hop and inbound
credential headers (dropped) and the credential header (added last).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import Leaks, Running, SidecarFactory, provider_tables
from tests.e2e.rawhttp import RawClient, chunked, head
from tests.fakes.raw_upstream import RawRequest, RawUpstream

pytestmark = pytest.mark.e2e

FRAMING = (b"host", b"content-length", b"transfer-encoding")
CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "héllo ✓ 日本語 🙂"}]}
JSON_BODY = json.dumps(CHAT, ensure_ascii=False).encode("utf-8")
LARGE = random.Random(17).randbytes(3 * 1024 * 1024)  # past the 1 MiB replay limit


def zstd_frame(data: bytes) -> bytes:
    """A valid Zstandard frame (RFC 8878) holding ``data`` (< 256 bytes) in one raw block; the
    sidecar never decodes bodies, so no zstd library is needed to make or check one."""
    assert len(data) < 256
    descriptor = bytes([0b0010_0000])  # single segment, 1-byte content size, no checksum
    block = (1 | len(data) << 3).to_bytes(3, "little")  # last block, raw, its size
    return bytes.fromhex("28b52ffd") + descriptor + bytes([len(data)]) + block + data


@dataclass(frozen=True)
class Case:
    method: str
    target: str  # under /openai, as the client sends it
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: list[bytes] | None = None  # sent chunked when given (``body`` is their join)
    forwarded: list[tuple[str, str]] | None = None  # the headers the upstream gets, if not all

    def wire(self, port: int) -> bytes:
        if self.chunks is not None:
            lines = [*self._lines(), "Transfer-Encoding: chunked"]
            return head(self.method, f"/openai{self.target}", port, *lines) + chunked(*self.chunks)
        length = [f"Content-Length: {len(self.body)}"] if self.body or self.method == "PUT" else []
        return head(self.method, f"/openai{self.target}", port, *self._lines(), *length) + self.body

    def _lines(self) -> list[str]:
        return [f"{name}: {value}" for name, value in self.headers]


CASES = {
    "query-encoded": Case("GET", "/v1/models?b=two%2Fthree&c=%7e&d=%E2%9C%93&e=a+b&f=%25&g=%2f"),
    "query-rfc3986-characters": Case("GET", "/v1/models?q=:@/?!$'()*,;=-._~&x=1"),
    "query-repeated-keys": Case("GET", "/v1/models?tag=a&tag=b&tag=a&tag="),
    "query-empty-values": Case("GET", "/v1/models?a=&b&=c&&d="),
    "path-encoded": Case("GET", "/v1/files/file%20name%2Cv%7E1%7e%C3%A9%3B;x=1"),
    "json-non-ascii": Case(
        "POST",
        "/v1/chat/completions",
        [("Content-Type", "application/json; charset=utf-8")],
        JSON_BODY,
    ),
    "large-body": Case("POST", "/v1/files", [("Content-Type", "application/octet-stream")], LARGE),
    "chunked-body": Case(
        "POST",
        "/v1/chat/completions",
        [("Content-Type", "application/json")],
        JSON_BODY[:1] + LARGE[:65536] + JSON_BODY[1:],
        chunks=[JSON_BODY[:1], LARGE[:65536], JSON_BODY[1:2], JSON_BODY[2:]],
    ),
    "gzip-body": Case(
        "POST",
        "/v1/chat/completions",
        [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        gzip.compress(JSON_BODY, mtime=0),
    ),
    "zstd-body": Case(
        "POST",
        "/v1/responses",
        [("Content-Type", "application/json"), ("Content-Encoding", "zstd")],
        zstd_frame(b'{"model":"gpt-fake","input":"zstd"}'),
    ),
    "repeated-headers": Case(
        "GET",
        "/v1/models",
        [
            ("X-Tag", "a"),
            ("Accept", "text/plain"),
            ("x-tag", "b"),
            ("accept", "application/json"),
            ("X-Empty", ""),
            ("X-Utf8", "héllo ✓"),
            ("X-Spaces", "a  b,  c"),
            ("OpenAI-Beta", "assistants=v2"),
        ],
    ),
    "hop-by-hop-and-credentials-dropped": Case(
        "POST",
        "/v1/chat/completions",
        [
            ("Connection", "keep-alive, X-Drop-Me"),
            ("X-Drop-Me", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Authorization", "Bearer the-callers-own"),
            ("X-OpenClaw-Profile", "openai:main"),
            ("X-Kept", "yes"),
        ],
        b"{}",
        forwarded=[("X-Kept", "yes")],
    ),
    "empty-put": Case("PUT", "/v1/files/f1"),
    "delete": Case("DELETE", "/v1/files/f1?force=true"),
}


@pytest.fixture(scope="module")
def raw() -> Iterator[RawUpstream]:
    with RawUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh_raw(raw: RawUpstream) -> None:
    raw.reset()


@pytest.fixture(scope="module", params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, raw: RawUpstream, transport: str) -> Running:
    return sidecar_factory.start(
        [{"host": "127.0.0.1"}],
        provider_tables(raw.url),
        extra={"upstream": {"transport": transport}},
    )


def framing(case: Case, transport: str) -> list[tuple[bytes, bytes]]:
    """The framing the upstream gets. aiohttp states ``Content-Length: 0`` on a bodiless
    request of a method that may carry a body (DELETE here): the same message (RFC 9112 §6.3)."""
    if case.chunks is not None:
        return [(b"transfer-encoding", b"chunked")]
    if case.body or case.method == "PUT" or (transport == "aiohttp" and case.method == "DELETE"):
        return [(b"content-length", str(len(case.body)).encode())]
    return []


def view(request: RawRequest) -> tuple[object, ...]:
    """What the upstream got, the framing and credential headers set apart."""
    others = [
        (n.lower(), v) for n, v in request.headers if n.lower() not in (*FRAMING, b"authorization")
    ]
    framing = [(n.lower(), v) for n, v in request.headers if n.lower() in FRAMING[1:]]
    return (
        request.method,
        request.target,
        others,
        request.header(b"authorization"),
        framing,
        request.body,
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_upstream_gets_what_the_client_sent(
    sidecar: Running, raw: RawUpstream, leaks: Leaks, transport: str, case: Case
) -> None:
    """Method, target (path and query byte for byte, only the route prefix swapped for the
    base path), every other header in order and repeated, and the body, unchanged."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(case.wire(port))
    [got] = raw.wait_for(1)
    kept = case.headers if case.forwarded is None else case.forwarded
    key = sidecar.canaries.keys["openai:main"]
    assert (answer.status, view(got)) == (
        200,
        (
            case.method.encode(),
            f"/oa{case.target}".encode(),
            [(n.lower().encode(), v.encode("utf-8")) for n, v in kept],
            [f"Bearer {key}".encode()],
            framing(case, transport),
            case.body,
        ),
    )
    assert got.header(b"host") == [raw.url.removeprefix("http://").encode()]


def test_what_is_not_passed_byte_for_byte(
    sidecar: Running, raw: RawUpstream, leaks: Leaks, transport: str
) -> None:
    """The documented exceptions. Characters RFC 3986 forbids in a URI (``"``, ``<``, ``>``)
    are percent-encoded (httpx's URL does it, for both transports). A header value that is not
    UTF-8 (obs-text, RFC 9110 §5.5) passes as it is with httpx; aiohttp writes header values
    as UTF-8, so it sends the UTF-8 of their Latin-1 reading."""
    port = sidecar.sidecar.ports[0]
    request = head("GET", '/openai/v1/models?q="<a>"', port).replace(
        b"\r\n\r\n", b"\r\nX-Latin1: caf\xe9\r\n\r\n"
    )
    with RawClient(port, leaks) as client:
        assert client.request(request).status == 200
    [got] = raw.wait_for(1)
    latin1 = b"caf\xc3\xa9" if transport == "aiohttp" else b"caf\xe9"
    assert (got.target, got.header(b"x-latin1")) == (b"/oa/v1/models?q=%22%3Ca%3E%22", [latin1])
