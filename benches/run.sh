#!/usr/bin/env bash
# Every benchmark, one command: criterion micro-benchmarks of the hot paths, then the
# ingest, dashboard, S3 and other-sources macro benchmarks (each prints medians and ratios measured
# side by side in the same run). Figures and method: BENCHMARKS.md.
#   usage: bash benches/run.sh [--quick]   (--quick: smaller archives, fewer runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cetrail-target}"
if [ "${1:-}" = "--quick" ]; then
  INGEST=(--scale 0.25 --runs 1 --tiny-files 40000); DASH=(--runs 1); S3=(--tiny-objects 20000 --big-days 6 --delays 0,30); SOURCES=(--runs 1 --days 14)
else
  INGEST=(--runs 3); DASH=(--runs 5); S3=(); SOURCES=(--runs 3)
fi
echo "== criterion: hot paths"
cargo bench --bench hot_paths -- --noplot
echo "== ingest"
bash benches/ingest.sh "${INGEST[@]}"
echo "== dashboard, audit, report"
bash benches/dashboard.sh "${DASH[@]}"
echo "== S3"
bash benches/s3.sh "${S3[@]}"
echo "== other sources (log-group export, EventBridge, Event History)"
bash benches/sources.sh "${SOURCES[@]}"
