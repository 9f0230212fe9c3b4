#!/usr/bin/env bash
# install-clients.sh - install the real Claude Code and Codex CLIs for the `wire` recipe tests.
#
#   scripts/install-clients.sh
#
# Both go to one prefix, ${CLIENTS_LAB_DIR:-$HOME/.cache/openclaw-sidecar/clients}:
#   <prefix>/node_modules/@anthropic-ai/claude-code-linux-<arch>/claude   Claude Code (native binary)
#   <prefix>/node_modules/@openai/codex/bin/codex.js                       Codex (run with node; it
#                                                                          starts the bundled Rust binary)
# tests/e2e/clients.py looks for exactly this layout. Both are native binaries shipped inside their
# npm packages: nothing is downloaded by an install script (--ignore-scripts).
#
# Idempotent: a prefix that already holds both versions is left alone (no npm call). Needs npm >= 9
# only when something must be installed. Prints "<prefix>" on stdout; progress goes to stderr.
# Environment: CLIENTS_LAB_DIR (the prefix), CLAUDE_CODE_VERSION, CODEX_VERSION, NPM (npm command).
set -euo pipefail

PREFIX="${CLIENTS_LAB_DIR:-$HOME/.cache/openclaw-sidecar/clients}"
CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.331}"
CODEX_VERSION="${CODEX_VERSION:-0.169.0}"

die() { echo "install-clients: $*" >&2; exit 1; }
log() { echo "install-clients: $*" >&2; }

case "${1:-}" in
  -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64|Linux-amd64) ARCH=x64 ;;
  Linux-aarch64|Linux-arm64) ARCH=arm64 ;;
  *) die "no Claude Code / Codex binary package for $(uname -s)-$(uname -m)" ;;
esac

version_of() {  # version_of PACKAGE: the installed version, or nothing
  local pkg="$PREFIX/node_modules/$1/package.json"
  [ -f "$pkg" ] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg" | head -1
}

is_installed() {
  [ "$(version_of @anthropic-ai/claude-code)" = "$CLAUDE_CODE_VERSION" ] &&
    [ "$(version_of @openai/codex)" = "$CODEX_VERSION" ] &&
    [ -x "$PREFIX/node_modules/@anthropic-ai/claude-code-linux-$ARCH/claude" ] &&
    [ -f "$PREFIX/node_modules/@openai/codex/bin/codex.js" ]
}

if is_installed; then
  log "claude-code@$CLAUDE_CODE_VERSION and codex@$CODEX_VERSION already installed"
  echo "$PREFIX"
  exit 0
fi
NPM_CMD=(npm)
if [ -n "${NPM:-}" ]; then read -r -a NPM_CMD <<<"$NPM"; fi
command -v "${NPM_CMD[0]}" >/dev/null 2>&1 || die "npm (>= 9) is required to install"
mkdir -p "$PREFIX"
[ -f "$PREFIX/package.json" ] ||
  printf '{\n  "name": "openclaw-sidecar-clients",\n  "private": true\n}\n' >"$PREFIX/package.json"
log "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION and @openai/codex@$CODEX_VERSION into $PREFIX"
# Both packages pull their platform binary as an optional dependency; their postinstall scripts
# only link it elsewhere, which the tests do not need.
"${NPM_CMD[@]}" install --prefix "$PREFIX" --ignore-scripts --save-exact --no-audit --no-fund \
  --loglevel=error "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION" >&2 ||
  die "npm install failed"
is_installed || die "after npm install, $PREFIX does not hold both clients"
echo "$PREFIX"
