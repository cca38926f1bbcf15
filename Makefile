# kong-watcher: `make help` lists every target.
#
#   make setup && make demo          # a fresh Debian/Ubuntu machine, as root
#   make test                        # every test (.ci/run calls it)
#   make build                       # the container image, with podman or docker
#   make buildx IMG=my-registry.com/kong-watcher:v1.0.0 BASE_IMAGE=debian:bookworm-slim

SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null || node -p "require('./package.json').version" 2>/dev/null || echo dev)
COMMIT_SHA ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
IMG ?= kong-watcher:$(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
# The local debootstrapped base (scripts/make-base-images.sh); any Debian bookworm image works.
BASE_IMAGE ?= kong-watcher-base:bookworm
# buildx runs where a registry is reachable, so it starts from the public Debian image.
BUILDX_BASE_IMAGE ?= debian:bookworm-slim
PUSH ?= true
CONTAINER_TOOL ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
# A CA bundle for a TLS proxy between the build and the npm registry (see the Dockerfile).
EXTRA_CA ?= $(NODE_EXTRA_CA_CERTS)
ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)

comma := ,
BUILD_ARGS := --build-arg VERSION=$(VERSION) --build-arg COMMIT_SHA=$(COMMIT_SHA) \
	$(if $(wildcard $(EXTRA_CA)),--secret id=extra-ca$(comma)src=$(EXTRA_CA))
# podman here: nothing can be pulled, and only chroot isolation runs RUN steps on these machines.
ifeq ($(notdir $(CONTAINER_TOOL)),podman)
BUILD_FLAGS ?= --pull=never --isolation=chroot
endif

.PHONY: help setup compile vmlinux base-image build buildx push demo test test-unit image-test bench soak lint

help: ## List the targets and what they do
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: IMG=$(IMG) VERSION=$(VERSION) COMMIT_SHA=$(COMMIT_SHA)"
	@echo "           PLATFORMS=$(PLATFORMS) BASE_IMAGE=$(BASE_IMAGE) CONTAINER_TOOL=$(CONTAINER_TOOL)"

setup: ## Install the system packages and npm dependencies, build everything (idempotent; root)
	@command -v node >/dev/null || { echo 'setup: Node.js >= 20 is needed (node not found)'; exit 1; }
	bash scripts/install-deps.sh
	@if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
		npm ci --no-audit --no-fund; \
	fi
	$(MAKE) -C bpf
	@# binding.gyp lists native/*.cc when configured: configure again when that list changes.
	@ls -1 native/*.cc native/*/*.cc | cmp -s - build/native-sources.txt 2>/dev/null || \
		{ npx node-gyp configure && ls -1 native/*.cc native/*/*.cc > build/native-sources.txt; }
	npx node-gyp build
	npx tsc -p tsconfig.json

compile: ## Build the BPF object, the addon and the TypeScript (npm run build)
	npm run build

vmlinux: bpf/vmlinux-$(ARCH).h ## Dump this kernel's BTF as bpf/vmlinux-<arch>.h for image builds

bpf/vmlinux-$(ARCH).h:
	@test -r /sys/kernel/btf/vmlinux || { echo 'vmlinux: /sys/kernel/btf/vmlinux missing (kernel without BTF)'; exit 1; }
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

base-image: ## Create the local Debian bookworm base image (debootstrap; nothing is pulled)
	@if [ "$(BASE_IMAGE)" = kong-watcher-base:bookworm ]; then \
		BASE_IMAGE=$(BASE_IMAGE) CONTAINER_TOOL=$(CONTAINER_TOOL) scripts/make-base-images.sh; \
	fi

build: vmlinux base-image ## Build the image IMG for this machine's architecture
	$(CONTAINER_TOOL) build $(BUILD_FLAGS) $(BUILD_ARGS) --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMG) .

buildx: ## Build linux/amd64 + linux/arm64 and push IMG (PUSH=false keeps it local)
	@for a in $(subst linux/,,$(subst $(comma), ,$(PLATFORMS))); do \
		test -s bpf/vmlinux-$$a.h || { echo "buildx: bpf/vmlinux-$$a.h missing: run 'make vmlinux' on a $$a machine and copy it here"; exit 1; }; \
	done
ifeq ($(notdir $(CONTAINER_TOOL)),podman)
	-$(CONTAINER_TOOL) manifest rm $(IMG) 2>/dev/null
	$(CONTAINER_TOOL) build --platform $(PLATFORMS) --manifest $(IMG) $(BUILD_ARGS) \
		--build-arg BASE_IMAGE=$(BUILDX_BASE_IMAGE) .
	$(if $(filter true,$(PUSH)),$(CONTAINER_TOOL) manifest push --all $(IMG) docker://$(IMG))
else
	docker buildx build --platform $(PLATFORMS) $(BUILD_ARGS) --build-arg BASE_IMAGE=$(BUILDX_BASE_IMAGE) \
		-t $(IMG) $(if $(filter true,$(PUSH)),--push) .
endif

push: ## Push IMG (built by make build) to its registry
	$(CONTAINER_TOOL) push $(IMG)

demo: setup ## Set up, then run a local Kong-shaped gateway, traffic, the agent and its live view (q stops; DEMO_VIEW=json: JSON lines)
	node --import tsx scripts/demo.ts

test: setup ## Set up, then run every test: unit and end to end on the real kernel (npm test), then the exactness tests under a CPU hog
	npm test
	npm run test:loaded

test-unit: ## Run the unit tests only
	npm run test:unit

image-test: ## Build the image and run it against the Kong-shaped gateway (podman)
	scripts/container-test.sh

bench: ## Run the benchmarks (npm run bench): writes bench/RESULTS.md
	npm run bench

soak: ## 30 minutes at 2,000 req/s with spans: RSS slope, loss, counts (SOAK_MINUTES, SOAK_RATE; SOAK_FLAP_SECONDS: a flapping collector): writes bench/SOAK.md
	node --import tsx bench/soak.ts

lint: ## Check style: eslint and prettier
	npm run lint
