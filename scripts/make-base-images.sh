#!/usr/bin/env bash
# Creates the local Debian bookworm base image the Dockerfile starts FROM, because no image can be
# pulled on our machines: debootstrap a minimal root file system once, keep it as a tarball in a
# cache dir, and import it into podman (or docker). Does nothing when the image already exists.
#
#   scripts/make-base-images.sh                 # kong-watcher-base:bookworm for this machine's arch
#   BASE_IMAGE=my-base:bookworm scripts/make-base-images.sh
#
# Variables: BASE_IMAGE, SUITE (bookworm), DEBIAN_MIRROR, CACHE_DIR, CONTAINER_TOOL (podman|docker).
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-kong-watcher-base:bookworm}
SUITE=${SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kong-watcher}
CONTAINER_TOOL=${CONTAINER_TOOL:-$(command -v podman >/dev/null && echo podman || echo docker)}
ARCH=$(dpkg --print-architecture)

log() { printf 'make-base-images: %s\n' "$*" >&2; }

if "$CONTAINER_TOOL" image exists "$BASE_IMAGE" 2>/dev/null ||
  { [ "$CONTAINER_TOOL" = docker ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; }; then
  log "$BASE_IMAGE exists"
  exit 0
fi

tarball="$CACHE_DIR/$SUITE-minbase-$ARCH.tar"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || {
    log 'debootstrap is missing: apt-get install -y debootstrap'
    exit 1
  }
  mkdir -p "$CACHE_DIR"
  rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $SUITE ($ARCH) into $rootfs"
  debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >&2
  # Security and point-release updates, so that images built later get the fixes.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security $SUITE-security main
EOF
  # A base image stays small: no apt lists or caches, no docs a container never reads.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi

log "importing $tarball as $BASE_IMAGE"
"$CONTAINER_TOOL" import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
log "$BASE_IMAGE ready"
