"""The ``openclaw-sidecar`` command line: the only place that prints or exits."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import webbrowser
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx

from sidecar import imports, log, server, status
from sidecar.auth import login
from sidecar.config import Settings, load_settings, with_overrides
from sidecar.errors import SidecarError
from sidecar.store.jsonstore import JsonStore, now_ms
from sidecar.store.layout import DEFAULT_AGENT, Layout, check_agent_id, resolve_home
from sidecar.store.views import AgentView

EXAMPLES = """\
examples:
  openclaw-sidecar status                       every agent's profiles and their state
  openclaw-sidecar status --agent work --json   one agent, machine-readable
  openclaw-sidecar login --provider openai-codex --agent work
  openclaw-sidecar import claude-cli
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
LOGIN_EPILOG = """\
Opens the provider's sign-in page (PKCE, state checked) and waits for the browser's callback on
the redirect URI's port (http://localhost:1455/auth/callback for Codex), or for the redirect
URL, code#state or code pasted on stdin. --provider openai is the same ChatGPT/Codex login,
stored as provider openai-codex. Anthropic's sign-in page shows code#state to paste.

examples:
  openclaw-sidecar login --provider openai-codex
  openclaw-sidecar login --provider openai-codex --agent work --no-browser
  openclaw-sidecar login --provider anthropic --profile-id anthropic:work
  claude setup-token | openclaw-sidecar paste-token --provider anthropic   (a setup token)
"""
IMPORT_EPILOG = """\
claude-cli reads ~/.claude/.credentials.json and stores anthropic:claude-cli; codex-cli reads
$CODEX_HOME/auth.json (else ~/.codex/auth.json) and stores openai-codex:codex-cli, or
openai:codex-cli when the file holds only an OPENAI_API_KEY. Refresh tokens are single-use:
once the sidecar refreshes an imported login, the other CLI's copy is dead.

examples:
  openclaw-sidecar import claude-cli
  openclaw-sidecar import codex-cli --agent work
  openclaw-sidecar import claude-cli --path /mnt/laptop/.claude/.credentials.json
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
                f"{p['secret']}  {p['source']}{' (inherited)' if p['inherited'] else ''}{cooldown}"
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


# --- login and import ----------------------------------------------------------------------


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
    auth = server.auth_lookup(settings.providers)(provider)
    if auth is None or auth.authorize_url is None or auth.redirect_uri is None:
        raise UsageError(
            f"--provider {asked}: no browser login is configured; store its credential with "
            "paste-api-key, or paste-token (Anthropic: claude setup-token | openclaw-sidecar "
            "paste-token --provider anthropic)"
        )
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
    profile_id = profile_id or login.profile_id_for(provider, str(email) if email else None)
    path = store.put_profile_sync(agent, profile_id, fields)
    out.write(f"Stored {profile_id} (oauth, provider {provider}) for agent {agent} in {path}\n")
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    settings, agent, profile_id = settings_of(args), check_agent_id(args.agent), _profile_id(args)
    path = Path(args.path).expanduser() if args.path else None
    path = path or imports.default_path(args.source, os.environ)
    found = imports.read(args.source, path)
    profile_id = profile_id or found.profile_id
    stored = open_store(args, os.environ).put_profile_sync(agent, profile_id, found.fields)
    kind = f"{found.fields['type']}, provider {found.fields['provider']}"
    out.write(f"Stored {profile_id} ({kind}) for agent {agent} in {stored}\n")
    first = settings.listeners[0]
    base = imports.sidecar_base(first.host, first.port, agent, settings.default_agent)
    sys.stderr.write(imports.ownership_notice(args.source, found, path, base))
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

    lg = sub.add_parser(
        "login",
        parents=[common],
        help="sign in with a browser and store an oauth profile",
        epilog=LOGIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lg.add_argument("--provider", required=True, help="openai-codex (alias openai), anthropic")
    lg.add_argument("--agent", default=DEFAULT_AGENT)
    lg.add_argument("--profile-id", help="default: <provider>:<email of the account>")
    lg.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    lg.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for the sign-in (300)"
    )
    lg.set_defaults(run=cmd_login)

    im = sub.add_parser(
        "import",
        parents=[common],
        help="take Claude Code's or the Codex CLI's login into the store",
        epilog=IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    im.add_argument("source", choices=imports.SOURCES, help="whose login to import")
    im.add_argument("--agent", default=DEFAULT_AGENT)
    im.add_argument("--path", help="the credential file (default: that CLI's own)")
    im.add_argument("--profile-id", help="default: anthropic:claude-cli / openai-codex:codex-cli")
    im.set_defaults(run=cmd_import)
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
