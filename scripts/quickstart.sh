#!/usr/bin/env bash
# Builds snap and runs its main job on the embedded default, a local
# repository directory: a job config (snap.toml) with a before hook, a dump,
# retention and a restore drill, run twice by `snap run` (the second run
# stores only changes), then a full restore --to, a comparison with the
# source, and check --read-data.
# usage: scripts/quickstart.sh [SOURCE_DIR]   (default: this project's src/)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
SNAP=$PWD/target/release/snap
SRC=$(readlink -f "${1:-src}")
WORK=${SNAP_DEMO_DIR:-$PWD/snap-demo}
export SNAP_REPO=$WORK/repo SNAP_CONFIG=$WORK/snap.toml SNAP_CACHE_DIR=$WORK/cache
# A demo password; for real repositories use a password_file (0600) or a
# password_command in the config, never the password itself.
export SNAP_PASSWORD=${SNAP_PASSWORD:-snap-demo-password}
rm -rf "$WORK"; mkdir -p "$WORK"
cat > "$SNAP_CONFIG" <<TOML
[repositories.demo]
path = "$SNAP_REPO"

[jobs.demo]
repository = "demo"
paths = ["$SRC"]
dumps = [ { name = "listing.txt", command = ["ls", "-lR", "$SRC"] } ]
keep = { last = 7 }
drill = { sample = "50%", against_source = true }
hooks.before = ["echo \"before hook: job \$SNAP_JOB\""]
hooks.finally = ["echo \"finally hook: \$SNAP_JOB \$SNAP_STATUS\""]
TOML
echo "== snap init ($SNAP_REPO)"; "$SNAP" init
echo "== snap run demo ($SNAP_CONFIG)"; "$SNAP" run demo
echo "== snap run demo (again: only changes are stored)"; "$SNAP" run demo
echo "== snap snapshots"; "$SNAP" snapshots
echo "== snap restore latest --to $WORK/restore"; "$SNAP" restore latest --to "$WORK/restore"
diff -r --no-dereference "$SRC" "$WORK/restore$SRC" && echo "restored tree is identical to $SRC"
echo "== snap check --read-data"; "$SNAP" check --read-data
