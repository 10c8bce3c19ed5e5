#!/usr/bin/env bash
# Log store figures in one run, beside the zstd and grep references over the same lines:
#   - generate the issue's data (shared/bench/gen_logs.py 24 20000: Loki push bodies);
#   - benches/examples/logs_compare.rs: ingest through the push path (JSON push
#     decoding + logstore::Store::push + flush) in MB/s of raw lines per core, the
#     compression ratio of the chunk files, and the three LogQL queries of the issue
#     (CPU time, GB/s per core, result size, each checked against a naive evaluation;
#     the line filter also on a store without block filters), and zstd decoding alone
#     of the nginx lines in process, run by run interleaved with that full scan (the
#     printed ratio is the scan's overhead over decompression);
#   - references, CPU time per core: `zstd -3` decode and `grep -c "queue full"` over
#     the raw lines (all of them, and the nginx ones the line-filter query reads);
#   - the line-filter result must equal grep's count over the nginx lines.
# Usage: benches/compare/logs.sh [STREAMS] [LINES_PER_STREAM]
# CPU times are per core, so the figures mean something on a busy machine too; the
# load average is printed first and last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
streams=${1:-24}; per=${2:-20000}
gen="$root/../shared/bench/gen_logs.py"
if [ ! -f "$gen" ]; then echo "skipped: ../shared/bench/gen_logs.py not found"; exit 0; fi
for tool in zstd grep python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool"; exit 1; }
done
(cd "$root" && cargo build --release -q -p benches --example logs_compare)
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/logs_compare"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
python3 "$gen" "$streams" "$per" > "$work/logs.jsonl"

"$bin" "$work/logs.jsonl" --lines-dir "$work" | tee "$work/ours.txt"

echo "references (CPU time per run):"
ref() { # NAME BYTES CMD... -> prints GB/s per core; sets $out to the command's stdout
  local name=$1 bytes=$2; shift 2
  local j; j=$(python3 "$here/cpu_time.py" 1.0 "$@")
  local cpu; cpu=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cpu_s"])' "$j")
  out=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["stdout"])' "$j")
  python3 -c 'import sys; n,b,c=sys.argv[1],int(sys.argv[2]),float(sys.argv[3]); print(f"  {n}: {c*1e3:.1f} ms CPU, {b/1e9/c:.2f} GB/s per core")' "$name" "$bytes" "$cpu"
}
for f in nginx all; do
  bytes=$(tr -d '\n' < "$work/$f.txt" | wc -c)
  zstd -3 -q -f "$work/$f.txt" -o "$work/$f.txt.zst"
  zsize=$(stat -c %s "$work/$f.txt.zst")
  python3 -c 'import sys; print(f"  zstd -3 over {sys.argv[1]}.txt ({int(sys.argv[2])/1e6:.1f} MB of lines): ratio {int(sys.argv[2])/int(sys.argv[3]):.2f}x")' "$f" "$bytes" "$zsize"
  ref "zstd -d of $f.txt.zst" "$bytes" zstd -d -q -f -o /dev/null "$work/$f.txt.zst"
  ref "grep -c \"queue full\" $f.txt" "$bytes" grep -c "queue full" "$work/$f.txt"
  echo "    grep count: $out"
  if [ "$f" = nginx ]; then grep_nginx=$out; fi
done

ours=$(grep -A1 '^query {job="nginx"} |= "queue full"' "$work/ours.txt" | sed -n 's/.*result: \([0-9]*\) entries.*/\1/p' | sort -u)
if [ "$ours" != "$grep_nginx" ]; then
  echo "MISMATCH: the line-filter query returned '$ours' entries, grep counts $grep_nginx"; exit 1
fi
echo "line-filter result matches grep -c over the nginx lines ($grep_nginx)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
