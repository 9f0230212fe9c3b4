"""The ``openclaw-sidecar`` command line: the only place that prints or exits."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio

from sidecar import log, server, status
from sidecar.config import Settings, load_settings, with_overrides
from sidecar.errors import SidecarError
from sidecar.store.jsonstore import JsonStore, now_ms
from sidecar.store.layout import DEFAULT_AGENT, Layout, check_agent_id, resolve_home
from sidecar.store.views import AgentView

EXAMPLES = """\
examples:
  openclaw-sidecar status                       every agent's profiles and their state
  openclaw-sidecar status --agent work --json   one agent, machine-readable
  printf '%s\\n' "$KEY" | openclaw-sidecar paste-api-key --provider openai --agent work
  claude setup-token | openclaw-sidecar paste-token --provider anthropic --profile-id anthropic:work
"""
SERVE_EPILOG = """\
With no config: one listener on 127.0.0.1:18801, every agent of the state dir by path or
header, default agent main.

examples:
  openclaw-sidecar serve
  openclaw-sidecar serve --config ~/.config/openclaw-sidecar/config.toml
  ANTHROPIC_BASE_URL=http://127.0.0.1:18801/anthropic ANTHROPIC_API_KEY=unused claude -p hi
  OPENAI_BASE_URL=http://127.0.0.1:18801/agents/work/openai/v1 OPENAI_API_KEY=unused my-agent
"""
_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class UsageError(SidecarError):
    code = "usage"
    status = 2


def settings_of(args: argparse.Namespace) -> Settings:
    settings = load_settings(Path(args.config) if args.config else None, os.environ)
    state_dir = Path(os.path.expanduser(args.state_dir)) if args.state_dir else None
    return with_overrides(
        settings,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        state_dir=state_dir,
    )


def open_store(args: argparse.Namespace, environ: Mapping[str, str]) -> JsonStore:
    settings = settings_of(args)
    layout = Layout.from_env(environ, state_dir=settings.state_dir)
    return JsonStore(layout, home=resolve_home(environ), check_interval_s=0)


# --- serve ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    settings = settings_of(args)  # validated completely before any socket is bound
    log.configure(settings.log.level)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(server.serve, settings, os.environ)
    return 0


# --- status -----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    store = open_store(args, os.environ)
    agents = [check_agent_id(args.agent)] if args.agent else store.agents()
    views: list[AgentView] = []
    errors: list[dict[str, str]] = []
    for agent in agents:
        try:
            views.append(store.view_sync(agent))
        except SidecarError as exc:
            errors.append({"agent": agent, "code": exc.code, "message": exc.message})
    doc = status.report(views, now_ms(), errors)
    if args.json:
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(_status_table(doc))
    return status.check_exit_code(doc) if args.check else 0


def _status_table(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    for agent in doc["agents"]:
        lines.append(f"agent {agent['agent']}  (store: {agent['era']})")
        if not agent["profiles"]:
            lines.append("  no profiles")
        for p in agent["profiles"]:
            left = "" if p["remainingMs"] is None else status.format_duration(p["remainingMs"])
            cooldown = "  cooldown" if p["cooldownUntil"] else ""
            lines.append(
                f"  {p['profileId']:<40} {p['type']:<8} {p['status']:<9} {left:>7}  "
                f"{p['label']}  {p['source']}{' (inherited)' if p['inherited'] else ''}{cooldown}"
            )
        lines += [f"  skipped {s['profileId']}: {s['reason']}" for s in agent["skipped"]]
    lines += [f"agent {e['agent']}: {e['code']}: {e['message']}" for e in doc["errors"]]
    return "\n".join(lines) + "\n"


# --- paste ------------------------------------------------------------------------------------


def parse_duration_ms(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"--expires-in {text!r}: use a number and a unit, like 30m, 12h or 365d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def read_secret(stdin: TextIO, what: str) -> str:
    if stdin.isatty():
        sys.stderr.write(f"Paste the {what} and press Enter (it is read from stdin, not shown):\n")
    value = stdin.readline().strip()
    if not value:
        raise UsageError(f"no {what} on stdin")
    return value


def check_token(provider: str, token: str) -> None:
    """OpenClaw's input checks for ``paste-token``."""
    if provider == "anthropic" and (not token.startswith("sk-ant-oat01-") or len(token) < 80):
        raise UsageError(
            "an Anthropic setup token starts with sk-ant-oat01- and has at least 80 "
            "characters; create one with `claude setup-token`"
        )
    if provider == "openai" and re.match(r"^sk-(proj-|svcacct-)?[A-Za-z0-9_-]{20,}$", token):
        raise UsageError("that looks like an OpenAI API key: store it with paste-api-key")


def cmd_paste(args: argparse.Namespace, out: TextIO) -> int:
    provider = args.provider.strip().lower()
    profile_id = args.profile_id or f"{provider}:manual"
    if ":" not in profile_id:
        raise UsageError(f"--profile-id {profile_id!r}: use <provider>:<name>")
    agent = check_agent_id(args.agent)
    if args.command == "paste-token":
        secret = read_secret(sys.stdin, "token")
        check_token(provider, secret)
        fields: dict[str, Any] = {"type": "token", "provider": provider, "token": secret}
        if args.expires_in:
            fields["expires"] = now_ms() + parse_duration_ms(args.expires_in)
    else:
        secret = read_secret(sys.stdin, "API key")
        fields = {"type": "api_key", "provider": provider, "key": secret}
    path = open_store(args, os.environ).put_profile_sync(agent, profile_id, fields)
    out.write(f"Stored {profile_id} ({fields['type']}) for agent {agent} in {path}\n")
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openclaw-sidecar",
        description="A credential sidecar for AI agents: agents point their base URL at it and "
        "hold no secrets; it injects and refreshes OpenClaw auth profiles.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir", help="OpenClaw state dir (default: $OPENCLAW_STATE_DIR, else ~/.openclaw)"
    )
    common.add_argument(
        "--config",
        help="TOML config (default: $OPENCLAW_SIDECAR_CONFIG, else the embedded default)",
    )

    sv = sub.add_parser(
        "serve",
        parents=[common],
        help="run the proxy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=SERVE_EPILOG,
    )
    sv.add_argument("--host", help="address of the first listener (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port of the first listener (default 18801)")
    sv.set_defaults(run=cmd_serve)

    st = sub.add_parser(
        "status",
        parents=[common],
        help="profiles per agent and their state",
        epilog="exit codes with --check: 0 all good, 1 expired or missing, 2 expiring within 24 h",
    )
    st.add_argument("--agent", help="only this agent")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--check", action="store_true", help="exit 0/1/2 by the worst status")
    st.set_defaults(run=cmd_status)

    for name, what in (("paste-token", "token"), ("paste-api-key", "API key")):
        p = sub.add_parser(name, parents=[common], help=f"store a {what} read from stdin")
        p.add_argument("--provider", required=True)
        p.add_argument("--agent", default=DEFAULT_AGENT)
        p.add_argument("--profile-id", help="default: <provider>:manual")
        if name == "paste-token":
            p.add_argument("--expires-in", help="e.g. 12h, 30d")
        p.set_defaults(run=cmd_paste)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args, sys.stdout)
    except SidecarError as exc:
        sys.stderr.write(f"openclaw-sidecar: {exc.message}\n")
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    return code
