# Beehive. `make run` starts the embedded system; `make test` runs the whole
# suite, starting the real servers (Redis, Consul, Kafka, Cassandra) itself.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
DATA ?= $(CURDIR)/.data
INFRA_DIR ?= $(DATA)/infra
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTOS := $(wildcard */*pb/*.proto)

.PHONY: run build test test-unit test-chaos proto lint infra-up infra-down run-cluster

build:
	$(GO) build -o $(BIN)/beehive ./cmd/beehive

run: build
	$(BIN)/beehive dev --data-dir $(DATA)/beehive

# Unit tests only: no servers needed (the embedded broker and store are real).
test-unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Everything, against the real servers: the integration tag adds the
# Cassandra/Redis/Kafka/Consul suites to the unit tests. The black-box
# suite in test/ runs alone: it stops and starts Redis.
PKGS = $$($(GO) list ./... | grep -v '/test$$')
test: infra-up
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	set -o pipefail; $(GO) test -count=1 -tags integration -json -timeout 30m $(PKGS) | python3 scripts/testreport.py
	set -o pipefail; $(GO) test -count=1 -tags integration -json -timeout 30m ./test/ | python3 scripts/testreport.py

# The chaos suite (test/chaos_test.go, build tag chaos): the services as
# separate processes under load while it kills, pauses and restarts them and
# the servers of INFRA_DIR, one fault at a time; the results table goes to
# .data/chaos-results.md. It takes the servers away: on a machine shared with
# other test runs, give it its own set, e.g.
#   BEEHIVE_INFRA_PORT_OFFSET=20000 make test-chaos INFRA_DIR=$(CURDIR)/.data/chaos-infra
test-chaos: infra-up
	eval "$$(bash docker/local/infra.sh env)"; \
	  BEEHIVE_CHAOS_INFRA_DIR=$(INFRA_DIR) $(GO) test -count=1 -tags chaos -run '^TestChaos$$' -timeout 20m -v ./test/

infra-up:
	bash docker/local/infra.sh up --data-dir $(INFRA_DIR)

infra-down:
	bash docker/local/infra.sh down --data-dir $(INFRA_DIR)

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# protoc comes from the OS package protobuf-compiler (apt-get install protobuf-compiler).
proto: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
	PATH=$(BIN):$$PATH protoc -I . \
	  --go_out=. --go_opt=module=github.com/beehive-im/beehive \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/beehive-im/beehive \
	  $(PROTOS)

STATICCHECK_VERSION := v0.8.2

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# go vet, staticcheck (pinned), and no fmt.Print outside cmd. golangci-lint
# is not on these machines; staticcheck covers its checks we rely on most.
lint: $(BIN)/staticcheck
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(BIN)/staticcheck ./...
	@! grep -rn --include='*.go' -E '\bfmt\.Print' --exclude-dir=cmd --exclude-dir=tools . | grep -v _test.go || (echo "fmt.Print outside cmd" && false)

run-cluster:
	bash docker/local/run-cluster.sh
