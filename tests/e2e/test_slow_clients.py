"""Slow and greedy clients at the real ``serve`` process (issue #17 §4): a request head has a
deadline, and a listener holds a bounded number of connections.

One sidecar with ``[clients] head_timeout_seconds = 1, max_connections = 8``. Everything is
bounded: at most 8 + 12 connections, every socket read times out after 5 s.
"""

from __future__ import annotations

import json
import select
import time
from contextlib import ExitStack

import pytest

from tests.e2e.conftest import Leaks, Running, SidecarFactory, provider_tables
from tests.e2e.rawhttp import RawClient, head
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

HEAD_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 8
EXTRA = 12  # connections past the cap in the flood
TRICKLE_S = 0.1  # one byte of the head this often, for as long as the connection lasts
BUDGET_S = 5.0


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    return sidecar_factory.start(
        [{"host": "127.0.0.1"}],
        provider_tables(fake.url),
        extra={
            "clients": {"head_timeout_seconds": HEAD_TIMEOUT_S, "max_connections": MAX_CONNECTIONS}
        },
    )


def healthz(port: int) -> bytes:
    return head("GET", "/healthz", port)


def endless_head(port: int) -> bytes:
    """A request head that never ends: its last header line goes on and on."""
    return healthz(port).removesuffix(b"\r\n") + b"X-Slow: " + b"a" * 1000


def trickle(client: RawClient, data: bytes) -> float:
    """Send ``data`` one byte every TRICKLE_S until the server answers or closes; the seconds
    it took (BUDGET_S at most: then the connection was held)."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > BUDGET_S:
            break
        readable, _, _ = select.select([client.sock], [], [], TRICKLE_S)
        if readable:
            break
        try:
            client.send(bytes([byte]))
        except OSError:  # the server closed while we were sending
            break
    return time.monotonic() - started


def test_a_head_sent_one_byte_at_a_time_is_cut_at_the_deadline(
    sidecar: Running, leaks: Leaks
) -> None:
    """A client trickling its request head gets 408 and a closed connection once the head
    deadline has passed, not before (it used to hold the connection for ever)."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        took = trickle(client, endless_head(port))
        answer = client.answer()
        assert (answer.status, answer.code, answer.header("connection"), client.closed()) == (
            408,
            "request_timeout",
            "close",
            True,
        )
    assert HEAD_TIMEOUT_S * 0.9 <= took < HEAD_TIMEOUT_S + 2


def test_a_slow_head_after_a_kept_alive_request_is_cut_too(sidecar: Running, leaks: Leaks) -> None:
    """The deadline also covers each later head on a kept-alive connection, from its first
    byte: one good request does not buy the connection time for ever."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        assert client.request(healthz(port)).status == 200
        took = trickle(client, endless_head(port))
        assert (client.answer().status, client.closed()) == (408, True)
    assert HEAD_TIMEOUT_S * 0.9 <= took < HEAD_TIMEOUT_S + 2


def test_an_idle_kept_alive_connection_is_not_cut_by_the_head_deadline(
    sidecar: Running, leaks: Leaks
) -> None:
    """Idle time between requests is keep-alive's (75 s), not the head deadline's: a connection
    left idle past the deadline still serves the next request."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        assert client.request(healthz(port)).status == 200
        time.sleep(HEAD_TIMEOUT_S * 1.5)  # the property under test is time passing
        assert client.request(healthz(port)).status == 200


def test_a_connection_flood_is_refused_past_the_cap(sidecar: Running, leaks: Leaks) -> None:
    """With 8 connections held open (each after a served request), every further connection
    gets 503 too_many_connections and is closed at once; the 8 are still served; once they
    close, a new connection is served again."""
    port = sidecar.sidecar.ports[0]
    with ExitStack() as stack:
        held = [stack.enter_context(RawClient(port, leaks)) for _ in range(MAX_CONNECTIONS)]
        assert [c.request(healthz(port)).status for c in held] == [200] * MAX_CONNECTIONS
        flood = [stack.enter_context(RawClient(port, leaks)) for _ in range(EXTRA)]
        refused = [(a.status, a.code, c.closed()) for c in flood for a in [c.answer()]]
        assert refused == [(503, "too_many_connections", True)] * EXTRA
        assert [c.request(healthz(port)).status for c in held] == [200] * MAX_CONNECTIONS
    assert served_once_freed(port, leaks) == 200


def served_once_freed(port: int, leaks: Leaks) -> int:
    """The status of a request on a new connection, tried until the sidecar has seen the held
    connections close (it learns of each close on its own schedule; a few ms)."""
    deadline = time.monotonic() + BUDGET_S
    while True:
        with RawClient(port, leaks) as client:
            try:
                status = client.request(healthz(port)).status
            except OSError:  # refused and closed before the request was written
                status = 503
        if status != 503 or time.monotonic() > deadline:
            return status


def test_a_small_body_that_stalls_blocks_no_one_and_arrives_whole(
    sidecar: Running, fake: FakeUpstream, leaks: Leaks
) -> None:
    """A body of at most 64 KiB is read whole before the upstream request (#20). A client that
    stalls halfway through one holds only its own connection: another request is served
    meanwhile, and once the rest comes, the body reaches the upstream byte for byte."""
    port = sidecar.sidecar.ports[0]
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "é"}]})
    raw = body.encode()
    request = head(
        "POST",
        "/openai/v1/chat/completions",
        port,
        "Content-Type: application/json",
        f"Content-Length: {len(raw)}",
    )
    before = len(fake.requests)
    with RawClient(port, leaks) as slow, RawClient(port, leaks) as other:
        slow.send(request + raw[:10])
        meanwhile = other.request(request + raw)
        served_meanwhile = len(fake.requests) - before
        slow.send(raw[10:])
        late = slow.answer()
    assert (meanwhile.status, served_meanwhile, late.status) == (200, 1, 200)
    assert [r.body for r in fake.requests[before:]] == [raw, raw]


def test_the_sidecar_still_serves_after_the_attacks(sidecar: Running, leaks: Leaks) -> None:
    """After the slow heads and the flood, an ordinary request is served and the process is
    alive (no connection left counted against the cap)."""
    port = sidecar.sidecar.ports[0]
    with RawClient(port, leaks) as client:
        answer = client.request(healthz(port))
    assert (answer.status, json.loads(answer.body), sidecar.sidecar.proc.poll()) == (
        200,
        {"status": "ok"},
        None,
    )
