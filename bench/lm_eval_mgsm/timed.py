"""Run one benchmark command and record its wall time and peak memory in a small JSON file.

    python3 timed.py --out OUT/timing.json --tool lm-eval --batch-size 4 --langs de,zh --n 5 -- CMD ARGS...

Wall time is measured around the whole process (start-up, model load, data, generation, writing results),
the same way for both tools. Peak RSS is the largest resident set of any process in the command's tree:
`/usr/bin/time -v` reports it when installed (its full report is kept beside the JSON as time_v.txt);
otherwise getrusage(RUSAGE_CHILDREN).ru_maxrss, which on Linux is the same maximum, in KiB.
The command's exit code is recorded and passed on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

GNU_TIME = "/usr/bin/time"


def gnu_time_peak_kib(report: Path) -> int | None:
    if not report.is_file():
        return None
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", report.read_text(errors="replace"))
    return int(m.group(1)) if m else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="timing.json to write")
    parser.add_argument("--tool", required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--langs", required=True, help="comma-separated language codes")
    parser.add_argument("--n", type=int, required=True, help="items per language")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        parser.error("no command given after --")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = args.out.with_name("time_v.txt")
    use_gnu_time = os.access(GNU_TIME, os.X_OK) and shutil.which(GNU_TIME) is not None
    full = [GNU_TIME, "-v", "-o", str(report), *cmd] if use_gnu_time else cmd

    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    code = subprocess.call(full)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    peak_kib = gnu_time_peak_kib(report) if use_gnu_time else None
    method = "/usr/bin/time -v" if peak_kib is not None else "getrusage(RUSAGE_CHILDREN)"
    if peak_kib is None:
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    langs = [x for x in args.langs.split(",") if x]
    record = {
        "tool": args.tool,
        "batch_size": args.batch_size,
        "langs": langs,
        "n_per_lang": args.n,
        "items": args.n * len(langs),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "peak_rss_method": method,
        "exit_code": code,
        "started_utc": started,
        "cpus": os.cpu_count(),
        # 1-minute load average just before and just after: a busy machine (load above the core count
        # before the run) makes the timing unfair; rerun when it is idle.
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(load_after[0], 2),
        "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "command": cmd,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"timed.py: {args.tool} bs={args.batch_size}: {wall:.1f} s wall, peak RSS {peak_kib / 1024:.0f} MB, "
          f"exit {code} -> {args.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
