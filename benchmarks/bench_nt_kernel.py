#!/usr/bin/env python3
"""NT kernel objects against Wine: microseconds per registry query, registry write, event
set-and-wait and mutant wait-and-release.

tests/nt/kloop.c makes N calls of one kind; the cost per call is (time(N) - time(0)) / N, so
start-up cancels out.  pysud runs it on its own ntdll (--ntdll builtin) in a fresh prefix; Wine in a
fresh WINEPREFIX (its wineserver started beforehand and kept, as a Wine user has it).  The
program, the timing and the Wine set-up are bench_nt.py's.  Each row is
the median of --rounds runs, interleaved.

Usage: python3 benchmarks/bench_nt_kernel.py [--json] [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

from bench_nt import WINE, WarmWine, build, per_call

OPS = {
    "query": "NtQueryValueKey",
    "set": "NtSetValueKey",
    "event": "NtSetEvent+Wait",
    "mutant": "Wait+NtReleaseMutant",
}
#: calls per run relative to --calls: a registry write saves its branch file (write-through)
SCALE = {"query": 1.0, "set": 0.05, "event": 1.0, "mutant": 1.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        exe = build(tmp, "kloop")
        runners: dict[str, tuple[list[str], dict[str, str]]] = {
            "pysud": (
                [sys.executable, "-m", "pysud", "run", "--ntdll", "builtin", exe],
                dict(os.environ, PYSUD_PREFIX=os.path.join(tmp, "prefix")),
            )
        }
        warm = WarmWine(WINE, tmp) if WINE else None
        if WINE and warm:
            runners["wine"] = ([WINE, exe], warm.env)
        samples: dict[tuple[str, str], list[float]] = {(r, op): [] for r in runners for op in OPS}
        try:
            for _ in range(args.rounds):
                for (runner, op), values in samples.items():
                    argv, env = runners[runner]
                    calls = max(1, int(args.calls * SCALE[op]))
                    values.append(per_call([*argv, op], env, calls) * 1e6)
        finally:
            if warm is not None:  # the wineserver saves and exits before the directory goes
                warm.close()
    result = {
        "us_per_call": {
            f"{runner} {OPS[op]}": round(statistics.median(v), 1) for (runner, op), v in samples.items()
        },
        "calls": args.calls,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'kernel objects, per call':<40} {'us':>9}")
    for k, v in result["us_per_call"].items():
        print(f"{k:<40} {v:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
