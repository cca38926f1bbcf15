#!/usr/bin/env bash
# Installs every system package kong-watcher needs to build, test, demo and benchmark on
# Debian 12 / Ubuntu (as root). Idempotent: does nothing when everything is present.
set -euo pipefail

PACKAGES=(
  # build: BPF object, skeleton, native addon
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make g++ python3 pkg-config
  # the Kong-shaped gateway fixture (OpenResty stand-in)
  nginx libnginx-mod-http-lua lua-resty-core
  # load generators and tools the tests and benchmarks use: stress-ng loads the CPUs in the tests
  # under load; libclang-rt builds the parser's fuzz target; tmux drives the live view's test
  wrk hey curl procps iproute2 linux-perf stress-ng libclang-rt-14-dev tmux openssl
  # HTTP/2 and TLS: HPACK inflater, h2load/nghttp; Prometheus scrapes the agent in a test
  libnghttp2-dev nghttp2-client prometheus
  # the container image test
  podman runc debootstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} system packages present"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The tests run their own nginx and Prometheus instances; the distribution's services are not needed.
  systemctl disable --now nginx prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi

# Node.js >= 20 runs the agent. Debian 12's own nodejs is 18: take it only when nothing newer is
# configured, and say what to do when it is too old.
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install-deps: Node.js $(node -v) found; kong-watcher needs >= 20 (install it from your Node.js vendor's apt repository)" >&2
  exit 1
fi
