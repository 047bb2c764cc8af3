#!/usr/bin/env bash
# Sets up, builds flux, and streams a real recording through Flux.
#  - With DEEPGRAM_API_KEY set: to Deepgram (wss://api.deepgram.com/v2/listen).
#  - Without it: to a local `flux serve`, so the whole pipeline runs with no account.
# Usage: scripts/demo.sh [WAV] [extra flux flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --quiet
flux=target/release/flux
wav=${1:-tests/fixtures/two_cities.wav}
shift || true
if [ -n "${DEEPGRAM_API_KEY:-}" ]; then
  echo "== streaming $wav to Deepgram Flux (real time; Ctrl-C finishes early)" >&2
  exec "$flux" file "$wav" "$@"
fi
echo "== DEEPGRAM_API_KEY is not set: streaming $wav to a local flux serve instead" >&2
urlfile=$(mktemp)
"$flux" serve --listen 127.0.0.1:0 --script tests/fixtures/two_cities.txt >"$urlfile" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$urlfile"' EXIT
for _ in $(seq 100); do [ -s "$urlfile" ] && break; sleep 0.05; done
url=$(head -1 "$urlfile")
"$flux" file "$wav" --url "$url" --pace 4 "$@"
