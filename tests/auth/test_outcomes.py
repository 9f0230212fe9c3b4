"""Request outcomes: a cooldown visible at once in memory, and usageStats/lastGood written in
batches to the owner's store in OpenClaw 2026.9.6's shape (auth-state.json, or inline for eras
A/B); once written, the store's copy is what counts."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from sidecar.auth.outcomes import Outcome, Outcomes, _apply
from sidecar.sources.interface import StateUpdate
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import AuthState
from sidecar.sources.openclaw.usage import Failure
from sidecar.sources.openclaw_json.store import JsonStore

pytestmark = pytest.mark.anyio

NOW = 1_767_225_600_000
KEY = {"type": "api_key", "provider": "anthropic", "key": "sk-ant-api-x"}
WORK = "anthropic:work"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Setup:
    """A state dir with main's store holding ``anthropic:work``, and Outcomes over it."""

    def __init__(self, root: Path) -> None:
        self.state, home = root / "state", root / "home"
        home.mkdir()
        layout = Layout.from_env({"HOME": str(home), "OPENCLAW_STATE_DIR": str(self.state)})
        self.now = NOW
        self.store = JsonStore(layout, home=home, clock=lambda: self.now, check_interval_s=0)
        self.outcomes = Outcomes(self.store, clock=lambda: self.now)
        self.write_profiles("main", {"version": 1, "profiles": {WORK: KEY}})

    def path(self, agent: str, name: str) -> Path:
        return self.state / "agents" / agent / "agent" / name

    def write_profiles(self, agent: str, doc: Any) -> None:
        path = self.path(agent, "auth-profiles.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))

    def load(self, agent: str, name: str) -> Any:
        return json.loads(self.path(agent, name).read_bytes())


@pytest.fixture
def s(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@pytest.mark.parametrize(
    "before",
    [
        None,
        {"version": 1, "order": {"anthropic": [WORK]}, "lastGood": {"anthropic": WORK}},
        {"version": 1, "lastGood": {"anthropic": "anthropic:other", "openai": "openai:x"}},
    ],
    ids=["no-state", "already-last-good", "other-last-good"],
)
async def test_success_writes_usage_and_last_good(s: Setup, before: dict[str, Any] | None) -> None:
    """A success becomes lastUsed/errorCount 0/lastProbeAt and lastGood[provider] in
    auth-state.json."""
    if before is not None:
        s.path("main", "auth-state.json").write_text(json.dumps(before))
    s.outcomes.success("main", "anthropic", WORK)
    await s.outcomes.flush()
    before = before or {"version": 1}
    assert s.load("main", "auth-state.json") == {
        **before,
        "lastGood": {**before.get("lastGood", {}), "anthropic": WORK},
        "usageStats": {WORK: {"errorCount": 0, "lastProbeAt": NOW, "lastUsed": NOW}},
    }


async def test_an_inherited_profiles_success_moves_no_selection_state(s: Setup) -> None:
    """markAuthProfileSuccess for an agent that only inherits the profile from main: the
    windows are cleared and lastProbeAt set in main's store, but not lastUsed nor lastGood."""
    s.outcomes.success("main", "anthropic", WORK, inherited=True)
    await s.outcomes.flush()
    assert s.load("main", "auth-state.json") == {
        "version": 1,
        "usageStats": {WORK: {"errorCount": 0, "lastProbeAt": NOW}},
    }


async def test_failure_cools_down_at_once_and_is_written(s: Setup) -> None:
    """A failure is visible via cooling_until before any write; the flush writes the ladder."""
    s.outcomes.failure("main", "anthropic", WORK, Failure("rate_limit"))
    assert s.outcomes.cooling_until("main", WORK) == NOW + 30_000
    assert not s.path("main", "auth-state.json").exists()
    await s.outcomes.flush()
    assert s.load("main", "auth-state.json") == {
        "version": 1,
        "usageStats": {
            WORK: {
                "errorCount": 1,
                "failureCounts": {"rate_limit": 1},
                "lastFailureAt": NOW,
                "cooldownUntil": NOW + 30_000,
                "cooldownReason": "rate_limit",
            }
        },
    }


async def test_batch_applies_in_order_per_owner(s: Setup) -> None:
    """One flush applies a batch in order, each outcome to its owner's own store."""
    s.write_profiles("work", {"version": 1, "profiles": {"openai:w": KEY | {"provider": "openai"}}})
    s.outcomes.failure("main", "anthropic", WORK, Failure("timeout"))
    s.now += 1_000
    s.outcomes.failure("main", "anthropic", WORK, Failure("timeout"))
    s.outcomes.success("work", "openai", "openai:w")
    await s.outcomes.flush()
    assert s.load("main", "auth-state.json")["usageStats"][WORK] == {
        "errorCount": 2,
        "failureCounts": {"timeout": 2},
        "lastFailureAt": NOW + 1_000,
        "cooldownUntil": NOW + 30_000,  # the open window is kept
        "cooldownReason": "timeout",
    }
    assert s.load("work", "auth-state.json") == {
        "version": 1,
        "lastGood": {"openai": "openai:w"},
        "usageStats": {
            "openai:w": {"errorCount": 0, "lastProbeAt": NOW + 1_000, "lastUsed": NOW + 1_000}
        },
    }


async def test_success_ends_the_cooldown(s: Setup) -> None:
    """A success after a failure clears both the in-memory cooldown and the stored window."""
    s.outcomes.failure("main", "anthropic", WORK, Failure("auth"))
    s.outcomes.success("main", "anthropic", WORK)
    assert s.outcomes.cooling_until("main", WORK) == 0
    await s.outcomes.flush()
    assert s.load("main", "auth-state.json")["usageStats"][WORK] == {
        "errorCount": 0,
        "lastFailureAt": NOW,
        "lastProbeAt": NOW,
        "lastUsed": NOW,
    }


async def test_cooldowns_are_per_owner_and_profile(s: Setup) -> None:
    """A failure cools only that (owner, profile); a later failure never shortens it."""
    s.outcomes.failure("main", "anthropic", WORK, Failure("timeout"))
    s.now -= 10_000  # a clock step back must not shorten the window
    s.outcomes.failure("main", "anthropic", WORK, Failure("timeout"))
    cooling = [s.outcomes.cooling_until(o, p) for o, p in [("main", WORK), ("work", WORK)]]
    assert cooling == [NOW + 30_000, 0]


async def test_inline_store_keeps_state_inline(s: Setup) -> None:
    """An era-A/B store with inline state gets usageStats/lastGood back inline, no state file."""
    s.write_profiles(
        "main",
        {"version": 1, "profiles": {WORK: KEY}, "order": {"anthropic": [WORK]}, "usageStats": {}},
    )
    s.outcomes.success("main", "anthropic", WORK)
    await s.outcomes.flush()
    assert s.load("main", "auth-profiles.json") == {
        "version": 1,
        "profiles": {WORK: KEY},
        "order": {"anthropic": [WORK]},
        "lastGood": {"anthropic": WORK},
        "usageStats": {WORK: {"errorCount": 0, "lastProbeAt": NOW, "lastUsed": NOW}},
    }
    assert not s.path("main", "auth-state.json").exists()


async def test_write_failure_is_logged_not_raised(s: Setup) -> None:
    """An unreadable owner store is logged; other owners in the batch are still written."""
    s.path("broken", "auth-profiles.json").parent.mkdir(parents=True)
    s.path("broken", "auth-profiles.json").write_text("{not json")
    s.outcomes.success("broken", "anthropic", WORK)
    s.outcomes.success("main", "anthropic", WORK)
    with capture_logs() as logs:
        await s.outcomes.flush()
    assert logs == [
        {
            "event": "usage_write_failed",
            "log_level": "warning",
            "agent": "broken",
            "code": "store_unreadable",
        }
    ]
    assert s.load("main", "auth-state.json")["lastGood"] == {"anthropic": WORK}


async def test_a_cooldown_cleared_by_hand(s: Setup) -> None:
    """The failures noted so far are written first, then the stats reset as OpenClaw 2026.9.6's
    resetAuthProfileFailureState leaves them (``cooldowns clear`` writes the same), and the
    in-memory cooldown is gone."""
    s.outcomes.success("main", "anthropic", WORK)
    s.now += 1
    s.outcomes.failure("main", "anthropic", WORK, Failure("rate_limit"))
    assert s.outcomes.cooling_until("main", WORK) == NOW + 1 + 30_000
    with capture_logs() as logs:
        await s.outcomes.clear_cooldown("main", WORK)
    assert s.load("main", "auth-state.json")["usageStats"] == {
        WORK: {"lastUsed": NOW, "lastProbeAt": NOW, "errorCount": 0, "lastFailureAt": NOW + 1}
    }
    assert s.outcomes.cooling_until("main", WORK) == 0
    assert logs == [
        {"event": "cooldown_cleared", "log_level": "info", "agent": "main", "profile": WORK}
    ]


class SignallingStore:
    """The store, setting ``written`` after each state update."""

    def __init__(self, inner: JsonStore) -> None:
        self.inner = inner
        self.written = anyio.Event()

    async def update_state(self, agent: str, update: StateUpdate) -> None:
        await self.inner.update_state(agent, update)
        self.written.set()


async def test_run_flushes_as_soon_as_a_failure_arrives(s: Setup) -> None:
    """The background writer wakes on a failure instead of waiting out its interval."""
    signalling = SignallingStore(s.store)
    outcomes = Outcomes(signalling, clock=lambda: NOW)  # type: ignore[arg-type]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(outcomes.run, 3600.0)
            outcomes.failure("main", "anthropic", WORK, Failure("billing"))
            await signalling.written.wait()
            tg.cancel_scope.cancel()
    assert s.load("main", "auth-state.json")["usageStats"][WORK]["disabledUntil"] == (
        NOW + 600_000  # 2026.9.6: 10 min (2026.6.1 disabled for 5 h)
    )


async def test_once_written_the_stores_copy_counts(s: Setup) -> None:
    """After the flush the store's view decides: a cooldown cleared there (by OpenClaw or by
    ``cooldowns clear``) is cleared for the sidecar too."""
    s.outcomes.failure("main", "anthropic", WORK, Failure("rate_limit"))
    await s.outcomes.flush()
    assert s.outcomes.cooling_until("main", WORK) == 0  # no longer kept in memory
    view = s.store.view_sync("main")
    assert view.state.usage[WORK].raw["cooldownUntil"] == NOW + 30_000


async def test_openrouter_failures_are_not_recorded(s: Setup) -> None:
    """isAuthCooldownBypassedForProvider: openrouter and kilocode keys never rest."""
    s.outcomes.failure("main", "openrouter", "openrouter:a", Failure("rate_limit"))
    await s.outcomes.flush()
    assert (
        s.outcomes.cooling_until("main", "openrouter:a"),
        s.path("main", "auth-state.json").exists(),
    ) == (0, False)


async def test_a_model_scoped_failure_holds_only_that_model(s: Setup) -> None:
    s.outcomes.failure("main", "anthropic", WORK, Failure("rate_limit", model="claude-a"))
    assert s.outcomes.is_model_scoped()
    assert [s.outcomes.cooling_until("main", WORK, m) for m in ("claude-a", "claude-b", None)] == [
        NOW + 30_000,
        0,
        NOW + 30_000,
    ]


# --- successes are coalesced while they wait: what is written is what every one would write ----

REASONS = [
    "rate_limit",
    "overloaded",
    "timeout",
    "billing",
    "auth",
    "auth_permanent",
    "model_not_found",
    "session_expired",
]
PROFILES = [("anthropic", "anthropic:a"), ("anthropic", "anthropic:b"), ("openai", "openai:c")]


class _Captured:
    """A source that only keeps the batches ``flush`` hands it (the stores are tested above)."""

    def __init__(self) -> None:
        self.batches: list[list[Outcome]] = []

    async def update_state(self, owner: str, update: StateUpdate) -> None:
        assert isinstance(update, functools.partial)
        self.batches.append(update.keywords["outcomes"])


def _written(state: AuthState) -> tuple[dict[str, Any], dict[str, str]]:
    return {k: dict(v.raw) for k, v in state.usage.items()}, dict(state.last_good)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["ok", "ok", "fail"]),
            st.sampled_from(PROFILES),
            st.booleans(),
            st.sampled_from(REASONS),
            st.integers(0, 40_000),
        ),
        max_size=40,
    )
)
def test_coalesced_successes_write_what_each_would(events: list[Any]) -> None:
    """The batch written after any mix of successes (inherited or not) and failures of several
    profiles leaves the store as applying every outcome one by one would: usage stats key for
    key, lastGood per provider."""
    clock = {"now": NOW}
    source = _Captured()
    outcomes = Outcomes(source, clock=lambda: clock["now"])  # type: ignore[arg-type]
    every: list[Outcome] = []
    for kind, (provider, profile), inherited, reason, dt in events:
        clock["now"] += dt
        if kind == "ok":
            outcomes.success("main", provider, profile, inherited=inherited)
            every.append(Outcome("main", provider, profile, clock["now"], None, inherited))
        else:
            outcomes.failure("main", provider, profile, Failure(reason))
            every.append(Outcome("main", provider, profile, clock["now"], Failure(reason)))
    anyio.run(outcomes.flush)
    batched = [o for batch in source.batches for o in batch]
    assert _written(_apply(AuthState(), outcomes=batched)) == _written(
        _apply(AuthState(), outcomes=every)
    )


async def test_successes_waiting_are_one_per_profile_not_one_per_request() -> None:
    """15 s of successes at full load were ~40k objects held for the collector to walk; now one
    per profile (and kind of success) waits, however many requests there were."""
    source = _Captured()
    outcomes = Outcomes(source, clock=lambda: NOW)  # type: ignore[arg-type]
    for n in range(10_000):
        outcomes.success("main", "anthropic", f"anthropic:{n % 2}", inherited=n % 3 == 0)
    await outcomes.flush()
    assert len(source.batches[0]) == 4
