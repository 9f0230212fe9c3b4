"""Fleet fixtures: a real redis-server per test (killed at the end), the fake token server and
upstream, and sidecar hosts of one fleet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.refresh_support import CODEX_PREFIX, provider_tables
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream
from tests.sources.fleet.hosts import Fleet
from tests.sources.fleet.redis_server import RedisServer, ensure_redis_server

LIFETIME_S = 4  # how long the sidecars see an access token live


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the redis client's asyncio API


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return ensure_redis_server()


@pytest.fixture
def redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(redis_binary, workdir).start()
    try:
        yield server
    finally:
        server.kill()


@dataclass
class Fakes:
    tokens: FakeTokenServer
    upstream: FakeUpstream


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    """Codex tokens that live LIFETIME_S; the upstream accepts only valid ones."""
    with (
        FakeTokenServer(access_lifetime=LIFETIME_S) as tokens,
        FakeUpstream(tokens=tokens) as upstream,
    ):
        upstream.expect(CODEX_PREFIX, oauth=True, account_header=True)
        yield Fakes(tokens, upstream)


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer, fakes: Fakes) -> Iterator[Fleet]:
    """Sidecar hosts of one fleet in front of ``fakes``, all stopped at the end."""
    hosts = Fleet(tmp_path, redis_server, provider_tables(fakes.tokens, fakes.upstream))
    yield hosts
    hosts.stop_all()
