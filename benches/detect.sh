#!/usr/bin/env bash
# Benchmark of Sigma detections: 100 rules over the lake of benches/dashboard.sh (>= 2
# million CE events), `cetrail detect` (the whole command) next to DuckDB running
# pySigma's SQL for the same rules (pysigma-backend-duckdb) over the same events.
#   usage: bash benches/detect.sh [--runs R] [--rules N]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/setup.sh
W="${TMPDIR:-/tmp}/cetrail-bench-dash"
if [ ! -d "$W/lake" ]; then
  mkdir -p "$W"
  "$BIN" generate --out "$W/archive" --days 56 --accounts 2 --regions 2 --events-per-day 12000 \
    --ce-share 0.95 --no-digests --seed 9 >/dev/null
  "$BIN" ingest "$W/archive" --lake "$W/lake" --quiet
fi
exec "$VENV/bin/python" benches/detect_bench.py --bin "$BIN" --work "$W" "$@"
