# docstream: `make run` starts the whole system, `make test` runs every test.
GO      ?= go
BIN     := bin/docstream
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: run test build bench fuzz proto bootstrap lint clean screenshots

run: bootstrap build
	./$(BIN) dev

test: bootstrap
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s

# Each request decoder's fuzz target, one at a time (`go test` runs only the
# seeds); make test fuzzes each briefly (5 s, after replaying the corpus the
# machine has gathered). FUZZTIME=1000000x is the long run recorded in
# docs/benchmarks.md.
# The targets run against PostgreSQL, so minimising a new input is bounded
# to 50 executions instead of the default minute.
FUZZTIME ?= 30s
FUZZ := internal/document:FuzzCreateJSON internal/document:FuzzCreateMultipart internal/document:FuzzUpdate internal/document:FuzzShare \
	internal/signature:FuzzCreate internal/search:FuzzQueryParams
fuzz: bootstrap
	@for t in $(FUZZ); do \
		echo "== $$t"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x -parallel 1 ./$${t%%:*}/ || exit 1; \
	done

# Refreshes docs/screenshots/*.png from the browser tests (which otherwise
# write them to a temp dir).
screenshots: bootstrap
	DOCSTREAM_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestBrowser' ./internal/app/

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/docstream

# Benchmarks need the real servers the test harness starts, here with fsync on
# (DOCSTREAM_TEST_DURABLE=1); see docs/benchmarks.md.
bench: bootstrap
	DOCSTREAM_TEST_DURABLE=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime 3s -timeout 30m ./...

# Regenerates proto/documentpb from proto/document.proto.
proto:
	GOBIN=$(CURDIR)/.tools/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(CURDIR)/.tools/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	command -v protoc >/dev/null || apt-get install -y -qq protobuf-compiler
	protoc -I proto --go_out=proto/documentpb --go_opt=paths=source_relative \
		--go-grpc_out=proto/documentpb --go-grpc_opt=paths=source_relative proto/document.proto

bootstrap:
	@scripts/bootstrap.sh

clean:
	rm -rf bin
