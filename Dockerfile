# kong-watcher image: build the BPF object, the native addon and the TypeScript in one stage,
# ship only Node, the runtime libraries of libbpf and nghttp2 (the addon's HPACK decoder), and the built files in the next.
#
#   make build                      # podman or docker, local base image (scripts/make-base-images.sh)
#   make buildx IMG=reg/kong-watcher:v1.0.0 BASE_IMAGE=debian:bookworm-slim
#
# BASE_IMAGE is any Debian bookworm image. No image can be pulled on our own machines, so the
# default is one we debootstrap locally; where a registry is reachable, debian:bookworm-slim
# does the same job.
#
# BTF: the BPF object is CO-RE, compiled against a vmlinux.h of the TARGET architecture (from
# any kernel of that architecture with BTF: CO-RE relocates field offsets at load time). A
# build container does not see the build host's /sys/kernel/btf (podman's chroot isolation and
# BuildKit both hide it), so `make vmlinux` dumps it on the host into bpf/vmlinux-<arch>.h,
# which the build stage picks by architecture. For a cross-architecture build, dump the other
# architecture's header on a machine of that architecture (see the Makefile's vmlinux target).
#
# Extra CA certificates: when the build host reaches the npm registry through a TLS proxy, pass
# the bundle Node should trust as the build secret "extra-ca" (the Makefile passes the file
# NODE_EXTRA_CA_CERTS names). It is mounted only while npm runs and never lands in a layer.

ARG BASE_IMAGE=kong-watcher-base:bookworm

# Node.js 20: Debian bookworm only has 18. The official binaries and headers are published to
# the npm registry as node-linux-<arch>; Debian's npm fetches them (and npm itself) by name.
FROM ${BASE_IMAGE} AS node
ARG NODE_VERSION=20.20.2
ARG NPM_VERSION=10.9.9
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates npm \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=extra-ca \
    set -eu; \
    if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi; \
    case "$(dpkg --print-architecture)" in \
      amd64) arch=x64 ;; arm64) arch=arm64 ;; \
      *) echo "kong-watcher: no Node.js build for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac; \
    cd /tmp; \
    npm pack --silent "node-linux-$arch@$NODE_VERSION" "npm@$NPM_VERSION"; \
    mkdir -p /opt/node /opt/npm; \
    tar -xzf "node-linux-$arch-$NODE_VERSION.tgz" -C /opt/node --strip-components=1; \
    tar -xzf "npm-$NPM_VERSION.tgz" -C /opt/npm --strip-components=1; \
    ln -s /opt/npm/bin/npm-cli.js /opt/node/bin/npm; \
    rm -rf /tmp/*.tgz /root/.npm; \
    /opt/node/bin/node --version

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libnghttp2-dev pkg-config make g++ python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /opt/node /opt/node
COPY --from=node /opt/npm /opt/npm
# nodedir: node-gyp builds against the headers shipped with this Node instead of downloading them.
ENV PATH=/opt/node/bin:$PATH \
    npm_config_nodedir=/opt/node \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /src

# Dependencies first, in their own layer: source edits do not refetch them. Our own install
# script (bpf + addon) runs below, once the sources are in.
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi; \
    npm ci --ignore-scripts && rm -rf /root/.npm

COPY bpf bpf
COPY native native
COPY binding.gyp tsconfig.json ./
RUN set -eu; \
    arch=$(dpkg --print-architecture); \
    if [ ! -s "bpf/vmlinux-$arch.h" ]; then \
      echo "kong-watcher: no bpf/vmlinux-$arch.h in the build context: run 'make vmlinux' on a $arch" >&2; \
      echo "  machine with BTF (see the Dockerfile's header)" >&2; \
      exit 1; \
    fi; \
    cp "bpf/vmlinux-$arch.h" bpf/vmlinux.h; \
    npm run build:bpf && npm run build:native
COPY src src
RUN npm run build:ts && npm prune --omit=dev && rm -rf /root/.npm

FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG COMMIT_SHA=unknown
ARG SOURCE_URL=https://github.com/kong-watcher/kong-watcher
LABEL org.opencontainers.image.title="kong-watcher" \
      org.opencontainers.image.description="eBPF sidecar that turns every HTTP request a Kong Gateway serves into OpenTelemetry spans, RED metrics and logs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT_SHA}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 libelf1 zlib1g libnghttp2-14 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
COPY --from=node /opt/node/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/build/Release/kong_watcher.node build/Release/kong_watcher.node
COPY --from=build /src/dist/src dist/src
# The command on PATH, for `kubectl exec -it <pod> -c kong-ebpf-monitor -- kong-watcher top`.
RUN chmod +x /app/dist/src/cli.js && ln -s /app/dist/src/cli.js /usr/local/bin/kong-watcher
ENV NODE_ENV=production
# health; Prometheus /metrics when OTEL_METRICS_EXPORTER includes prometheus
EXPOSE 8686 9464
# Root on purpose: loading BPF programs needs CAP_BPF + CAP_PERFMON, reading other processes'
# /proc/<pid>/{exe,maps,root} needs CAP_SYS_PTRACE, and Kubernetes hands added capabilities only
# to UID 0 (no ambient capabilities; allowPrivilegeEscalation=false blocks file capabilities).
# The manifests drop every other capability and make the root file system read-only.
USER 0
# 8 MiB semi-spaces instead of V8's 16: ~15-35 MiB less RSS under load. Smaller ones (2 MiB)
# saved more memory but cost ~50% more agent CPU in garbage collection (measured).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/src/cli.js"]
