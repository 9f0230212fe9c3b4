"""Tests for sidecar.proxy.agents: the list of agents that exist, read again only for an agent
not on it and at most once per interval, so unknown ids cost no store read, known ones never
wait on a listing, and new agents arrive within the interval."""

from __future__ import annotations

from collections.abc import Collection

import anyio
import pytest

from sidecar.errors import UnknownAgent
from sidecar.proxy.agents import KnownAgents

pytestmark = pytest.mark.anyio


class Listing:
    """A source's agents, counting how often they were listed."""

    def __init__(self, *agents: str) -> None:
        self.agents = set(agents)
        self.calls = 0

    async def __call__(self) -> Collection[str]:
        self.calls += 1
        return set(self.agents)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_unknown_ids_are_answered_from_the_list_without_listing_again() -> None:
    """Thousands of made-up ids within the interval: one listing, every one unknown."""
    listing, clock = Listing("main", "work"), Clock()
    known = KnownAgents(listing, interval_s=1.0, clock=clock)
    assert [await known.knows(a) for a in ("main", "work")] == [True, True]
    assert [await known.knows(f"x{i}") for i in range(5000)] == [False] * 5000
    assert listing.calls == 1


async def test_an_agent_created_later_is_known_once_the_interval_is_over() -> None:
    """A new folder (a paste for a new agent) is served within the interval, no restart."""
    listing, clock = Listing("main"), Clock()
    known = KnownAgents(listing, interval_s=1.0, clock=clock)
    assert await known.knows("work") is False
    listing.agents.add("work")
    clock.now += 0.5
    assert await known.knows("work") is False
    clock.now += 0.5
    assert await known.knows("work") is True
    assert listing.calls == 2


async def test_a_known_agent_never_waits_on_a_listing() -> None:
    """Once listed, known agents are answered from the list however old it is."""
    listing, clock = Listing("main", "work"), Clock()
    known = KnownAgents(listing, interval_s=1.0, clock=clock)
    for _ in range(3):
        assert await known.knows("work") is True
        clock.now += 60
    assert listing.calls == 1


async def test_an_agent_removed_is_forgotten_at_the_next_listing() -> None:
    """A deleted agent stops being served once a lookup of an unlisted one reads the list."""
    listing, clock = Listing("main", "gone"), Clock()
    known = KnownAgents(listing, interval_s=1.0, clock=clock)
    assert await known.knows("gone") is True
    listing.agents.discard("gone")
    clock.now += 1.0
    assert await known.knows("other") is False
    assert await known.knows("gone") is False


async def test_concurrent_lookups_share_one_listing() -> None:
    """Requests arriving while the list is being read wait for it instead of reading again."""
    gate = anyio.Event()
    calls = 0

    async def slow() -> Collection[str]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"main"}

    known = KnownAgents(slow, interval_s=60)
    results: list[bool] = []

    async def ask(agent: str) -> None:
        results.append(await known.knows(agent))

    async with anyio.create_task_group() as tg:
        for agent in ("main", "main", "nope"):
            tg.start_soon(ask, agent)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert (calls, sorted(results)) == (1, [False, True, True])


async def test_a_listing_that_fails_is_the_requests_error_and_is_tried_again() -> None:
    """The store's own error (e.g. openclaw.json unreadable) reaches the caller; the next
    lookup lists again rather than trusting a list it never got."""
    attempts = 0

    async def flaky() -> Collection[str]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("busy")
        return {"main"}

    known = KnownAgents(flaky, interval_s=60)
    with pytest.raises(OSError, match="busy"):
        await known.knows("main")
    assert await known.knows("main") is True


async def test_check_names_the_agent_and_the_fix() -> None:
    """``check`` is 404 unknown_agent naming the id and the command that creates the agent."""
    known = KnownAgents(Listing("main"), interval_s=60)
    assert await known.check("main") == "main"
    with pytest.raises(UnknownAgent) as caught:
        await known.check("ghost")
    error = caught.value
    assert (error.code, error.status) == ("unknown_agent", 404)
    assert "'ghost'" in error.message
    assert "paste-api-key --agent ghost" in error.message
