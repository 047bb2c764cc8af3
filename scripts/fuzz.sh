#!/usr/bin/env bash
# Fuzzes flux's untrusted inputs for a bounded time: WAV files, raw PCM on stdin, and
# WebSocket messages (targets in fuzz/fuzz_targets, bodies in fuzz/harness.rs).
#
#   scripts/fuzz.sh                  # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh wav
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer=address); only stable Rust is installed,
# so RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Installing cargo-fuzz takes about
# 2 minutes and the first sanitizer build 2-8 minutes on 2 cores, which is why CI runs the
# same harness over generated inputs in tests/e2e/hostile.rs instead, and this script is run
# by hand or on a schedule. Crashes are written to fuzz/artifacts/TARGET/; reproduce one
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wav raw_pcm server_message)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

echo "== building fuzz targets"
cargo fuzz build -O

for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    # Small valid inputs to start from (checked in); the corpus grows across runs.
    cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    echo "== fuzzing $target for ${seconds}s"
    # -rss_limit_mb: a hostile input must not make flux use much memory, so more than
    # 1 GiB (the fuzzer itself with its sanitizer takes about 400 MB) counts as a crash.
    # -timeout: one input taking 10 s means unbounded work somewhere.
    cargo fuzz run -O "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
        -print_final_stats=1
done
echo "== fuzzing found no crashes"
