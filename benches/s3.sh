#!/usr/bin/env bash
# Benchmark (not a test): snap against a loopback S3 server vs a local
# directory, `sync` of a repository to S3, request counts; restic on the
# same server and data for comparison.
#
#   benches/s3.sh [SIZE_MIB]        (default 200)
#
# Uses target/release/snap (builds it if missing), scripts/s3-server.sh
# (moto: single-threaded and slow, in RAM — it measures request counts and
# relative cost, not what real S3 would give), and `restic` from PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${1:-200}
SNAP=${SNAP_BIN:-$ROOT/target/release/snap}
[ -x "$SNAP" ] || (cd "$ROOT" && cargo build --release --bin snap)
WORK=$(mktemp -d)
trap 'kill ${S3_PID:-0} 2>/dev/null; rm -rf "$WORK"' EXIT
MOTO_LOG=$WORK/moto.log
eval "$(S3_LOG=$MOTO_LOG S3_WATCH_PID=$$ "$ROOT/scripts/s3-server.sh")"
export SNAP_PASSWORD=bench RESTIC_PASSWORD=bench SNAP_CACHE_DIR=$WORK/cache
export AWS_DEFAULT_REGION=us-east-1

# Data: SIZE MiB of incompressible files (1-8 MiB) plus a compressible part.
python3 - "$WORK/data" "$SIZE" <<'PY'
import os, sys, random
root, size = sys.argv[1], int(sys.argv[2]) << 20
random.seed(7); os.makedirs(root, exist_ok=True); n = 0; i = 0
while n < size:
    k = random.randint(1, 8) << 20
    d = os.path.join(root, f"d{i % 10}"); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
        if i % 4 == 0: f.write((b"log line %d of some text\n" % i) * (k // 24))
        else: f.write(os.urandom(k))
    n += k; i += 1
PY
BYTES=$(du -sb "$WORK/data" | cut -f1)
t() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
mibs() { echo "scale=1; $BYTES / 1048576 / $1" | bc; }
# Requests as seen by the server (moto logs one line per request).
mark() { wc -l <"$MOTO_LOG"; }
srv() { tail -n +"$(($1 + 1))" "$MOTO_LOG" | grep -c "$2" || true; }
reqs() { python3 -c 'import json,sys; print(sum(json.loads(l)["requests"] for l in open(sys.argv[1]) if sys.argv[2] in l))' "$1" "$2"; }

S3URL="s3://$SNAP_TEST_S3_BUCKET/bench-snap"
LOG=$WORK/req.jsonl
"$SNAP" --repo "$WORK/local" init >/dev/null
"$SNAP" --repo "$S3URL" init >/dev/null
T_LOCAL=$(t "$SNAP" --repo "$WORK/local" create "$WORK/data")
M=$(mark); T_S3=$(SNAP_REQUEST_LOG=$LOG t "$SNAP" --repo "$S3URL" create "$WORK/data"); Q_S3=$(srv "$M" bench-snap)
R_S3=$(reqs "$LOG" bench-snap); : >"$LOG"
M=$(mark); T_S3_2=$(SNAP_REQUEST_LOG=$LOG t "$SNAP" --repo "$S3URL" create "$WORK/data"); Q_S3_2=$(srv "$M" bench-snap)
R_S3_2=$(reqs "$LOG" bench-snap); : >"$LOG"
M=$(mark); T_SYNC=$(SNAP_REQUEST_LOG=$LOG t "$SNAP" --repo "$WORK/local" sync --to "s3://$SNAP_TEST_S3_BUCKET/bench-sync")
R_SYNC=$(reqs "$LOG" bench-sync); : >"$LOG"; Q_SYNC=$(srv "$M" bench-sync)
M=$(mark); T_SYNC0=$(SNAP_REQUEST_LOG=$LOG t "$SNAP" --repo "$WORK/local" sync --to "s3://$SNAP_TEST_S3_BUCKET/bench-sync")
R_SYNC0=$(reqs "$LOG" bench-sync); : >"$LOG"; Q_SYNC0=$(srv "$M" bench-sync)
REPO_MIB=$(du -sm "$WORK/local" | cut -f1)
M=$(mark); T_RESTORE=$(t "$SNAP" --repo "$S3URL" restore latest --to "$WORK/out-snap"); Q_RESTORE=$(srv "$M" bench-snap)

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
RURL="s3:$SNAP_TEST_S3_ENDPOINT/$SNAP_TEST_S3_BUCKET/bench-restic"
restic -r "$WORK/rlocal" init >/dev/null
restic -r "$RURL" init >/dev/null
T_RLOCAL=$(t restic -r "$WORK/rlocal" backup -q "$WORK/data")
M=$(mark); T_RS3=$(t restic -r "$RURL" backup -q "$WORK/data"); Q_RS3=$(srv "$M" bench-restic)
M=$(mark); T_RS3_2=$(t restic -r "$RURL" backup -q "$WORK/data"); Q_RS3_2=$(srv "$M" bench-restic)
M=$(mark); T_RRESTORE=$(t restic -r "$RURL" restore latest --target "$WORK/out-restic"); Q_RRESTORE=$(srv "$M" bench-restic)
RURL2="s3:$SNAP_TEST_S3_ENDPOINT/$SNAP_TEST_S3_BUCKET/bench-rcopy"
export RESTIC_FROM_PASSWORD=bench
restic -r "$RURL2" init --from-repo "$WORK/rlocal" --copy-chunker-params >/dev/null
M=$(mark); T_RCOPY=$(t restic -r "$RURL2" copy --from-repo "$WORK/rlocal"); Q_RCOPY=$(srv "$M" bench-rcopy)
M=$(mark); T_RCOPY0=$(t restic -r "$RURL2" copy --from-repo "$WORK/rlocal"); Q_RCOPY0=$(srv "$M" bench-rcopy)

cat <<TABLE
data: $((BYTES >> 20)) MiB ($(find "$WORK/data" -type f | wc -l) files); snap repository $REPO_MIB MiB; server: moto (single-threaded, loopback)
requests = counted by the server (snap's own count in parentheses)
| operation                         | snap s   | snap MiB/s | snap requests | restic s | restic MiB/s | restic requests |
|-----------------------------------|----------|------------|---------------|----------|--------------|-----------------|
| create -> local dir               | $T_LOCAL | $(mibs $T_LOCAL) | - | $T_RLOCAL | $(mibs $T_RLOCAL) | - |
| create -> S3 (first)              | $T_S3 | $(mibs $T_S3) | $Q_S3 ($R_S3) | $T_RS3 | $(mibs $T_RS3) | $Q_RS3 |
| create -> S3 (unchanged)          | $T_S3_2 | - | $Q_S3_2 ($R_S3_2) | $T_RS3_2 | - | $Q_RS3_2 |
| restore <- S3                     | $T_RESTORE | $(mibs $T_RESTORE) | $Q_RESTORE | $T_RRESTORE | $(mibs $T_RRESTORE) | $Q_RRESTORE |
| sync / restic copy local -> S3    | $T_SYNC | $(echo "scale=1; $REPO_MIB / $T_SYNC" | bc) | $Q_SYNC ($R_SYNC) | $T_RCOPY | - | $Q_RCOPY |
| same, nothing new                 | $T_SYNC0 | - | $Q_SYNC0 ($R_SYNC0) | $T_RCOPY0 | - | $Q_RCOPY0 |
TABLE
