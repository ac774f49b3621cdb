# stint's build. `sudo make demo` and `sudo make test` are the README's two set-up commands.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Integration tests take a while (real containers, loop files, LXD). One
# package at a time: LXC's cgroups and the bridge state are host-wide, and a
# gc in one package's root could remove another's cgroups (see the note on
# issue 18).
TESTFLAGS ?= -count=1 -timeout 60m -p 1

.PHONY: all build deps test test-unit lint clean demo

all: build

build: agent
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/stint ./cmd/stint

# stint-agent: PID 1 of jobs' containers on the fast path, found beside
# stint (or by $STINT_AGENT). Static, so it runs in any image.
.PHONY: agent
agent:
	CGO_ENABLED=0 $(GO) build -o bin/stint-agent ./cmd/stint-agent

deps:
	@if [ "$$(id -u)" = 0 ]; then ./scripts/install-deps.sh; else echo "make deps: not root, skipping package installation"; fi

# The whole suite: unit tests plus, as root, integration tests on real LXC,
# btrfs and overlayfs. STINT_INTEGRATION=1 turns their skips into failures.
test: deps
	$(GO) test $(TESTFLAGS) ./...

# The zfs and lvm storage suites in a QEMU guest (vmtest/): this kernel has
# neither ZFS nor device-mapper. Root; the first run builds ZFS (~5 min).
.PHONY: test-vm
test-vm:
	./vmtest/test-vm.sh

# Only what runs anywhere, without root.
test-unit:
	$(GO) test -count=1 -short ./spec/... ./images/... ./internal/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# stint side by side with the kernel floor, lxc-copy, LXD (bench/RESULTS.md).
# Root; not a test: CI never runs it. REPS=30 by default.
.PHONY: bench
bench: deps build
	./bench/run.sh

# N jobs hit by kill -9/SIGINT/SIGHUP/SIGTERM at random moments, then gc and a
# leftover count (scripts/soak.sh; docs/running.md has the figure). Root; not
# in CI. SOAK_JOBS=200 by default.
.PHONY: soak
soak: build
	./scripts/soak.sh $(SOAK_JOBS)

# Build stint and the busybox image, run testdata/demo's job, show its artifacts.
DEMO_ROOT ?= /var/lib/stint
demo: deps build
	./testdata/demo/run.sh bin/stint $(DEMO_ROOT) artifacts/demo

clean:
	rm -rf bin
