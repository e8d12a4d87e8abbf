#!/usr/bin/env bash
# Benchmark (not a test): snap against restic on real data you point it at,
# in one run, caches dropped before each step (as root). The steps:
# first backup, unchanged re-backup, re-backup after "a day's change"
# (1% of the files appended to, and every *.day2 file replacing its *.day1
# twin: e.g. two consecutive pg_dumps), restore. Prints wall time, user+sys
# CPU, peak RSS and repository size, and the ratio restic/snap.
#
#   benches/compare_real.sh DIR_OR_FILE...
#   e.g. benches/compare_real.sh /usr/share ~/.rustup/toolchains/*/lib dump.sql.day1 dump.sql.day2
#
# The sources are copied (cp -a) into a scratch dir first, so the change
# step can modify them. SNAP_BIN picks the snap binary; SNAP_INIT_ARGS adds
# options to `snap init` (e.g. "--compression 3").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SNAP=${SNAP_BIN:-$ROOT/target/release/snap}
[ -x "$SNAP" ] || (cd "$ROOT" && cargo build --release --bin snap)
command -v restic >/dev/null || { echo "needs restic in PATH" >&2; exit 2; }
[ $# -gt 0 ] || { echo "usage: $0 DIR_OR_FILE..." >&2; exit 2; }
W=${BENCH_DIR:-${TMPDIR:-/tmp}/snap-real-bench}
rm -rf "$W"; mkdir -p "$W/src"
for s in "$@"; do
  case $s in
    *.day2) cp -a "$s" "$W/" ;;               # waits beside src for the change step
    *.day1) cp -a "$s" "$W/src/$(basename "${s%.day1}")" ;;
    *) cp -a "$s" "$W/src/" ;;
  esac
done
export RESTIC_PASSWORD=bench SNAP_PASSWORD=bench SNAP_CACHE_DIR=$W/snap-cache RESTIC_CACHE_DIR=$W/restic-cache
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
declare -A WALL CPU RSS SIZE
step() { # tool step cmd...
  local tool=$1 st=$2; shift 2; drop
  if ! /usr/bin/time -f '%e %U %S %M' -o "$W/t" "$@" >"$W/$tool.$st.log" 2>&1; then
    echo "$tool $st FAILED:" >&2; tail -5 "$W/$tool.$st.log" >&2; exit 1
  fi
  local e u s m; read -r e u s m < <(tail -1 "$W/t")
  WALL[$tool.$st]=$e; CPU[$tool.$st]=$(echo "$u + $s" | bc); RSS[$tool.$st]=$m
  SIZE[$tool.$st]=$(du -sb "$W/repo.$tool" | cut -f1)
}
restic -r "$W/repo.restic" init >/dev/null
# shellcheck disable=SC2086
"$SNAP" --repo "$W/repo.snap" init ${SNAP_INIT_ARGS:-} >/dev/null
B_restic=(restic -r "$W/repo.restic" backup --host bench "$W/src")
B_snap=("$SNAP" --repo "$W/repo.snap" create --host bench "$W/src")
for t in restic snap; do v="B_$t[@]"; step "$t" backup1 "${!v}"; done
for t in restic snap; do v="B_$t[@]"; step "$t" backup2_same "${!v}"; done
python3 - "$W/src" <<'PY'
import os, sys
n = 0
for d, _, fs in os.walk(sys.argv[1]):
    for f in sorted(fs):
        p = os.path.join(d, f)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        n += 1
        if n % 100 == 0:
            with open(p, "ab") as h:
                h.write(b"a day's change\n")
PY
for s in "$W"/*.day2; do [ -e "$s" ] && mv "$s" "$W/src/$(basename "${s%.day2}")"; done
for t in restic snap; do v="B_$t[@]"; step "$t" backup3_changed "${!v}"; done
step restic restore restic -r "$W/repo.restic" restore latest --target "$W/out.restic"
step snap restore "$SNAP" --repo "$W/repo.snap" restore latest --to "$W/out.snap"
for t in restic snap; do
  if diff -r --no-dereference "$W/src" "$W/out.$t$W/src" >/dev/null 2>&1; then echo "$t: restored tree identical"; else echo "$t: restored tree DIFFERS"; fi
done
echo "data: $(du -sb "$W/src" | cut -f1 | awk '{printf "%.0f MiB", $1/1048576}'), $(find "$W/src" -type f | wc -l) files"
printf '| %-16s | %8s | %8s | %7s | %8s | %8s | %7s | %7s | %9s | %9s |\n' step restic_s snap_s speedup r_cpu_s s_cpu_s r_rssMB s_rssMB r_repoMiB s_repoMiB
for st in backup1 backup2_same backup3_changed restore; do
  awk -v s="$st" -v a="${WALL[restic.$st]}" -v b="${WALL[snap.$st]}" -v ca="${CPU[restic.$st]}" -v cb="${CPU[snap.$st]}" \
      -v ra="${RSS[restic.$st]}" -v rb="${RSS[snap.$st]}" -v za="${SIZE[restic.$st]}" -v zb="${SIZE[snap.$st]}" 'BEGIN{
    printf "| %-16s | %8.2f | %8.2f | %6.2fx | %8.2f | %8.2f | %7.0f | %7.0f | %9.1f | %9.1f |\n", s, a, b, (b>0?a/b:0), ca, cb, ra/1024, rb/1024, za/1048576, zb/1048576 }'
done
echo "speedup = restic wall / snap wall (above 1: snap faster)"
