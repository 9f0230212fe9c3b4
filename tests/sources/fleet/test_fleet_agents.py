"""Which agents exist on a host of a fleet (``sidecar.server.agent_listing``): those of its own
state dir and every agent with profiles in the fleet, even on a host whose state dir is empty,
so a fleet-only agent is served and not refused as unknown_agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.server import agent_listing
from sidecar.sources.fleet.composite import CompositeSource
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw_json.store import JsonStore
from tests.sources.fleet.redis_server import RedisServer
from tests.sources.fleet.support import fleet_files, make_fleet, oauth, seed

pytestmark = [pytest.mark.fleet, pytest.mark.anyio]


def empty_host(root: Path) -> JsonStore:
    (root / "home").mkdir()
    layout = Layout.from_env({"HOME": str(root / "home"), "OPENCLAW_STATE_DIR": str(root / "s")})
    return JsonStore(layout, home=root / "home")


async def test_a_fleet_only_agent_exists_on_a_host_with_an_empty_state_dir(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """``fleet push --agent work`` on one host: every host knows ``work`` (and main)."""
    settings = fleet_files(tmp_path / "secrets", redis_server)
    pusher, fleet = make_fleet(settings), make_fleet(settings)
    await seed(pusher, oauth("at-0", "rt-0", 3600), agent="work")
    listing = agent_listing(CompositeSource(empty_host(tmp_path), fleet))
    assert set(await listing()) == {"main", "work"}
    await pusher.aclose()
    await fleet.aclose()


async def test_with_redis_away_the_agents_already_read_still_exist(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis down: no error, the local agents and the fleet agents this host has read."""
    settings = fleet_files(tmp_path / "secrets", redis_server)
    fleet = make_fleet(settings)
    await seed(fleet, oauth("at-0", "rt-0", 3600), agent="work")
    await fleet.view("work")
    redis_server.kill()
    listing = agent_listing(CompositeSource(empty_host(tmp_path), fleet))
    assert set(await listing()) == {"main", "work"}
    await fleet.aclose()
