#!/bin/sh
# The cost of `flux load` (issue 20): N real-time 16 kHz mono streams against a `flux serve` on
# the same machine, for each N given (default 100 300 1000). A benchmark, never a test.
#
#   bench/load-curve.sh [N...]          # env: DURATION (s of audio per stream, default 30),
#                                       #      RAMP (s, default 10), FLUX (binary), CLIP (WAV)
#
# Per run it prints the flux process's CPU (user + sys, from GNU time) over its wall time and its
# peak RSS; `flux serve`'s CPU over the same interval and its peak RSS (from /proc); the load
# average; and the report's streams, errors, and p50/p99 of end-of-turn latency and frame
# lateness. The clip is tests/fixtures/two_cities.wav at 16 kHz mono, made once with sox.
set -eu
cd "$(dirname "$0")/.."
FLUX=${FLUX:-target/release/flux}
DURATION=${DURATION:-30}
RAMP=${RAMP:-10}
OUT=target/bench-load
mkdir -p "$OUT"
CLIP=${CLIP:-$OUT/two_cities_16k.wav}
[ -f "$CLIP" ] || sox -D tests/fixtures/two_cities.wav -r 16000 -c 1 -b 16 "$CLIP"
[ -x "$FLUX" ] || cargo build --release --quiet
[ $# -gt 0 ] || set -- 100 300 1000
ticks=$(getconf CLK_TCK)
for n in "$@"; do
    "$FLUX" serve --listen 127.0.0.1:0 > "$OUT/serve.url" 2> /dev/null &
    serve=$!
    while [ ! -s "$OUT/serve.url" ]; do sleep 0.1; done
    url=$(head -1 "$OUT/serve.url")
    s0=$(awk '{print $14 + $15}' /proc/$serve/stat)
    t0=$(date +%s.%N)
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/time.txt" "$FLUX" load "$CLIP" --streams "$n" \
        --ramp "$RAMP" --duration "$DURATION" --url "$url" --jsonl -q > "$OUT/report_$n.jsonl" || true
    t1=$(date +%s.%N)
    s1=$(awk '{print $14 + $15}' /proc/$serve/stat)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$serve/status)
    kill $serve
    wait $serve 2> /dev/null || true
    rm -f "$OUT/serve.url"
    read -r wall user sys rss < "$OUT/time.txt"
    python3 - "$n" "$wall" "$user" "$sys" "$rss" "$s0" "$s1" "$t0" "$t1" "$hwm" "$ticks" \
        "$OUT/report_$n.jsonl" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
n, wall, user, sys_, rss, s0, s1, t0, t1, hwm, ticks, report, load = sys.argv[1:]
cpu = float(user) + float(sys_)
serve_cpu = (float(s1) - float(s0)) / float(ticks)
span = float(t1) - float(t0)
s = [json.loads(l) for l in open(report)][-1]
def p(k):
    v = s[k]
    return f"{v['p50_ms']:.1f}/{v['p99_ms']:.1f}" if v else "-"
print(f"{n:>5} streams: flux {cpu:.2f} CPU s / {float(wall):.1f} s = {100*cpu/float(wall):.1f} % of a core, "
      f"{int(rss)/1024:.0f} MB | serve {serve_cpu:.2f} CPU s / {span:.1f} s = {100*serve_cpu/span:.1f} %, "
      f"{int(hwm)/1024:.0f} MB | ok {s['ok']}/{s['streams']}, frames {s['frames_sent']}, errors {s['errors']} | "
      f"EOT p50/p99 {p('eot_latency')} ms, late p50/p99 {p('frames_late')} ms | load {load}")
PY
done
