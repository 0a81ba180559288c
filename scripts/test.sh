#!/usr/bin/env bash
# The full test suite: formatting, lints, unit/property/pipeline tests, then the
# end-to-end tests in network namespaces (root). Installs what it needs first.
#
#   scripts/test.sh            everything
#   XGW_SKIP_E2E=1 scripts/test.sh   no namespaces (e.g. not root)
#   XGW_FUZZ_SECS=N scripts/test.sh  fuzz each target N seconds (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test (dev profile at opt-level 2, debug assertions on)"
cargo test
echo "== loom model of the NAT session table (every interleaving, bounded preemptions)"
RUSTFLAGS="--cfg xgw_loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release --no-default-features --lib loom_
echo "== fuzz targets, bounded runs (scripts/fuzz.sh; XGW_FUZZ_SECS per target)"
scripts/fuzz.sh "${XGW_FUZZ_SECS:-30}"
echo "== cargo build --release"
cargo build --release
if [ "${XGW_SKIP_E2E:-0}" = 1 ]; then
    echo "== e2e skipped (XGW_SKIP_E2E=1)"
elif [ "$(id -u)" != 0 ]; then
    echo "== e2e skipped: needs root" >&2
    exit 1
else
    echo "== end-to-end (network namespaces)"
    scripts/e2e.sh target/release/xgw
    echo "== end-to-end, kernel mirror mode (network namespaces, BIRD)"
    scripts/e2e-mirror.sh target/release/xgw
fi
