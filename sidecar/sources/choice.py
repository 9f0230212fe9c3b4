"""Which credential source serves an install (store spec §1), and what a user should be told
about it: a half-migrated agent (OpenClaw issue #143173), profiles ``openclaw doctor --fix``
renamed, a database from a newer OpenClaw. The sidecar never runs or imitates a migration."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw import era
from sidecar.sources.openclaw.clock import now_ms as _now_ms
from sidecar.sources.openclaw.config import load_openclaw_config
from sidecar.sources.openclaw.layout import DEFAULT_AGENT, Layout, is_valid_agent_id
from sidecar.sources.openclaw.views import AgentView
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.sources.openclaw_sqlite.store import SqliteStore


def is_sqlite_layout(layout: Layout) -> bool:
    """Era D: the shared store is in the state DB, or any agent has an SQLite auth store."""
    if era.is_sqlite_install(layout):
        return True
    agents = {DEFAULT_AGENT}
    with contextlib.suppress(OSError):
        agents.update(p.name for p in layout.agents_root.iterdir() if is_valid_agent_id(p.name))
    agents.update(a for a in layout.agent_dir_overrides if is_valid_agent_id(a))
    return any(era.is_sqlite_agent(layout, a) for a in sorted(agents))


def open_source(
    layout: Layout,
    *,
    home: Path,
    clock: Callable[[], int] = _now_ms,
    check_interval_s: float = 1.0,
) -> JsonStore | SqliteStore:
    """JsonStore for OpenClaw's JSON layouts (eras A-C), SqliteStore for era D. A SqliteStore
    first settles any fence a killed sidecar left behind (its claim records)."""
    config = load_openclaw_config(layout.config_path, home)
    layout = layout.with_agent_dirs(config.agent_dirs)
    if not is_sqlite_layout(layout):
        return JsonStore(layout, home=home, clock=clock, check_interval_s=check_interval_s)
    store = SqliteStore(layout, home=home, clock=clock, check_interval_s=check_interval_s)
    store.recover_claims()
    return store


def notices(source: CredentialSource, agent: str, view: AgentView | None = None) -> list[str]:
    """Things ``status`` reports beside the profiles; nothing for the JSON layout."""
    if not isinstance(source, SqliteStore):
        return []
    found: list[str] = []
    json_path = source.layout.profiles_path(agent)
    if json_path.is_file():
        found.append(
            f"{json_path} is left over beside the SQLite store and is ignored (OpenClaw "
            "issue #143173); `openclaw doctor --fix` migrates and archives it"
        )
    target = source.target(agent)
    if target is not None:
        rows = source.readers.read(target.path, target.kind)
        if rows is not None and rows.user_version > target.kind.max_user_version:
            found.append(
                f"{target.path} has user_version {rows.user_version} (newer than "
                f"{target.kind.max_user_version}): served read-only"
            )
    if view is not None:
        found += renamed_profiles(view)
    return found


def renamed_profiles(view: AgentView) -> list[str]:
    """``openclaw doctor --fix`` renames ``openai-codex:<name>`` to ``openai:<name>``: name
    each old id still referenced (order, lastGood, openclaw.json) whose new id is stored."""
    referenced: set[str] = set()
    for order in (view.state.order, view.config_order):
        for ids in order.values():
            referenced.update(ids)
    referenced.update(view.state.last_good.values())
    out = []
    for old in sorted(referenced):
        if not old.startswith("openai-codex:") or old in view.profiles:
            continue
        new = "openai:" + old.split(":", 1)[1]
        if new in view.profiles:
            out.append(f"profile {old} is now {new} (renamed by `openclaw doctor --fix`)")
    return out
