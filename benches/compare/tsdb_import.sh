#!/usr/bin/env bash
# Side by side: our `tsdb import` against `promtool tsdb create-blocks-from openmetrics`
# on the same generated data, in one run. Prints wall time, peak RSS and bytes per
# sample (chunks + index of the written blocks) for both, and the ratios.
#
# Usage: benches/compare/tsdb_import.sh [RUNS]   (needs ../shared, promtool, python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared="$root/../shared"
runs=${1:-3}
[ -d "$shared/bench" ] || { echo "skipped: $shared/bench not found"; exit 0; }
command -v promtool >/dev/null || { echo "promtool not found (apt-get install prometheus)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -q -p tsdb --bin tsdb)
tsdb="${CARGO_TARGET_DIR:-$root/target}/release/tsdb"

python3 "$shared/bench/gen_node_openmetrics.py" 20 480 > "$work/node.om"
python3 "$shared/bench/gen_openmetrics.py" 100 240 > "$work/hard.om"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
# bytes of chunk segment files and index files under a data dir
block_bytes() { find "$1" -type f \( -path '*/chunks/*' -o -name index \) -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

printf '%-9s %-8s %10s %10s %12s\n' dataset tool wall_s rss_mb bytes/sample
for ds in node hard; do
  file="$work/$ds.om"
  samples=$(grep -vc '^#' "$file")
  for tool in ours promtool; do
    walls=(); rss=()
    for i in $(seq "$runs"); do
      out="$work/out-$tool-$i"; rm -rf "$out"; mkdir -p "$out"
      if [ $tool = ours ]; then
        m=$(python3 "$here/measure.py" "$tsdb" import --data-dir "$out" "$file")
      else
        m=$(python3 "$here/measure.py" promtool tsdb create-blocks-from openmetrics "$file" "$out")
      fi
      walls+=("$(echo "$m" | field wall_s)"); rss+=("$(echo "$m" | field peak_rss_mb)")
      bytes=$(block_bytes "$out")
    done
    w=$(printf '%s\n' "${walls[@]}" | median); r=$(printf '%s\n' "${rss[@]}" | median)
    bps=$(awk -v b="$bytes" -v s="$samples" 'BEGIN {printf "%.3f", b/s}')
    printf '%-9s %-8s %10s %10s %12s\n' "$ds" "$tool" "$w" "$r" "$bps"
    eval "${ds}_${tool}_w=$w; ${ds}_${tool}_r=$r; ${ds}_${tool}_b=$bps"
  done
  eval "awk -v a=\$${ds}_ours_w -v b=\$${ds}_promtool_w -v c=\$${ds}_ours_r -v d=\$${ds}_promtool_r -v e=\$${ds}_ours_b -v f=\$${ds}_promtool_b \
    'BEGIN {printf \"%-9s ratios ours/promtool: time %.3f  rss %.3f  bytes/sample %.3f\n\", \"$ds\", a/b, c/d, e/f}'"
done
echo "samples: node=$(grep -vc '^#' "$work/node.om") hard=$(grep -vc '^#' "$work/hard.om"); runs per cell: $runs (median)"
