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

rm -rf "$site/pkg.new"
mkdir -p "$site/pkg.new"
"$tools/bin/wasm-bindgen" --target web --no-typescript --out-dir "$site/pkg.new" --out-name "$name" \
  "$target_dir/wasm32-unknown-unknown/$out/frontend.wasm"
cat style/*.css > "$site/pkg.new/$name.css"

if [ "$profile" = release ]; then
  # Debian's binaryen is too old (its output fails at run time); npm's works.
  wasm_opt="$tools/node_modules/.bin/wasm-opt"
  if [ ! -x "$wasm_opt" ] && command -v npm >/dev/null; then
    npm install --prefix "$tools" --no-save --no-audit --no-fund binaryen@132 >/dev/null || true
  fi
  if [ -x "$wasm_opt" ]; then
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      "$site/pkg.new/${name}_bg.wasm" -o "$site/pkg.new/${name}_bg.wasm"
  else
    echo "warning: wasm-opt unavailable (needs npm); the WASM bundle is not size-optimised" >&2
  fi
  for f in "$site/pkg.new"/*.{js,wasm,css}; do gzip -9 -k -f "$f"; done
fi

rm -rf "$site/pkg"
mv "$site/pkg.new" "$site/pkg"
cp -r public/. "$site/"
echo "site built in $site"
