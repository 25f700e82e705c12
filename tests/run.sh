#!/usr/bin/env bash
# The test command (README): every unit and integration test.
# Cross-engine tests need Python with duckdb and pyspark (and Java 17): .ci/run installs it and sets CETRAIL_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test "$@"
