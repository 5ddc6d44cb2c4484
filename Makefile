# Sortie. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOARCH_HOST := $(shell $(GO) env GOARCH)
BIN := bin

.PHONY: help build supervisors images deps demo test test-short bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build coordinator, vm-supervisor (static) and sortie-agent into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/coordinator ./cmd/coordinator
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vm-supervisor ./cmd/vm-supervisor
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/sortie-agent ./cmd/sortie-agent

supervisors: ## static vm-supervisor for amd64 and arm64 (Hetzner cax)
	@mkdir -p $(BIN)
	for a in amd64 arm64; do CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vm-supervisor-linux-$$a ./cmd/vm-supervisor || exit 1; done

deps: ## install and start what the tests need: Docker, MinIO, cloud-init, systemd-analyze and docker-registry
	scripts/ensure-docker.sh
	scripts/ensure-minio.sh
	scripts/ensure-tools.sh

images: ## build the local base image and the reference agent image (no registry needed)
	scripts/ensure-docker.sh
	scripts/build-agent-image.sh

demo: build images ## run the demo: a real agent over examples/demo on the embedded default
	scripts/demo.sh

test: deps ## run every test (Docker, MinIO and all), with the race detector
	$(GO) test -race -count=1 -timeout 30m ./...

test-short: ## unit tests only, no Docker or MinIO
	$(GO) test -short -count=1 ./...

bench: deps ## measure and print the benchmark table
	set -o pipefail; $(GO) test -count=1 -run '^$$' -bench Table -benchtime 1x -timeout 20m ./internal/bench/ | grep -v -E '^(goos|goarch|pkg|cpu|BenchmarkTable|PASS$$|ok )'

lint: ## gofmt, go vet and go mod tidy must leave no diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy && git diff --exit-code -- go.mod go.sum

clean: ## remove build output
	rm -rf $(BIN)
