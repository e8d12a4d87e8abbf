#!/usr/bin/env bash
# Builds snap and runs its main job on the embedded default, a local
# repository directory: init, create, a second (delta) create, restore --to,
# compare, check --read-data.
# usage: scripts/quickstart.sh [SOURCE_DIR]   (default: this project's src/)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
SNAP=$PWD/target/release/snap
SRC=$(readlink -f "${1:-src}")
WORK=${SNAP_DEMO_DIR:-$PWD/snap-demo}
export SNAP_REPO=$WORK/repo
# A demo password; for real repositories use SNAP_PASSWORD_FILE or --password-command.
export SNAP_PASSWORD=${SNAP_PASSWORD:-snap-demo-password}
rm -rf "$WORK"; mkdir -p "$WORK"
echo "== snap init ($SNAP_REPO)"; "$SNAP" init
echo "== snap create $SRC"; "$SNAP" create "$SRC"
echo "== snap create $SRC (again: only changes are stored)"; "$SNAP" create "$SRC"
echo "== snap snapshots"; "$SNAP" snapshots
echo "== snap restore latest --to $WORK/restore"; "$SNAP" restore latest --to "$WORK/restore"
diff -r --no-dereference "$SRC" "$WORK/restore$SRC" && echo "restored tree is identical to $SRC"
echo "== snap check --read-data"; "$SNAP" check --read-data
