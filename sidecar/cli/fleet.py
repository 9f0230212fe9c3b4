"""``fleet push | pull | list``: move a profile between this host's store and the fleet's Redis,
and show the fleet's profiles, masked."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import anyio

from sidecar.cli import report as status
from sidecar.cli.common import UsageError, open_store, settings_of
from sidecar.errors import StoreError
from sidecar.sources.fleet.composite import open_fleet
from sidecar.sources.fleet.records import Record
from sidecar.sources.fleet.store import FleetStore
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.expiry import expires_at, profile_status
from sidecar.sources.openclaw.layout import check_agent_id
from sidecar.sources.openclaw.model import OAuthCredential

PUSH_ATTEMPTS = 3


def cmd_fleet(args: argparse.Namespace, out: TextIO) -> int:
    settings = settings_of(args)
    if settings.fleet is None:
        raise UsageError(
            "fleet: the config has no [fleet] table (url_file, key_file, prefix); see "
            "docs/deploy.md, or pass --config"
        )
    fleet = open_fleet(
        settings.fleet, clock=now_ms, refresh_timeout_s=settings.refresh.timeout_seconds
    )
    if args.action == "list":
        return anyio.run(_list, fleet, args.json, out)
    local = open_store(args, os.environ)
    agent = check_agent_id(args.agent)
    action = _push if args.action == "push" else _pull
    return anyio.run(action, local, fleet, agent, args.profile_id, out)


async def _push(
    local: CredentialSource, fleet: FleetStore, agent: str, pid: str, out: TextIO
) -> int:
    try:
        found = (await local.view(agent)).get(pid)
        if found is None or found.owner != agent:
            where = f"agent {found.owner}'s (inherited)" if found else "not in the local store"
            raise UsageError(f"fleet push: profile {pid} of agent {agent} is {where}")
        if await fleet.read(agent, pid) is not None:
            raise UsageError(
                f"fleet push: {pid} of agent {agent} is already in the fleet ({fleet.origin}); "
                "pull it first to replace it"
            )
        if not isinstance(found.profile, OAuthCredential):
            await _create(fleet, agent, pid, found.profile.raw)
            out.write(f"Copied {pid} ({found.profile.type}) of agent {agent} to {fleet.origin}\n")
            return 0
        path = await _move_oauth(local, fleet, agent, pid)
    finally:
        await fleet.aclose()
    out.write(f"Pushed {pid} of agent {agent} to the fleet at {fleet.origin}.\n")
    sys.stderr.write(
        f"Removed its refresh token from {path}: from now on the fleet's sidecars refresh it, "
        "and OpenClaw on this host keeps only the access token until it expires (refresh "
        "tokens are single-use; two holders would log each other out). Undo with "
        f"`openclaw-sidecar fleet pull --profile-id {pid} --agent {agent}`.\n"
    )
    return 0


async def _move_oauth(local: CredentialSource, fleet: FleetStore, agent: str, pid: str) -> str:
    """The local store's refresh protocol, with "write it to the fleet" as the exchange: the
    credential moves under the local refresh and store locks (OpenClaw's too), and the local
    copy loses its refresh token in the same locked write."""
    moved: list[bool] = []

    async def move(cred: OAuthCredential) -> Mapping[str, Any]:
        await _create(fleet, agent, pid, cred.raw)
        moved.append(True)
        return {"refresh": None}  # None deletes the key ({...old, ...new})

    for _ in range(PUSH_ATTEMPTS):
        view = (await local.view(agent)).get(pid)
        if view is None or not isinstance(view.profile, OAuthCredential):
            raise UsageError(f"fleet push: {pid} of agent {agent} changed while being pushed")
        if not view.profile.refresh:
            raise UsageError(f"fleet push: {pid} of agent {agent} has no refresh token to move")
        access = view.profile.access.reveal()
        try:
            await local.refresh(agent, pid, move, rejected_access=access, margin_ms=0)
        except StoreError as exc:
            if moved:
                raise StoreError(
                    f"{pid} is now in the fleet, but its refresh token could not be removed from "
                    f"the local store ({exc.message}); remove it by hand before OpenClaw uses it"
                ) from exc
            raise
        if moved:
            return str(view.origin)
    raise UsageError(f"fleet push: {pid} kept changing locally; try again")


async def _create(fleet: FleetStore, agent: str, pid: str, fields: Mapping[str, Any]) -> None:
    async with fleet.reachable():
        outcome, _ = await fleet.leases.write(agent, pid, dict(fields), 0)
    if outcome != 1:
        raise UsageError(f"fleet push: {pid} of agent {agent} was just created by someone else")


async def _pull(
    local: CredentialSource, fleet: FleetStore, agent: str, pid: str, out: TextIO
) -> int:
    try:
        async with fleet.reachable():
            lease = await fleet.leases.acquire(agent, pid, fleet.lease_ttl_ms)
        if lease is None:
            raise UsageError(f"fleet pull: a sidecar is refreshing {pid} right now; try again")
        try:
            record = await fleet.read(agent, pid)
            if record is None:
                raise UsageError(f"fleet pull: {pid} of agent {agent} is not in the fleet")
            path = await local.put_profile(agent, pid, record.fields)
            async with fleet.reachable():
                outcome, _ = await fleet.leases.delete(lease, record.version)
            if outcome != 1:
                raise StoreError(
                    f"{pid} was written to {path}, but could not be removed from the fleet "
                    f"({outcome}); remove one copy before both refresh it"
                )
        finally:
            async with fleet.reachable():
                await fleet.leases.release(lease)
    finally:
        await fleet.aclose()
    out.write(f"Pulled {pid} of agent {agent} from {fleet.origin} into {path}.\n")
    sys.stderr.write("The fleet's sidecars no longer serve it; this host's store owns it again.\n")
    return 0


async def _list(fleet: FleetStore, as_json: bool, out: TextIO) -> int:
    entries: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    try:
        for agent in await fleet.agents_online():
            records, error = await fleet.load(agent)
            entries += [_entry(r, now_ms()) for r in records]
            if error is not None:
                errors.append({"agent": agent, "code": error.code, "message": error.message})
    finally:
        await fleet.aclose()
    doc = {"version": 1, "origin": fleet.origin, "profiles": entries, "errors": errors}
    if as_json:
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(_table(doc))
    return 1 if errors else 0


def _entry(record: Record, now: int) -> dict[str, Any]:
    profile = record.profile
    expiry = expires_at(profile)
    return {
        "agent": record.agent,
        "profileId": record.profile_id,
        "provider": profile.provider,
        "type": profile.type,
        "status": profile_status(profile, now),
        "expiresAt": expiry,
        "remainingMs": None if expiry is None else expiry - now,
        "secret": status.secret_label(profile),
        "email": profile.email,
        "version": record.version,
        "keyId": record.kid,
    }


def _table(doc: dict[str, Any]) -> str:
    lines = [f"fleet {doc['origin']}"]
    if not doc["profiles"]:
        lines.append("  no profiles")
    for p in doc["profiles"]:
        left = "" if p["remainingMs"] is None else status.format_duration(p["remainingMs"])
        lines.append(
            f"  {p['agent']:<12} {p['profileId']:<40} {p['type']:<8} {p['status']:<9} "
            f"{left:>7}  {p['secret']}  v{p['version']} key {p['keyId']}"
        )
    lines += [f"  agent {e['agent']}: {e['code']}: {e['message']}" for e in doc["errors"]]
    return "\n".join(lines) + "\n"
