#!/usr/bin/env bash
# Macro benchmark of `cetrail ingest` (issue 2's first benchmark).
# Generates archives with `cetrail generate` (1 % CE events), then measures, several
# times each: ingest throughput (MB/s of uncompressed JSON, records/s) next to the
# pure-gunzip bound of the same files on the same thread count, and peak RSS of ingest
# at two archive sizes.
#   usage: bash benches/ingest.sh [--threads N] [--runs R] [--scale S]
# --scale multiplies the archive sizes (1 → ~1.1 GB and ~2.2 GB of JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cetrail-target}"
cargo build --release --quiet
exec python3 benches/ingest_bench.py --bin "$CARGO_TARGET_DIR/release/cetrail" "$@"
