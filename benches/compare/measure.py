#!/usr/bin/env python3
"""Run a command; print its wall time (s) and peak RSS (MB) as JSON on stderr-free stdout.

Usage: measure.py CMD [ARGS...]
The child's own output goes to /dev/null unless MEASURE_VERBOSE=1. Exits with the
child's status so callers notice failures.
"""
import json
import os
import resource
import subprocess
import sys
import time

if len(sys.argv) < 2:
    sys.exit("usage: measure.py CMD [ARGS...]")
out = None if os.environ.get("MEASURE_VERBOSE") == "1" else subprocess.DEVNULL
start = time.monotonic()
proc = subprocess.run(sys.argv[1:], stdout=out, stderr=out)
wall = time.monotonic() - start
# ru_maxrss of waited-for children is in KiB on Linux. Each measurement runs
# in its own measure.py process, so it is this one child's peak.
rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": round(wall, 3), "peak_rss_mb": round(rss_kib / 1024, 1), "status": proc.returncode}))
sys.exit(proc.returncode)
