#!/usr/bin/env bash
# `make image-test`: builds the image from the Dockerfile with podman (local base image, nothing
# pulled), reports build time and image size, then runs test/container/image.test.ts: the image
# answers --help, carries its OCI labels, and, run with exactly the manifests' capabilities (not
# --privileged), host PID and network against the Kong-shaped gateway, becomes ready and prints
# one request line per request.
# Exits non-zero on any failure. Needs root, podman, runc, debootstrap, nginx + the Lua module.
set -euo pipefail
cd "$(dirname "$0")/.."

IMG=${IMG:-kong-watcher:test}
VERSION=${VERSION:-$(node -p "require('./package.json').version")}
export IMG VERSION

for tool in podman runc debootstrap bpftool; do
  command -v "$tool" >/dev/null || {
    echo "container-test: $tool is missing (make setup installs it)" >&2
    exit 1
  }
done

start=$(date +%s)
make --no-print-directory build IMG="$IMG" VERSION="$VERSION" CONTAINER_TOOL=podman
build_s=$(($(date +%s) - start))
size=$(podman image inspect --format '{{.Size}}' "$IMG")
echo "container-test: built $IMG in ${build_s}s, image size $((size / 1024 / 1024)) MiB"

node --import tsx --test --test-concurrency=1 test/container/image.test.ts
