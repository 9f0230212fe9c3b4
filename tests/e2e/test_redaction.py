"""No secret reaches the log of the real ``serve`` process (#17 §5): an upstream whose answer is
not valid HTTP, echoing the stored key (of no known credential shape) into its head, gets the
client a 502, and the process's output holds neither the key nor anything of it but its label,
whichever upstream transport is configured."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    Profile,
    Running,
    SidecarFactory,
    canary,
    openai_style,
    sidecar_error,
)
from tests.e2e.refresh_support import events, wait_until
from tests.fakes.raw_server import RawServer

pytestmark = pytest.mark.e2e

KEY = canary("echo")  # "echo-CANARY-<hex>": no sk-, rt_, eyJ or Bearer shape to give it away
KEY_HEADER = "X-Echo-Key"  # so the credential is not sent as "Bearer ..." either
CHAT: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
Head = Callable[[bytes], bytes]
HEADS: dict[str, Head] = {
    "header-without-colon": lambda key: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Echo " + key,
    "control-character": lambda key: b"HTTP/1.1 200 OK\r\nX-Echo: " + key + b"\x01\x00",
    "status-line": lambda key: b"HTTP/1.1 2OO " + key,
}


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    """The upstream: answers every request with the bytes a test sets."""
    with RawServer(b"") as server:
        yield server


@pytest.fixture(scope="module", params=["aiohttp", "httpx"])
def sidecar(
    request: pytest.FixtureRequest, sidecar_factory: SidecarFactory, raw: RawServer
) -> Running:
    """Provider ``echo`` at the raw upstream, its key sent in X-Echo-Key; one per transport."""
    echo = {"base_url": raw.url + "/v1", "auth": f"header:{KEY_HEADER}"}
    return sidecar_factory.start(
        [{"host": "127.0.0.1"}],
        {"echo": echo},
        extra={"upstream": {"transport": request.param}},
        extra_profiles=[Profile("main", "echo", "echo:main", KEY)],
    )


@pytest.mark.parametrize("head", list(HEADS.values()), ids=list(HEADS))
def test_an_answer_echoing_the_key_in_a_malformed_head_leaves_no_trace_of_it(
    sidecar: Running, raw: RawServer, http: httpx.Client, head: Head
) -> None:
    """502 upstream_unavailable for the client, request_completed (not request_failed) in the
    log, and the key nowhere in the process's stdout or stderr."""
    raw.answer = head(KEY.encode()) + b"\r\n\r\nok"
    before = len(events(sidecar.sidecar, "request_completed"))
    response = http.post(sidecar.url() + "/echo/chat/completions", json=CHAT)
    assert sidecar_error(response) == openai_style(502, "upstream_unavailable", "api_error")
    wait_until(
        "the request's log line", lambda: len(events(sidecar.sidecar, "request_completed")) > before
    )
    last = events(sidecar.sidecar, "request_completed")[-1]
    assert (last["provider"], last["status"], last["error"]) == (
        "echo",
        502,
        "upstream_unavailable",
    )
    assert events(sidecar.sidecar, "request_failed") == []
    assert KEY not in sidecar.sidecar.logs()
