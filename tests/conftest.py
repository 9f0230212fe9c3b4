"""Shared fixtures: the fake token server and fake upstream, each a real uvicorn server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sidecar import log
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream


@pytest.fixture(autouse=True, scope="session")
def _usage_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands run in-process (status, usage) read and write a usage database of the
    session's, never the user's own (processes the tests start get a HOME of their own)."""
    before = os.environ.get("OPENCLAW_SIDECAR_DATA_DIR")
    os.environ["OPENCLAW_SIDECAR_DATA_DIR"] = str(tmp_path_factory.mktemp("sidecar-data"))
    yield
    if before is None:
        del os.environ["OPENCLAW_SIDECAR_DATA_DIR"]
    else:
        os.environ["OPENCLAW_SIDECAR_DATA_DIR"] = before


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


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A command run in-process (``main([...])``) configures logging for the whole process, at
    its level; every test starts again from structlog's defaults."""
    yield
    log.reset()
