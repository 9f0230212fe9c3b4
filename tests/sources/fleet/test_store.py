"""The Redis fleet source in-process, on a real redis-server: cache, lease, compare-and-set,
adoption, takeover of a dead holder, Redis away and back, a wrong key."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sidecar.errors import ReauthRequired, RefreshUnavailable
from sidecar.sources.fleet.crypto import SealError
from sidecar.sources.fleet.store import FleetUnavailable
from tests.sources.fleet.redis_server import RedisServer
from tests.sources.fleet.support import PID, Exchanges, fleet_files, make_fleet, oauth, seed

pytestmark = [pytest.mark.fleet, pytest.mark.anyio]


async def test_a_seeded_profile_is_served_with_the_fleet_as_owner_and_origin(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The view names the fleet (owner fleet:<agent>, origin without credentials)."""
    store = make_fleet(fleet_files(tmp_path, redis_server))
    await seed(store, oauth("at-0", "rt-0", 3600))
    view = (await store.view("main")).get(PID)
    assert view is not None
    assert (view.owner, view.origin) == ("fleet:main", f"redis://127.0.0.1:{redis_server.port}/t")
    assert view.profile.access.reveal() == "at-0"  # type: ignore[union-attr]
    await store.aclose()


async def test_refresh_exchanges_once_and_writes_back_by_version(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """An expired token: one exchange with the stored refresh token; version 1 -> 2."""
    store = make_fleet(fleet_files(tmp_path, redis_server))
    await seed(store, oauth("at-0", "rt-0", -60))
    exchange = Exchanges()
    cred = await store.refresh("main", PID, exchange)
    record = await store.read("main", PID)
    assert (exchange.seen, cred.access.reveal(), record and record.version) == (["rt-0"], "at-1", 2)
    assert record is not None
    assert record.fields["refresh"] == "rt-1"
    assert record.fields["email"] == "user@example.com"  # {...old, ...new}
    assert await store.leases.holder("main", PID) is None  # released
    await store.aclose()


async def test_two_hosts_refreshing_at_once_make_one_exchange(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Host B finds A's lease, waits, and adopts what A wrote: one token call between them."""
    settings = fleet_files(tmp_path, redis_server)
    a, b = make_fleet(settings), make_fleet(settings, poll_s=0.01)
    await seed(a, oauth("at-0", "rt-0", -60))
    gate = anyio.Event()
    ex_a, ex_b = Exchanges(gate=gate), Exchanges()
    results = {}

    async def run(name: str, store: object, exchange: Exchanges) -> None:
        results[name] = (await store.refresh("main", PID, exchange)).access.reveal()  # type: ignore[attr-defined]

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "a", a, ex_a)
            await ex_a.entered.wait()  # A holds the lease, mid-exchange
            tg.start_soon(run, "b", b, ex_b)
            while await a.leases.holder("main", PID) is None:
                pass
            gate.set()
    assert (results, ex_a.seen, ex_b.seen) == ({"a": "at-1", "b": "at-1"}, ["rt-0"], [])
    await a.aclose()
    await b.aclose()


async def test_a_lease_is_released_only_by_its_owner_and_fences_grow(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Compare-and-delete: another owner's release leaves the lease; fence numbers increase."""
    store = make_fleet(fleet_files(tmp_path, redis_server))
    first = await store.leases.acquire("main", PID, 60_000)
    assert first is not None
    assert await store.leases.acquire("main", PID, 60_000) is None
    impostor = type(first)("main", PID, "someone-else", first.fence, first.expires_at)
    assert await store.leases.release(impostor) is False
    assert await store.leases.holder("main", PID) == first.owner
    assert await store.leases.release(first) is True
    second = await store.leases.acquire("main", PID, 60_000)
    assert second is not None
    assert second.fence == first.fence + 1
    await store.aclose()


async def test_a_stale_version_or_a_lapsed_lease_is_not_written(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Compare-and-set: a write at an old version, or under a lease that is not ours, fails."""
    store = make_fleet(fleet_files(tmp_path, redis_server))
    await seed(store, oauth("at-0", "rt-0", 3600))
    stale = await store.leases.write("main", PID, oauth("x", "y", 1), 0)
    lease = await store.leases.acquire("main", PID, 60_000)
    assert lease is not None
    not_ours = await store.leases.write("main", PID, oauth("x", "y", 1), 1, owner="other", fence=9)
    record = await store.read("main", PID)
    assert (stale, not_ours) == ((0, 1), (-1, 1))
    assert record is not None
    assert record.fields["refresh"] == "rt-0"
    await store.aclose()


async def test_a_dead_holders_lease_is_taken_over_after_its_ttl(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A lease whose holder never releases it lapses; the next refresher takes it over."""
    store = make_fleet(fleet_files(tmp_path, redis_server), poll_s=0.01)
    await seed(store, oauth("at-0", "rt-0", -60))
    assert await store.leases.acquire("main", PID, 300) is not None  # the holder then dies
    exchange = Exchanges()
    with anyio.fail_after(10):
        cred = await store.refresh("main", PID, exchange)
    assert (exchange.seen, cred.access.reveal()) == (["rt-0"], "at-1")
    await store.aclose()


async def test_redis_away_serves_valid_cached_tokens_and_refreshes_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis down: a still-valid cached token is served; an expired one is refresh_unavailable
    without a token call; when Redis returns, the refresh goes through."""
    store = make_fleet(fleet_files(tmp_path, redis_server), retry_after_s=0.0)
    await seed(store, oauth("at-0", "rt-0", 3600))
    await seed(store, {**oauth("old", "rt-x", -60), "provider": "anthropic"}, agent="work")
    assert (await store.view("main")).get(PID) is not None
    assert (await store.view("work")).get(PID) is not None
    redis_server.kill()
    exchange = Exchanges()
    assert (await store.view("main")).get(PID) is not None  # from the cache
    cred = await store.refresh("main", PID, exchange, margin_ms=7200_000)
    with pytest.raises(RefreshUnavailable) as info:
        await store.refresh("work", PID, exchange)
    assert (cred.access.reveal(), exchange.seen, info.value.code) == (
        "at-0",
        [],
        "refresh_unavailable",
    )
    redis_server.start()
    again = await store.refresh("work", PID, exchange)
    assert (again.access.reveal(), exchange.seen) == ("at-1", ["rt-x"])
    await store.aclose()


async def test_a_fleet_never_reached_is_unreadable_not_empty(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Started while Redis is away: the agent's view has no profiles but says why (a
    refresh_unavailable), so a request is not told it has no profile; Redis back, it has."""
    settings = fleet_files(tmp_path, redis_server)
    writer = make_fleet(settings)
    await seed(writer, oauth("at-0", "rt-0", 3600))
    await writer.aclose()
    redis_server.kill()
    store = make_fleet(settings, retry_after_s=0.0)
    cold = await store.view("main")
    assert (dict(cold.profiles), type(cold.unreadable)) == ({}, FleetUnavailable)
    assert cold.unreadable is not None
    assert cold.unreadable.code == "refresh_unavailable"
    redis_server.start()
    warm = await store.view("main")
    assert (warm.get(PID) is not None, warm.unreadable) == (True, None)
    redis_server.kill()
    assert (await store.view("main")).unreadable is None  # known now: served from the cache
    await store.aclose()


async def test_a_rejected_exchange_raises_itself_not_an_exception_group(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The exchange runs beside the lease's keep-alive task: its error reaches the caller as
    itself (a rejected grant is reauth_required upstream of here), and the lease is released."""
    store = make_fleet(fleet_files(tmp_path, redis_server))
    await seed(store, oauth("at-0", "rt-0", -60))

    async def rejected(cred: object) -> Mapping[str, Any]:
        raise ReauthRequired("the refresh token was rejected")

    with pytest.raises(ReauthRequired):
        await store.refresh("main", PID, rejected)
    assert await store.leases.holder("main", PID) is None
    await store.aclose()


async def test_a_lease_redis_kept_over_a_restart_is_released_when_it_returns(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis dies inside the holder's token call: the release fails, and the restarted Redis
    still holds the lease (its TTL persisted). The holder releases it at its next contact, so
    another host refreshes at once instead of waiting out the TTL (65 s by default)."""
    settings = fleet_files(tmp_path, redis_server)
    holder = make_fleet(settings, retry_after_s=0.0)
    await seed(holder, oauth("at-0", "rt-0", -60))

    async def dies(cred: object) -> Mapping[str, Any]:
        redis_server.kill()
        raise httpx.ConnectError("the token endpoint went away too")

    with pytest.raises((RefreshUnavailable, httpx.ConnectError)):
        await holder.refresh("main", PID, dies)
    redis_server.start()
    other = make_fleet(settings)
    assert await other.leases.holder("main", PID) is not None  # kept over the restart
    await holder.view("main")  # the holder's next contact
    assert await other.leases.holder("main", PID) is None
    exchange = Exchanges()
    with anyio.fail_after(5):
        cred = await other.refresh("main", PID, exchange)
    assert (cred.access.reveal(), exchange.seen) == ("at-1", ["rt-0"])
    await holder.aclose()
    await other.aclose()


async def test_a_token_refreshed_while_redis_went_away_is_saved_when_it_returns(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis dies during the token call: the new credential is served from memory and written
    back (by version) once Redis is back, so the rotated refresh token is not lost."""
    store = make_fleet(fleet_files(tmp_path, redis_server), lease_ttl_ms=1500, poll_s=0.01)
    await seed(store, oauth("at-0", "rt-0", -60))
    inner = Exchanges()

    async def exchange_then_lose_redis(cred: object) -> object:
        fields = await inner(cred)  # type: ignore[arg-type]
        redis_server.kill()
        return fields

    cred = await store.refresh("main", PID, exchange_then_lose_redis)  # type: ignore[arg-type]
    served = (await store.view("main")).get(PID)
    assert cred.refresh.reveal() == "rt-1"
    assert served is not None
    assert served.profile.refresh.reveal() == "rt-1"  # type: ignore[union-attr]
    redis_server.start()
    store.retry_after_s = 0.0
    store.check_interval_s = 0.0
    await store.view("main")
    record = await store.read("main", PID)
    assert record is not None
    assert (record.version, record.fields["refresh"]) == (2, "rt-1")
    await store.aclose()


async def test_a_wrong_key_is_a_clear_error_and_writes_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Another key: view and refresh fail naming fleet.key_file; Redis is left as it was."""
    good = make_fleet(fleet_files(tmp_path / "good", redis_server))
    await seed(good, oauth("at-0", "rt-0", -60))
    before = redis_server.dump()
    wrong = make_fleet(fleet_files(tmp_path / "wrong", redis_server))
    with pytest.raises(SealError, match=r"fleet.key_file \(.*wrong/fleet-key\)"):
        await wrong.view("main")
    exchange = Exchanges()
    with pytest.raises(SealError):
        await wrong.refresh("main", PID, exchange)
    with pytest.raises(SealError):
        await wrong.update_state("main", lambda state: state)
    assert (exchange.seen, redis_server.dump()) == ([], before)
    await good.aclose()
    await wrong.aclose()


async def test_usage_state_round_trips_through_redis(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """update_state applies the function to the stored state; other hosts see it."""
    settings = fleet_files(tmp_path, redis_server)
    a, b = make_fleet(settings), make_fleet(settings, check_interval_s=0.0)
    await seed(a, oauth("at-0", "rt-0", 3600))
    from sidecar.sources.openclaw.usage import with_last_good

    await a.update_state("main", lambda s: with_last_good(s, "openai-codex", PID))
    assert (await b.view("main")).state.last_good == {"openai-codex": PID}
    await a.aclose()
    await b.aclose()


def test_unavailable_is_a_refresh_unavailable() -> None:
    """Redis away maps onto the documented refresh_unavailable (503)."""
    assert (FleetUnavailable("x").code, FleetUnavailable("x").status) == (
        "refresh_unavailable",
        503,
    )
    assert threading.current_thread() is not None
