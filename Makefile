# chmedic — `make test` is the one command to run before a commit: it installs
# the real servers the integration tests use (scripts/install-test-deps.sh),
# vets, and runs every test.

GO ?= go

.PHONY: all build test bench bench-go demo fmt lint

all: build

build:
	$(GO) build -o chmedic ./cmd/chmedic

test:
	scripts/install-test-deps.sh
	scripts/chdb/install.sh || { [ "$$CHMEDIC_REQUIRE_INTEGRATION" != 1 ] && echo "chdb not installed: the modern-query test will skip"; }
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# The side-by-side measurement on the real environment (cmd/chmedic-bench):
# one Markdown table, under 10 minutes on 2 cores. BENCH_FLAGS=--json for
# JSON, --quick for a short try, --only ingest,storm for some scenarios.
bench:
	$(GO) run ./cmd/chmedic-bench $(BENCH_FLAGS)

# The go test -bench microbenchmarks of the packages.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The real environment with chmedic wired to it and Slack printed as text;
# break it from another terminal: go run ./cmd/chmedic-bench demo zk-pause
demo:
	$(GO) run ./cmd/chmedic-bench demo

fmt:
	gofmt -w $$($(GO) list -f '{{.Dir}}' ./...)

lint:
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
