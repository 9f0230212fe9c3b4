"""``cooldowns``: the profiles resting after a failure, with why and until when, and ``cooldowns
clear``, which ends one as OpenClaw would (``resetAuthProfileFailureState``), in the store that
owns it (main's for a profile an agent inherits, the fleet's for a fleet profile)."""

from __future__ import annotations

import argparse
import functools
import json
import os
from datetime import UTC, datetime
from typing import Any, TextIO

import anyio

from sidecar.cli.common import Missing, UsageError, open_store, settings_of
from sidecar.cli.report import format_duration
from sidecar.sources.fleet.composite import CompositeSource, with_fleet
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import DEFAULT_AGENT, check_agent_id
from sidecar.sources.openclaw.views import AgentView


def cmd_cooldowns(args: argparse.Namespace, out: TextIO) -> int:
    store = open_store(args, os.environ)
    if not store.layout.state_dir.is_dir():
        raise Missing(f"the state dir {store.layout.state_dir} does not exist: nothing rests")
    source = with_fleet(store, settings_of(args))
    if args.action == "clear":
        if not args.profile_id:
            raise UsageError("cooldowns clear needs --profile-id ID (`cooldowns` lists them)")
        agent = check_agent_id(args.agent or DEFAULT_AGENT)
        out.write(anyio.run(_clear, source, agent, args.profile_id) + "\n")
        return 0
    if args.profile_id:
        raise UsageError("--profile-id goes with `cooldowns clear`")
    agents = [check_agent_id(args.agent)] if args.agent else None
    entries = anyio.run(_list, source, agents, now_ms())
    out.write(json.dumps({"cooldowns": entries}, indent=2) + "\n" if args.json else _table(entries))
    return 0


def resting(view: AgentView, now: int) -> list[dict[str, Any]]:
    """The agent's profiles in a cooldown, a disable or a block, soonest end first, as
    ``openclaw models status`` lists them (``auth.unusableProfiles``); openrouter and kilocode
    profiles never rest."""
    found = []
    for pid, profile in view.profiles.items():
        stats = view.state.usage.get(pid)
        until = usage.unusable_until(stats, None, now)
        if stats is None or until <= now or usage.is_cooldown_exempt(profile.profile.provider):
            continue
        raw = stats.raw
        disabled = isinstance(raw.get("disabledUntil"), int | float) and raw["disabledUntil"] > now
        found.append(
            {
                "agent": view.agent,
                "profileId": pid,
                "provider": profile.profile.provider,
                "owner": profile.owner,
                "kind": "disabled" if disabled else "cooldown",
                "reason": usage.resting_reason(stats, now),
                "model": raw.get("cooldownModel") or raw.get("blockedModel"),
                "until": until,
                "remainingMs": until - now,
            }
        )
    return sorted(found, key=lambda e: (e["until"], e["profileId"]))


async def _list(
    source: CredentialSource, agents: list[str] | None, now: int
) -> list[dict[str, Any]]:
    try:
        return [
            e for agent in agents or source.agents() for e in resting(await source.view(agent), now)
        ]
    finally:
        await _close(source)


async def _clear(source: CredentialSource, agent: str, profile_id: str) -> str:
    """Ends ``profile_id``'s windows in its owner's store, keeping its use history."""
    try:
        view = await source.view(agent)
        found = view.get(profile_id)
        if found is None:
            raise Missing(
                f"agent {agent!r} has no profile {profile_id!r} (`openclaw-sidecar cooldowns` "
                "lists the resting ones)"
            )
        before = resting(view, now_ms())
        was = next((e for e in before if e["profileId"] == profile_id), None)

        await source.update_state(
            found.owner, functools.partial(usage.cleared_in, profile_id=profile_id)
        )
    finally:
        await _close(source)
    if was is None:
        return f"{profile_id} was not resting; its failure counts are cleared"
    where = "" if found.owner == agent else f" (in {found.owner}'s store)"
    return f"{profile_id}: {was['kind']} ({was['reason']}) ended{where}; it is usable now"


async def _close(source: CredentialSource) -> None:
    if isinstance(source, CompositeSource):
        await source.fleet.aclose()


def _table(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "no profile is resting\n"
    lines = []
    for e in entries:
        until = datetime.fromtimestamp(e["until"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ms = e["remainingMs"]
        left = format_duration(ms) if ms >= 60_000 else f"{-(-ms // 1000)}s"
        model = f"  model {e['model']}" if e["model"] else ""
        owner = f"  (owner {e['owner']})" if e["owner"] != e["agent"] else ""
        lines.append(
            f"agent {e['agent']}  {e['profileId']:<36} {e['kind']:<8} {e['reason'] or '-':<18} "
            f"until {until} ({left}){model}{owner}"
        )
    return "".join(line + "\n" for line in lines)
