#!/usr/bin/env bash
# Side-by-side: our node-exporter (release build) vs Debian's
# prometheus-node-exporter 1.5 on this machine.
# Prints the median latency of 100 scrapes of /metrics for each, peak RSS
# (VmHWM) after the scrapes, CPU time per scrape (user+system of the
# exporter process, from /proc/PID/stat), threads, and our/their ratios,
# plus the load average before and after (latency figures from a busy
# machine are not comparable with quiet ones).
# Targets: median <= 1 ms, peak RSS <= 4 MB.
#
# Usage: benches/compare/exporter.sh   (from anywhere; needs curl and
#        apt-get install prometheus-node-exporter)
#        OURS_BIN=path/to/node-exporter skips the build.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
THEIRS="${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}"
SCRAPES="${SCRAPES:-100}"
OUR_PORT="${OUR_PORT:-19100}"
THEIR_PORT="${THEIR_PORT:-19101}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
[ -x "$THEIRS" ] || { echo "missing $THEIRS (apt-get install prometheus-node-exporter)" >&2; exit 1; }

if [ -n "${OURS_BIN:-}" ]; then
  OURS="$OURS_BIN"   # a release binary built elsewhere
else
  echo "building node-exporter (release)..."
  (cd "$ROOT" && cargo build --release -q -p examples --bin node-exporter)
  OURS="$CARGO_TARGET_DIR/release/node-exporter"
fi

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$OURS" --web.listen-address "127.0.0.1:$OUR_PORT" 2>/dev/null &
PIDS+=($!); OUR_PID=$!
"$THEIRS" --web.listen-address="127.0.0.1:$THEIR_PORT" 2>/dev/null &
PIDS+=($!); THEIR_PID=$!

wait_up() {
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/metrics" && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2; exit 1
}
wait_up "$OUR_PORT"; wait_up "$THEIR_PORT"

# Median of $SCRAPES scrapes, in milliseconds (after 5 warm-up scrapes).
median_ms() {
  local url="http://127.0.0.1:$1/metrics"
  for _ in 1 2 3 4 5; do curl -s -o /dev/null "$url"; done
  for _ in $(seq "$SCRAPES"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done |
    sort -g | awk '{v[NR]=$1} END {m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.3f", m*1000}'
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
# CPU milliseconds per scrape over the median run ($1 pid, $2 $3 ticks).
cpu_ms() { awk -v a="$2" -v b="$3" -v t="$TICK" -v n="$SCRAPES" 'BEGIN {printf "%.3f", (b - a) * 1000 / t / n}'; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(cpu_ticks "$OUR_PID")
OUR_MS=$(median_ms "$OUR_PORT")
T1=$(cpu_ticks "$OUR_PID")
U0=$(cpu_ticks "$THEIR_PID")
THEIR_MS=$(median_ms "$THEIR_PORT")
U1=$(cpu_ticks "$THEIR_PID")
OUR_CPU=$(cpu_ms "$OUR_PID" "$T0" "$T1")
THEIR_CPU=$(cpu_ms "$THEIR_PID" "$U0" "$U1")
OUR_KB=$(hwm_kb "$OUR_PID")
THEIR_KB=$(hwm_kb "$THEIR_PID")
OUR_LINES=$(curl -s "http://127.0.0.1:$OUR_PORT/metrics" | grep -vc '^#')
THEIR_LINES=$(curl -s "http://127.0.0.1:$THEIR_PORT/metrics" | grep -vc '^#')

printf '%-28s %14s %14s %8s\n' "" "node-exporter" "debian 1.5" "ratio"
printf '%-28s %14s %14s %8s\n' "median scrape ($SCRAPES), ms" "$OUR_MS" "$THEIR_MS" \
  "$(awk -v a="$OUR_MS" -v b="$THEIR_MS" 'BEGIN {printf "%.2f", (b>0)?a/b:0}')"
printf '%-28s %14s %14s %8s\n' "peak RSS (VmHWM), MB" \
  "$(awk -v a="$OUR_KB" 'BEGIN {printf "%.2f", a/1024}')" \
  "$(awk -v b="$THEIR_KB" 'BEGIN {printf "%.2f", b/1024}')" \
  "$(awk -v a="$OUR_KB" -v b="$THEIR_KB" 'BEGIN {printf "%.2f", (b>0)?a/b:0}')"
printf '%-28s %14s %14s %8s\n' "CPU per scrape, ms" "$OUR_CPU" "$THEIR_CPU" \
  "$(awk -v a="$OUR_CPU" -v b="$THEIR_CPU" 'BEGIN {printf "%.2f", (b>0)?a/b:0}')"
printf '%-28s %14s %14s\n' "threads" "$(threads "$OUR_PID")" "$(threads "$THEIR_PID")"
printf '%-28s %14s %14s\n' "samples per scrape" "$OUR_LINES" "$THEIR_LINES"
echo "load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v ms="$OUR_MS" -v kb="$OUR_KB" 'BEGIN {
  printf "targets: median <= 1 ms: %s; peak RSS <= 4 MB: %s\n", (ms <= 1) ? "met" : "NOT met", (kb <= 4096) ? "met" : "NOT met"
}'
