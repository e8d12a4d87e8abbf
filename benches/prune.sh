#!/usr/bin/env bash
# Prune benchmark (not a timed test): 100 snapshots of a changing data set,
# then `snap prune` vs `restic forget --prune` with the same policy on the
# same data. Prints a table of wall time, peak RSS and repository sizes.
#
# usage: benches/prune.sh [SNAP_BIN] [FILES] [FILE_KIB] [CHANGED_PER_SNAPSHOT]
# defaults: target/release/snap, 200 files of 256 KiB (50 MiB), 10 changed
# per snapshot (100 snapshots add ~250 MiB of new data in total).
set -euo pipefail
SNAP=${1:-target/release/snap}
FILES=${2:-200}
KIB=${3:-256}
CHANGE=${4:-10}
SNAPSHOTS=${SNAPSHOTS:-100}
POLICY_SNAP=${POLICY_SNAP:---keep-last 10 --keep-daily 3}
POLICY_RESTIC=${POLICY_RESTIC:---keep-last 10 --keep-daily 3}
SNAP=$(realpath "$SNAP")
command -v restic >/dev/null || { echo "restic not installed" >&2; exit 1; }

W=$(mktemp -d /tmp/snap-prune-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
DATA=$W/data
mkdir -p "$DATA"
export SNAP_PASSWORD=bench RESTIC_PASSWORD=bench
export SNAP_REPO=$W/snap-repo RESTIC_REPOSITORY=$W/restic-repo
"$SNAP" init --kdf-memory-kib 1024 --kdf-iterations 1 >/dev/null
restic init -q >/dev/null

for i in $(seq 1 "$FILES"); do
  head -c $((KIB * 1024)) /dev/urandom >"$DATA/f$i"
done

echo "creating $SNAPSHOTS snapshots ($FILES files x $KIB KiB, $CHANGE changed each) ..." >&2
for s in $(seq 1 "$SNAPSHOTS"); do
  # A changing data set: rewrite CHANGE files chosen round-robin.
  for c in $(seq 1 "$CHANGE"); do
    n=$(( ((s * CHANGE + c) % FILES) + 1 ))
    head -c $((KIB * 1024)) /dev/urandom >"$DATA/f$n"
  done
  # Snapshots 2 hours apart, so daily/hourly policies have work to do.
  T=$(date -u -d "2026-01-01 00:00:00 UTC + $((s * 2)) hours" +%Y-%m-%dT%H:%M:%SZ)
  "$SNAP" create "$DATA" --time "$T" --quiet
  restic backup -q --time "$(date -u -d "$T" '+%Y-%m-%d %H:%M:%S')" --host bench "$DATA" >/dev/null
done
# restic stores its host; use one host for snap too (default: this host).

size() { du -sb "$1" | cut -f1; }
SNAP_BEFORE=$(size "$SNAP_REPO")
RESTIC_BEFORE=$(size "$RESTIC_REPOSITORY")

# shellcheck disable=SC2086
/usr/bin/time -f '%e %M' -o "$W/snap.time" "$SNAP" prune $POLICY_SNAP --quiet
# shellcheck disable=SC2086
/usr/bin/time -f '%e %M' -o "$W/restic.time" restic forget $POLICY_RESTIC --prune -q >/dev/null

SNAP_AFTER=$(size "$SNAP_REPO")
RESTIC_AFTER=$(size "$RESTIC_REPOSITORY")
"$SNAP" check --quiet || echo "snap check FAILED" >&2

read -r st sm <"$W/snap.time"
read -r rt rm_ <"$W/restic.time"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo
echo "| tool | prune time (s) | peak RSS (MiB) | repo before (MiB) | repo after (MiB) | snapshots left |"
echo "|------|---------------:|---------------:|------------------:|-----------------:|---------------:|"
echo "| snap prune $POLICY_SNAP | $st | $(mib $((sm * 1024))) | $(mib "$SNAP_BEFORE") | $(mib "$SNAP_AFTER") | $(ls "$SNAP_REPO/snapshots" | wc -l) |"
echo "| restic forget --prune $POLICY_RESTIC | $rt | $(mib $((rm_ * 1024))) | $(mib "$RESTIC_BEFORE") | $(mib "$RESTIC_AFTER") | $(ls "$RESTIC_REPOSITORY/snapshots" | wc -l) |"
