#!/usr/bin/env bash
# Rootful podman + podman-compose on Debian 12 for openclaw-sidecar's container tests and CI,
# where no public registry may be reachable: the base image, localhost/python-base:bookworm, is
# built locally from Debian packages (mmdebstrap) and the Dockerfile is pointed at it with
#   --build-arg BASE_IMAGE=localhost/python-base:bookworm
#
# Idempotent and safe to run concurrently (it takes a lock); a second run only checks (< 1 s).
#   scripts/setup-podman.sh                 install, configure, build the base image if needed
#   scripts/setup-podman.sh --rebuild-base  also rebuild the base image
#   scripts/setup-podman.sh --check         change nothing; exit 1 if anything is missing
# Environment: SIDECAR_BASE_IMAGE (default localhost/python-base:bookworm),
# PODMAN_COMPOSE_VERSION (default 1.6.0), SETUP_LOG (default /var/tmp/openclaw-podman-setup.log).
# Needs root, Debian 12 (bookworm), and apt + PyPI reachable (a first run takes 30-40 s).
set -euo pipefail

# Not BASE_IMAGE: deploy/Dockerfile uses that name for its ARG, and it is often exported.
BASE_IMAGE=${SIDECAR_BASE_IMAGE:-localhost/python-base:bookworm}
SUITE=bookworm
PODMAN_COMPOSE_VERSION=${PODMAN_COMPOSE_VERSION:-1.6.0}
COMPOSE_VENV=/opt/podman-compose
CONF_DROPIN=/etc/containers/containers.conf.d/50-local-podman.conf
STORAGE_CONF=/etc/containers/storage.conf
GRAPHROOT=/var/lib/containers/storage
LOCAL_CAS=/usr/local/share/ca-certificates
# dnsname: without it, compose services on a CNI network cannot resolve each other by name.
APT_PACKAGES=(podman runc mmdebstrap iptables python3-venv ca-certificates
              golang-github-containernetworking-plugin-dnsname)
LOG=${SETUP_LOG:-/var/tmp/openclaw-podman-setup.log}

mode=apply
case "${1:-}" in
  "") ;;
  --rebuild-base) mode=rebuild ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "setup-podman.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
esac

say() { printf 'setup-podman: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# A noisy command with its output in $LOG; on failure show the tail and stop.
quiet() {
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 25 "$LOG" >&2
    die "failed: $* (whole output in $LOG)"
  fi
}

[ "$(id -u)" -eq 0 ] || die "run as root (rootful podman; apt-get)"
[ -r /etc/debian_version ] || die "this script is for Debian 12 (bookworm)"
mkdir -p "$(dirname "$LOG")" /run/lock
# The same lock file as ../shared/lab/containers/setup.sh: both write the same config and image.
exec 9>/run/lock/containers-setup.lock
flock 9

missing_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
  done
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  missing=${missing//$'\n'/ }
  [ "$mode" = check ] && die "missing packages: $missing"
  say "installing $missing (apt)"
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update
  # No recommends: rootful podman needs no buildah, slirp4netns or fuse-overlayfs. runc named
  # explicitly so apt does not pick crun for podman's "crun | runc".
  quiet apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
}

# Write $2 to $1 only when it differs, so a second run leaves files (and their times) alone.
write_if_changed() {
  local path=$1 content=$2
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then return 0; fi
  [ "$mode" = check ] && die "$path is missing or differs"
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path.tmp" && mv "$path.tmp" "$path"
  say "wrote $path"
}

containers_conf() {
  # Byte for byte what the lab's setup.sh writes, so the two scripts never fight over the file.
  write_if_changed "$CONF_DROPIN" '# Written by setup.sh (shared/lab/containers): rootful podman without systemd as PID 1.
[containers]
# Podman asks for RLIMIT_NOFILE 1048576 by default; this machine caps the hard limit lower,
# so runc fails with "error setting rlimits ... operation not permitted". Inherit instead.
default_ulimits = []
# No journald: keep container logs in files so `podman logs` works.
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"'
}

overlay_works() {
  local d rc=0
  mkdir -p "$GRAPHROOT"
  d=$(mktemp -d "$GRAPHROOT/.overlay-probe.XXXXXX")
  mkdir "$d/l" "$d/u" "$d/w" "$d/m"
  mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null || rc=1
  [ "$rc" -eq 0 ] && umount "$d/m"
  rm -rf "$d"
  return "$rc"
}

storage_conf() {
  # An admin's own storage.conf wins; never switch the driver of an existing store.
  if [ -f "$STORAGE_CONF" ] && ! grep -q '^# Written by setup.sh' "$STORAGE_CONF"; then return 0; fi
  local driver
  if [ -d "$GRAPHROOT/overlay-images" ]; then driver=overlay
  elif [ -d "$GRAPHROOT/vfs-images" ]; then driver=vfs
  elif [ "$mode" = check ]; then driver=$(sed -n 's/^driver = "\(.*\)"/\1/p' "$STORAGE_CONF" 2>/dev/null)
  elif overlay_works; then driver=overlay
  else driver=vfs   # slow and disk-hungry (a full copy per layer), but works everywhere
  fi
  write_if_changed "$STORAGE_CONF" "# Written by setup.sh (shared/lab/containers): kernel overlay if it mounts here, else vfs.
[storage]
driver = \"${driver:-overlay}\"
runroot = \"/run/containers/storage\"
graphroot = \"$GRAPHROOT\""
}

podman_compose() {
  local have=""
  [ -x "$COMPOSE_VENV/bin/podman-compose" ] &&
    have=$("$COMPOSE_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("podman-compose"))' 2>/dev/null || true)
  if [ "$have" != "$PODMAN_COMPOSE_VERSION" ]; then
    [ "$mode" = check ] && die "podman-compose $PODMAN_COMPOSE_VERSION not installed in $COMPOSE_VENV"
    say "installing podman-compose $PODMAN_COMPOSE_VERSION (PyPI) into $COMPOSE_VENV"
    # Debian's own python3, so the tool does not depend on whichever Python is first on PATH.
    quiet /usr/bin/python3 -m venv --clear "$COMPOSE_VENV"
    quiet "$COMPOSE_VENV/bin/pip" install --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION"
  fi
  if [ "$(readlink /usr/local/bin/podman-compose 2>/dev/null)" != "$COMPOSE_VENV/bin/podman-compose" ]; then
    [ "$mode" = check ] && die "/usr/local/bin/podman-compose is not linked"
    ln -sfn "$COMPOSE_VENV/bin/podman-compose" /usr/local/bin/podman-compose
  fi
}

local_ca_files() {
  find "$LOCAL_CAS" -maxdepth 2 -type f -name '*.crt' 2>/dev/null | sort
}

# Everything that decides the base image's content. Its hash is kept as a label, so a change to
# this recipe (or to the machine's local CAs) rebuilds the image on the next run. The recipe is
# the lab's, so both scripts agree on the label and neither rebuilds the other's image.
# shellcheck disable=SC2054  # the commas are mmdebstrap's package list
MMDEBSTRAP_ARGS=(
  --variant=apt
  --include=python3,python3-venv,python-is-python3,ca-certificates
  --aptopt='APT::Install-Recommends "false"'
  --aptopt='Acquire::Retries "3"'
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr   # usr-is-merged instead of usrmerge (+perl)
  --skip=output/dev                                   # no device nodes in the layer
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
)

recipe_hash() {
  {
    printf '%s\n' "$SUITE" "${MMDEBSTRAP_ARGS[@]}"
    local f
    for f in $(local_ca_files); do sha256sum "$f"; done
  } | sha256sum | cut -c1-16
}

base_image() {
  local want have=""
  want=$(recipe_hash)
  podman image exists "$BASE_IMAGE" &&
    have=$(podman image inspect --format '{{index .Labels "lab.recipe"}}' "$BASE_IMAGE" 2>/dev/null || true)
  if [ "$have" = "$want" ] && [ "$mode" != rebuild ]; then return 0; fi
  [ "$mode" = check ] && die "$BASE_IMAGE is missing or outdated"
  say "building $BASE_IMAGE from Debian $SUITE packages (mmdebstrap, about 30 s)"
  local tmp hooks=()
  tmp=$(mktemp -d /var/tmp/python-base.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  # Extra CAs this machine trusts (e.g. a TLS-inspecting proxy in front of PyPI) go into the
  # image too, so pip in a build step verifies PyPI exactly as the host does.
  if [ -n "$(local_ca_files)" ]; then
    hooks=(--customize-hook="sync-in $LOCAL_CAS $LOCAL_CAS"
           --customize-hook='chroot "$1" update-ca-certificates')
  fi
  quiet mmdebstrap "${MMDEBSTRAP_ARGS[@]}" "${hooks[@]}" "$SUITE" "$tmp/rootfs.tar"
  quiet podman import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL lab.recipe=$want" \
    --change "LABEL org.opencontainers.image.description=Debian $SUITE with python3 and python3-venv, built locally by setup.sh" \
    "$tmp/rootfs.tar" "$BASE_IMAGE"
  rm -rf "$tmp"
  trap - EXIT
}

smoke_test() {
  local out
  out=$(podman run --rm --network none --no-healthcheck "$BASE_IMAGE" \
        python3 -c 'import sys, ssl, venv; print(sys.version.split()[0])' 2>&1) ||
    { echo "$out" >&2; die "a container from $BASE_IMAGE does not run"; }
  say "ok: podman $(podman version --format '{{.Client.Version}}'), podman-compose $PODMAN_COMPOSE_VERSION," \
      "storage $(podman info --format '{{.Store.GraphDriverName}}'), $BASE_IMAGE (python $out)"
}

start=$SECONDS
: >>"$LOG"
install_packages
containers_conf
storage_conf
podman_compose
base_image
[ "$mode" = check ] || smoke_test
say "done in $((SECONDS - start)) s; build with --format docker (or BUILDAH_FORMAT=docker) to keep HEALTHCHECK"
