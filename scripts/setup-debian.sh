#!/usr/bin/env bash
# Installs the system packages flux needs to build and test on Debian/Ubuntu.
# - libasound2-dev, pkg-config: cpal's ALSA backend (build time); its dependencies libasound2
#   and libasound2-data (/usr/share/alsa/alsa.conf) also run the virtual microphone that
#   tests/e2e/mic.rs captures from (tests/alsa/mic.conf: no sound card, module or daemon needed)
# - sox, espeak-ng: test fixtures and benchmarks; libsox-fmt-mp3: MP3 for sox, so the
#   README's and guide's `sox call.mp3 ... | flux listen --stdin` recipe works
# - time: GNU time, the CPU and peak-memory figures of the benchmark (bench/pipeline.rs)
# - tmux: terminal tests
# - python3, python3-venv: the Deepgram Python SDK compatibility check in scripts/test.sh
# - curl, ca-certificates: rustup when no Rust toolchain is installed
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
pkgs=(libasound2-dev pkg-config sox libsox-fmt-mp3 espeak-ng tmux python3 python3-venv ca-certificates curl gcc time)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
echo "setup: system packages and Rust toolchain ready ($(cargo --version))"
