#!/usr/bin/env bash
# Benchmark of `cetrail ingest s3://…` against moto_server on 127.0.0.1: the same archive
# ingested (a) from S3, (b) from a local folder, (c) by `aws s3 cp --recursive` then a
# local ingest. Prints seconds, MB/s and the ratios.
#   usage: bash benches/s3.sh [--days D]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PIP=awscli source benches/setup.sh
exec "$VENV/bin/python" benches/s3_bench.py --bin "$BIN" --venv "$VENV" "$@"
