#!/usr/bin/env python3
"""Side by side: the same PromQL range queries through our metrics-server and
through Prometheus 2.42, on the same data, in one run.

Imports `gen_openmetrics.py 100 240` (10k series, 1h at 15s) into our tsdb
(`tsdb import`) and into Prometheus (`promtool tsdb create-blocks-from
openmetrics`), starts both servers on loopback, runs each query (1h at 60s)
RUNS times through each HTTP API (alternating the two servers run by
run), once on a kept connection per server (as Grafana's data source
keeps them) and once on a new connection per query (as promtool or curl
send one), checks the results are equal (relative
1e-6; our results come from a second metrics-server run with
--query-closed-windows, Prometheus 2.x's window semantics, since the default
follows Prometheus 3's left-open windows), and prints each query's median
latency for both (ours: the default server) and the ratio, for both ways
of connecting.

Usage: benches/compare/promql_queries.py [RUNS]   (needs ../shared, prometheus, promtool)

RUNS defaults to 50: the smallest queries take about 1 ms through either
server, and on a 2-vCPU VM their medians over 10 or 20 runs move by 15%
from one run of the script to the next (Prometheus's as much as ours).
"""
import http.client
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHARED = os.path.join(ROOT, "..", "shared")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 50

START, END, STEP = 1700000000, 1700003600, 60
QUERIES = [
    'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
    'rate(node_network_bytes_total[1m])',
    'topk(5, avg_over_time(node_load{window="1"}[10m]))',
    'count by (job) (node_filesystem_size_bytes > 1e12)',
    'count by (__name__) ({__name__=~"node_.+"})',
    'avg by (job, kind) (node_memory_bytes)',
    'max_over_time(node_disk_io_time_seconds{op="read"}[5m])',
    'sum by (job) (increase(node_context_switches_total[10m]))',
    'quantile(0.9, rate(node_cpu_seconds_total{mode="user"}[5m]))',
    'node_load{window="15"} / on (instance) group_left () node_load{window="1"}',
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited early: {proc.args}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"{url} not ready")


def query_params(q):
    return urllib.parse.urlencode({"query": q, "start": START, "end": END, "step": STEP})


def query_range(base, q):
    """One query on a new connection; its parsed response."""
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{query_params(q)}", timeout=120) as r:
        return json.loads(r.read())


def timed_new_connection(port, q):
    """Seconds for one query on a connection of its own (as promtool or
    curl send it): connect, request, whole response read."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query_range?{query_params(q)}", timeout=120) as r:
        r.read()
    return time.perf_counter() - t0


class KeptConnection:
    """A persistent HTTP/1.1 connection (as Grafana's data source keeps
    one); reopened if the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def timed(self, q):
        """Seconds for one query on the kept connection: request, whole
        response read."""
        t0 = time.perf_counter()
        self.conn.request("GET", f"/api/v1/query_range?{query_params(q)}")
        r = self.conn.getresponse()
        r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            sys.exit(f"port {self.port}: HTTP {r.status} for {q}")
        if r.will_close:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return dt


def canon(resp):
    out = {}
    for s in resp["data"]["result"]:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [(float(t), float(v)) for t, v in s["values"]]
    return out


def close(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def same(a, b):
    if a.keys() != b.keys():
        return f"series differ: {len(a)} vs {len(b)}; e.g. {sorted(set(a) ^ set(b))[:2]}"
    for k in a:
        pa, pb = a[k], b[k]
        if len(pa) != len(pb):
            return f"{k}: {len(pa)} vs {len(pb)} points"
        for (ta, va), (tb, vb) in zip(pa, pb):
            if ta != tb or not close(va, vb):
                return f"{k}: ({ta}, {va}) vs ({tb}, {vb})"
    return None


def main():
    if not os.path.isdir(os.path.join(SHARED, "bench")):
        print(f"skipped: {SHARED}/bench not found")
        return
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install prometheus)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "tsdb", "--bin", "tsdb",
                    "-p", "examples", "--bin", "metrics-server"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    tsdb_bin = os.path.join(target, "release", "tsdb")
    server_bin = os.path.join(target, "release", "metrics-server")
    work = tempfile.mkdtemp()
    procs = []
    try:
        data = os.path.join(work, "hard.om")
        with open(data, "w") as f:
            subprocess.run([sys.executable, os.path.join(SHARED, "bench", "gen_openmetrics.py"), "100", "240"],
                           stdout=f, check=True)
        ours_dir, prom_dir = os.path.join(work, "ours"), os.path.join(work, "prom")
        subprocess.run([tsdb_bin, "import", "--data-dir", ours_dir, data], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", data, prom_dir],
                       check=True, stdout=subprocess.DEVNULL)
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("scrape_configs: []\n")
        op, pp, cp = free_port(), free_port(), free_port()
        # A second server on a copy of the data evaluates with Prometheus
        # 2.x's closed windows: its results must equal 2.42's. Timings are
        # of the first, default (Prometheus 3 windows) server.
        closed_dir = ours_dir + "-closed"
        shutil.copytree(ours_dir, closed_dir)
        ours = subprocess.Popen([server_bin, "--data-dir", ours_dir, "--listen", f"127.0.0.1:{op}",
                                 "--retention-time", "100y"], stderr=subprocess.DEVNULL)
        procs.append(ours)
        closed = subprocess.Popen([server_bin, "--data-dir", closed_dir, "--listen", f"127.0.0.1:{cp}",
                                   "--retention-time", "100y", "--query-closed-windows"], stderr=subprocess.DEVNULL)
        procs.append(closed)
        prom = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={prom_dir}",
                                 "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{pp}"],
                                stderr=subprocess.DEVNULL)
        procs.append(prom)
        ob, pb, cb = f"http://127.0.0.1:{op}", f"http://127.0.0.1:{pp}", f"http://127.0.0.1:{cp}"
        wait_ready(f"{ob}/-/ready", ours)
        wait_ready(f"{cb}/-/ready", closed)
        wait_ready(f"{pb}/-/ready", prom)

        print(f"load average: {open('/proc/loadavg').read().split()[:3]} ({os.cpu_count()} CPUs)")
        print(f"{'':75} {'kept connection':>27}   {'new connection':>27}")
        print(f"{'query':<75} {'ours ms':>9} {'prom ms':>9} {'ratio':>7}   {'ours ms':>9} {'prom ms':>9} {'ratio':>7}  result")
        kept_o, kept_p = KeptConnection(op), KeptConnection(pp)
        ratios = {"kept": [], "new": []}
        for q in QUERIES:
            ro = query_range(ob, q)  # warm-up (page cache, mmap)
            rp = query_range(pb, q)
            rc = query_range(cb, q)
            diff = same(canon(rc), canon(rp))
            default_diff = same(canon(ro), canon(rp))
            # Alternate the two servers run by run, so that both see the
            # same background noise; responses are read whole but not
            # parsed (their results were compared above).
            cols = []
            for mode, ours, theirs in (
                ("kept", kept_o.timed, kept_p.timed),
                ("new", lambda q: timed_new_connection(op, q), lambda q: timed_new_connection(pp, q)),
            ):
                ours(q), theirs(q)
                times_o, times_p = [], []
                for _ in range(RUNS):
                    times_o.append(ours(q))
                    times_p.append(theirs(q))
                to = statistics.median(times_o) * 1000
                tp = statistics.median(times_p) * 1000
                ratios[mode].append(to / tp)
                cols.append(f"{to:9.2f} {tp:9.2f} {to / tp:7.3f}")
            n = len(ro["data"]["result"])
            note = "" if default_diff is None else "; 3.x windows differ at boundaries"
            print(f"{q[:75]:<75} {cols[0]}   {cols[1]}  {'equal' if diff is None else 'DIFFERENT: ' + diff} ({n} series{note})")
        print(f"runs per query: {RUNS} (median); worst ratio ours/prometheus: "
              f"{max(ratios['kept']):.3f} on kept connections, {max(ratios['new']):.3f} on new connections")
        print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
