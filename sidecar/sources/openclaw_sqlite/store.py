"""OpenClaw's SQLite store (era D, 2026.6.5+) as a credential source: the same typed model and
inheritance as the JSON store, cached reads that notice writers by ``PRAGMA data_version``, and
writes as millisecond ``BEGIN IMMEDIATE`` transactions. Refresh speaks 2026.9.x's fence
protocol (``openclaw_sqlite.refresh``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from sidecar.errors import NoProfile, StoreError, StoreReadOnly, StoreUnsupported
from sidecar.sources.interface import Exchange, StateUpdate
from sidecar.sources.openclaw import era, locks, model
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.config import OpenClawConfig, load_openclaw_config
from sidecar.sources.openclaw.layout import DEFAULT_AGENT, Layout, check_agent_id
from sidecar.sources.openclaw.model import AuthState, JSONObject, OAuthCredential, ProfilesDoc
from sidecar.sources.openclaw.viewcache import ViewCache
from sidecar.sources.openclaw.views import AgentView, StoreSnapshot, merge_view
from sidecar.sources.openclaw_sqlite import fence
from sidecar.sources.openclaw_sqlite import refresh as sqliterefresh
from sidecar.sources.openclaw_sqlite.db import (
    Kind,
    Readers,
    Rows,
    Target,
    dump_compact,
    put_cell,
    transact,
)


class SqliteStore:
    """The SQLite layout under one state dir. ``clock`` gives epoch milliseconds."""

    def __init__(
        self,
        layout: Layout,
        *,
        home: Path,
        clock: Callable[[], int] = now_ms,
        check_interval_s: float = 1.0,
        poll_s: float = 0.05,
    ) -> None:
        self.layout = layout
        self.home = home
        self.clock = clock
        self.check_interval_s = check_interval_s
        self.poll_s = poll_s  # how often a fence someone else holds is looked at again
        self.readers = Readers()
        self.refresher = sqliterefresh.FenceRefresh(self)
        self._config = OpenClawConfig()
        self._views = ViewCache(check_interval_s, clock)

    # --- where things are ----------------------------------------------------------------------

    def agents(self) -> list[str]:
        self._load_config()
        return self.layout.agents(self._config.agents)

    async def all_agents(self) -> set[str]:
        """``agents()`` off the event loop: it lists folders and may read ``openclaw.json``."""
        return set(await anyio.to_thread.run_sync(self.agents))

    def config(self) -> OpenClawConfig:
        self._load_config()
        return self._config

    def _load_config(self) -> None:
        config = load_openclaw_config(self.layout.config_path, self.home)
        if config.agent_dirs != self.layout.agent_dir_overrides:
            self.layout = self.layout.with_agent_dirs(config.agent_dirs)
        self._config = config

    def shared_in_state_db(self) -> bool:
        return era.is_sqlite_install(self.layout)

    def target(self, agent: str) -> Target | None:
        """The agent's own store: for main the shared store (``state/openclaw.sqlite`` once
        ``auth.sharedStore`` says ``state-db``), else ``<agentDir>/openclaw-agent.sqlite``."""
        check_agent_id(agent)
        if agent == DEFAULT_AGENT and self.shared_in_state_db():
            return Target(agent, self.layout.state_sqlite_path(), Kind.SHARED)
        if era.is_sqlite_agent(self.layout, agent):
            return Target(agent, self.layout.agent_sqlite_path(agent), Kind.AGENT)
        return None

    def _main_overlay(self) -> Path | None:
        """2026.9.6 keeps main's profiles in the state DB but writes ``models auth order set
        --agent main`` into main's own agent DB: that state applies on top."""
        if self.shared_in_state_db() and era.is_sqlite_agent(self.layout, DEFAULT_AGENT):
            return self.layout.agent_sqlite_path(DEFAULT_AGENT)
        return None

    def writable_target(self, agent: str) -> Target:
        self._load_config()
        found = self.target(agent)
        if found is None:
            raise StoreReadOnly(
                f"agent {agent!r} has no OpenClaw SQLite store yet "
                f"({self.layout.agent_sqlite_path(agent)}), and the sidecar never creates "
                f"OpenClaw's database: store a first credential with `openclaw models auth "
                f"--agent {agent} paste-api-key --provider <provider>` (or paste-token), then "
                "retry"
            )
        return found

    # --- reading -------------------------------------------------------------------------------

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
        self._views.invalidate()

    def _signature(self, agent: str) -> tuple[Any, ...]:
        """Cheap: a stat of the config and the JSON files beside, ``data_version`` per DB."""
        dbs = [self.layout.state_sqlite_path()]
        for who in {agent, DEFAULT_AGENT}:
            dbs.append(self.layout.agent_sqlite_path(who))
        files = [
            self.layout.config_path,
            *(self.layout.profiles_path(w) for w in {agent, DEFAULT_AGENT}),
        ]
        return (
            tuple(self.readers.version(p) for p in dbs),
            tuple(_stat_key(p) for p in files),
        )

    def _build_view(self, agent: str) -> AgentView:
        self._load_config()
        self._refuse_half_migrated(agent)
        own = self.snapshot(agent)
        main = self.snapshot(DEFAULT_AGENT) if agent != DEFAULT_AGENT else None
        return merge_view(
            agent,
            own,
            main,
            now_ms=self.clock(),
            config_order=self._config.auth_order,
            config_profiles=self._config.auth_profiles,
        )

    def _refuse_half_migrated(self, agent: str) -> None:
        """OpenClaw >= 2026.8 refuses all auth for an agent whose SQLite store is empty while an
        ``auth-profiles.json`` sits beside it (OpenClaw issue #143173): so does the sidecar."""
        json_path = self.layout.profiles_path(agent)
        if not json_path.is_file():
            return
        own = self.target(agent)
        if own is None or not self.read_doc(own)[0].entries:
            raise StoreUnsupported(
                f"agent {agent!r} is half-migrated: {json_path} sits beside an empty SQLite "
                "store, so OpenClaw refuses its auth too. Run `openclaw doctor --fix` to "
                "migrate it (the sidecar never migrates stores), then retry"
            )

    def snapshot(self, agent: str) -> StoreSnapshot | None:
        found = self.target(agent)
        if found is None:
            return None
        doc, state, _ = self.read_doc(found)
        overlay = self._main_overlay() if agent == DEFAULT_AGENT else None
        if overlay is not None:
            extra = self.readers.read(overlay, Kind.AGENT)
            if extra is not None and extra.state:
                state = _merge_state(
                    state, _parse(overlay, "state", extra.state, model.parse_state)
                )
        return StoreSnapshot(
            agent=agent,
            profiles=doc.profiles,
            invalid=doc.invalid,
            state=state,
            origin=found.path,
            era=era.Era.SQLITE,
        )

    def read_doc(self, found: Target) -> tuple[ProfilesDoc, AuthState, Rows | None]:
        rows = self.readers.read(found.path, found.kind)
        if rows is None:
            return model.empty_profiles(), AuthState(), None
        return (*_docs(found.path, rows), rows)

    # --- writing -------------------------------------------------------------------------------

    async def put_profile(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        return await anyio.to_thread.run_sync(self.put_profile_sync, agent, profile_id, fields)

    def put_profile_sync(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        """Login, paste and import: one upsert of the agent's own profiles row."""
        found = self.writable_target(agent)
        new = dict(fields)

        def work(conn: Any, rows: Rows) -> None:
            doc = _docs(found.path, rows)[0]
            existing = doc.raw.get("profiles", {}).get(profile_id)
            if fence.restores_fenced_generation(profile_id, existing, new):
                raise StoreError(
                    f"{profile_id} is fenced by a refresh that consumed this refresh token; "
                    "OpenClaw refuses to put it back, and so does the sidecar: sign in again"
                )
            updated = model.with_profile(doc, profile_id, new)
            put_cell(conn, found.kind, "store", dump_compact(updated.raw), self.clock())

        if new.get("type") == "oauth":  # OpenClaw writes OAuth under the profile's refresh lock
            with locks.hold(
                self.refresh_lock(str(new.get("provider")), profile_id), locks.REFRESH_LOCK
            ):
                transact(found.path, found.kind, work)
        else:
            transact(found.path, found.kind, work)
        self.invalidate()
        return found.path

    async def update_state(self, agent: str, update: StateUpdate) -> None:
        await anyio.to_thread.run_sync(self.update_state_sync, agent, update)

    def update_state_sync(self, agent: str, update: StateUpdate) -> None:
        found = self.writable_target(agent)

        def work(conn: Any, rows: Rows) -> None:
            state = update(_docs(found.path, rows)[1])
            cell = None if state.is_empty() else dump_compact(model.state_object(state))
            put_cell(conn, found.kind, "state", cell, self.clock())

        transact(found.path, found.kind, work)
        self.invalidate()

    def swap_profile(
        self, found: Target, profile_id: str, expected: Mapping[str, Any], new: JSONObject
    ) -> JSONObject | None:
        """Compare-and-swap of one profile (OpenClaw's ``isExactOAuthCredential``, a deep
        equality): writes ``new`` only if the row still holds ``expected``; returns what the
        row held."""

        def work(conn: Any, rows: Rows) -> JSONObject | None:
            doc = _docs(found.path, rows)[0]
            current = doc.raw.get("profiles", {}).get(profile_id)
            if current == dict(expected):
                updated = model.with_profile(doc, profile_id, new)
                put_cell(conn, found.kind, "store", dump_compact(updated.raw), self.clock())
            return dict(current) if isinstance(current, dict) else None

        result = transact(found.path, found.kind, work)
        self.invalidate()
        return result

    def refresh_lock(self, provider: str, profile_id: str) -> Path:
        return self.layout.refresh_lock_dir() / fence.lock_name(provider, profile_id)

    async def refresh(
        self,
        agent: str,
        profile_id: str,
        exchange: Exchange,
        *,
        rejected_access: str | None = None,
        margin_ms: int = model.REFRESH_MARGIN_MS,
    ) -> OAuthCredential:
        view = await self.view(agent)
        found = view.get(profile_id)
        if found is None or not isinstance(found.profile, OAuthCredential):
            raise NoProfile(f"agent {agent!r} has no OAuth profile {profile_id!r}")
        owner = self.writable_target(found.owner)
        return await self.refresher.refresh(
            owner, profile_id, found.profile.provider, exchange, rejected_access, margin_ms
        )

    def recover_claims(self) -> int:
        """Settle fences a killed sidecar left (its claim records); returns how many."""
        return self.refresher.recover_all()

    def close(self) -> None:
        self.readers.close()


def _parse(path: Path, which: str, text: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(text)
    except model.StoreFormatError as exc:
        raise StoreError(
            f"the {which} row of {path} is not a valid OpenClaw auth store: {exc}. It was left "
            "as it is; run `openclaw doctor` to repair it"
        ) from None


def _docs(path: Path, rows: Rows) -> tuple[ProfilesDoc, AuthState]:
    doc = _parse(path, "profiles", rows.store, model.parse_profiles) if rows.store else None
    state = _parse(path, "state", rows.state, model.parse_state) if rows.state else AuthState()
    return doc or model.empty_profiles(), state


def _merge_state(base: AuthState, top: AuthState) -> AuthState:
    return AuthState(
        order={**base.order, **top.order},
        last_good={**base.last_good, **top.last_good},
        usage={**base.usage, **top.usage},
        raw=base.raw,
    )


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
