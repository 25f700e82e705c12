#!/usr/bin/env bash
# Macro benchmark of the other places CE events live (SPEC §10): the same generated CE
# activity (~100,000 CE events by default, 67 days) ingested from the trail, from a CloudWatch
# Logs export of the log group, from EventBridge JSON Lines (Firehose) and from an
# Event History file; events/s and MB/s of each, measured in one run, median of R runs.
#   usage: bash benches/sources.sh [--runs R] [--days D]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/setup.sh
exec "$VENV/bin/python" benches/sources_bench.py --bin "$BIN" "$@"
