#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ briefly (a smoke test, not a
# campaign). Installs cargo-fuzz if missing. Works on the stable toolchain
# through RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags for the sanitizer).
#
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_TARGETS   space-separated subset (default: all targets)
#
# Inputs libFuzzer adds while running go to a scratch copy of the corpus,
# so the committed seeds in fuzz/corpus/ stay unchanged. A crash leaves its
# input in fuzz/artifacts/<target>/ and makes this script exit non-zero.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
secs="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz (a few minutes)" >&2
    cargo install --locked cargo-fuzz
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build  # all targets at once; `run` below then only links
failed=()
for t in $targets; do
    mkdir -p "$scratch/$t"
    echo "fuzz-smoke: $t for ${secs}s" >&2
    if ! cargo fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        tail -n 40 "$scratch/$t.log" >&2
        failed+=("$t")
    else
        grep -E '^(stat::number_of_executed_units|Done)' "$scratch/$t.log" >&2 || true
    fi
done

if ((${#failed[@]})); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all targets ran ${secs}s without a crash" >&2
