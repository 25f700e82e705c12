#!/usr/bin/env bash
# Macro benchmark of `cetrail ingest`. Generates archives with `cetrail generate`
# (1 % CE events; ~1 GB and ~4 GB of JSON), then measures, several times each: ingest
# throughput (MB/s of uncompressed JSON, records/s) next to the pure-gunzip bound of the
# same files on the same thread count, DuckDB converting the same files' CE events to
# Parquet and DuckDB counting their records; files/s on ~300,000 tiny files (1-2
# records each); peak RSS of ingest at both sizes.
#   usage: bash benches/ingest.sh [--threads N] [--runs R] [--scale S] [--tiny-files N] [--no-duckdb]
# --scale multiplies the archive sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/setup.sh
exec "$VENV/bin/python" benches/ingest_bench.py --bin "$BIN" "$@"
