#!/usr/bin/env bash
# Macro benchmark of the dashboard: a lake of >= 2 million CE events, the whole
# dashboard and each widget in cetrail, next to DuckDB running the same queries/*.sql
# over the same lake (with the view of queries/views/duckdb.sql materialised once, its
# time counted in DuckDB's total).
#   usage: bash benches/dashboard.sh [--runs R]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cetrail-target}"
cargo build --release --quiet
VENV="${CETRAIL_VENV:-$HOME/.cache/cetrail-venv}"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
exec "$VENV/bin/python" benches/dashboard_bench.py --bin "$CARGO_TARGET_DIR/release/cetrail" "$@"
