#!/usr/bin/env bash
# Peak memory of storing one multi-GiB stream: `snap create --from-command`
# reading $GIB GiB of incompressible data, measured with /usr/bin/time -f %M.
# A measurement, not a test.
#
#   GIB=3 benches/big_stream.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SNAP=${SNAP:-$here/target/release/snap}
GIB=${GIB:-3}
work=$(mktemp -d /tmp/snap-bigstream.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SNAP_PASSWORD=bench
"$SNAP" --repo "$work/repo" init >/dev/null

run() { # label, --from-... spec
    /usr/bin/time -f '%M %e' -o "$work/time" \
        "$SNAP" --repo "$work/repo" --json create "$2" "$3" >"$work/out.json"
    read -r rss secs <"$work/time"
    bytes=$(jq .summary.streams[0].bytes "$work/out.json")
    printf '%-34s %6.2f GiB in %6.1fs  peak RSS %6.1f MiB\n' "$1" \
        "$(echo "$bytes / 2^30" | bc -l)" "$secs" "$(echo "$rss / 1024" | bc -l)"
}
# Deterministic, incompressible: AES-CTR keystream (same bytes every run).
gen="openssl enc -aes-128-ctr -nosalt -pass pass:snap -in /dev/zero"
run "random, new (${GIB} GiB AES-CTR stream)" --from-shell "big=$gen 2>/dev/null | head -c ${GIB}G"
run "same stream again (all duplicate)" --from-shell "big=$gen 2>/dev/null | head -c ${GIB}G"
run "urandom (head -c ${GIB}G /dev/urandom)" --from-command "big=head -c ${GIB}G /dev/urandom"
du -sh "$work/repo"
