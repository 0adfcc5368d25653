# Argus build. The quick start is `make run` and `make test` (see README.md).
GO        ?= go
TOOLS_DIR ?= $(shell $(GO) env GOCACHE)/../argus-tools
BIN_DIR   := bin
PROMETHEUS_VERSION := v0.316.0
# The kube-apiserver and etcd of internal/kubetest, as scripts/install-tools.sh kube names them.
KUBE_TOOLS        := kube-v1.37.2-etcd-v3.7.0
# grpcurl, the gRPC client of the query API's end-to-end test (scripts/install-tools.sh grpcurl).
GRPCURL_VERSION   := v1.9.3
# The real Alertmanager of the ruler's end-to-end test (scripts/install-tools.sh alertmanager).
ALERTMANAGER_VERSION := v0.35.0
# The mimir module version of tools/mimirtool, as scripts/install-tools.sh mimirtool names its directory.
MIMIRTOOL_VERSION := v1.3.1-0.20260423142704-aced80d74930

# The one version of the binary (-version, the / page, status/buildinfo,
# argus_build_info), stamped at link time.
VERSION  ?= 0.1.0-dev
# IMAGE is the image `make image` builds, IMAGE:VERSION; the kustomize
# overlays name the same (internal/deploytest checks it).
IMAGE    ?= ghcr.io/argus-tsdb/argus
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.Version=$(VERSION) -X main.Revision=$(REVISION)

# One static build for everything: the binary `make run` starts, the test
# binaries and the container image (deploy/build-image.sh) then share one build
# cache, so CI compiles the dependencies once rather than once per cgo setting.
export CGO_ENABLED := 0

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOC_GEN_VTPROTO_VERSION := v0.6.1-0.20240319094008-0393e58bdf10

.PHONY: all build run test test-go test-unit bench proto tools clean fmt vet image

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/argus ./cmd/argus

run: build
	./$(BIN_DIR)/argus -target=all -storage.path=./data

# test runs every test, the integration tests against the real argus binary and
# the real Prometheus server included. .ci/run installs Prometheus first; a test
# that needs a binary that is absent skips loudly.
test: build vet
	$(MAKE) test-go

# test-go is test's go test alone: .ci/run calls it on subsets of the packages
# (TEST_PKGS) with extra flags (TEST_FLAGS, e.g. -skip), so that the tests
# that need no slow-to-build tool run while those tools build.
TEST_PKGS ?= ./...
TEST_FLAGS ?=
test-go:
	ARGUS_BIN=$(abspath $(BIN_DIR)/argus) \
	PROMETHEUS_BIN=$${PROMETHEUS_BIN:-$(abspath $(TOOLS_DIR))/prometheus-$(PROMETHEUS_VERSION)/prometheus} \
	KUBEBUILDER_ASSETS=$${KUBEBUILDER_ASSETS:-$(abspath $(TOOLS_DIR))/$(KUBE_TOOLS)} \
	GRPCURL_BIN=$${GRPCURL_BIN:-$(abspath $(TOOLS_DIR))/grpcurl-$(GRPCURL_VERSION)/grpcurl} \
	ALERTMANAGER_BIN=$${ALERTMANAGER_BIN:-$(abspath $(TOOLS_DIR))/alertmanager-$(ALERTMANAGER_VERSION)/alertmanager} \
	MIMIRTOOL_BIN=$${MIMIRTOOL_BIN:-$(abspath $(TOOLS_DIR))/mimirtool-$(MIMIRTOOL_VERSION)/mimirtool} \
	$(GO) test -count=1 -timeout 35m $(TEST_FLAGS) $(TEST_PKGS)

test-unit:
	$(GO) test -count=1 -short ./...

bench:
	./scripts/bench.sh

tools:
	@mkdir -p $(TOOLS_DIR)/bin
	GOBIN=$(abspath $(TOOLS_DIR))/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(abspath $(TOOLS_DIR))/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	GOBIN=$(abspath $(TOOLS_DIR))/bin $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_VTPROTO_VERSION)

# proto regenerates the committed Go code from proto/arguspb/*.proto (the
# internal contracts) and proto/argusquerypb/*.proto (the public query API). It needs
# protoc (Debian: apt-get install protobuf-compiler).
proto: tools
	PATH=$(abspath $(TOOLS_DIR))/bin:$$PATH protoc -I proto/arguspb \
		--go_out=proto/arguspb --go_opt=paths=source_relative \
		--go-grpc_out=proto/arguspb --go-grpc_opt=paths=source_relative \
		--go-vtproto_out=proto/arguspb --go-vtproto_opt=paths=source_relative \
		--go-vtproto_opt=features=marshal+unmarshal+unmarshal_unsafe+size+equal+clone \
		proto/arguspb/*.proto
	PATH=$(abspath $(TOOLS_DIR))/bin:$$PATH protoc -I proto/argusquerypb \
		--go_out=proto/argusquerypb --go_opt=paths=source_relative \
		--go-grpc_out=proto/argusquerypb --go-grpc_opt=paths=source_relative \
		--go-vtproto_out=proto/argusquerypb --go-vtproto_opt=paths=source_relative \
		--go-vtproto_opt=features=marshal+unmarshal+unmarshal_unsafe+size+equal+clone \
		proto/argusquerypb/*.proto

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# stdmethods is off: chunkenc.Iterator's Seek(int64) is not io.Seeker's, as
# Prometheus's own lint config also accepts.
vet:
	$(GO) vet -stdmethods=false ./...

# image builds the container image $(IMAGE):$(VERSION) from deploy/Dockerfile: a
# static binary with the version stamped, on an empty base (deploy/README.md).
image:
	IMAGE=$(IMAGE) VERSION=$(VERSION) REVISION=$(REVISION) ./deploy/build-image.sh

clean:
	rm -rf $(BIN_DIR)
