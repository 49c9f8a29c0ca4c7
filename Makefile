# etcdctl-wizard — the two commands a new machine needs are `make run` and `make test`.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X etcdctl-wizard/node/version.Build=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Tests start real member processes; two packages at a time fits a 2-core machine.
TESTFLAGS ?= -race -timeout 25m -p 2

.PHONY: all build node-assets test lint run bench fuzz clean upstream system-deps

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/etcdctl-wizard ./cmd/etcdctl-wizard
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/etcd-node ./cmd/etcd-node

# The node binaries the wizard embeds and pushes to hosts (linux/amd64 and linux/arm64).
node-assets:
	mkdir -p assets/bin
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o assets/bin/etcd-node-linux-amd64 ./cmd/etcd-node
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o assets/bin/etcd-node-linux-arm64 ./cmd/etcd-node

# Upstream etcd and etcdctl v3.7.3, built from the module proxy into a cache (never committed).
upstream:
	testdata/upstream/build.sh

# System programs the tests drive (sshd, iproute2, tmux, dnsmasq, ...), installed when missing.
system-deps:
	scripts/system-deps.sh

test: system-deps build upstream lint
	$(GO) test $(TESTFLAGS) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

run: build
	$(BIN)/etcdctl-wizard

bench: build upstream
	$(GO) run ./node/bench
	ETCDCTL_WIZARD_NODE_BINARY=$(CURDIR)/$(BIN)/etcd-node $(GO) test -run '^$$' -bench Apply -benchtime 3x ./remote/executor
	$(GO) test -run '^$$' -bench . -benchtime 20x ./tui/ ./tui/tmuxtest/
	$(GO) test -run '^$$' -bench Validate ./plan/

# Each fuzz target for a while; interesting inputs land in the package's testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz FuzzParseURLsMap -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./node/config
	$(GO) test -run XXX -fuzz "^FuzzParse$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./plan
	$(GO) test -run XXX -fuzz FuzzImport -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./plan
	$(GO) test -run XXX -fuzz FuzzDecodeSegment -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./node/wal

clean:
	rm -rf $(BIN) assets/bin
