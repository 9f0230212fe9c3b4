"""``wire CLIENT``: what to set for a client to go through this sidecar as an agent, and with
``--apply`` the client's own file written (``client_files``). The recipes are ``recipes``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sidecar import server
from sidecar.auth import hints
from sidecar.cli import client_files, recipes
from sidecar.cli.common import UsageError, open_store, settings_of
from sidecar.cli.recipe_text import render, render_shell
from sidecar.cli.recipes import Client, FileKind, Recipe, Target
from sidecar.config import Settings
from sidecar.config.settings import Listener
from sidecar.errors import SidecarError
from sidecar.providers.catalog import ProviderSpec
from sidecar.sources.openclaw.layout import check_agent_id, resolve_state_dir
from sidecar.sources.openclaw.views import AgentView

# The routes each client can take, by provider kind; OpenClaw's are the ones checked with it.
KINDS: Mapping[Client, frozenset[str]] = {
    "claude-code": frozenset({"anthropic"}),
    "anthropic-sdk": frozenset({"anthropic"}),
    "openai-sdk": frozenset({"openai", "generic"}),
    "codex": frozenset({"openai", "openai-codex", "generic"}),
    "env": frozenset({"openai", "generic", "anthropic"}),
    "openclaw": frozenset({"openai", "anthropic"}),
}
DEFAULTS: Mapping[Client, tuple[str, ...]] = {
    "claude-code": ("anthropic",),
    "anthropic-sdk": ("anthropic",),
    "openai-sdk": ("openai",),
    "codex": ("openai",),
    "env": ("openai", "anthropic"),
    "openclaw": ("openai", "anthropic"),
}


def origin_of(listener: Listener, port: int) -> str:
    """The URL a client on this host uses for ``listener`` (a wildcard address as loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listener.host, listener.host)
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if listener.tls_cert_file is not None else "http"
    return f"{scheme}://{shown}:{port}"


def choose_listener(settings: Settings, agent: str, port: int | None) -> tuple[Listener, int]:
    """The listener on ``port`` (none there: the first one on that port, as ``serve --port``
    would run it), else the one bound to ``agent``, else the first shared one."""
    if port is not None:
        found = [lst for lst in settings.listeners if lst.port == port]
        listener = found[0] if found else settings.listeners[0]
    else:
        bound = [lst for lst in settings.listeners if lst.agent == agent]
        shared = [lst for lst in settings.listeners if lst.agent is None]
        if not bound and not shared:
            ports = ", ".join(f"{lst.port} ({lst.agent})" for lst in settings.listeners)
            raise UsageError(
                f"no listener serves agent {agent!r}: each is bound to another ({ports})"
            )
        listener = (bound or shared)[0]
    if listener.agent is not None and listener.agent != agent:
        raise UsageError(
            f"the listener on port {port or listener.port} serves only agent {listener.agent!r}; "
            f"pass --agent {listener.agent} or another --port"
        )
    return listener, port or listener.port


def target_for(
    settings: Settings, agent: str, *, port: int | None = None, profile_id: str | None = None
) -> Target:
    """Where a client of ``agent`` goes: ``choose_listener``'s origin, the agent in the path
    unless the listener is bound to it or it is the default one, and the pin."""
    listener, port = choose_listener(settings, agent, port)
    return Target(
        origin=origin_of(listener, port),
        agent=agent,
        agent_in_path=listener.agent is None and agent != settings.default_agent,
        profile_id=profile_id,
        token_file=listener.client_token_file,
    )


def route_of(provider: str, kind: str) -> str:
    """The route a profile serves: Codex logins (``openai`` OAuth since 2026.6.1) serve Codex's."""
    return "openai-codex" if provider == "openai" and kind == "oauth" else provider


def chosen_specs(
    client: Client,
    providers: Mapping[str, ProviderSpec],
    view: AgentView | None,
    *,
    asked: str | None,
    pinned: str | None,
) -> tuple[ProviderSpec, ...]:
    """The providers the recipe points at: the pinned profile's, the one asked for, or the
    client's defaults (for Codex: its API-key route unless the agent has only a ChatGPT login;
    for env and OpenClaw: those the agent has profiles for)."""
    routes: dict[str, str] = {}
    if view is not None:
        for pid, pv in view.profiles.items():
            routes[pid] = route_of(pv.profile.provider, pv.profile.type)
    if pinned is not None:
        names: tuple[str, ...] = (routes.get(pinned) or pinned.split(":", 1)[0],)
    elif asked is not None:
        names = (asked,)
    else:
        names = _defaults(client, set(routes.values()))
    specs = tuple(_spec(providers, name) for name in names)
    for spec in specs:
        if spec.kind not in KINDS[client]:
            raise UsageError(
                f"{client} cannot use provider {spec.name} ({spec.kind}); it takes "
                f"{', '.join(sorted(KINDS[client]))} providers"
            )
    return specs


def _defaults(client: Client, routes: set[str]) -> tuple[str, ...]:
    if client == "codex" and "openai-codex" in routes and "openai" not in routes:
        return ("openai-codex",)
    if client in ("env", "openclaw"):
        having = tuple(name for name in DEFAULTS[client] if name in routes)
        return having or DEFAULTS[client]
    return DEFAULTS[client]


def _spec(providers: Mapping[str, ProviderSpec], name: str) -> ProviderSpec:
    spec = providers.get(name)
    if spec is None:
        known = ", ".join(sorted(providers))
        raise UsageError(f"provider {name!r} is not one the sidecar knows ({known})")
    return spec


def build(client: Client, target: Target, specs: tuple[ProviderSpec, ...]) -> Recipe:
    if client == "claude-code":
        return recipes.claude_code(target, specs[0])
    if client == "codex":
        return recipes.codex(target, specs[0])
    if client in ("openai-sdk", "anthropic-sdk"):
        return recipes.sdk(client, target, specs[0])
    if client == "env":
        return recipes.env(target, specs)
    return recipes.openclaw(target, specs)


def file_path(kind: FileKind, environ: Mapping[str, str]) -> Path:
    """Where the client reads it: $CODEX_HOME/config.toml, $CLAUDE_CONFIG_DIR/settings.json,
    OpenClaw's $OPENCLAW_CONFIG_PATH or <its state dir>/openclaw.json (each by its own rule)."""
    home = Path(environ.get("HOME") or Path.home())
    if kind == "codex-config":
        return Path(environ.get("CODEX_HOME") or home / ".codex") / "config.toml"
    if kind == "claude-settings":
        return Path(environ.get("CLAUDE_CONFIG_DIR") or home / ".claude") / "settings.json"
    config = environ.get("OPENCLAW_CONFIG_PATH")
    return Path(config).expanduser() if config else resolve_state_dir(environ) / "openclaw.json"


def _view(args: argparse.Namespace, agent: str, warnings: list[str]) -> AgentView | None:
    try:
        view = open_store(args, os.environ).view_sync(agent)
    except SidecarError as exc:
        warnings.append(f"cannot read the sidecar's store ({exc.message}): no profile checked")
        return None
    if view.unreadable is not None:
        warnings.append(f"the sidecar's store: {view.unreadable.message}")
    return view


def _missing(
    settings: Settings, view: AgentView | None, specs: tuple[ProviderSpec, ...], target: Target
) -> list[str]:
    if view is None:
        return []
    where = hints.install_args(
        settings.config_file, server.state_dir_of(settings, os.environ), os.environ
    )
    if target.profile_id is not None:
        if view.get(target.profile_id) is None:
            raise UsageError(
                f"agent {target.agent!r} has no profile {target.profile_id!r}; "
                f"`openclaw-sidecar status --agent {target.agent}` lists them"
            )
        return []
    routes = {route_of(p.profile.provider, p.profile.type) for p in view.profiles.values()}
    return [
        f"agent {target.agent!r} has no {spec.name} profile yet: "
        + hints.add_profile(spec, target.agent, where=where)
        for spec in specs
        if spec.name not in routes
    ]


def cmd_wire(args: argparse.Namespace, out: TextIO) -> int:
    settings = settings_of(args)
    client: Client = args.client
    agent = check_agent_id(args.agent or settings.default_agent)
    target = target_for(settings, agent, port=args.listener_port, profile_id=args.profile)
    warnings: list[str] = []
    view = _view(args, agent, warnings)
    specs = chosen_specs(client, settings.providers, view, asked=args.provider, pinned=args.profile)
    warnings += _missing(settings, view, specs, target)
    recipe = build(client, target, specs)
    if client == "env":
        for warning in warnings:
            sys.stderr.write(f"openclaw-sidecar: warning: {warning}\n")
        out.write(render_shell(recipe, origin=target.origin, command=_command(args)))
        return _apply(args, recipe, out)
    path = _target_file(args, recipe)
    sidecar_dir = server.state_dir_of(settings, os.environ)
    if path is not None and not args.path and path.parent == sidecar_dir:
        warnings.append(
            f"{path} is in the sidecar's own state dir: right when OpenClaw shares it "
            "(docs/openclaw.md §4b); if OpenClaw keeps its state elsewhere, pass --path "
            "<OpenClaw's openclaw.json>"
        )
    out.write(render(recipe, origin=target.origin, file_path=path, warnings=warnings))
    return _apply(args, recipe, out)


def _command(args: argparse.Namespace) -> str:
    parts = ["openclaw-sidecar", "wire", args.client]
    for flag, value in (("--agent", args.agent), ("--port", args.listener_port)):
        if value is not None:
            parts += [flag, str(value)]
    for flag, value in (("--profile", args.profile), ("--provider", args.provider)):
        if value is not None:
            parts += [flag, value]
    return " ".join(parts)


def _target_file(args: argparse.Namespace, recipe: Recipe) -> Path | None:
    if recipe.file is None:
        return None
    if args.path:
        return Path(args.path).expanduser()
    return file_path(recipe.file.kind, os.environ)


def _apply(args: argparse.Namespace, recipe: Recipe, out: TextIO) -> int:
    if not args.apply:
        return 0
    path = _target_file(args, recipe)
    if recipe.file is None or path is None:
        raise UsageError(
            f"{recipe.client} reads its settings from its environment or code, so --apply has "
            f'no file to write; in a shell: eval "$(openclaw-sidecar wire env ...)"'
        )
    done = client_files.apply(path, recipe.file.kind, recipe.file.edits, datetime.now(UTC))
    if not done.changes:
        out.write(f"\n{path} already has these settings: nothing written\n")
        return 0
    backup = f" (the old one is {done.backup})" if done.backup else " (a new file)"
    out.write(f"\nWrote {path}{backup}:\n")
    for key, old in client_files.shown(done.changes).items():
        out.write(f"  {key} (was {old})\n")
    return 0
