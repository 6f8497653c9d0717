# ron-kms. Every target uses Go 1.27.3 (go.mod), fetched by the toolchain
# if the machine has an older Go.
export GOTOOLCHAIN := auto

GO        ?= go
BIN       := bin/ron-kms
DATA_DIR  ?= ./ron-kms-data
LISTEN    ?= 127.0.0.1:9446
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# GOTESTFLAGS are added to the suite's go test, e.g. GOTESTFLAGS=-short.
GOTESTFLAGS ?=

.PHONY: run build test vet fuzz bench cluster cluster-down clean

## run: build and serve with the embedded store under ./ron-kms-data
run: build
	./$(BIN) serve --data-dir $(DATA_DIR) --listen $(LISTEN)

build:
	$(GO) build -o $(BIN) ./cmd/ron-kms

## test: the whole suite, with the race detector (and the plot tool's, a
## module of its own). The race detector needs cgo, hence a C compiler:
## without one, scripts/race-flag says so in one line and the suite runs
## without -race, unless RON_KMS_REQUIRE_INTEGRATION=1 (CI), where it fails.
test: vet
	@race=$$(GO='$(GO)' ./scripts/race-flag) && set -x && \
	  $(GO) test $$race -count=1 $(GOTESTFLAGS) ./...
	cd tools/benchplot && $(GO) vet ./... && $(GO) test -count=1 ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-all

## bench: every Go benchmark, ratios are computed in BENCHMARKS.md
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

## cluster: three etcd members and three nodes on loopback (scripts/cluster-up)
cluster:
	./scripts/cluster-up up

cluster-down:
	./scripts/cluster-up down

clean:
	rm -rf bin
