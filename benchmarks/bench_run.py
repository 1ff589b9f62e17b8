#!/usr/bin/env python3
"""`pysud run` wall time per run: start-up against native, a syscall-heavy program against native and strace.

The same rows as the second table of `pysud bench`, with their own knobs.
Usage: python3 benchmarks/bench_run.py [--json] [--runs N] [--heavy-runs N] [--count BYTES]
"""

import argparse
import json
import sys

from pysud._bench import measure_programs, render_programs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="one JSON object")
    ap.add_argument("--runs", type=int, default=20, help="runs per start-up row (default 20)")
    ap.add_argument("--heavy-runs", type=int, default=5, help="runs per syscall-heavy row (default 5)")
    ap.add_argument("--count", type=int, default=50000, help="bytes dd copies one at a time (default 50000)")
    args = ap.parse_args()
    result = measure_programs(runs=args.runs, heavy_runs=args.heavy_runs, count=args.count)
    print(json.dumps(result) if args.json else render_programs(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
