#!/usr/bin/env bash
# Benchmark (not a test): peak RSS and time of create and restore against
# the number of files, to show memory does not grow with it.
#
#   benches/scale.sh [FILES...]       (default: 100000 300000 1000000)
#
# Each tree: FILES files of 0-2 KiB, 20 to a directory, 50 directories to a
# parent. Uses target/release/snap and /usr/bin/time. Needs about 2 KiB of
# disk per file, twice (source and restore).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SNAP=${SNAP_BIN:-$ROOT/target/release/snap}
[ -x "$SNAP" ] || (cd "$ROOT" && cargo build --release --bin snap)
[ $# -gt 0 ] || set -- 100000 300000 1000000
W=${BENCH_DIR:-${TMPDIR:-/tmp}/snap-scale-bench}
export SNAP_PASSWORD=bench SNAP_CACHE_DIR=$W/cache
run() { # label cmd...: prints "label: wall s, peak RSS MB"
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$W/t" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
  read -r e m <"$W/t"
  printf '| %-8s | %-8s | %8.1f | %7.0f |\n' "$N" "$label" "$e" "$((m / 1024))"
}
echo "| files | step | wall s | peak RSS MB |"
echo "|---|---|---|---|"
for N in "$@"; do
  rm -rf "$W"; mkdir -p "$W"
  python3 - "$W/src" "$N" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2]); random.seed(1)
blob = os.urandom(4096)
for i in range(n):
    d = os.path.join(root, f"p{i // 1000}", f"d{i // 20}")
    if i % 20 == 0:
        os.makedirs(d, exist_ok=True)
    k = random.randint(0, 2048)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(blob[i % 2048:i % 2048 + k] + i.to_bytes(8, "little"))
PY
  "$SNAP" --repo "$W/repo" init >/dev/null
  run create "$SNAP" --repo "$W/repo" create "$W/src"
  run create2 "$SNAP" --repo "$W/repo" create "$W/src"
  run restore "$SNAP" --repo "$W/repo" restore latest --to "$W/out"
  run ls "$SNAP" --repo "$W/repo" ls latest
  run check "$SNAP" --repo "$W/repo" check
  diff -r "$W/src" "$W/out$W/src" >/dev/null || echo "WARNING: restored tree differs from the source" >&2
done
rm -rf "$W"
