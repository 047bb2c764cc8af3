#!/bin/sh
# The cost of `flux load` and of `flux serve` (issue 20): N real-time 16 kHz mono streams
# against a `flux serve` on the same machine, for each N given (default 100 300 1000). A
# benchmark, never a test.
#
#   bench/load-curve.sh [N...]          # env: DURATION (s of audio per stream, default 30),
#                                       #      RAMP (s, default 10), FLUX (binary),
#                                       #      SERVE (binary for flux serve, default FLUX),
#                                       #      CLIP (WAV), PERF=1 (a `perf record` of flux serve)
#
# Per run it prints the flux process's CPU (user + sys, from GNU time) over its wall time and its
# peak RSS; `flux serve`'s CPU over the same interval and its peak RSS (from /proc); its
# CPU-seconds per stream-second of audio; the kernel's listen-queue overflows during the run
# (`nstat`); the load average; and the report's streams, reconnects, errors, time to Connected
# p90, end-of-turn latency p50/p95 and frame lateness p50/p99. The clip is
# tests/fixtures/two_cities.wav at 16 kHz mono, made once with sox.
# Both flux processes raise their own soft limit on open files; the shell's is raised too, for
# the tools it runs.
set -eu
cd "$(dirname "$0")/.."
FLUX=${FLUX:-target/release/flux}
SERVE=${SERVE:-$FLUX}
DURATION=${DURATION:-30}
RAMP=${RAMP:-10}
OUT=target/bench-load
mkdir -p "$OUT"
CLIP=${CLIP:-$OUT/two_cities_16k.wav}
[ -f "$CLIP" ] || sox -D tests/fixtures/two_cities.wav -r 16000 -c 1 -b 16 "$CLIP"
[ -x "$FLUX" ] || cargo build --release --quiet
[ $# -gt 0 ] || set -- 100 300 1000
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
ticks=$(getconf CLK_TCK)
overflows() { nstat -az TcpExtListenOverflows 2> /dev/null | awk '/ListenOverflows/ {print $2}'; }
for n in "$@"; do
    rm -f "$OUT/serve.url"
    "$SERVE" serve --listen 127.0.0.1:0 > "$OUT/serve.url" 2> /dev/null &
    serve=$!
    while [ ! -s "$OUT/serve.url" ]; do sleep 0.1; done
    url=$(head -1 "$OUT/serve.url")
    o0=$(overflows || echo 0)
    s0=$(awk '{print $14 + $15}' /proc/$serve/stat)
    t0=$(date +%s.%N)
    if [ "${PERF:-}" = 1 ]; then
        # The middle of the run, every stream up: RAMP s in, for 10 s.
        (sleep "$RAMP"; perf record -F 499 -g -p "$serve" -o "$OUT/serve_$n.perf" -- sleep 10 \
            > /dev/null 2>&1) &
    fi
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/time.txt" "$FLUX" load "$CLIP" --streams "$n" \
        --ramp "$RAMP" --duration "$DURATION" --url "$url" --jsonl -q > "$OUT/report_$n.jsonl" || true
    t1=$(date +%s.%N)
    s1=$(awk '{print $14 + $15}' /proc/$serve/stat)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$serve/status)
    o1=$(overflows || echo 0)
    kill $serve
    wait $serve 2> /dev/null || true
    wait
    read -r wall user sys rss < "$OUT/time.txt"
    python3 - "$n" "$wall" "$user" "$sys" "$rss" "$s0" "$s1" "$t0" "$t1" "$hwm" "$ticks" \
        "$OUT/report_$n.jsonl" "$(cut -d' ' -f1-3 /proc/loadavg)" "$o0" "$o1" <<'PY'
import json, sys
n, wall, user, sys_, rss, s0, s1, t0, t1, hwm, ticks, report, load, o0, o1 = sys.argv[1:]
cpu = float(user) + float(sys_)
serve_cpu = (float(s1) - float(s0)) / float(ticks)
span = float(t1) - float(t0)
s = [json.loads(l) for l in open(report)][-1]
def p(k, a, b):
    v = s[k]
    return f"{v[a]:.1f}/{v[b]:.1f}" if v else "-"
print(f"{n:>5} streams: flux {cpu:.2f} CPU s / {float(wall):.1f} s = {100*cpu/float(wall):.1f} % of a core, "
      f"{int(rss)/1024:.0f} MB | serve {serve_cpu:.2f} CPU s / {span:.1f} s = {100*serve_cpu/span:.1f} %, "
      f"{int(hwm)/1024:.0f} MB, {1e3*serve_cpu/max(s['audio_seconds'],1e-9):.2f} CPU ms per stream-s | "
      f"ok {s['ok']}/{s['streams']}, frames {s['frames_sent']}, reconnects {s['reconnects']}, "
      f"errors {s['error_count']} | Connected p50/p90 {p('time_to_connected','p50_ms','p90_ms')} ms, "
      f"EOT p50/p95 {p('eot_latency','p50_ms','p95_ms')} ms, late p50/p99 {p('frames_late','p50_ms','p99_ms')} ms | "
      f"listen overflows {int(o1)-int(o0)} | load {load}")
PY
done
