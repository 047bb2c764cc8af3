#!/usr/bin/env bash
# Sets up, builds flux, and streams a real recording through Flux.
#  - With DEEPGRAM_API_KEY set: to Deepgram (wss://api.deepgram.com/v2/listen).
#  - Without it: to a local `flux serve --asr moonshine`, a real recognizer on this machine's
#    CPU (fetched once by scripts/fetch-model.sh, about 170 MB from PyPI), so the whole
#    pipeline runs with no account and prints the recording's real words.
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
echo "== DEEPGRAM_API_KEY is not set: transcribing $wav with a local recognizer instead" >&2
./scripts/fetch-model.sh >/dev/null
urlfile=$(mktemp)
"$flux" serve --listen 127.0.0.1:0 --asr moonshine >"$urlfile" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$urlfile"' EXIT
# The model loads before the address is printed (a few seconds).
for _ in $(seq 600); do [ -s "$urlfile" ] && break; kill -0 $server 2>/dev/null || exit 1; sleep 0.05; done
url=$(head -1 "$urlfile")
"$flux" file "$wav" --url "$url" --pace 4 "$@"
