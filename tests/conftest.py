"""Shared fixtures: the fake token server and fake upstream, each a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream


@pytest.fixture
def token_server() -> Iterator[FakeTokenServer]:
    """A running fake OAuth token server (fresh state per test); `.url`, `.registry`."""
    with FakeTokenServer() as server:
        yield server


@pytest.fixture
def upstream(token_server: FakeTokenServer) -> Iterator[FakeUpstream]:
    """A running fake model API that validates OAuth tokens against `token_server`."""
    with FakeUpstream(tokens=token_server) as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop uvicorn serves the sidecar on."""
    return "asyncio"
