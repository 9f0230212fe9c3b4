"""Refresh in an SQLite store by OpenClaw 2026.9.x's protocol: under the refresh lock the
credential becomes a fence (the claim), the provider is called with the lock released, and the
answer is settled under the lock by compare-and-swap. A fence someone else holds is waited for
and adopted; a failed one is reported; a fence the sidecar left when killed is put back from
its claim record (``claims``). docs/openclaw-findings.md g has the measurements.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio

from sidecar.errors import NoProfile, ReauthRequired, RefreshUnavailable, StoreError
from sidecar.log import get_logger
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.sources.interface import Exchange
from sidecar.sources.openclaw import locks, model
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import AuthState, JSONObject, OAuthCredential, ProfilesDoc
from sidecar.sources.openclaw_sqlite import claims, fence
from sidecar.sources.openclaw_sqlite.db import Kind, Rows, Target

log = get_logger("sidecar.store")
# A pending fence whose row has not changed for the refresh lock's stale time is past
# OpenClaw's 120 s call timeout by a minute: its owner is gone and its refresh token with it.
STALE_FENCE_MS = locks.REFRESH_LOCK.stale_ms
OBSERVE_TIMEOUT_S = STALE_FENCE_MS / 1000 + 10


class FencedStore(Protocol):
    """What the fence refresh needs of its store (``store.SqliteStore``), so that this module
    does not import the store that uses it."""

    layout: Layout
    poll_s: float
    clock: Callable[[], int]

    def read_doc(self, found: Target) -> tuple[ProfilesDoc, AuthState, Rows | None]: ...

    def swap_profile(
        self, found: Target, profile_id: str, expected: Mapping[str, Any], new: JSONObject
    ) -> JSONObject | None: ...

    def refresh_lock(self, provider: str, profile_id: str) -> Path: ...


@dataclass(frozen=True)
class _Wait:
    """Someone else's claim is open: look again after a pause, without the lock."""


def reauth_message(profile_id: str, provider: str, why: str) -> str:
    """What to run: OpenClaw's own sign-in, which works for every provider it has logins for,
    and the sidecar's ``login`` only where the sidecar has a sign-in flow for the provider."""
    commands = f"`openclaw models auth login --provider {provider}`"
    login = "openai-codex" if provider == "openai" else provider
    spec = BUILTIN_PROVIDERS.get(login)
    if spec is not None and spec.authorize_url is not None:
        commands += f" or `openclaw-sidecar login --provider {login}`"
    return f"{profile_id}: {why}, so its refresh token is spent. Sign in again: {commands}"


class FenceRefresh:
    def __init__(self, store: FencedStore) -> None:
        self.store = store
        self._local: dict[Path, anyio.Lock] = {}
        self._open: set[Path] = set()  # claim records of this process's open claims

    async def refresh(
        self,
        owner: Target,
        profile_id: str,
        provider: str,
        exchange: Exchange,
        rejected: str | None,
        margin_ms: int,
    ) -> OAuthCredential:
        lock = self.store.refresh_lock(provider, profile_id)
        record = claims.claim_path(lock.parent, owner.path, provider, profile_id)
        started = time.monotonic()
        while True:
            async with self._alock(lock):
                step = await anyio.to_thread.run_sync(
                    self._step, owner, profile_id, provider, record, rejected, margin_ms
                )
            if not isinstance(step, _Wait):
                break
            if time.monotonic() - started > OBSERVE_TIMEOUT_S:
                raise RefreshUnavailable(
                    f"{profile_id} stayed fenced by another process's refresh; try again later"
                )
            await anyio.sleep(self.store.poll_s)
        if isinstance(step, OAuthCredential):
            return step
        try:
            return await self._call_and_settle(owner, lock, step, exchange)
        finally:
            self._open.discard(record)

    # --- under the lock -------------------------------------------------------------------------

    def _step(
        self,
        owner: Target,
        profile_id: str,
        provider: str,
        record: Path,
        rejected: str | None,
        margin_ms: int,
    ) -> OAuthCredential | claims.Claim | _Wait:
        self.recover(record)
        doc, _, rows = self.store.read_doc(owner)
        raw = doc.raw.get("profiles", {}).get(profile_id)
        if not isinstance(raw, dict) or raw.get("type") != "oauth":
            raise NoProfile(f"OAuth profile {profile_id!r} is no longer in {owner.path}")
        now = self.store.clock()
        found = fence.parse_fence(raw)
        if found is not None and found.state == "failed":
            raise ReauthRequired(
                reauth_message(profile_id, provider, "a refresh failed and left it fenced")
            )
        if found is not None:
            if rows is not None and now - (rows.store_updated_ms or now) > STALE_FENCE_MS:
                # OpenClaw's own end for a claim that cannot settle: the terminal fence.
                self.store.swap_profile(owner, profile_id, raw, fence.failed_fence(raw))
                log.warning("stale_fence_failed", profile=profile_id, database=str(owner.path))
                raise ReauthRequired(
                    reauth_message(profile_id, provider, "a refresh was abandoned mid-way")
                )
            return _Wait()
        if fence.is_usable(raw, now, margin_ms) and raw.get("access") != rejected:
            return _credential(profile_id, raw)  # someone else refreshed while we waited
        if not isinstance(raw.get("refresh"), str) or not str(raw.get("refresh")).strip():
            raise ReauthRequired(reauth_message(profile_id, provider, "it has no refresh token"))
        return self._claim(owner, profile_id, provider, record, raw)

    def _claim(
        self, owner: Target, profile_id: str, provider: str, record: Path, raw: JSONObject
    ) -> claims.Claim | _Wait:
        claim = claims.new_claim(
            record,
            owner.path,
            profile_id,
            provider,
            fence.make_fence(profile_id, raw, secrets.token_hex(16)),
            dict(raw),
        )
        claims.write(claim)  # durable before the fence is: a kill never loses the token
        self._open.add(record)
        try:
            held = self.store.swap_profile(owner, profile_id, raw, claim.fence)
        except BaseException:
            self._open.discard(record)
            claims.remove(record)
            raise
        if held != raw:  # changed since we read it: decide again
            self._open.discard(record)
            claims.remove(record)
            return _Wait()
        return claim

    def _finish(
        self, owner: Target, claim: claims.Claim, replacement: JSONObject
    ) -> OAuthCredential | None:
        """Settle ``claim`` with ``replacement`` if the row still holds our fence; else adopt
        what replaced it if OpenClaw would (same provider and identity, usable)."""
        held = self.store.swap_profile(owner, claim.profile_id, claim.fence, replacement)
        claims.remove(claim.path)
        now = self.store.clock()
        if held == claim.fence:
            usable = fence.is_usable(replacement, now, 0)
            return _credential(claim.profile_id, replacement) if usable else None
        if held is not None and fence.is_safe_settlement(claim.original, held, now):
            return _credential(claim.profile_id, held)
        return None

    # --- the call, with the lock released ---------------------------------------------------------

    async def _call_and_settle(
        self, owner: Target, lock: Path, claim: claims.Claim, exchange: Exchange
    ) -> OAuthCredential:
        try:
            fields = await exchange(_credential(claim.profile_id, claim.original))
        except ReauthRequired:
            # The provider refused the grant for good: OpenClaw's terminal fence.
            adopted = await self._settle(owner, lock, claim, fence.failed_fence(claim.fence))
            if adopted is not None:
                return adopted
            raise
        except Exception:
            # Not refused (unreachable, slow, malformed): the old token may still be good, so
            # it goes back in place, as OpenClaw's rollback of a claim does.
            adopted = await self._settle(owner, lock, claim, claim.original)
            if adopted is not None:
                return adopted
            raise
        merged = model.merge_fields(claim.original, fields)
        claim = claims.with_refreshed(claim, merged)
        await anyio.to_thread.run_sync(claims.write, claim)
        settled = await self._settle(owner, lock, claim, merged)
        if settled is None:
            raise StoreError(
                f"{claim.profile_id} was replaced while it was being refreshed; the new "
                "credential was not stored"
            )
        return settled

    async def _settle(
        self, owner: Target, lock: Path, claim: claims.Claim, replacement: JSONObject
    ) -> OAuthCredential | None:
        async with self._alock(lock):
            return await anyio.to_thread.run_sync(self._finish, owner, claim, replacement)

    # --- recovery ---------------------------------------------------------------------------------

    def recover(self, record: Path) -> bool:
        """Under the refresh lock: put back what a dead claimer's fence replaced."""
        claim = claims.read(record)
        if claim is None or record in self._open:
            return False
        if claim.pid != os.getpid() and not claim.is_orphan():
            return False  # another live process's open claim
        owner = self._target_of(claim)
        replacement = claim.refreshed or claim.original
        held = self.store.swap_profile(owner, claim.profile_id, claim.fence, replacement)
        claims.remove(record)
        log.warning(
            "fence_recovered",
            profile=claim.profile_id,
            database=claim.database,
            settled=held == claim.fence,
            refreshed=claim.refreshed is not None,
        )
        return True

    def recover_all(self) -> int:
        done = 0
        for record in claims.all_claims(self.store.layout.refresh_lock_dir()):
            claim = claims.read(record)
            if claim is None or not (claim.is_orphan() or claim.pid == os.getpid()):
                continue
            with locks.hold(
                self.store.refresh_lock(claim.provider, claim.profile_id), locks.REFRESH_LOCK
            ):
                done += self.recover(record)
        return done

    def _target_of(self, claim: claims.Claim) -> Target:
        path = Path(claim.database)
        shared = path == self.store.layout.state_sqlite_path()
        return Target(
            "main" if shared else path.parent.parent.name,
            path,
            Kind.SHARED if shared else Kind.AGENT,
        )

    @contextlib.asynccontextmanager
    async def _alock(self, path: Path) -> AsyncIterator[None]:
        local = self._local.setdefault(path, anyio.Lock())
        async with local, locks.ahold(path, locks.REFRESH_LOCK):
            yield


def _credential(profile_id: str, raw: Mapping[str, Any]) -> OAuthCredential:
    entry = model.parse_entry(profile_id, dict(raw))
    if not isinstance(entry, OAuthCredential):
        raise NoProfile(f"{profile_id!r} is not an OAuth profile")
    return entry
