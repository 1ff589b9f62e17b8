#!/usr/bin/env python3
"""Below the SIGSYS floor: what rewritten sites and the argument filters save whole programs.

Rows, each a fresh process, interleaved rounds, median reported:
- an open+close pair of an ordinary file (a C loop that times itself: no start-up in it),
  natively and under `pysud run` with and without rewriting and the argument filters
  (the Linux personality's /proc path filter on open/openat, its descriptor filter on close);
- `dd if=/dev/zero of=/dev/null bs=1 count=N`: µs per call over native (start-up taken out by
  a count=1 run of the same configuration), with and without rewriting.
The per-call rows (trapped vs rewritten vs flip switch vs native) are in `pysud bench`.
Usage: python3 benchmarks/bench_rewrite.py [--json] [--rounds N] [--pairs N] [--count N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

OPEN_CLOSE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    struct timespec a, b;
    close(open(argv[1], O_RDONLY));
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) close(open(argv[1], O_RDONLY));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
"""

# Runs argv under pysud run; argv[1]: "1" rewriting on, argv[2]: "1" the personality's filters on.
RUNNER = """
import sys
from pysud._linux import run_command
def unfiltered(d):
    for name in ("open", "openat", "readlink", "readlinkat", "close", "dup", "fcntl"):
        h = d.handler_of(name)
        if h is not None:
            d.on(name, h)  # registering again clears the core's filter
sys.exit(run_command(sys.argv[3], sys.argv[4:], rewrite=sys.argv[1] == "1",
                     setup=None if sys.argv[2] == "1" else unfiltered))
"""

CONFIGS = {
    "rewrite_filter": ("1", "1", "pysud run (rewriting, filters): the default"),
    "rewrite": ("1", "0", "pysud run, rewriting, no filters"),
    "filter": ("0", "1", "pysud run --no-rewrite, filters"),
    "trap": ("0", "0", "pysud run --no-rewrite, no filters (before)"),
}


def under(config: str, argv: list[str]) -> list[str]:
    rewrite, filters, _ = CONFIGS[config]
    return [sys.executable, "-c", RUNNER, rewrite, filters, *argv]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="one JSON object")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--pairs", type=int, default=20000, help="open+close pairs per run (default 20000)")
    ap.add_argument("--count", type=int, default=20000, help="dd bs=1 count (default 20000)")
    args = ap.parse_args()
    cc, dd = shutil.which("cc"), shutil.which("dd")
    if cc is None or dd is None:
        print("needs cc and dd on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "oc.c"), os.path.join(tmp, "oc")
        with open(src, "w") as f:
            f.write(OPEN_CLOSE_C)
        subprocess.run([cc, "-O2", "-o", exe, src], check=True)
        target = os.path.join(tmp, "file")
        with open(target, "w") as f:
            f.write("x\n")
        oc = [exe, target, str(args.pairs)]

        def dd_argv(count: int) -> list[str]:
            return [dd, "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}"]

        def wall(argv: list[str]) -> float:
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - t0

        oc_ns: dict[str, list[float]] = {k: [] for k in ["native", *CONFIGS]}
        dd_us: dict[str, list[float]] = {k: [] for k in ["native", "rewrite_filter", "trap"]}
        for _ in range(args.rounds):
            for key in oc_ns:
                argv = oc if key == "native" else under(key, oc)
                out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
                oc_ns[key].append(float(out.split()[-1]))
            for key in dd_us:
                big, small = dd_argv(args.count), dd_argv(1)
                if key != "native":
                    big, small = under(key, big), under(key, small)
                dd_us[key].append((wall(big) - wall(small)) / (2 * (args.count - 1)) * 1e6)
    oc_med = {k: statistics.median(v) for k, v in oc_ns.items()}
    dd_med = {k: statistics.median(v) for k, v in dd_us.items()}
    result = {
        "rounds": args.rounds,
        "pairs": args.pairs,
        "dd_count": args.count,
        "open_close_ns": oc_med,
        "dd_us_per_call": dd_med,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"open+close of an ordinary file, ns per pair, median of {args.rounds} rounds")
    print(f"{'':<48} {'ns/pair':>9} {'over native':>12}")
    print(f"{'native':<48} {oc_med['native']:>9.0f} {0:>12.0f}")
    for key, (_, _, label) in CONFIGS.items():
        print(f"{label:<48} {oc_med[key]:>9.0f} {oc_med[key] - oc_med['native']:>12.0f}")
    print()
    print(f"dd bs=1 count={args.count}: us per call (start-up taken out), median of {args.rounds} rounds")
    for key, label in (
        ("native", "native"),
        ("rewrite_filter", CONFIGS["rewrite_filter"][2]),
        ("trap", CONFIGS["trap"][2]),
    ):
        over = dd_med[key] - dd_med["native"]
        print(f"{label:<48} {dd_med[key]:>9.2f} {over:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
