# MetaStore build, test and run targets. `make help` lists them.
#
# Two commands set everything up:
#   make run    install build dependencies if missing, build, start one node
#   make test   install build dependencies if missing, run every test

SHELL := /bin/bash
.DEFAULT_GOAL := build

MODULE := github.com/metastore/metastore
# /usr/local/go/bin is where the Go tarball installs; prefer a go already on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
export CGO_ENABLED := 1

BIN := bin/metastore
DATA_DIR ?= ./data/default
TEST_TIMEOUT ?= 20m
BENCHTIME ?= 1s
# Benchmarked packages that exist yet (go test fails on a pattern naming a
# missing directory).
BENCH_PKGS := $(foreach d,engine mvcc,$(if $(wildcard $(d)),./$(d)/...))

# Stamped into the binary (see version/doc.go). Without tags `git describe`
# fails and the version stays a dev version.
VERSION ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo v0.0.0-dev)
GIT_COMMIT ?= $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null && echo $$c || echo $$c-dirty; } || echo unknown)
LDFLAGS_X := -X $(MODULE)/version.Version=$(VERSION) -X $(MODULE)/version.GitCommit=$(GIT_COMMIT)

# Debian/Ubuntu packages the cgo build needs (RocksDB and its compression
# libraries, static archives included), plus `file` for the static check.
DEPS_PKGS := gcc g++ librocksdb-dev libsnappy-dev liblz4-dev libzstd-dev libbz2-dev zlib1g-dev file
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Fully static link against Debian's librocksdb.a. glibc's static libraries
# are fine here because netgo/osusergo keep Go off NSS (getaddrinfo,
# getpwnam), the one part of glibc that needs dlopen at run time.
STATIC_CGO_LDFLAGS := -static -lrocksdb -lstdc++ -lm -lz -lbz2 -lsnappy -llz4 -lzstd -lpthread

.PHONY: fuzz help deps build static test test-short test-race run bench lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

deps: ## install missing build dependencies (apt-get; sudo when not root)
	@missing=""; \
	for p in $(DEPS_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@command -v $(GO) >/dev/null || { echo "deps: Go not found (looked on PATH and in /usr/local/go/bin)" >&2; exit 1; }

build: deps ## build bin/metastore (dynamically linked)
	$(GO) build -trimpath -ldflags '$(LDFLAGS_X)' -o $(BIN) .

static: deps ## build bin/metastore fully statically linked, and check it is
	CGO_LDFLAGS="$(STATIC_CGO_LDFLAGS)" $(GO) build -trimpath -tags netgo,osusergo \
		-ldflags '-linkmode external -extldflags "-static" $(LDFLAGS_X)' -o $(BIN) .
	@file $(BIN) | grep -q 'statically linked' || { file $(BIN); echo "static: $(BIN) is not statically linked" >&2; exit 1; }
	@file $(BIN)

.PHONY: package
# nfpm runs with `go run` at a pinned version (not a module dependency); the
# first run downloads and builds it. PKG_MAINTAINER sets the maintainer field.
PKG_DIR ?= dist
package: static ## build the .deb and .rpm into dist/ (PKG_DIR) from the static binary, with nfpm
	VERSION='$(VERSION)' GIT_COMMIT='$(GIT_COMMIT)' GO='$(GO)' packaging/package.sh $(BIN) $(PKG_DIR)
	@ls -l $(PKG_DIR)/*.deb $(PKG_DIR)/*.rpm

test: deps ## run all tests
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short: deps ## run all tests in short mode
	$(GO) test -count=1 -short -timeout $(TEST_TIMEOUT) ./...

test-race: deps ## run all tests with the race detector
	$(GO) test -count=1 -race -timeout $(TEST_TIMEOUT) ./...

# NB: needs the `serve` command, which arrives with the server/raft work.
run: deps build ## build and start a single node on $(DATA_DIR)
	$(BIN) serve --engine rocksdb --data-dir $(DATA_DIR)

# METASTORE_PERF_FULL=1 gives test/performance*_test.go their full sizes
# (`make test` runs them short).
bench: deps ## Go benchmarks (BENCHTIME=1s), then the performance tests at full size
	$(GO) test -count=1 -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) -timeout $(TEST_TIMEOUT) $(BENCH_PKGS)
	METASTORE_PERF_FULL=1 $(GO) test -count=1 -v -run 'TestPerformance' -timeout $(TEST_TIMEOUT) ./test/

FUZZTIME ?= 30s
fuzz: deps ## run each fuzz target for FUZZTIME (make test runs their seed corpora only)
	$(GO) test -run '^$$' -fuzz '^FuzzGatewayDecode$$' -fuzztime $(FUZZTIME) ./http
	$(GO) test -run '^$$' -fuzz '^FuzzRESTKey$$' -fuzztime $(FUZZTIME) ./http
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeConfChange$$' -fuzztime $(FUZZTIME) ./raft
	$(GO) test -run '^$$' -fuzz '^FuzzSnapshotStream$$' -fuzztime $(FUZZTIME) ./raft
	$(GO) test -run '^$$' -fuzz '^FuzzRestoreSnapshot$$' -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzReadDelta$$' -fuzztime $(FUZZTIME) ./engine/memory

.PHONY: bench-compare
# ETCD_BIN=dir selects the etcd build (default ../shared/peers/etcd/bin, else
# /tmp/etcdpeer/bin); QUICK=1 makes a short trial run; PROFILE=0 skips the
# profiles of the targets not met. About 20 minutes.
bench-compare: build ## MetaStore vs etcd side by side; tables (and the issue's targets, met or not) into docs/BENCHMARKS.md, plots into docs/bench/
	./scripts/bench-compare.sh

.PHONY: bench-ceiling
# ETCD_BIN (etcd's benchmark and etcdctl), QUICK=1: see the script's header.
# About 2 minutes.
bench-ceiling: deps ## what etcd's benchmark and check perf reach against a server that stores nothing (bench/nullserver)
	./scripts/bench-ceiling.sh

.PHONY: compat-diff
# ETCD_BIN (etcd and etcdctl), OUT=dir keeps the transcripts: see the
# script's header. About 2 minutes.
compat-diff: build ## the same JSON gateway requests to etcd and to MetaStore, and the diff of the answers
	./scripts/compat-diff.sh

.PHONY: bench-profile
# ETCD_BIN (etcd's benchmark and etcdctl), SECONDS_PER, QUICK=1, CASES: see
# the script's header. About 4 minutes for every case.
bench-profile: build ## CPU profiles of a member in the cases of the speed targets (CASES="put-c100 ..."), into docs/bench/profiles/
	./scripts/bench-profile.sh

.PHONY: bench-onecpu
# ETCD_BIN (etcd's benchmark and etcdctl; etcd too unless ETCD=0), PAIRS,
# TOTAL, CLIENTS: see the script's header. About 5 minutes.
bench-onecpu: build ## a member allowed one CPU: one P against serve's two, and etcd, client on another CPU
	./scripts/bench-onecpu.sh

.PHONY: bench-rss
# ETCD_BIN (etcdctl), MS_BIN_B (a second binary to alternate with), ROUNDS,
# LOAD: see the script's header. About 2 minutes a round and binary.
bench-rss: build ## a member's peak RSS, RSS when etcdctl check perf returns and 16 s later
	./scripts/bench-rss.sh

.PHONY: bench-startup
# MS_BIN_B (a second binary to alternate with), ROUNDS, ETCD_BIN (ETCD=0
# leaves etcd out): see the script's header. About 2 minutes.
bench-startup: build ## seconds from starting fresh 1- and 3-member clusters until every member names the leader, and etcd's
	./scripts/bench-startup.sh

.PHONY: bench-defrag
# MS_BIN, FILL_MB, RATE, DURATION, ETCD_BIN (ETCD=0 skips etcd): see the
# script's header. About 10 minutes with etcd.
bench-defrag: build ## write p99 with and without a running defrag and compaction, 1 GiB database (etcd too if found)
	./scripts/bench-defrag.sh

lint: ## gofmt, go vet and the import layering check
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -run 'TestImportLayering|TestCheckLayering' .

clean: ## remove build outputs (not data directories)
	rm -rf bin/ dist/
