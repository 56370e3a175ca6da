# chmedic — `make test` is the one command to run before a commit: it installs
# the real servers the integration tests use (scripts/install-test-deps.sh),
# vets, and runs every test.

GO ?= go

.PHONY: all build test bench fmt lint

all: build

build:
	$(GO) build -o chmedic ./cmd/chmedic

test:
	scripts/install-test-deps.sh
	scripts/chdb/install.sh || { [ "$$CHMEDIC_REQUIRE_INTEGRATION" != 1 ] && echo "chdb not installed: the modern-query test will skip"; }
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -w $$($(GO) list -f '{{.Dir}}' ./...)

lint:
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
