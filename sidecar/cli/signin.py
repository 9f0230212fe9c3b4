"""``login`` (browser or pasted code) and ``import`` (Claude Code's, Codex CLI's login)."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path
from typing import TextIO

import httpx

from sidecar import server
from sidecar.auth import cli_imports as imports
from sidecar.auth import hints, login
from sidecar.cli import recipes
from sidecar.cli.common import UsageError, for_store, open_store, settings_of
from sidecar.cli.wire import target_for
from sidecar.config import Settings
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import check_agent_id


def _profile_id(args: argparse.Namespace) -> str | None:
    if args.profile_id is not None and ":" not in args.profile_id:
        raise UsageError(f"--profile-id {args.profile_id!r}: use <provider>:<name>")
    return str(args.profile_id) if args.profile_id is not None else None


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # no stdin, or not a real file
        return None


def cmd_login(args: argparse.Namespace, out: TextIO) -> int:
    settings, agent, profile_id = settings_of(args), check_agent_id(args.agent), _profile_id(args)
    asked = args.provider.strip().lower()
    provider = "openai-codex" if asked == "openai" else asked  # one ChatGPT login (store §3)
    spec = settings.providers.get(provider)
    if spec is None:
        raise UsageError(
            f"--provider {asked[:80]}: not a provider the sidecar knows (`openclaw-sidecar "
            f"providers` lists them); add [providers.{asked[:80]}] to the config and pass --config"
        )
    auth = server.auth_lookup(settings.providers)(provider)
    if auth is None or auth.authorize_url is None or auth.redirect_uri is None:
        where = hints.install_args(
            settings.config_file, server.state_dir_of(settings, os.environ), os.environ
        )
        add = hints.add_profile(spec, agent, profile_id=profile_id, where=where)
        raise UsageError(f"--provider {asked}: it has no browser login; {add}")
    if not 0 < args.timeout <= 3600:
        raise UsageError(f"--timeout {args.timeout:g}: give seconds above 0, at most 3600")
    if asked != provider:
        sys.stderr.write("--provider openai: storing the ChatGPT login as provider openai-codex\n")
    store = open_store(args, os.environ)
    store.view_sync(agent)  # an unreadable store fails now, not after the user signed in
    with httpx.Client(timeout=settings.refresh.timeout_seconds) as client:
        fields = login.run_login(
            auth,
            timeout_s=args.timeout,
            notify=sys.stderr.write,
            open_browser=None if args.no_browser else webbrowser.open,
            stdin_fd=_stdin_fd(),
            client=client,
            now_ms=now_ms,
        )
    email = fields.get("email")
    fields = for_store(store, fields)
    provider = str(fields["provider"])
    profile_id = profile_id or login.profile_id_for(provider, str(email) if email else None)
    path = store.put_profile_sync(agent, profile_id, fields)
    out.write(f"Stored {profile_id} (oauth, provider {provider}) for agent {agent} in {path}\n")
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    settings, agent, profile_id = settings_of(args), check_agent_id(args.agent), _profile_id(args)
    path = Path(args.path).expanduser() if args.path else None
    path = path or imports.default_path(args.source, os.environ)
    found = imports.read(args.source, path)
    store = open_store(args, os.environ)
    fields = for_store(store, dict(found.fields))
    renamed = fields["provider"] != found.fields["provider"]
    default_id = "openai:" + found.profile_id.split(":", 1)[1] if renamed else found.profile_id
    profile_id = profile_id or default_id
    stored = store.put_profile_sync(agent, profile_id, fields)
    kind = f"{fields['type']}, provider {fields['provider']}"
    out.write(f"Stored {profile_id} ({kind}) for agent {agent} in {stored}\n")
    sys.stderr.write(imports.ownership_notice(args.source, found, path))
    sys.stderr.write(_point_at_sidecar(settings, agent, args.source, found.is_oauth))
    return 0


def _point_at_sidecar(settings: Settings, agent: str, source: str, oauth: bool) -> str:
    """How to send the CLI through the sidecar now: the `wire` command that writes it (Codex
    ignores OPENAI_BASE_URL and OPENAI_API_KEY), and for Claude Code the one-run variables."""
    where = hints.install_args(
        settings.config_file, server.state_dir_of(settings, os.environ), os.environ
    )
    agent_args = ("--agent", agent) if agent != settings.default_agent else ()
    if source == "claude-cli":
        command = hints.command("wire", "claude-code", *agent_args, *where, "--apply")
        recipe = recipes.claude_code(target_for(settings, agent), settings.providers["anthropic"])
        once = " ".join(f"{var.name}={var.value}" for var in recipe.env)
        return (
            f"Point Claude Code at the sidecar instead: {command} writes it into its "
            f"settings.json; or for one run:\n  {once} claude\n"
        )
    route = ("--provider", "openai-codex") if oauth else ()
    command = hints.command("wire", "codex", *route, *agent_args, *where, "--apply")
    return (
        f"Point the Codex CLI at the sidecar {'instead' if oauth else 'too'}: {command} writes a "
        "model provider into its config.toml (Codex ignores OPENAI_BASE_URL and OPENAI_API_KEY)\n"
    )
