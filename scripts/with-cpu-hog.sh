#!/usr/bin/env bash
# Runs a command while stress-ng keeps every core busy (a CI runner shared with other work):
# the exactness tests must hold there too, with no event lost. The hog stops with the command.
set -euo pipefail
command -v stress-ng >/dev/null || { echo 'with-cpu-hog: stress-ng not found (make setup installs it)' >&2; exit 1; }
stress-ng --cpu "$(nproc)" --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null || true' EXIT
echo "with-cpu-hog: stress-ng --cpu $(nproc) running (pid $hog)" >&2
"$@"
