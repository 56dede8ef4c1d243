#!/usr/bin/env bash
# Foundation benchmark (see bench/README.md). Pass --builds to also time clean builds.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/foundation.py "$@"
