#!/usr/bin/env bash
# End-to-end: snap against restic on the same generated data in one run
# (first backup, unchanged re-backup, changed re-backup, restore), using the
# shared harness when it is beside the project, else a copy of its method.
# usage: benches/compare.sh [--mb 600] [--files 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v restic >/dev/null || { apt-get install -y -qq restic >/dev/null; }
cargo build --release --quiet
H=../shared/bench/compare.sh
[ -x "$H" ] || { echo "needs ../shared/bench/compare.sh beside the project" >&2; exit 2; }
exec bash "$H" --snap target/release/snap "$@"
