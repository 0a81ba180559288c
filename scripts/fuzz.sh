#!/usr/bin/env bash
# Coverage-guided fuzzing of xgw on stable Rust: AFL++ through afl.rs (cargo-afl).
#
#   scripts/fuzz.sh [SECS] [TARGET...]   run each target SECS seconds (default 20) from its
#                                        seed corpus (fuzz/corpus/TARGET); fail on any crash
#   FUZZ_OUT=DIR                         keep AFL's output there (default: a temp dir)
#
# Targets: wire nat_translate icmp_error config pipeline netlink mirror (fuzz/src/lib.rs says what each
# checks). Installs cargo-afl (pinned to the afl crate's version) and builds AFL++ once.
# A long run of one target: scripts/fuzz.sh 3600 pipeline, or by hand:
#   cd fuzz && cargo afl build --release && \
#   AFL_NO_UI=1 cargo afl fuzz -i corpus/pipeline -o /tmp/afl target/release/pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(wire nat_translate icmp_error config pipeline netlink mirror)
AFL_VERSION=0.17.1

if ! cargo afl --version 2>/dev/null | grep -q "$AFL_VERSION"; then
    echo "== installing cargo-afl $AFL_VERSION"
    cargo install --locked --force cargo-afl --version "$AFL_VERSION"
fi
# AFL++ itself (afl-fuzz and its runtime), built once into cargo-afl's data directory.
if ! compgen -G "${XDG_DATA_HOME:-$HOME/.local/share}/afl.rs/rustc-*/afl.rs-$AFL_VERSION/afl/bin/afl-fuzz" >/dev/null; then
    echo "== building AFL++"
    cargo afl config --build --force
fi

cd fuzz
echo "== cargo afl build --release (fuzz targets)"
cargo afl build --release --locked 2>&1 | tail -3

OUT=${FUZZ_OUT:-$(mktemp -d /tmp/xgw-fuzz.XXXXXX)}
mkdir -p "$OUT"
[ -n "${FUZZ_OUT:-}" ] || trap 'rm -rf "$OUT"' EXIT
fail=0
for t in "${TARGETS[@]}"; do
    bin=target/release/$t
    # The seeds are regression inputs: each must run clean on its own.
    for s in corpus/"$t"/*; do
        if ! "$bin" <"$s" >/dev/null 2>&1; then
            echo "FAIL - $t: seed $s crashes"; fail=1
        fi
    done
    rm -rf "${OUT:?}/$t"
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
        AFL_NO_AFFINITY=1 AFL_QUIET=1 \
        cargo afl fuzz -V "$SECS" -i corpus/"$t" -o "$OUT/$t" "$bin" >"$OUT/$t.log" 2>&1 || {
            echo "FAIL - $t: afl-fuzz did not run"; tail -20 "$OUT/$t.log"; fail=1; continue; }
    stats=$OUT/$t/default/fuzzer_stats
    execs=$(awk -F': *' '/^execs_done/ {print $2}' "$stats")
    speed=$(awk -F': *' '/^execs_per_sec/ {print $2}' "$stats")
    paths=$(awk -F': *' '/^corpus_count/ {print $2}' "$stats")
    crashes=$(find "$OUT/$t/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
    hangs=$(find "$OUT/$t/default/hangs" -name 'id:*' 2>/dev/null | wc -l)
    printf '%-14s %10s execs  %8s/s  corpus %5s  crashes %s  hangs %s\n' \
        "$t" "$execs" "$speed" "$paths" "$crashes" "$hangs"
    if [ "$crashes" != 0 ]; then
        fail=1
        for c in "$OUT/$t"/default/crashes/id:*; do
            echo "crash: $c"; "$bin" <"$c" 2>&1 | tail -5 || true
        done
    fi
done
exit $fail
