#!/usr/bin/env bash
# Installs what building PromptLooper needs, only when missing: the wasm32 target and a
# wasm-bindgen CLI whose version equals the wasm-bindgen in Cargo.lock.
# Tools go under $PL_TOOLS (default ~/.cache/promptlooper/tools) so clean clones reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${PL_TOOLS:-$HOME/.cache/promptlooper/tools}"
mkdir -p "$tools/bin"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "==> adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
have=$("$tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "==> installing wasm-bindgen-cli $want (once; takes a few minutes)"
  # `cargo install --locked` fails for this version: its lockfile pins a webpki-roots release
  # the registry no longer serves. Build from the registry source with that one pin moved.
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasm-bindgen-cli-"$want" 2>/dev/null | head -n 1 || true)
  if [ -z "$src" ]; then
    # An install attempt unpacks the crate source into the registry even when it fails.
    cargo install wasm-bindgen-cli --version "$want" --locked --root "$tools" >/dev/null 2>&1 || true
    src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasm-bindgen-cli-"$want" 2>/dev/null | head -n 1 || true)
  fi
  if [ -n "$src" ] && ! "$tools/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$want"; then
    work=$(mktemp -d)
    cp -r "$src"/. "$work"/
    (cd "$work" && cargo update -p webpki-roots --precise 1.0.10 >/dev/null 2>&1 || true)
    cargo install --path "$work" --locked --root "$tools" --force
    rm -rf "$work"
  fi
  "$tools/bin/wasm-bindgen" --version | grep -q "$want"
fi

# The WASM splitter build-site.sh runs (tools/wasm-split, a thin wrapper over the crates.io
# `wasm_split_cli_support` that cargo-leptos --split uses); reinstalled when its source changes.
stamp=$(cat tools/wasm-split/Cargo.toml tools/wasm-split/Cargo.lock tools/wasm-split/src/*.rs | sha256sum | cut -c1-16)
if [ ! -x "$tools/bin/pl-wasm-split" ] || [ "$(cat "$tools/pl-wasm-split.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "==> installing the WASM splitter (once; about a minute)"
  cargo install --path tools/wasm-split --locked --root "$tools" --force
  echo "$stamp" > "$tools/pl-wasm-split.stamp"
fi
