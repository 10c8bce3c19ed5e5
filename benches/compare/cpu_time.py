#!/usr/bin/env python3
"""Run a command repeatedly until its CPU time adds up; print CPU seconds per run.

Usage: cpu_time.py MIN_CPU_SECONDS CMD [ARGS...]
Runs CMD (stdout captured, stderr passed through) at least 3 times and until the
children's user + system CPU time reaches MIN_CPU_SECONDS. Prints one JSON object:
{"runs": N, "cpu_s": per-run CPU seconds, "stdout": the last run's stdout (stripped)}.
Exits with the first failing run's status.
"""
import json
import resource
import subprocess
import sys

if len(sys.argv) < 3:
    sys.exit("usage: cpu_time.py MIN_CPU_SECONDS CMD [ARGS...]")
min_cpu = float(sys.argv[1])
cmd = sys.argv[2:]


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


start = children_cpu()
runs = 0
out = b""
while runs < 3 or children_cpu() - start < min_cpu:
    p = subprocess.run(cmd, stdout=subprocess.PIPE)
    # grep -c exits 1 when it counts nothing: that is a result, not a failure.
    if p.returncode not in (0, 1) or (p.returncode == 1 and cmd[0] != "grep"):
        sys.exit(p.returncode)
    out = p.stdout
    runs += 1
print(json.dumps({"runs": runs, "cpu_s": (children_cpu() - start) / runs,
                  "stdout": out.decode(errors="replace").strip()[:200]}))
