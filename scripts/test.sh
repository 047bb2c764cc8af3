#!/usr/bin/env bash
# Sets up a Debian machine (system packages, toolchain) and runs every check CI runs:
# formatting, clippy with warnings as errors, and the whole test suite (unit + end-to-end
# tests of the built binary against `flux serve` over loopback sockets, including the local
# recognizer with the real model, which scripts/fetch-model.sh fetches first).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== scripts/fetch-model.sh (the local recognizer's model, for the tests of --asr)"
./scripts/fetch-model.sh
echo "== cargo test"
cargo test --locked --all-targets 2>&1 | tee target/test-output.txt
echo "== Deepgram's official Python SDK, unchanged, against flux serve"
python3 -m venv target/sdk-venv
target/sdk-venv/bin/pip install --quiet --disable-pip-version-check 'deepgram-sdk==7.17.0'
target/sdk-venv/bin/python tests/sdk/deepgram_python_sdk.py target/debug/flux
echo "== The AWS SDK for Python (aws-sdk-sagemaker-runtime-http2), unchanged, against flux serve's SageMaker front end"
./scripts/sagemaker-python-sdk.sh target/debug/flux
