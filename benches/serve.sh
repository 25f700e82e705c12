#!/usr/bin/env bash
# Benchmark of `cetrail serve` in the browser: the page over the lake of
# benches/dashboard.sh (>= 2 million CE events) in headless Chromium, timed by the page's
# own navigation timing (first full page, then range, filter and zone changes, then the
# same view again), the server's peak RSS, next to the `dashboard` command's time.
#   usage: bash benches/serve.sh [--runs R]
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
exec "$VENV/bin/python" benches/serve_bench.py --bin "$BIN" --work "$W" "$@"
