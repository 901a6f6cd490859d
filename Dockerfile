# Tollgate's container image: one static binary on distroless "static", running as uid 65532,
# with no shell, no package manager and no C library. Build it from the repository root:
#
#   docker build -t tollgate:dev --build-arg VERSION="$(git describe --tags --always)" .
#
# and run it with a read-only root filesystem (README, "Container image"). There is no syntax
# directive on purpose: BuildKit's built-in frontend reads this file, so no unpinned frontend
# image is pulled. test/deploy lints this file and builds the binary exactly as the build stage
# does (same command, same environment), then checks that the result is static, reproducible
# and runs.

# The builder: Go 1.26.8 (go.mod asks for 1.26.0 or newer) on Alpine, pinned by digest so a
# rebuild of this commit uses the same toolchain. The digest is the one public Dockerfiles pin
# for golang:1.26.8-alpine; refresh it with `crane digest golang:1.26.8-alpine` (or
# `docker buildx imagetools inspect`) when moving to a newer Go.
FROM golang:1.26.8-alpine@sha256:ce864e7223ac17b1775e6fd0b4c0db580c2eb50e7953a427916379e4b92a1628 AS build
# CGO_ENABLED=0: a static binary, so the image needs no C library. GOTOOLCHAIN=local: build
# with this image's Go, never download another. GOFLAGS=-mod=readonly: go.sum is the truth.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify
# The context is the source tree without .git, local state or secrets (.dockerignore).
COPY . .
ARG VERSION=dev
# Set by BuildKit for each --platform; empty (the builder's own) with the legacy builder.
ARG TARGETOS
ARG TARGETARCH
# -trimpath: no build-machine paths in the binary. -buildvcs=false: no VCS stamp (the context
# has no .git, and a stamp would make the bytes depend on the checkout). The build ID is a
# hash of the inputs, so the same source, builder and VERSION give the same binary.
# -s -w drop the symbol table and DWARF (panics still print file:line).
RUN GOOS="$TARGETOS" GOARCH="$TARGETARCH" go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=$VERSION" -o /out/tollgate ./cmd/tollgate \
 && mkdir /out/state

# The runtime: distroless static on Debian 12, tag nonroot, pinned by its multi-arch index
# digest. It holds CA roots (audit webhook, rediss://), tzdata (budget.timezone) and an
# /etc/passwd naming nonroot (65532), and nothing else. The digest is the one recorded in
# public Dockerfiles as gcr.io/distroless/static-debian12:nonroot on 2026-08-26; refresh it
# with `crane digest gcr.io/distroless/static-debian12:nonroot`.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/tollgate /usr/local/bin/tollgate
# The state directory for the embedded budget ledger and audit files. COPY --chown creates it
# owned by 65532, and a fresh named volume mounted here inherits that, so the gateway can write
# it while the root filesystem is read-only.
COPY --from=build --chown=65532:65532 /out/state /var/lib/tollgate
USER 65532:65532
# 50051: ext_proc gRPC (listen.extproc); 9090: admin HTTP (listen.admin: /healthz, /readyz,
# /metrics). Off loopback, Tollgate starts them only with mutual TLS and an admin token or
# client certificates (README).
EXPOSE 50051 9090
# No HEALTHCHECK: the image has no shell or HTTP client to run one. Orchestrators probe the
# admin listener over HTTP: /healthz for liveness, /readyz for readiness.
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--config", "/etc/tollgate/config.yaml"]
