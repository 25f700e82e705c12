#!/usr/bin/env bash
# Benchmark of `cetrail ingest s3://…` against moto_server on 127.0.0.1: the same archive
# ingested (a) from S3, (b) from a local folder, (c) by `aws s3 cp --recursive` then a
# local ingest. Prints seconds, MB/s and the ratios.
#   usage: bash benches/s3.sh [--days D]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cetrail-target}"
cargo build --release --quiet
VENV="${CETRAIL_VENV:-$HOME/.cache/cetrail-venv}"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt awscli
exec "$VENV/bin/python" benches/s3_bench.py --bin "$CARGO_TARGET_DIR/release/cetrail" --venv "$VENV" "$@"
