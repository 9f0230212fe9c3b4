"""What requests teach about profiles (OpenClaw's ``usageStats`` and ``lastGood``): a failure's
new usage stats are worked out at once and kept in memory, so the next request already skips a
profile in cooldown, and are written to the owner store in batches, so the hot path never waits
for a locked file write. Once written, the store's own copy is what counts again (so a cooldown
cleared there, by hand or by OpenClaw, is cleared here too)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from sidecar.log import get_logger
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.model import AuthState, UsageStats
from sidecar.sources.openclaw.usage import Failure

log = get_logger("sidecar.outcomes")


@dataclass(frozen=True)
class Outcome:
    owner: str
    provider: str
    profile_id: str
    at_ms: int
    failure: Failure | None = None
    inherited: bool = False  # a success of a profile the agent only inherits from main


class Outcomes:
    def __init__(self, source: CredentialSource, *, clock: Callable[[], int]) -> None:
        self.source = source
        self.clock = clock
        # Waiting to be written, in the order they happened. A success replaces the one before
        # it of the same (owner, profile, inherited) and moves to the end: what it writes is
        # the reset and "now", so the one before says nothing more (a failure between them is
        # wholly undone by it, but for lastFailureAt, which it sets from its own time). Kept
        # per request, 15 s of successes were ~40k objects the collector walked (bench/).
        self._pending: dict[object, Outcome] = {}
        self._failures = 0
        # (owner, profile) -> the usage stats a failure not yet in the store's view leads to
        self._unwritten: dict[tuple[str, str], UsageStats] = {}
        self._wake = anyio.Event()

    def success(
        self, owner: str, provider: str, profile_id: str, *, inherited: bool = False
    ) -> None:
        self._unwritten.pop((owner, profile_id), None)
        key = (owner, profile_id, inherited)
        self._pending.pop(key, None)
        self._pending[key] = Outcome(owner, provider, profile_id, self.clock(), None, inherited)

    def failure(
        self,
        owner: str,
        provider: str,
        profile_id: str,
        failure: Failure,
        current: UsageStats | None = None,
        at_ms: int | None = None,
    ) -> None:
        """``current``: the profile's usage as the request saw it in the store; ``at_ms``: when
        the answer came (the moment a provider's reset was read against), else now."""
        if usage.is_cooldown_exempt(provider):
            return  # the provider rotates its own keys (OpenClaw writes nothing either)
        now = self.clock() if at_ms is None else at_ms
        key = (owner, profile_id)
        self._unwritten[key] = usage.after_failure(self._unwritten.get(key, current), failure, now)
        self._failures += 1
        self._pending[self._failures] = Outcome(owner, provider, profile_id, now, failure)
        self._wake.set()

    def cooling_until(self, owner: str, profile_id: str, model: str | None = None) -> int:
        """When a failure not yet in the store's view lets the profile be used again."""
        return usage.unusable_until(self._unwritten.get((owner, profile_id)), model, self.clock())

    def unwritten(self, owner: str, profile_id: str) -> UsageStats | None:
        """The profile's usage after failures not yet in the store's view."""
        return self._unwritten.get((owner, profile_id))

    def is_model_scoped(self) -> bool:
        """Whether a cooldown kept here holds for one model only."""
        return any(usage.is_model_scoped(u) for u in self._unwritten.values())

    async def clear_cooldown(self, owner: str, profile_id: str) -> None:
        """A cooldown cleared by hand (the page's one action): the failures noted so far are
        written first, so none lands after the clear; then the store's stats are reset as
        ``cooldowns clear`` resets them (``usage.cleared_in``), and the in-memory estimate
        dropped."""
        await self.flush()
        self._unwritten.pop((owner, profile_id), None)
        await self.source.update_state(
            owner, functools.partial(usage.cleared_in, profile_id=profile_id)
        )
        log.info("cooldown_cleared", agent=owner, profile=profile_id)

    async def flush(self) -> None:
        batch, self._pending = list(self._pending.values()), {}
        by_owner: dict[str, list[Outcome]] = {}
        for outcome in batch:
            by_owner.setdefault(outcome.owner, []).append(outcome)
        for owner, outcomes in by_owner.items():
            written = {
                (owner, o.profile_id): self._unwritten.get((owner, o.profile_id)) for o in outcomes
            }
            try:
                await self.source.update_state(owner, functools.partial(_apply, outcomes=outcomes))
            except Exception as exc:
                log.warning("usage_write_failed", agent=owner, code=getattr(exc, "code", "error"))
                continue
            for key, estimate in written.items():  # unless a newer failure came meanwhile
                if estimate is not None and self._unwritten.get(key) is estimate:
                    del self._unwritten[key]

    async def run(self, interval_s: float = 15.0) -> None:
        """Failures are written at once (they change the order); successes, which only move
        lastUsed and lastGood, every ``interval_s`` (bench: 100 agents' writes every 2 s cost
        a quarter of the throughput)."""
        while True:
            with anyio.move_on_after(interval_s):
                await self._wake.wait()
            self._wake = anyio.Event()
            if self._pending:
                await self.flush()


def _apply(state: AuthState, *, outcomes: list[Outcome]) -> AuthState:
    for o in outcomes:
        current = state.usage.get(o.profile_id)
        if o.failure is not None:
            updated = usage.after_failure(current, o.failure, o.at_ms)
            state = usage.with_usage(state, o.profile_id, updated)
            continue
        done = usage.after_success(current, o.at_ms, inherited=o.inherited)
        state = usage.with_usage(state, o.profile_id, done)
        # markAuthProfileSuccess: an inherited profile's success moves no selection state.
        if not o.inherited and state.last_good.get(o.provider) != o.profile_id:
            state = usage.with_last_good(state, o.provider, o.profile_id)
    return state
