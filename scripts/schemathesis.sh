#!/usr/bin/env bash
# Fuzzes the REST API with schemathesis 4.x (every check) against a fresh debug server seeded with
# the demo, inside a network namespace that has only loopback, so no generated URL can leave the
# machine. Part of `make test` (scripts/test.sh, after the MCP tests): any failure fails it, and
# the last line is a cargo-style `test result: schemathesis. N passed; M failed` (a test is an
# operation in a pass). Three passes over one server:
#   1. the static admin key: every operation but sign-in, users, API keys and the settings write
#      (--max-examples ${ST_EXAMPLES:-15});
#   2. a guest's API key, made here: the same operations and the settings write (8 examples);
#      guests read, and every write is a 403 the document declares;
#   3. the admin key on the settings write alone, last: it may switch guest access on, after which
#      an anonymous request is a guest's (a read answers, a write is 403), so this pass leaves
#      out missing_required_header, which wants a 401 without credentials.
# scripts/schemathesis.toml holds what a schema cannot state (and says which rules). About five
# minutes on two cores.
# Usage: scripts/schemathesis.sh [extra st arguments, for every pass]   (needs root: unshare -n)
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
pid=
trap 'rc=$?; kill "$pid" 2>/dev/null || true
      if [ "$rc" != 0 ]; then echo "--- the server log, last 40 lines"; tail -n 40 "$data/serve.log"; fi
      rm -rf "$data"' EXIT
key="schemathesis-static-admin-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18601
api="http://127.0.0.1:$port/api/v1"
DATA_DIR="$data" HOST=127.0.0.1 PORT=$port MCP_PORT=0 SEED_DEMO=true API_KEY="$key" RUST_LOG=warn \
  LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site/debug" "$CARGO_TARGET_DIR/debug/promptlooper" serve >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done

# A guest's API key. Keys are made by a signed-in admin user, so the static key adds one first.
json() { "$venv/bin/python" -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
post() { curl -sSf -X POST "$api$1" ${2:+-H "Authorization: Bearer $2"} -H 'Content-Type: application/json' -d "$3"; }
password="st-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
post /admin/users "$key" "{\"username\": \"st-admin\", \"password\": \"$password\", \"role\": \"admin\"}" >/dev/null
jwt=$(post /auth/login '' "{\"username\": \"st-admin\", \"password\": \"$password\"}" | json token)
guest=$(post /admin/api-keys "$jwt" '{"name": "schemathesis guest", "role": "guest"}' | json key)

status=0
passes=0
st() {
  local who=$1
  shift
  passes=$((passes + 1))
  echo "--- schemathesis, as $who"
  # Every check runs (schemathesis's default); `--checks all` would also override the one the
  # config switches off for the stateful phase.
  "$venv/bin/st" --config-file scripts/schemathesis.toml --no-color run "$api/openapi.json" \
    --exclude-path-regex '/auth/|/admin/users|/admin/api-keys' \
    --report junit --report-junit-path "$data/junit-$passes.xml" "$@" || status=1
}
st admin -H "Authorization: Bearer $key" --max-examples "${ST_EXAMPLES:-15}" \
  --exclude-name 'PUT /api/v1/admin/settings' "$@"
st guest -H "Authorization: Bearer $guest" --max-examples 8 "$@"
st "admin (the settings write)" -H "Authorization: Bearer $key" --max-examples "${ST_EXAMPLES:-15}" \
  --include-name 'PUT /api/v1/admin/settings' --exclude-checks missing_required_header "$@"

# One cargo-style line for `make test`'s summary: an operation tested in a pass is a test (the
# stateful run too); it failed when schemathesis found a failure or an error in it.
shopt -s nullglob
"$venv/bin/python" - "$status" "$data"/junit-*.xml <<'EOF'
import sys
import xml.etree.ElementTree as ET

passed = failed = 0
for path in sys.argv[2:]:
    for case in ET.parse(path).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        else:
            passed += 1
if sys.argv[1] != "0" and failed == 0:
    failed = 1  # a pass that broke off before its report
print(f"test result: schemathesis. {passed} passed; {failed} failed")
EOF
exit "$status"
