"""Faults of a fleet of real sidecar processes: Redis restarted mid-run, the lease holder
killed with -9 mid-refresh, a token endpoint slower than the timeout, a wrong key; and the
``fleet push | list | pull`` commands."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import httpx
import pytest

from tests.e2e.refresh_support import CODEX_ID, RESPONSES, RESPONSES_BODY, read_profiles
from tests.sources.fleet.conftest import Fakes
from tests.sources.fleet.hosts import Fleet
from tests.sources.fleet.redis_server import RedisServer
from tests.sources.fleet.support import new_key
from tests.sources.fleet.test_fleet_load import (
    assert_no_plaintext,
    assert_one_chain,
    logs,
    run_load,
)

pytestmark = pytest.mark.fleet


def post(url: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(url + RESPONSES, json=RESPONSES_BODY, timeout=timeout)


def test_redis_restarted_mid_run_loses_no_request_and_no_credential(
    fleet: Fleet, fakes: Fakes, redis_server: RedisServer
) -> None:
    """Redis killed and restarted twice under load, each time right after a token call: every
    host keeps serving from its cache, the chain of refresh tokens never forks, and Redis ends
    with the newest one.

    Each host has served (and so cached the profile) before the first kill: one that never
    reached Redis answers 503 instead (the next test). Tokens are refreshed 3 s before they
    expire, so the token the other hosts still hold outlives a restart and its 1 s back-off; a
    revoked token is not part of this test (refreshing it needs Redis: 503, as documented).
    """
    fakes.tokens.registry.access_lifetime = 6
    grant = fakes.tokens.seed(access_expires_in=6)
    fleet.push(grant)
    running = fleet.start(4, margin_seconds=3, background_interval_seconds=3600)
    assert [post(host.url()).status_code for host in running] == [200] * 4
    restarts: list[int] = []

    def chaos() -> None:
        for _ in range(2):
            before = fakes.tokens.calls
            deadline = time.monotonic() + 20
            while fakes.tokens.calls == before and time.monotonic() < deadline:
                fakes.tokens.registry.wait_arrivals(fakes.tokens.registry.arrivals + 1, 1)
            redis_server.kill()
            redis_server.start()
            restarts.append(fakes.tokens.calls)

    thread = threading.Thread(target=chaos)
    thread.start()
    load, _ = run_load(running, fakes, 15, revoke=False)
    thread.join(30)
    assert (len(restarts), load.failures[:5]) == (2, []), logs(running)
    assert_one_chain(fakes.tokens, grant.refresh_token)
    record = fleet.record()
    assert record is not None
    assert record.fields["refresh"] == fakes.tokens.exchanges[-1]["issued_refresh"]


def test_a_host_started_while_redis_is_away_answers_503_then_serves(
    fleet: Fleet, fakes: Fakes, redis_server: RedisServer
) -> None:
    """A host that has never reached Redis does not know the fleet's profiles: 503
    refresh_unavailable (retry), not 404 no_profile (add one); once Redis is back, 200."""
    grant = fakes.tokens.seed(access_expires_in=3600)
    fleet.push(grant)
    redis_server.kill()
    (host,) = fleet.start(1)
    cold = post(host.url())
    assert (cold.status_code, cold.headers.get("x-openclaw-sidecar-error")) == (
        503,
        "refresh_unavailable",
    ), cold.text
    assert "not known yet" in cold.json()["error"]["message"]
    redis_server.start()
    deadline = time.monotonic() + 10
    while (warm := post(host.url())).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (warm.status_code, fakes.tokens.calls) == (200, 0), logs([host])


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [("reject", 401, "reauth_required"), ("down", 503, "refresh_unavailable")],
)
def test_a_failed_fleet_refresh_gives_the_documented_error(
    fleet: Fleet, fakes: Fakes, mode: str, status: int, code: str
) -> None:
    """A fleet profile's refresh rejected or unanswered: the same answers as a local profile's
    (401 reauth_required, 503 refresh_unavailable), never a 500; the record is unchanged."""
    grant = fakes.tokens.seed(access_expires_in=-60)
    fleet.push(grant)
    before = fleet.record()
    (host,) = fleet.start(1, timeout_seconds=2)
    fakes.tokens.set_mode(mode)
    response = post(host.url())
    assert (response.status_code, response.headers.get("x-openclaw-sidecar-error")) == (
        status,
        code,
    ), logs([host])
    after = fleet.record()
    assert before is not None
    assert after is not None
    assert (after.version, after.fields["refresh"]) == (before.version, grant.refresh_token)


def test_a_lease_holder_killed_mid_refresh_is_taken_over_after_the_ttl(
    fleet: Fleet, fakes: Fakes
) -> None:
    """Host A holds the lease inside a (held) token call and is killed with -9; host B waits
    out the lease's TTL, takes it over, and refreshes once; no credential is lost."""
    grant = fakes.tokens.seed(access_expires_in=-60)
    fleet.push(grant)
    a, b = fleet.start(2, timeout_seconds=1)  # lease TTL: 2 x 1 s + 5 s
    fakes.tokens.set_mode("hold", times=1)
    threading.Thread(target=lambda: _swallow(post, a.url(), 30), daemon=True).start()
    assert fakes.tokens.held.wait(10)  # A's token call is parked, A holds the lease
    a.kill()  # SIGKILL
    started = time.monotonic()
    statuses = [post(b.url()).status_code]  # waits [refresh] timeout_seconds at most: 503
    while statuses[-1] != 200 and time.monotonic() - started < 20:
        statuses.append(post(b.url()).status_code)
    waited = time.monotonic() - started
    assert (set(statuses), statuses[-1], fakes.tokens.calls) == ({503, 200}, 200, 1), logs([b])
    assert 5 < waited < 20  # the dead holder's lease lapsed after its TTL (7 s), not before
    issued = fakes.tokens.exchanges[0]
    assert issued["refresh_token"] == grant.refresh_token
    record = fleet.record()
    assert record is not None
    assert record.fields["refresh"] == issued["issued_refresh"]


def _swallow(call: object, *args: object) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call(*args)  # type: ignore[operator]


def test_a_token_endpoint_slower_than_the_timeout_gives_503_and_loses_nothing(
    fleet: Fleet, fakes: Fakes
) -> None:
    """The request stops waiting after the timeout: 503 refresh_unavailable in time with the
    record unchanged; the call goes on under the (renewed) lease and its answer is saved."""
    grant = fakes.tokens.seed(access_expires_in=-60)
    fleet.push(grant)
    before = fleet.record()
    (host,) = fleet.start(1, timeout_seconds=1)
    fakes.tokens.set_mode("slow", delay_ms=4000)
    started = time.monotonic()
    response = post(host.url())
    elapsed = time.monotonic() - started
    assert (response.status_code, response.headers.get("x-openclaw-sidecar-error")) == (
        503,
        "refresh_unavailable",
    )
    assert 1 <= elapsed < 3.5
    now = fleet.record()
    assert before is not None
    assert now is not None
    assert (now.version, now.fields) == (before.version, before.fields)  # the old token kept
    deadline = time.monotonic() + 15  # the slow answer still arrives, and is saved
    while (now := fleet.record()) is not None and now.version == before.version:
        assert time.monotonic() < deadline, logs([host])
    assert now is not None
    assert now.fields["refresh"] == fakes.tokens.exchanges[0]["issued_refresh"]
    with fleet.redis.client() as client:
        while list(client.scan_iter("ocs:lease:*")):
            assert time.monotonic() < deadline


def test_a_wrong_key_is_a_clear_error_naming_key_file_and_writes_nothing(
    fleet: Fleet, fakes: Fakes, redis_server: RedisServer
) -> None:
    """A host with another key answers 500 store_unreadable naming fleet.key_file, keeps
    running, writes nothing to Redis; a host with the right key still serves."""
    grant = fakes.tokens.seed(access_expires_in=-60)
    fleet.push(grant)
    before = redis_server.dump()
    (wrong,) = fleet.start(1, key=new_key())
    response = post(wrong.url())
    error = response.json()["error"]
    assert (response.status_code, response.headers.get("x-openclaw-sidecar-error")) == (
        500,
        "store_unreadable",
    )
    assert "fleet.key_file" in error["message"]
    assert "other/fleet-key" in error["message"]
    assert (wrong.proc.poll(), redis_server.dump(), fakes.tokens.calls) == (None, before, 0)
    (right,) = fleet.start(1)
    assert post(right.url()).status_code == 200


def test_push_list_pull_move_a_profile_and_its_refresh_token(
    fleet: Fleet, fakes: Fakes, redis_server: RedisServer
) -> None:
    """push: into Redis, the local refresh token dropped; list: masked; pull: back, and gone
    from the fleet. No plaintext secret in Redis at any point."""
    grant = fakes.tokens.seed()
    said = fleet.push(grant)
    local = read_profiles(fleet.root / "seed")[CODEX_ID]
    assert "refresh" not in local
    assert local["access"] == grant.access_token
    assert "Removed its refresh token" in said
    assert_no_plaintext(redis_server, [grant.access_token, grant.refresh_token])
    listed = fleet.cli("fleet", "list", "--json")
    doc = json.loads(listed.stdout)
    (entry,) = doc["profiles"]
    assert (entry["profileId"], entry["status"], entry["secret"], entry["version"]) == (
        CODEX_ID,
        "expiring",
        "OAuth (user@example.com)",
        1,
    )
    assert grant.refresh_token not in listed.stdout + listed.stderr
    shown = json.loads(fleet.cli("status", "--agent", "main", "--json").stdout)
    (profile,) = shown["agents"][0]["profiles"]  # the fleet's copy wins over the local one
    assert (profile["profileId"], profile["owner"], profile["source"][:8]) == (
        CODEX_ID, "fleet:main", "redis://")  # fmt: skip
    assert profile["source"].endswith("/ocs")  # the prefix; never the URL's password
    again = fleet.cli("fleet", "push", "--profile-id", CODEX_ID)
    assert (again.returncode, "already in the fleet" in again.stderr) == (2, True)
    pulled = fleet.cli("fleet", "pull", "--profile-id", CODEX_ID)
    assert pulled.returncode == 0, pulled.stderr
    assert read_profiles(fleet.root / "seed")[CODEX_ID]["refresh"] == grant.refresh_token
    assert fleet.record() is None
