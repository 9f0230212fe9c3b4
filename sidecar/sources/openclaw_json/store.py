"""OpenClaw's JSON store (eras A-C) as a credential source: cached reads that notice changes,
and writes under OpenClaw's locks, always to the profile's owner store."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio

from sidecar.errors import NoProfile, StoreError, StoreReadOnly, StoreUnsupported
from sidecar.sources.interface import Exchange, StateUpdate
from sidecar.sources.openclaw import files, locks, model
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.config import OpenClawConfig, load_openclaw_config
from sidecar.sources.openclaw.era import json_era, sqlite_store_path
from sidecar.sources.openclaw.layout import DEFAULT_AGENT, Layout, check_agent_id
from sidecar.sources.openclaw.model import AuthState, OAuthCredential, ProfilesDoc, StoreFormatError
from sidecar.sources.openclaw.viewcache import ViewCache
from sidecar.sources.openclaw.views import AgentView, StoreSnapshot, merge_inline_state, merge_view
from sidecar.sources.openclaw_json.legacy import (
    parse_legacy,
    profiles_from_auth_json,
    profiles_from_oauth_json,
)

T = TypeVar("T")
PARSE_ATTEMPTS = 4
PARSE_RETRY_S = 0.05  # OpenClaw eras A/B may be mid-write: look again before giving up


@dataclass(frozen=True)
class DiskStore:
    """One agent's own files as read, enough to rewrite them in the shape they had."""

    agent: str
    doc: ProfilesDoc
    split_state: AuthState | None  # auth-state.json, if it exists
    exists: bool  # auth-profiles.json exists (else: empty or a legacy import)
    legacy_auth: bool  # the profiles came from the agent's auth.json

    @property
    def inline(self) -> bool:
        return self.exists and self.doc.has_inline_state() and self.split_state is None

    def state(self) -> AuthState:
        return merge_inline_state(self.doc.inline_state(), self.split_state)


class JsonStore:
    """The JSON layout under one state dir. ``clock`` gives epoch milliseconds."""

    def __init__(
        self,
        layout: Layout,
        *,
        home: Path,
        clock: Callable[[], int] = now_ms,
        check_interval_s: float = 1.0,
    ) -> None:
        self.layout = layout
        self.home = home
        self.clock = clock
        self.check_interval_s = check_interval_s
        self._config = OpenClawConfig()
        self._config_key: tuple[int, int, int] | bool | None = False  # False: never read
        # Parsed stores by agent, keyed by their files' stat, and the views built from them.
        self._snaps: dict[str, tuple[tuple[Any, ...], StoreSnapshot | None]] = {}
        self._views = ViewCache(check_interval_s, clock)
        self._local: dict[Path, anyio.Lock] = {}

    # --- reading -------------------------------------------------------------------------------

    def agents(self) -> list[str]:
        self._load_config()
        return self.layout.agents(self._config.agents)

    async def all_agents(self) -> set[str]:
        """``agents()`` off the event loop: it lists folders and may read ``openclaw.json``."""
        return set(await anyio.to_thread.run_sync(self.agents))

    def config(self) -> OpenClawConfig:
        self._load_config()
        return self._config

    async def view(self, agent: str) -> AgentView:
        cached = self._views.fresh(agent)
        if cached is not None:
            return cached
        return await anyio.to_thread.run_sync(self.view_sync, agent)

    def view_sync(self, agent: str) -> AgentView:
        check_agent_id(agent)
        return self._views.lookup(
            agent, lambda: self._signature(agent), lambda: self._build_view(agent)
        )

    def invalidate(self) -> None:
        """Look at the files again on the next read; what did not change is not re-parsed."""
        self._views.invalidate()

    def _build_view(self, agent: str) -> AgentView:
        self._load_config()
        own = self._cached_snapshot(agent)
        main = self._cached_snapshot(DEFAULT_AGENT) if agent != DEFAULT_AGENT else None
        return merge_view(
            agent,
            own,
            main,
            now_ms=self.clock(),
            config_order=self._config.auth_order,
            config_profiles=self._config.auth_profiles,
        )

    def _cached_snapshot(self, agent: str) -> StoreSnapshot | None:
        key = tuple(_stat_key(p) for p in self._agent_files(agent))
        entry = self._snaps.get(agent)
        if entry is not None and entry[0] == key:
            return entry[1]
        snapshot = self.snapshot(agent)
        self._snaps[agent] = (key, snapshot)
        return snapshot

    def snapshot(self, agent: str) -> StoreSnapshot | None:
        disk = self.read_disk(agent)
        if not disk.doc.entries and not disk.exists and disk.split_state is None:
            return None
        return StoreSnapshot(
            agent=agent,
            profiles=disk.doc.profiles,
            invalid=disk.doc.invalid,
            state=disk.state(),
            origin=self.layout.profiles_path(agent),
            era=json_era(disk.doc if disk.exists else None, disk.split_state is not None),
            imported=not disk.exists and bool(disk.doc.entries),
        )

    def read_disk(self, agent: str) -> DiskStore:
        """The agent's own files; refuses an era-D agent and a store that does not parse."""
        self._refuse_sqlite(agent)
        path = self.layout.profiles_path(agent)
        doc = self._read_parsed(path, model.parse_profiles)
        state = self._read_parsed(self.layout.state_path(agent), model.parse_state)
        if doc is not None:
            return DiskStore(agent, doc, state, exists=True, legacy_auth=False)
        imported, from_auth_json = self._legacy_import(agent)
        return DiskStore(agent, imported, state, exists=False, legacy_auth=from_auth_json)

    def _refuse_sqlite(self, agent: str) -> None:
        db = sqlite_store_path(self.layout, agent)
        if db is not None:
            raise StoreUnsupported(
                f"agent {agent!r} keeps its profiles in OpenClaw's SQLite store ({db}, OpenClaw "
                "2026.6.5 or later); this openclaw-sidecar reads and writes only the JSON layout "
                "(OpenClaw up to 2026.6.1), so it leaves that store alone"
            )

    def _read_parsed(self, path: Path, parse: Callable[[bytes], T]) -> T | None:
        for attempt in range(PARSE_ATTEMPTS):
            data = files.read_bytes(path)
            if data is None:
                return None
            try:
                return parse(data)
            except StoreFormatError as exc:
                if attempt == PARSE_ATTEMPTS - 1:
                    raise StoreError(
                        f"{path} is not a valid OpenClaw auth store: {exc}. It was left as it "
                        "is; restore it from a backup or fix it by hand"
                    ) from None
                time.sleep(PARSE_RETRY_S)
        return None  # pragma: no cover - the loop always returns or raises

    def _legacy_import(self, agent: str) -> tuple[ProfilesDoc, bool]:
        """OpenClaw's import when an agent has no auth-profiles.json (store spec §8)."""
        fields = profiles_from_auth_json(
            parse_legacy(files.read_bytes(self.layout.legacy_auth_path(agent)))
        )
        from_auth_json = bool(fields)
        if agent == DEFAULT_AGENT:
            oauth = parse_legacy(files.read_bytes(self.layout.legacy_oauth_path()))
            fields = {**profiles_from_oauth_json(oauth), **fields}
        doc = model.empty_profiles()
        for pid, value in fields.items():
            doc = model.with_profile(doc, pid, value)
        return doc, from_auth_json

    def _agent_files(self, agent: str) -> list[Path]:
        files_ = [
            self.layout.profiles_path(agent),
            self.layout.state_path(agent),
            self.layout.legacy_auth_path(agent),
            self.layout.agent_sqlite_path(agent),
            self.layout.state_sqlite_path(),
        ]
        return [*files_, self.layout.legacy_oauth_path()] if agent == DEFAULT_AGENT else files_

    def _signature(self, agent: str) -> tuple[Any, ...]:
        paths = [self.layout.config_path, *self._agent_files(agent)]
        if agent != DEFAULT_AGENT:
            paths += self._agent_files(DEFAULT_AGENT)
        return tuple(_stat_key(p) for p in paths)

    def _load_config(self) -> None:
        key = _stat_key(self.layout.config_path)
        if key == self._config_key:
            return
        config = load_openclaw_config(self.layout.config_path, self.home)
        self._config_key = key
        if config.agent_dirs != self.layout.agent_dir_overrides:
            self.layout = self.layout.with_agent_dirs(config.agent_dirs)
        self._config = config

    # --- writing -------------------------------------------------------------------------------

    async def refresh(
        self,
        agent: str,
        profile_id: str,
        exchange: Exchange,
        *,
        rejected_access: str | None = None,
        margin_ms: int = model.REFRESH_MARGIN_MS,
    ) -> OAuthCredential:
        owner, provider = self._owner(await self.view(agent), profile_id)
        refresh_lock = self.layout.refresh_lock_path(provider, profile_id)
        async with self._alock(refresh_lock, locks.REFRESH_LOCK), self._astore_lock(owner):
            disk = await anyio.to_thread.run_sync(self.read_disk, owner)
            current = _oauth(disk, profile_id)
            # By the refresher's margin: judged by OpenClaw's 5 minutes, a credential another
            # process just refreshed with a shorter margin would be refreshed again at once.
            usable = current.is_usable(self.clock(), margin_ms)
            if usable and current.access.reveal() != rejected_access:
                return current  # someone else refreshed while we waited for the locks
            fields = await self._exchange_or_adopt(owner, profile_id, current, exchange, margin_ms)
            if isinstance(fields, OAuthCredential):
                return fields
            updated = model.update_profile(disk.doc, profile_id, fields)
            await anyio.to_thread.run_sync(self._write_profiles, disk, updated)
            return _oauth_from(updated, profile_id)

    async def _exchange_or_adopt(
        self,
        owner: str,
        profile_id: str,
        current: OAuthCredential,
        exchange: Exchange,
        margin_ms: int,
    ) -> Mapping[str, Any] | OAuthCredential:
        try:
            return await exchange(current)
        except StoreError:
            raise
        except Exception:
            # A rejected refresh token may mean a writer outside our locks rotated it: adopt
            # a fresher credential if the store now holds one, else report the failure.
            again = _oauth(await anyio.to_thread.run_sync(self.read_disk, owner), profile_id)
            if again.refresh != current.refresh and again.is_usable(self.clock(), margin_ms):
                return again
            raise

    def _owner(self, view: AgentView, profile_id: str) -> tuple[str, str]:
        found = view.get(profile_id)
        if found is None or not isinstance(found.profile, OAuthCredential):
            raise NoProfile(f"agent {view.agent!r} has no OAuth profile {profile_id!r}")
        return found.owner, found.profile.provider

    async def update_state(self, agent: str, update: StateUpdate) -> None:
        async with self._astore_lock(agent):
            await anyio.to_thread.run_sync(self._update_state_locked, agent, update)

    def update_state_sync(self, agent: str, update: StateUpdate) -> None:
        with self._store_lock(agent):
            self._update_state_locked(agent, update)

    def _update_state_locked(self, agent: str, update: StateUpdate) -> None:
        disk = self.read_disk(agent)
        state = update(disk.state())
        if disk.inline:
            self._write_profiles(disk, model.with_inline_state(disk.doc, state))
        elif state.is_empty():  # OpenClaw deletes auth-state.json when it would be empty
            files.remove(self.layout.state_path(agent))
        else:
            files.atomic_write(self.layout.state_path(agent), model.dump_state(state))
        self.invalidate()

    async def put_profile(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        return await anyio.to_thread.run_sync(self.put_profile_sync, agent, profile_id, fields)

    def put_profile_sync(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        """Login and paste: the profile goes into ``agent``'s own store, created holding only
        that agent's profiles (never a copy of main's)."""
        with self._store_lock(agent):
            disk = self.read_disk(agent)
            self._write_profiles(disk, model.with_profile(disk.doc, profile_id, fields))
        return self.layout.profiles_path(agent)

    def _write_profiles(self, disk: DiskStore, doc: ProfilesDoc) -> None:
        self._refuse_sqlite(disk.agent)  # never create auth-profiles.json beside SQLite
        files.atomic_write(self.layout.profiles_path(disk.agent), model.dump_profiles(doc))
        if disk.legacy_auth:  # imported: OpenClaw then deletes the legacy auth.json
            files.remove(self.layout.legacy_auth_path(disk.agent))
        self.invalidate()

    # --- locks ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _store_lock(self, agent: str) -> Iterator[None]:
        self._load_config()  # agentDir overrides: a write may come before any read
        self._refuse_sqlite(agent)  # before the lock: leave nothing at all beside SQLite
        with _os_errors():
            files.ensure_dir(self.layout.agent_dir(agent))
        with _os_errors(), locks.hold(self.layout.store_lock_path(agent), locks.STORE_LOCK):
            yield

    @contextlib.asynccontextmanager
    async def _astore_lock(self, agent: str) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(self._load_config)  # agentDir overrides
        await anyio.to_thread.run_sync(self._refuse_sqlite, agent)
        with _os_errors():
            await anyio.to_thread.run_sync(files.ensure_dir, self.layout.agent_dir(agent))
        async with self._alock(self.layout.store_lock_path(agent), locks.STORE_LOCK):
            yield

    @contextlib.asynccontextmanager
    async def _alock(self, path: Path, policy: locks.LockPolicy) -> AsyncIterator[None]:
        # Tasks of this process queue on an anyio lock instead of polling the file lock.
        local = self._local.setdefault(path, anyio.Lock())
        async with local:
            with _os_errors():
                async with locks.ahold(path, policy):
                    yield


@contextlib.contextmanager
def _os_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        message = f"cannot take the store lock: {exc.strerror} ({exc.filename})"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StoreReadOnly(f"{message}; the store was not changed") from exc
        raise StoreError(message) from exc


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _oauth(disk: DiskStore, profile_id: str) -> OAuthCredential:
    return _oauth_from(disk.doc, profile_id)


def _oauth_from(doc: ProfilesDoc, profile_id: str) -> OAuthCredential:
    entry = doc.entries.get(profile_id)
    if not isinstance(entry, OAuthCredential):
        raise NoProfile(f"OAuth profile {profile_id!r} is no longer in the store")
    return entry
