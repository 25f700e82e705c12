#!/usr/bin/env bash
# Macro benchmark of the dashboard: a lake of >= 2 million CE events, the whole
# dashboard and each widget in cetrail, next to DuckDB running the same queries/*.sql
# over the same lake (with the view of queries/views/duckdb.sql materialised once, its
# time counted in DuckDB's total; results fetched as Arrow tables, hence pyarrow).
#   usage: bash benches/dashboard.sh [--runs R]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PIP=pyarrow==26.0.1 source benches/setup.sh
exec "$VENV/bin/python" benches/dashboard_bench.py --bin "$BIN" "$@"
