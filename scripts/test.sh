#!/usr/bin/env bash
# The whole test suite (`make test`): Rust unit, story, HTTP and process tests on SQLite and on
# PostgreSQL, the MCP tests, schemathesis over the REST API, then the dashboard journey in
# headless Chromium. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/promptlooper/target}"
export PL_TOOLS="${PL_TOOLS:-$HOME/.cache/promptlooper/tools}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

scripts/ensure-tools.sh

if ! command -v chromium >/dev/null; then
  echo "==> installing Debian's chromium for the browser test"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then
  echo "==> installing playwright-core"
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null && touch node_modules)
fi

# The official MCP Python SDK for the agent tests, in a virtualenv kept with the tools.
venv="$PL_TOOLS/mcp-venv"
stamp=$(sha256sum tests/mcp/requirements.txt | cut -c1-16)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "==> installing the MCP Python SDK (tests/mcp/requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/mcp/requirements.txt
  echo "$stamp" > "$venv/.stamp"
fi

TEST_DATABASE_URL=$(scripts/ensure-postgres.sh)
export TEST_DATABASE_URL PL_REQUIRE_POSTGRES=1

# Both suites always run; the script fails at the end if either did.
status=0
echo "==> Rust tests (SQLite + PostgreSQL)"
cargo test -p engine -p server --no-fail-fast 2>&1 | tee -a "$log" || status=1

echo "==> MCP tests (the official Python SDK over HTTP and stdio)"
if cargo build -p server; then
  mcp_out=$(mktemp)
  PL_BIN="$CARGO_TARGET_DIR/debug/promptlooper" "$venv/bin/python" -m unittest -v tests/mcp/test_mcp.py \
    >"$mcp_out" 2>&1 || status=1
  cat "$mcp_out"
  # One cargo-style result line for the closing summary.
  total=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$mcp_out" | tail -n 1)
  bad=$(grep -cE '^(FAIL|ERROR): ' "$mcp_out" || true)
  echo "test result: MCP. $(( ${total:-0} - bad )) passed; $bad failed" | tee -a "$log"
  rm -f "$mcp_out"
else
  echo "build for the MCP tests failed" | tee -a "$log"
  status=1
fi

echo "==> schemathesis (the REST API against its OpenAPI document; needs root for its network namespace)"
# Uses the debug server the MCP step built; the script prints its own cargo-style result line.
st_out=$(mktemp)
scripts/schemathesis.sh 2>&1 | tee "$st_out" || status=1
if ! grep '^test result: schemathesis\.' "$st_out" | tail -n 1 >>"$log"; then
  echo "test result: schemathesis. 0 passed; 1 failed" | tee -a "$log"
  status=1
fi
rm -f "$st_out"

echo "==> browser tests (headless Chromium)"
if cargo build -p server && scripts/build-site.sh debug; then
  (cd tests/browser && PL_BIN="$CARGO_TARGET_DIR/debug/promptlooper" PL_SITE="$CARGO_TARGET_DIR/site/debug" \
    node --test --test-concurrency=1) 2>&1 | tee -a "$log" || status=1
else
  echo "build for the browser tests failed" | tee -a "$log"
  status=1
fi

# One closing line over both runners: cargo's "test result" lines and node's "# pass/# fail".
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "make test: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
