# heartbeat: the two commands a new user needs are `make demo` and `make test`.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Tests talk to real Postgres, SQLite, SSH servers, cron and Chromium, which
# Go's test cache cannot see: -count=1 runs them every time; -race always.
TESTFLAGS ?= -race -count=1 -timeout 10m

.PHONY: all build test lint demo bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/heartbeat ./cmd/heartbeat
	$(GO) build -o $(BIN)/sshfleet ./cmd/sshfleet

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test $(TESTFLAGS) ./...

demo: build
	./scripts/demo.sh $(BIN)

# Whole-run benchmarks need Postgres on 127.0.0.1:5432; see README "Performance".
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./scripts/bench/probe.sh 10000 5
	./scripts/bench/api.sh
	./scripts/bench/scaleout.sh 5000
	./scripts/bench/status.sh

clean:
	rm -rf $(BIN)
