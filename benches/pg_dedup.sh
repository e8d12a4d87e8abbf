#!/usr/bin/env bash
# How well do consecutive PostgreSQL dumps deduplicate in snap?
#
# Starts a private PostgreSQL cluster (Unix socket only, temp dir), loads
# `pgbench -i -s $SCALE`, dumps it into a snapshot in one repository per
# dump format, runs $TXNS pgbench transactions, dumps again, and reports
# what the second snapshot added to the repository (stored bytes: after
# zstd and encryption) as a fraction of
#   - the dump's size (added2/dump2),
#   - what the first, full snapshot of the same dump added (added2/added1),
#   - and new chunks as a fraction of the first snapshot's (chunks2/chunks1).
# pgbench tables compress ~100:1 with zstd, so added2/dump2 looks tiny for
# every format; added2/added1 says how much of the dump failed to dedup.
# A measurement, not a test: it prints numbers, it does not judge them.
#
#   benches/pg_dedup.sh                      # defaults below
#   SCALE=10 TXNS="100 1000" CHUNK_KIB="64 1024" benches/pg_dedup.sh
#
# Needs: postgresql (initdb, pg_ctl, pgbench, pg_dump), jq, a release build
# of snap (cargo build --release) or SNAP=/path/to/snap.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
SNAP=${SNAP:-$here/target/release/snap}
SCALE=${SCALE:-10}
TXNS=${TXNS:-"100 1000 10000"}    # transactions between dump 1 and dump 2 (each value: a fresh database)
CHUNK_KIB=${CHUNK_KIB:-1024}       # average chunk size(s) of the repositories (1024 = snap's default)
CLIENTS=${CLIENTS:-4}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
FORMATS=("plain|" "custom|-Fc" "custom-Z0|-Fc -Z0")

[ -x "$SNAP" ] || { echo "no snap binary at $SNAP (cargo build --release)" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at PGBIN=$PGBIN" >&2; exit 1; }

work=$(mktemp -d /tmp/snap-pgdedup.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    as_pg "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
if [ "$(id -u)" = 0 ]; then chmod 755 "$work"; chown postgres: "$work"; fi

as_pg "$PGBIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/data" -l "$work/server.log" \
    -o "-k $work -p 5499 -c listen_addresses='' -c fsync=off -c full_page_writes=off" -w start >/dev/null
export PGHOST=$work PGPORT=5499 PGUSER=postgres PATH=$PGBIN:$PATH
export SNAP_PASSWORD=bench

fmt_bytes() { numfmt --to=iec-i --suffix=B --format=%.1f "$1"; }

echo "snap: $SNAP"
echo "PostgreSQL: $("$PGBIN/postgres" --version); pgbench -s $SCALE; $CLIENTS clients"
printf '%-10s %6s %6s %10s %10s %10s %12s %13s %14s\n' format chunk txns dump1 added1 added2 added2/dump2 added2/added1 chunks2/chunks1
for txns in $TXNS; do
    dropdb --if-exists bench
    createdb bench
    pgbench -i -s "$SCALE" -q bench 2>/dev/null
    for kib in $CHUNK_KIB; do
        for f in "${FORMATS[@]}"; do
            label=${f%%|*}
            rm -rf "$work/repo-$label-$kib"
            "$SNAP" --repo "$work/repo-$label-$kib" init --chunk-avg-kib "$kib" >/dev/null
        done
    done
    snap_all() { # $1 = round
        for kib in $CHUNK_KIB; do
            for f in "${FORMATS[@]}"; do
                label=${f%%|*} flags=${f#*|}
                "$SNAP" --repo "$work/repo-$label-$kib" --json create \
                    --from-command "db=pg_dump -w $flags bench" >"$work/$label-$kib-$1.json"
            done
        done
    }
    snap_all 1
    pgbench -n -c "$CLIENTS" -t $((txns / CLIENTS)) bench >/dev/null 2>&1
    snap_all 2
    for kib in $CHUNK_KIB; do
        for f in "${FORMATS[@]}"; do
            label=${f%%|*}
            r1=$work/$label-$kib-1.json r2=$work/$label-$kib-2.json
            d2=$(jq .summary.streams[0].bytes "$r2")
            d1=$(jq .summary.streams[0].bytes "$r1") a1=$(jq .summary.bytes_added "$r1")
            a2=$(jq .summary.bytes_added "$r2")
            b1=$(jq .summary.blobs_added "$r1") b2=$(jq .summary.blobs_added "$r2")
            printf '%-10s %5sK %6s %10s %10s %10s %11.2f%% %12.1f%% %14s\n' "$label" "$kib" "$txns" \
                "$(fmt_bytes "$d1")" "$(fmt_bytes "$a1")" "$(fmt_bytes "$a2")" \
                "$(echo "100 * $a2 / $d2" | bc -l)" "$(echo "100 * $a2 / $a1" | bc -l)" "$b2/$b1"
        done
    done
done
