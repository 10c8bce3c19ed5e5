#!/usr/bin/env bash
# Remote-write ingest: samples per second into our metrics-server, and into
# Prometheus 2.42 (--web.enable-remote-write-receiver) with the same load, in
# one run. Usage: benches/compare/remote_write.sh [SERIES] [SAMPLES]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
series=${1:-10000}; samples=${2:-60}
(cd "$root" && cargo build --release -q -p examples --bin metrics-server -p benches --bin remote-write-load)
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; echo "not ready: $1"; exit 1; }

op=$(port)
"$bin/metrics-server" --data-dir "$work/ours" --listen "127.0.0.1:$op" --retention-time 100y 2>/dev/null & pids+=($!)
ready "http://127.0.0.1:$op/-/ready"
echo -n "ours:       "; "$bin/remote-write-load" --url "http://127.0.0.1:$op/api/v1/write" --series "$series" --samples "$samples"

if command -v prometheus >/dev/null; then
  pp=$(port); echo "scrape_configs: []" > "$work/p.yml"
  prometheus --config.file="$work/p.yml" --storage.tsdb.path="$work/prom" --storage.tsdb.retention.time=100y \
    --web.listen-address="127.0.0.1:$pp" --web.enable-remote-write-receiver 2>/dev/null & pids+=($!)
  ready "http://127.0.0.1:$pp/-/ready"
  echo -n "prometheus: "; "$bin/remote-write-load" --url "http://127.0.0.1:$pp/api/v1/write" --series "$series" --samples "$samples"
fi
