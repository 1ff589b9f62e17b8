#!/usr/bin/env python3
"""`pysud trace` against strace, with CPU time beside wall time, optionally two pysud trees side by side.

The rows of `pysud bench`'s third table (busybox dd bs=1 traced to a file by `pysud trace -f -o`
and by `strace -f -o`, as run by default and pinned with `taskset -c 0`, count=0 and count=N in
interleaved rounds, the per-call cost the slope between them), plus start-up rows (`pysud run
/usr/bin/true`, `pysud trace` of `busybox true`), each with the median wall time and the median
CPU time (user + system of the run and its children).  On a machine shared with other work the
wall times move with the load; the CPU times move least.  ``--other SRC`` adds the same pysud
rows for another checkout's ``src`` (its C core built in place: ``python setup.py build_ext
--inplace``), run with this interpreter and ``PYTHONPATH=SRC``: a before/after in one run.

Usage: python3 benchmarks/bench_trace.py [--runs N] [--count N] [--other SRC] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--count", type=int, default=40000, help="dd bs=1 count (default 40000)")
    ap.add_argument("--other", metavar="SRC", help="another pysud tree's src directory, side by side")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    args = ap.parse_args()
    busybox, strace, taskset = shutil.which("busybox"), shutil.which("strace"), shutil.which("taskset")
    if busybox is None or strace is None:
        print("busybox and strace are needed (apt-get install busybox-static strace)", file=sys.stderr)
        return 2
    fd, out = tempfile.mkstemp(prefix="pysud-bench-trace-")
    os.close(fd)
    here = dict(os.environ)
    pysuds = [("pysud", here)]
    if args.other:
        pysuds.insert(0, ("pysud (other)", dict(os.environ, PYTHONPATH=os.path.abspath(args.other))))
    py = [sys.executable, "-m", "pysud"]
    rows: list[tuple[str, int, list[str], dict[str, str]]] = []  # label, count, argv, environment
    for pin in ([], [taskset, "-c", "0"]) if taskset else ([],):
        tag = " pinned" if pin else ""
        for n in (0, args.count):
            dd = [busybox, "dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}"]
            for name, env in pysuds:
                rows.append((f"{name} trace{tag}", n, [*pin, *py, "trace", "-f", "-o", out, *dd], env))
            rows.append((f"strace{tag}", n, [*pin, strace, "-f", "-o", out, *dd], here))
            rows.append((f"native{tag}", n, [*pin, *dd], here))
    for name, env in pysuds:
        rows.append((f"{name} run /usr/bin/true", -1, [*py, "run", "/usr/bin/true"], env))
        rows.append((f"{name} trace busybox true", -1, [*py, "trace", "-o", out, busybox, "true"], env))
    rows.append(("python3 -c pass", -1, [sys.executable, "-c", "pass"], here))
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    try:
        for _ in range(args.runs):
            for label, n, argv, env in rows:
                samples.setdefault((label, n), []).append(once(argv, env))
    finally:
        os.unlink(out)
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in samples.items()
    }
    calls = 2 * args.count
    per = {}
    for label, n, _, _ in rows:
        if n == args.count:
            (w0, c0), (w1, c1) = med[(label, 0)], med[(label, n)]
            per[label] = ((w1 - w0) / calls * 1e6, (c1 - c0) / calls * 1e6)
    startup = {label: med[(label, n)] for label, n, _, _ in rows if n == -1}
    if args.json:
        print(json.dumps({"count": args.count, "runs": args.runs, "us_per_call": per, "startup_s": startup}))
        return 0
    print(
        f"busybox dd bs=1 count={args.count} ({calls} calls) traced to a file, median of {args.runs} "
        f"interleaved rounds, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'run':<30} {'s/run':>8} {'us/call':>8} {'CPU us/call':>12}")
    for label, (w, c) in per.items():
        print(f"{label:<30} {med[(label, args.count)][0]:>8.2f} {w:>8.2f} {c:>12.2f}")
    for tag in ("", " pinned"):
        if f"strace{tag}" not in per:
            continue
        for name, _ in pysuds:
            key = f"{name} trace{tag}"
            whole = med[(f"strace{tag}", args.count)][0] / med[(key, args.count)][0]
            print(
                f"{key}: per call {per[f'strace{tag}'][0] / per[key][0]:.1f}x faster than strace{tag} "
                f"(CPU {per[f'strace{tag}'][1] / per[key][1]:.1f}x), whole run {whole:.1f}x"
            )
    print(f"\n{'start-up':<40} {'ms wall':>8} {'ms CPU':>8}")
    for label, (w, c) in startup.items():
        print(f"{label:<40} {w * 1e3:>8.1f} {c * 1e3:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
