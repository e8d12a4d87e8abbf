#!/usr/bin/env bash
# Benchmark (not a test): requests and time per operation on a loopback S3
# server for a tree of many directories (one small file each), snap against
# restic on the same server in one run. What it shows: whether the number of
# requests grows with the number of directories (it must not).
#
#   benches/s3_dirs.sh [DIRS...]        (default: 3000 15000)
#
# Operations: first backup, unchanged re-backup, re-backup after 1% of the
# files changed, restore, check, forget+prune (keep 1 of 3). Requests are
# counted by the server (moto logs one line per request). moto is
# single-threaded and in RAM: the times are loopback times, the request
# counts are what real S3 would see.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SNAP=${SNAP_BIN:-$ROOT/target/release/snap}
[ -x "$SNAP" ] || (cd "$ROOT" && cargo build --release --bin snap)
command -v restic >/dev/null || { echo "needs restic in PATH" >&2; exit 2; }
[ $# -gt 0 ] || set -- 3000 15000
WORK=$(mktemp -d)
trap 'kill ${S3_PID:-0} 2>/dev/null; rm -rf "$WORK"' EXIT
MOTO_LOG=$WORK/moto.log
eval "$(S3_LOG=$MOTO_LOG S3_WATCH_PID=$$ "$ROOT/scripts/s3-server.sh")"
export SNAP_PASSWORD=bench RESTIC_PASSWORD=bench
export AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

secs() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; printf '%.2f' "$(echo "$(date +%s.%N) - $s" | bc)"; }
mark() { wc -l <"$MOTO_LOG"; }
count() { tail -n +"$(($1 + 1))" "$MOTO_LOG" | grep -c "$2" || true; }
# step NAME PREFIX CMD...: runs CMD, records "time requests" under NAME.
declare -A T Q
step() {
  local name=$1 prefix=$2; shift 2
  local m; m=$(mark)
  T[$name]=$(secs "$@")
  sleep 0.3 # the server logs a request after answering it
  Q[$name]=$(count "$m" "$prefix")
}

for DIRS in "$@"; do
  DATA=$WORK/data-$DIRS
  python3 - "$DATA" "$DIRS" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2]); random.seed(3)
for i in range(n):
    d = os.path.join(root, f"a{i % 50}", f"b{i // 50 % 60}", f"d{i}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f.txt"), "wb") as f:
        f.write(os.urandom(random.randint(0, 4096)))
PY
  change() { # 1% of the files get new content
    python3 - "$DATA" "$DIRS" "$1" <<'PY'
import os, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(seed % 100, n, 100):
    with open(os.path.join(root, f"a{i % 50}", f"b{i // 50 % 60}", f"d{i}", "f.txt"), "ab") as f:
        f.write(os.urandom(64))
PY
  }
  SREPO="s3://$SNAP_TEST_S3_BUCKET/snap-$DIRS"
  RREPO="s3:$SNAP_TEST_S3_ENDPOINT/$SNAP_TEST_S3_BUCKET/restic-$DIRS"
  export SNAP_CACHE_DIR=$WORK/snap-cache-$DIRS RESTIC_CACHE_DIR=$WORK/restic-cache-$DIRS
  "$SNAP" --repo "$SREPO" init >/dev/null
  restic -r "$RREPO" init >/dev/null
  step s_first "snap-$DIRS" "$SNAP" --repo "$SREPO" create "$DATA"
  step r_first "restic-$DIRS" restic -r "$RREPO" backup -q "$DATA"
  step s_same "snap-$DIRS" "$SNAP" --repo "$SREPO" create "$DATA"
  step r_same "restic-$DIRS" restic -r "$RREPO" backup -q "$DATA"
  change 1
  step s_changed "snap-$DIRS" "$SNAP" --repo "$SREPO" create "$DATA"
  step r_changed "restic-$DIRS" restic -r "$RREPO" backup -q "$DATA"
  step s_restore "snap-$DIRS" "$SNAP" --repo "$SREPO" restore latest --to "$WORK/out-snap-$DIRS"
  step r_restore "restic-$DIRS" restic -r "$RREPO" restore latest --target "$WORK/out-restic-$DIRS"
  step s_check "snap-$DIRS" "$SNAP" --repo "$SREPO" check
  step r_check "restic-$DIRS" restic -r "$RREPO" check
  step s_prune "snap-$DIRS" "$SNAP" --repo "$SREPO" prune --keep-last 1
  step r_prune "restic-$DIRS" restic -r "$RREPO" forget --keep-last 1 --prune
  diff -r "$DATA" "$WORK/out-snap-$DIRS$DATA" >/dev/null || echo "WARNING: snap's restore differs from the source" >&2

  echo
  echo "$DIRS directories, $DIRS files (0-4 KiB); server: moto on loopback"
  echo "| operation | snap requests | restic requests | snap s | restic s | restic/snap time |"
  echo "|---|---|---|---|---|---|"
  for op in first same changed restore check prune; do
    case $op in first) label="first backup";; same) label="unchanged re-backup";;
      changed) label="re-backup, 1% changed";; restore) label="restore";;
      check) label="check";; prune) label="forget+prune (keep 1 of 3)";; esac
    ratio=$(echo "scale=2; ${T[r_$op]} / ${T[s_$op]}" | bc)
    echo "| $label | ${Q[s_$op]} | ${Q[r_$op]} | ${T[s_$op]} | ${T[r_$op]} | ${ratio}x |"
  done
  rm -rf "$DATA" "$WORK/out-snap-$DIRS" "$WORK/out-restic-$DIRS"
done
