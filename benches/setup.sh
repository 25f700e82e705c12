# Sourced by the benchmark scripts: a release build and the project's Python venv.
# Sets CARGO_TARGET_DIR, BIN (the release binary) and VENV; extra pip packages in $EXTRA_PIP.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cetrail-target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/cetrail"
VENV="${CETRAIL_VENV:-$HOME/.cache/cetrail-venv}"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt ${EXTRA_PIP:-}
