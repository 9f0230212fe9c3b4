"""``status``: every agent's profiles, as a table or as stable JSON (docs/status.md)."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from typing import Any, TextIO

import anyio

from sidecar.auth import hints
from sidecar.cli import report as status
from sidecar.cli.common import Missing, open_store, settings_of
from sidecar.config import Settings
from sidecar.errors import SidecarError, StoreError, StoreUnsupported, UnknownAgent
from sidecar.server import agent_listing, auth_lookup
from sidecar.sources import choice as sources
from sidecar.sources.fleet.composite import CompositeSource, with_fleet
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import DEFAULT_AGENT, check_agent_id
from sidecar.sources.openclaw.views import AgentView
from sidecar.sources.openclaw_sqlite import fence
from sidecar.sources.openclaw_sqlite.store import SqliteStore
from sidecar.usage import db, queries


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    """The report on stdout; an unreadable store, a missing state dir and (with --check) no
    profiles at all are errors: one line on stderr (main writes it) and exit 1."""
    store = open_store(args, os.environ)
    settings = settings_of(args)
    state_dir = store.layout.state_dir
    where = hints.install_args(settings.config_file, state_dir, os.environ)
    if not state_dir.is_dir():
        raise Missing(
            f"the state dir {state_dir} does not exist, so it has no profiles to show; pass "
            f"another --state-dir, or {hints.first_profile(where)}"
        )
    if settings.fleet is None:
        views, errors = _views(store, [check_agent_id(args.agent)] if args.agent else None)
        known = set(store.agents())
    else:  # the fleet's profiles too: their source is the fleet's redis:// origin
        views, errors, known = anyio.run(_fleet_views, store, settings, args.agent)
    errors += _unknown_bound_agents(settings, known, args.agent)
    doc = status.report(views, now_ms(), errors, _windows(settings))
    auth_for = auth_lookup(settings.providers, os.environ)
    for entry, view in zip(doc["agents"], views, strict=True):
        _annotate(entry, view, sources.notices(store, view.agent, view))
        for profile in entry["profiles"]:
            profile.update(status.refresh_entry(profile, auth_for(profile["provider"])))
        entry["listeners"] = _listeners_of(settings, view.agent)
    if args.json:
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(_status_table(doc))
    if doc["errors"]:
        raise StoreError("; ".join(f"agent {e['agent']}: {e['message']}" for e in doc["errors"]))
    if not args.check:
        return 0
    if not any(agent["profiles"] for agent in doc["agents"]):
        raise Missing(f"no profiles in {state_dir}: {hints.first_profile(where)}")
    return status.check_exit_code(doc)


Views = tuple[list[AgentView], list[dict[str, str]]]


def _windows(settings: Settings) -> status.Windows:
    """Each profile's latest windows from the usage database; none when there is none (or it
    cannot be read: ``usage`` says why, status is about the profiles)."""
    try:
        conn = db.open_for_reading(db.database_path(settings.usage.dir, os.environ))
        if conn is None:
            return {}
        try:
            return queries.windows_by_profile(queries.latest_windows(conn))
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def _views(store: CredentialSource, agents: list[str] | None) -> Views:
    views: list[AgentView] = []
    errors: list[dict[str, str]] = []
    for agent in agents if agents is not None else store.agents():
        try:
            views.append(store.view_sync(agent))
        except SidecarError as exc:
            errors.append(_error(store, agent, exc))
    return views, errors


async def _fleet_views(
    store: CredentialSource, settings: Settings, agent: str | None
) -> tuple[list[AgentView], list[dict[str, str]], set[str]]:
    source = with_fleet(store, settings)
    views: list[AgentView] = []
    errors: list[dict[str, str]] = []
    try:
        known = set(await agent_listing(source)())  # the fleet's agents too, as serve sees them
        for name in [check_agent_id(agent)] if agent else source.agents():
            try:
                views.append(await source.view(name))
            except SidecarError as exc:
                errors.append(_error(store, name, exc))
    finally:
        if isinstance(source, CompositeSource):
            await source.fleet.aclose()
    return views, errors, known


def _listeners_of(settings: Settings, agent: str) -> list[dict[str, Any]]:
    """The ports that serve ``agent`` (bound to it, or shared) and whether each also serves the
    profiles it inherits from main (``inherit``; off on a bound port unless configured)."""
    return [
        {
            "host": listener.host,
            "port": listener.port,
            "agent": listener.agent,
            "inherit": listener.reads_through and agent != DEFAULT_AGENT,
        }
        for listener in settings.listeners
        if listener.agent in (None, agent)
    ]


def _unknown_bound_agents(
    settings: Settings, known: set[str], wanted: str | None
) -> list[dict[str, str]]:
    """A port bound to an agent the state dir does not know refuses every request."""
    return [
        {
            "agent": listener.agent,
            "era": "unknown",
            "code": UnknownAgent.code,
            "message": (
                f"{listener.host}:{listener.port} is bound to agent {listener.agent!r}, which "
                "has no folder in the state dir and is not in openclaw.json: that port answers "
                "404 unknown_agent until a credential is stored for it (`openclaw-sidecar "
                f"paste-api-key --agent {listener.agent} --provider <provider>`)"
            ),
        }
        for listener in settings.listeners
        if listener.agent is not None
        and listener.agent not in known
        and wanted in (None, listener.agent)
    ]


def _error(store: CredentialSource, agent: str, exc: SidecarError) -> dict[str, str]:
    sqlite = isinstance(store, SqliteStore) or isinstance(exc, StoreUnsupported)
    era = "sqlite" if sqlite else "unknown"
    return {"agent": agent, "era": era, "code": exc.code, "message": exc.message}


def _annotate(entry: dict[str, Any], view: AgentView, notices: list[str]) -> None:
    """Era D: a profile OpenClaw is refreshing (``fence: pending``) or whose refresh failed
    (``fence: failed``, sign in again), and the agent's notices."""
    entry["notices"] = notices
    for profile in entry["profiles"]:
        found = fence.parse_fence(view.profiles[profile["profileId"]].profile.raw)
        profile["fence"] = found.state if found else None


def _port_line(listener: dict[str, Any]) -> str:
    kind = "bound to it" if listener["agent"] else "shared"
    served = "its own and main's profiles" if listener["inherit"] else "its own profiles only"
    return f"port {listener['host']}:{listener['port']} ({kind}): {served}"


def _status_table(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    for agent in doc["agents"]:
        lines.append(f"agent {agent['agent']}  (store: {agent['era']})")
        lines += [f"  {_port_line(listener)}" for listener in agent.get("listeners", ())]
        if not agent["profiles"]:
            lines.append("  no profiles")
        for p in agent["profiles"]:
            left = "" if p["remainingMs"] is None else status.format_duration(p["remainingMs"])
            cooldown = "  cooldown" if p["cooldownUntil"] else ""
            if p.get("fence"):
                cooldown += f"  fence:{p['fence']}"
            if p.get("refresh") in ("openclaw", "none"):
                cooldown += f"  refresh:{p['refresh']}"
            windows = status.windows_text(p["windows"], doc["generatedAt"])
            lines.append(
                f"  {p['profileId']:<40} {p['type']:<8} {p['status']:<9} {left:>7}  "
                f"{p['secret']}  {p['source']}{' (inherited)' if p['inherited'] else ''}{cooldown}"
                + (f"  {windows}" if windows else "")
            )
        lines += [f"  {p['profileId']}: {p['action']}" for p in agent["profiles"] if p["action"]]
        lines += [f"  skipped {s['profileId']}: {s['reason']}" for s in agent["skipped"]]
        lines += [f"  note: {n}" for n in agent.get("notices", ())]
    return "".join(line + "\n" for line in lines)
