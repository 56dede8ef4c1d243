#!/usr/bin/env bash
# Fuzzes the REST API with schemathesis 4.x (all checks) against a fresh debug server, inside a
# network namespace that has only loopback, so no generated URL can leave the machine.
# Not yet part of `make test`: issue 16 is bringing its failures to 0 (160 at the first run;
# about 33 once every operation declared its error answers: schema-valid requests the API
# refuses, and list routes that document paging they do not do).
# Usage: scripts/schemathesis.sh [extra st arguments]   (needs root for unshare -n)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/promptlooper/target}"
export PL_TOOLS="${PL_TOOLS:-$HOME/.cache/promptlooper/tools}"
venv="$PL_TOOLS/st-venv"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis>=4,<5"
fi
cargo build -q -p server
if [ "${PL_IN_NETNS:-}" != 1 ]; then
  exec unshare -n env PL_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
key="schemathesis-static-admin-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18601
DATA_DIR="$data" HOST=127.0.0.1 PORT=$port MCP_PORT=0 SEED_DEMO=true API_KEY="$key" RUST_LOG=warn \
  LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site/debug" "$CARGO_TARGET_DIR/debug/promptlooper" serve >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
"$venv/bin/st" run "http://127.0.0.1:$port/api/v1/openapi.json" -H "Authorization: Bearer $key" \
  --checks all --max-examples "${ST_EXAMPLES:-15}" --exclude-path-regex '/auth/|/admin/users|/admin/api-keys' \
  --no-color "$@"
