# PromptLooper: `make run` builds and serves it; `make test` runs the whole suite.
# Build output lives outside the clone so fresh clones on one machine build incrementally.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/promptlooper/target
export PL_TOOLS ?= $(HOME)/.cache/promptlooper/tools
DATA_DIR ?= ./data
BIN_RELEASE := $(CARGO_TARGET_DIR)/release/promptlooper
BIN_DEBUG := $(CARGO_TARGET_DIR)/debug/promptlooper
SITE_RELEASE := $(CARGO_TARGET_DIR)/site/release
SITE_DEBUG := $(CARGO_TARGET_DIR)/site/debug

.PHONY: run build dev test test-rust test-browser tools bench fmt lint clean-data

## Build the release (installing missing tools) and serve on :8400 with SQLite in ./data.
run: build
	@echo "==> PromptLooper on http://localhost:$${PORT:-8400} (data in $(DATA_DIR); Ctrl-C stops it)"
	DATA_DIR=$(DATA_DIR) LEPTOS_SITE_ROOT=$(SITE_RELEASE) $(BIN_RELEASE) serve

## Release binary + optimised dashboard assets.
build: tools
	cargo build --release -p server
	scripts/build-site.sh release

## Debug build, served like `run` (faster to compile while developing).
dev: tools
	cargo build -p server
	scripts/build-site.sh debug
	DATA_DIR=$(DATA_DIR) LEPTOS_SITE_ROOT=$(SITE_DEBUG) $(BIN_DEBUG) serve

## Everything: Rust tests on SQLite and PostgreSQL, then the browser journey in Chromium.
test:
	scripts/test.sh

tools:
	scripts/ensure-tools.sh

## Build-size, start-up, memory and sweep-throughput numbers (see bench/README.md).
bench: build
	bench/foundation.sh
	bench/sweeps.py
	bench/datasets.py

fmt:
	cargo fmt --all

lint: tools
	cargo fmt --all --check
	cargo clippy -p server --all-targets -- -D warnings
	cargo clippy -p frontend --lib --target wasm32-unknown-unknown -- -D warnings

clean-data:
	rm -rf $(DATA_DIR)
