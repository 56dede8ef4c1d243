#!/usr/bin/env bash
# Builds the dashboard's browser assets into $SITE_DIR: the hydration bundle (WASM + JS glue),
# the stylesheet and public files. Usage: build-site.sh debug|release
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
target_dir="${CARGO_TARGET_DIR:-target}"
site="${SITE_DIR:-$target_dir/site/$profile}"
tools="${PL_TOOLS:-$HOME/.cache/promptlooper/tools}"
name=promptlooper

case "$profile" in
  debug)   cargo build -p frontend --lib --target wasm32-unknown-unknown; out=debug ;;
  release) cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release; out=wasm-release ;;
  *) echo "usage: $0 debug|release" >&2; exit 2 ;;
esac

wasm="$target_dir/wasm32-unknown-unknown/$out/frontend.wasm"
rm -rf "$site/pkg.new"
mkdir -p "$site/pkg.new"
# Code splitting (what cargo-leptos --split does): cut every #[lazy]/#[lazy_route] function,
# and what only it reaches, out of the linked WASM into chunks in pkg/ (plus the loader
# __wasm_split.<22 underscores>.js and __wasm_split_manifest.json, which the server reads to
# preload a page's chunks). Needs the relocations frontend/build.rs asks the linker to keep.
# Not optional: without it the bundle imports the splitter's placeholder module and fails.
"$tools/bin/pl-wasm-split" "$wasm" "$site/pkg.new" "${wasm%.wasm}_split.wasm" "$name" >/dev/null
"$tools/bin/wasm-bindgen" --target web --no-typescript --keep-lld-exports --no-demangle \
  --out-dir "$site/pkg.new" --out-name "$name" "${wasm%.wasm}_split.wasm"
# KEEP_BINDGEN_WASM=<file>: keep the main module before wasm-opt, names intact, for `twiggy`.
if [ -n "${KEEP_BINDGEN_WASM:-}" ]; then cp "$site/pkg.new/${name}_bg.wasm" "$KEEP_BINDGEN_WASM"; fi
cat style/*.css > "$site/pkg.new/$name.css"

if [ "$profile" = release ]; then
  # Debian's binaryen is too old (its output fails at run time); npm's works.
  wasm_opt="$tools/node_modules/.bin/wasm-opt"
  if [ ! -x "$wasm_opt" ] && command -v npm >/dev/null; then
    npm install --prefix "$tools" --no-save --no-audit --no-fund binaryen@132 >/dev/null || true
  fi
  if [ -x "$wasm_opt" ]; then
    # The main module and every chunk, each on its own (as cargo-leptos does).
    for f in "$site/pkg.new"/*.wasm; do
      "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$f" -o "$f"
    done
  else
    echo "warning: wasm-opt unavailable (needs npm); the WASM bundle is not size-optimised" >&2
  fi
  for f in "$site/pkg.new"/*.{js,json,wasm,css}; do gzip -9 -k -f "$f"; done
fi

rm -rf "$site/pkg"
mv "$site/pkg.new" "$site/pkg"
cp -r public/. "$site/"
echo "site built in $site"
