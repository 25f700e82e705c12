#!/usr/bin/env bash
# The test command (README): every unit and integration test.
# Cross-engine tests need Python with duckdb: .ci/run installs it and sets CETRAIL_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test "$@"
