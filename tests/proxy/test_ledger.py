"""Requests accounted for together (``proxy.ledger``): after the answer, once the loop has run
what was ready; in the order they ended; one failing account loses no other; and /metrics
counts every request that has ended, settled or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Message
from structlog.testing import capture_logs

from sidecar.proxy.app import create_app, create_ops
from sidecar.proxy.ledger import Ledger
from tests.proxy.test_forward import Body, Upstream_, make_proxy, scope

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_entries_are_settled_together_once_the_loop_is_free() -> None:
    ledger = Ledger()
    done: list[tuple[Any, float]] = []
    ledger.add(lambda e, s: done.append((e, s)), "a", 0.1)
    ledger.add(lambda e, s: done.append((e, s)), "b", 0.2)
    assert (done, len(ledger)) == ([], 2)  # nothing yet: the caller's work goes first
    await anyio.sleep(0)
    assert (done, len(ledger)) == ([("a", 0.1), ("b", 0.2)], 0)
    ledger.add(lambda e, s: done.append((e, s)), "c", 0.3)  # a new batch, a new callback
    await anyio.sleep(0)
    assert done[-1] == ("c", 0.3)


async def test_a_failing_account_loses_no_other_and_is_logged() -> None:
    ledger = Ledger()
    done: list[str] = []

    def broken(_e: Any, _s: float) -> None:
        raise RuntimeError("a bug")

    with capture_logs() as logs:
        ledger.add(broken, "a", 0.1)
        ledger.add(lambda e, s: done.append(e), "b", 0.2)
        ledger.settle()
    assert done == ["b"]
    assert [e["event"] for e in logs] == ["accounting_failed"]


async def test_settling_early_leaves_nothing_for_the_callback(tmp_path: Path) -> None:
    ledger = Ledger()
    done: list[str] = []
    ledger.add(lambda e, s: done.append(e), "a", 0.1)
    ledger.settle()
    await anyio.sleep(0)  # the callback scheduled by add() finds nothing left
    assert done == ["a"]


async def test_metrics_count_a_request_that_ended_but_is_not_settled(tmp_path: Path) -> None:
    """/metrics settles first: a scrape right after an answer counts it."""
    proxy = make_proxy(tmp_path, Upstream_(lambda r: httpx.Response(200, stream=Body(b"{}"))))
    messages: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(_: Message) -> None:
        return None

    with capture_logs() as logs:
        await proxy(scope("GET", "/openai/v1/models"), receive, send)
        assert (len(proxy.ledger), logs) == (1, [])  # its accounting waits for the loop
        app = create_app(proxy, create_ops(proxy, proxy.metrics))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar.test") as c:
            page = (await c.get("/metrics")).text
    assert 'openclaw_sidecar_requests_total{agent="main",owner="main",provider="openai",' in page
    assert [e["event"] for e in logs] == ["request_completed"]
