"""The ``openclaw-sidecar`` command line: the only place that prints or exits."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from typing import NoReturn

from sidecar import log
from sidecar.auth import cli_imports as imports
from sidecar.cli.common import UsageError
from sidecar.cli.cooldowns import cmd_cooldowns
from sidecar.cli.fleet import cmd_fleet
from sidecar.cli.paste import cmd_paste
from sidecar.cli.providers import cmd_providers
from sidecar.cli.recipes import CLIENTS
from sidecar.cli.serve import cmd_serve
from sidecar.cli.signin import cmd_import, cmd_login
from sidecar.cli.status import cmd_status
from sidecar.cli.usage import cmd_usage
from sidecar.cli.wire import cmd_wire
from sidecar.errors import SidecarError
from sidecar.sources.openclaw.layout import DEFAULT_AGENT
from sidecar.usage.queries import BY_CHOICES

EXAMPLES = """\
examples:
  openclaw-sidecar status                       every agent's profiles and their state
  openclaw-sidecar status --agent work --json   one agent, machine-readable
  openclaw-sidecar providers                    every provider, its client base URL and profiles
  openclaw-sidecar usage --since 7d --by day    requests and tokens per day
  openclaw-sidecar cooldowns                    profiles resting after a rate limit, and until when
  openclaw-sidecar login --provider openai-codex --agent work
  openclaw-sidecar import claude-cli
  printf '%s\\n' "$KEY" | openclaw-sidecar paste-api-key --provider openai --agent work
  claude setup-token | openclaw-sidecar paste-token --provider anthropic --profile-id anthropic:work
  openclaw-sidecar wire codex --agent work --apply   point the Codex CLI at the sidecar
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
PROVIDERS_EPILOG = """\
The built-in catalog (every provider id of OpenClaw 2026.6.1 and 2026.9.6, docs/providers.md)
as [providers.X] in the config overrides and extends it. A client's base URL is the sidecar's
address plus /<provider>, standing for exactly that provider's base URL.

examples:
  openclaw-sidecar providers
  openclaw-sidecar providers --json --config ~/.config/openclaw-sidecar/config.toml
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
WIRE_EPILOG = """\
Prints what to set for CLIENT to go through this sidecar as the agent, and what to check
afterwards; --apply writes it into the client's own file (Codex's config.toml, Claude Code's
settings.json, OpenClaw's openclaw.json), keeping every other setting and a timestamped backup.
A client holds only a placeholder key, never a secret; --apply refuses to replace a value that
looks like a real one. The listener is the one on --port, else the one bound to the agent, else
the first shared one. Codex takes its API-key route (provider openai) unless --provider
openai-codex (a ChatGPT login) is given or the agent has only a ChatGPT login.

Client URLs: the sidecar's /<provider> stands for the provider's whole base_url; a client gets
the URL it would use without the sidecar, with base_url replaced by it.

examples:
  openclaw-sidecar wire claude-code --agent work
  openclaw-sidecar wire codex --agent work --apply
  openclaw-sidecar wire codex --provider openai-codex
  openclaw-sidecar wire openclaw --apply
  eval "$(openclaw-sidecar wire env --agent work)"
"""
USAGE_EPILOG = """\
From the sidecar's usage database ([usage] dir, else $OPENCLAW_SIDECAR_DATA_DIR, else
$XDG_STATE_HOME/openclaw-sidecar, else ~/.local/state/openclaw-sidecar). Errors: answers with a
status of 400 or more, and requests that failed or were cut short. input counts cached tokens
in; total is input + output. Days are local days.

examples:
  openclaw-sidecar usage                        the last 24 hours, by agent
  openclaw-sidecar usage --agent work --by model --since 7d
  openclaw-sidecar usage --by day --since 30d --json
"""
COOLDOWNS_EPILOG = """\
A profile rests after a rate limit (its window, or the provider's own reset time), a billing
failure or a refused login, as OpenClaw 2026.9.6 keeps it: both read the same usageStats, so
what one writes the other honours. clear ends the window and its failure counts the way OpenClaw
does when a profile is added again; the sidecar that serves it sees that within a second.

examples:
  openclaw-sidecar cooldowns
  openclaw-sidecar cooldowns --agent work --json
  openclaw-sidecar cooldowns clear --profile-id openai:team
"""
FLEET_EPILOG = """\
Needs a [fleet] table in the config (url_file: a redis:// or rediss:// URL; key_file: base64 of
32 random bytes, the AES-GCM key for secrets at rest; prefix). Every sidecar whose config names
the same Redis, prefix and key serves the fleet's profiles to their agent. Refresh tokens are
single-use: push removes the local copy's refresh token so this host's OpenClaw cannot fork the
token chain; pull moves the profile back and removes it from the fleet.

examples:
  openclaw-sidecar fleet push --profile-id openai-codex:me@example.com --config fleet.toml
  openclaw-sidecar fleet list --json --config fleet.toml
  openclaw-sidecar fleet pull --profile-id openai-codex:me@example.com --agent work
"""


AGENT_HELP = f"the agent (default: {DEFAULT_AGENT})"


class Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line on stderr (exit 2) naming the problem
    and where help is, like every other error of the command (argparse adds a usage block)."""

    def error(self, message: str) -> NoReturn:
        line = " ".join(message.split())
        self.exit(2, f"{self.prog}: {line} (see `{self.prog} --help`)\n")


def version() -> str:
    try:
        return importlib.metadata.version("openclaw-sidecar")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="openclaw-sidecar",
        description="A credential sidecar for AI agents: agents point their base URL at it and "
        "hold no secrets; it injects and refreshes OpenClaw auth profiles.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do; each has --help"
    )
    common = Parser(add_help=False)
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

    pv = sub.add_parser(
        "providers",
        parents=[common],
        help="the providers served: base URL, auth, refresh, profiles, client base URL",
        epilog=PROVIDERS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pv.add_argument("--json", action="store_true", help="machine-readable output")
    pv.set_defaults(run=cmd_providers)

    us = sub.add_parser(
        "usage",
        parents=[common],
        help="requests, errors and tokens recorded by serve",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    us.add_argument("--agent", help="only this agent's requests")
    us.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d, 2w (24h)")
    us.add_argument(
        "--by",
        choices=BY_CHOICES,
        default="agent",
        help="one row per agent (default), profile, model, provider or day",
    )
    us.add_argument("--json", action="store_true", help="machine-readable output")
    us.set_defaults(run=cmd_usage)

    cd = sub.add_parser(
        "cooldowns",
        parents=[common],
        help="profiles resting after a rate limit, billing or auth failure; clear one",
        epilog=COOLDOWNS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cd.add_argument(
        "action",
        nargs="?",
        choices=("list", "clear"),
        default="list",
        help="list (default) or clear",
    )
    cd.add_argument("--agent", help="only this agent (clear: the agent to look in, default main)")
    cd.add_argument("--profile-id", help="clear: the profile whose cooldown ends now")
    cd.add_argument("--json", action="store_true", help="machine-readable output")
    cd.set_defaults(run=cmd_cooldowns)

    for name, what in (("paste-token", "token"), ("paste-api-key", "API key")):
        p = sub.add_parser(
            name, parents=[common], help=f"store a {what} read from stdin (hidden on a terminal)"
        )
        p.add_argument(
            "--provider",
            required=True,
            help="provider id: a built-in one (openai, anthropic, openrouter) or a "
            "[providers.X] of the config",
        )
        p.add_argument("--agent", default=DEFAULT_AGENT, help=AGENT_HELP)
        p.add_argument("--profile-id", help="default: <provider>:manual")
        p.add_argument(
            "--replace", action="store_true", help="overwrite the agent's profile of that id"
        )
        p.add_argument(
            "--force",
            action="store_true",
            help="store it although the provider is unknown or the secret looks too short",
        )
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
    lg.add_argument("--agent", default=DEFAULT_AGENT, help=AGENT_HELP)
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
    im.add_argument("--agent", default=DEFAULT_AGENT, help=AGENT_HELP)
    im.add_argument("--path", help="the credential file (default: that CLI's own)")
    im.add_argument("--profile-id", help="default: anthropic:claude-cli / openai-codex:codex-cli")
    im.set_defaults(run=cmd_import)

    wr = sub.add_parser(
        "wire",
        parents=[common],
        help="what a client sets to go through this sidecar (--apply: write it)",
        epilog=WIRE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wr.add_argument("client", choices=CLIENTS, help="the client to point at the sidecar")
    wr.add_argument("--agent", help="the agent it acts as (default: the config's default_agent)")
    wr.add_argument(
        "--port", dest="listener_port", type=int, help="the listener's port (default: see below)"
    )
    wr.add_argument("--profile", help="pin this profile of the agent (its id, <provider>:<name>)")
    wr.add_argument(
        "--provider", help="the provider route (default: by client, and what the agent has)"
    )
    wr.add_argument(
        "--apply", action="store_true", help="write it into the client's own file (a backup first)"
    )
    wr.add_argument("--path", help="the client's file (default: where the client reads it)")
    wr.set_defaults(run=cmd_wire)

    fl = sub.add_parser(
        "fleet",  # --config/--state-dir go after the action (a parent's would be overwritten)
        help="move profiles between this host's store and the fleet's Redis; list the fleet",
        epilog=FLEET_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fleet_sub = fl.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="push, pull or list"
    )
    for action, what in (
        ("push", "move a local profile into the fleet (drops the local refresh token)"),
        ("pull", "move a fleet profile back into the local store"),
    ):
        fp = fleet_sub.add_parser(action, parents=[common], help=what)
        fp.add_argument("--profile-id", required=True, help="the profile to move")
        fp.add_argument("--agent", default=DEFAULT_AGENT, help=AGENT_HELP)
        fp.set_defaults(run=cmd_fleet)
    fls = fleet_sub.add_parser("list", parents=[common], help="the fleet's profiles, masked")
    fls.add_argument("--json", action="store_true", help="machine-readable output")
    fls.set_defaults(run=cmd_fleet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Log lines go to stderr, JSON, warnings and up: stdout is the command's own output (serve
    # sets its configured level). structlog's default would print everything to stdout.
    log.configure("warning")
    try:
        code: int = args.run(args, sys.stdout)
    except SidecarError as exc:
        sys.stderr.write(f"openclaw-sidecar: {exc.message}\n")
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    return code
