"""HTTP framing at the real ``serve`` process (issue #17 §2): no request smuggling, no poisoned
upstream connection, no TRACE or CONNECT.

The upstream is a raw-socket server that answers as soon as a request head is in (before the
body), as an upstream refusing a request does, and records every request exactly as it arrived
and on which connection. Requests go over raw sockets: no client library would send them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Leaks, Running, SidecarFactory, Wire, provider_tables
from tests.e2e.rawhttp import RawClient, chunked, head
from tests.fakes.raw_upstream import RawUpstream

pytestmark = pytest.mark.e2e

CHAT = json.dumps({"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]})
PATH = "/openai/v1/chat/completions"


@pytest.fixture(scope="module")
def raw() -> Iterator[RawUpstream]:
    with RawUpstream(answer="early") as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh_raw(raw: RawUpstream) -> None:
    raw.reset()


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, raw: RawUpstream) -> Running:
    """One shared listener in front of the raw upstream; a 2 s read timeout bounds any hang."""
    return sidecar_factory.start(
        [{"host": "127.0.0.1"}],
        provider_tables(raw.url),
        extra={"upstream": {"read_timeout_seconds": 2}},
    )


def seen(raw: RawUpstream, count: int) -> list[tuple[bytes, bytes, bytes, str]]:
    return [(r.method, r.target, r.body, r.framing) for r in raw.wait_for(count, timeout=3)]


def test_content_length_beside_chunked_is_refused_and_the_next_agent_is_unharmed(
    sidecar: Running, raw: RawUpstream, wire: Wire, leaks: Leaks
) -> None:
    """The smuggling attempt (Content-Length 60 and a 5-byte chunked body) gets 400 and a closed
    connection, and reaches no upstream; the next request, another agent's, arrives whole with
    its own credential instead of becoming the tail of the first one's body."""
    port = sidecar.sidecar.ports[0]
    attack = head("POST", PATH, port, "Content-Length: 60", "Transfer-Encoding: chunked")
    with RawClient(port, leaks) as client:
        answer = client.request(attack + chunked(b"hello"))
        refused = (answer.status, answer.code, answer.header("connection"), client.closed())
    victim = wire.http.post(f"{sidecar.url()}/agents/work{PATH}", content=CHAT)
    work_key = sidecar.canaries.keys["openai:work"]
    got = [(r.target, r.body, r.framing, r.header(b"authorization")) for r in raw.wait_for(1)]
    assert (refused, victim.status_code, got) == (
        (400, "invalid_framing", "close", True),
        200,
        [(b"/oa/v1/chat/completions", CHAT.encode(), "length", [f"Bearer {work_key}".encode()])],
    )


# (what is sent after the request line and Host, the error code: the parser (llhttp) refuses
# some of these before the app sees them, the edge the rest; the answer is the same either way)
AMBIGUOUS: list[Any] = [
    pytest.param(["Transfer-Encoding: chunked", "Content-Length: 5"], "invalid_framing",
                 id="te-then-cl"),
    pytest.param(["Content-Length: 5", "Transfer-Encoding: CHUNKED"], "invalid_framing",
                 id="cl-then-te-upper"),
    pytest.param(["Content-Length: 5", "Content-Length: 6"], "invalid_framing", id="two-lengths"),
    pytest.param(["Content-Length: 5, 6"], "invalid_framing", id="length-list"),
    pytest.param(["Content-Length: -5"], "invalid_framing", id="negative-length"),
    pytest.param(["Content-Length: 0x5"], "invalid_framing", id="hex-length"),
    pytest.param(["Content-Length: 5 5"], "invalid_framing", id="spaced-length"),
    pytest.param(["Transfer-Encoding: gzip, chunked"], "invalid_framing", id="te-gzip-chunked"),
    pytest.param(["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], "invalid_framing",
                 id="two-te"),
    pytest.param(["Transfer-Encoding: identity"], "invalid_framing", id="te-identity"),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "code"), AMBIGUOUS)
def test_ambiguous_framing_is_refused_and_the_connection_closed(
    sidecar: Running, raw: RawUpstream, leaks: Leaks, lines: list[str], code: str
) -> None:
    """RFC 9112 §6.1 and §6.3: a body whose end two servers could read differently gets 400,
    the connection is closed after it, and nothing goes upstream."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(head("POST", PATH, port, *lines) + b"5\r\nhello\r\n0\r\n\r\n")
        assert (answer.status, answer.code, client.closed()) == (400, code, True)
    assert raw.requests == []


def test_transfer_encoding_on_http_1_0_is_refused(
    sidecar: Running, raw: RawUpstream, leaks: Leaks
) -> None:
    """RFC 9112 §6.1: HTTP/1.0 has no chunked framing, so its Transfer-Encoding is faulty."""
    port = sidecar.sidecar.ports[0]
    request = head("POST", PATH, port, "Transfer-Encoding: chunked").replace(b"1.1", b"1.0", 1)
    with RawClient(port, leaks) as client:
        answer = client.request(request + chunked(b"hello"))
        assert (answer.status, answer.code, client.closed()) == (400, "invalid_framing", True)
    assert raw.requests == []


@pytest.mark.parametrize(
    ("method", "target"),
    [("TRACE", PATH), ("trace", PATH), ("CONNECT", "127.0.0.1:443"), ("CONNECT", PATH)],
)
def test_trace_and_connect_are_refused(
    sidecar: Running, raw: RawUpstream, leaks: Leaks, method: str, target: str
) -> None:
    """An upstream that echoes a TRACE would hand the caller the injected credential, and a
    CONNECT tunnel would pass every rule: 405 with Allow, and nothing goes upstream."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(head(method, target, port))
    assert (answer.status, answer.code, answer.header("allow"), raw.requests) == (
        405,
        "method_not_allowed",
        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        [],
    )


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("http://evil.example/healthz", "invalid_path"),
        ("http://evil.example/openai/v1/models", "invalid_path"),
        ("*", "invalid_path"),
        ("evil:80", "malformed_request"),  # authority form outside CONNECT: llhttp refuses it
    ],
)
def test_a_target_that_is_not_a_path_is_refused_whole(
    sidecar: Running, raw: RawUpstream, leaks: Leaks, target: str, code: str
) -> None:
    """The parser hands over the whole target; a path inside an absolute-form one is never
    served (not even the health check), and nothing goes upstream."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(head("GET", target, port))
    assert (answer.status, answer.code, raw.requests) == (400, code, [])


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /healthz HTTP/1.1\r\nX-Bad: a\x01b\r\n\r\n", 400, "malformed_request"),
        (b"GET /a b HTTP/1.1\r\n\r\n", 400, "malformed_request"),
        (b"BREW /openai/v1/models HTTP/1.1\r\n\r\n", 405, "method_not_allowed"),
        (b"POST /openai/v1/models HTTP/1.1\r\nContent-Length: 1\r\n\tfolded\r\n\r\nx", 400,
         "malformed_request"),
    ],
    ids=["control-char", "space-in-target", "unknown-method", "obs-fold"],
)  # fmt: skip
def test_what_the_parser_refuses_gets_the_sidecars_error_and_a_close(
    sidecar: Running, raw: RawUpstream, leaks: Leaks, request_bytes: bytes, status: int, code: str
) -> None:
    """A request llhttp refuses never reaches the app: the answer is the sidecar's JSON error,
    then the connection closes, and nothing goes upstream."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(request_bytes)
        assert (answer.status, answer.code, client.closed()) == (status, code, True)
    assert raw.requests == []


def test_nothing_after_a_connect_is_read(sidecar: Running, raw: RawUpstream, leaks: Leaks) -> None:
    """The bytes after a CONNECT head would be a tunnel's: they are never parsed as a request."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(head("CONNECT", "127.0.0.1:443", port) + head("GET", PATH, port))
        assert (answer.status, client.closed()) == (405, True)
    assert raw.requests == []


@pytest.mark.parametrize(
    ("lines", "body", "framing"),
    [
        (["Content-Length: 0005"], b"hello", [(b"content-length", b"5")]),
        (["Transfer-Encoding: chunked"], chunked(b"hel", b"lo"),
         [(b"transfer-encoding", b"chunked")]),
    ],
)  # fmt: skip
def test_the_upstream_request_is_framed_by_the_sidecar(
    sidecar: Running,
    raw: RawUpstream,
    leaks: Leaks,
    lines: list[str],
    body: bytes,
    framing: list[tuple[bytes, bytes]],
) -> None:
    """The caller's Content-Length or Transfer-Encoding is never forwarded: the upstream gets
    the framing the sidecar chose for the bytes it counted."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        assert client.request(head("POST", PATH, port, *lines) + body).status == 200
    [request] = raw.wait_for(1)
    sent = [
        (n.lower(), v)
        for n, v in request.headers
        if n.lower() in (b"content-length", b"transfer-encoding")
    ]
    assert (request.body, sent) == (b"hello", framing)
