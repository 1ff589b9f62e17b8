#!/usr/bin/env python3
"""Below the SIGSYS floor: what rewritten sites and the argument filters save whole programs.

Rows, each a fresh process, interleaved rounds, median reported:
- an open+close pair of an ordinary file (a C loop that times itself: no start-up in it),
  natively and under `pysud run` with and without rewriting and the argument filters
  (the Linux personality's /proc path filter on open/openat, its descriptor filter on close);
- `dd if=/dev/zero of=/dev/null bs=1 count=N`: µs per call over native (start-up taken out by
  a count=1 run of the same configuration), with and without rewriting.
- a static musl program's read(fd, buf, 1) loop (it times itself): ns per call natively, trapped,
  rewritten with the core's patterns only (musl's read goes through __syscall_cp: it traps), and
  with the planner (the instruction before its syscall runs in a trampoline).
The per-call rows (trapped vs rewritten vs flip switch vs native) are in `pysud bench`.
--sites: instead, how many of the syscall sites each of a few programs traps at are patched, and
  how many of its calls came in without a trap, with the core's patterns only and with the
  planner, and why the rest keep trapping.
Usage: python3 benchmarks/bench_rewrite.py [--json] [--rounds N] [--pairs N] [--count N] [--sites]
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

READ_LOOP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char c;
    int fd = open("/dev/zero", O_RDONLY);
    struct timespec a, b;
    for (long i = 0; i < 100; i++) read(fd, &c, 1);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) read(fd, &c, 1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
"""

# Runs argv under pysud run with rewriting; argv[1]: "1" with the planner, "0" the core's patterns
# only; argv[2]: "-" or a file for the site table (JSON) afterwards.
SITES_RUNNER = """
import json, sys
from pysud import _core, _rewrite
from pysud._linux import run_command
if sys.argv[1] == "0":
    _rewrite.install_planner = lambda: None
    _core.rewrite_planner(None)
held = []
status = run_command(sys.argv[3], sys.argv[4:], rewrite=True, setup=held.append)
if sys.argv[2] != "-":
    d = held[0]
    calls = {"total": sum(d.counts().values()), "direct": d.direct_calls()}
    with open(sys.argv[2], "w") as f:
        json.dump({"sites": [s._asdict() for s in _rewrite.sites()], "calls": calls}, f)
sys.exit(status)
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
    ap.add_argument("--sites", action="store_true", help="the site coverage table instead")
    ap.add_argument("--reads", type=int, default=200000, help="musl read loop calls (default 200000)")
    args = ap.parse_args()
    if args.sites:
        return sites_table(args.json)
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
            read_ns = musl_reads(tmp, args.rounds, args.reads)
    oc_med = {k: statistics.median(v) for k, v in oc_ns.items()}
    dd_med = {k: statistics.median(v) for k, v in dd_us.items()}
    result = {
        "rounds": args.rounds,
        "pairs": args.pairs,
        "dd_count": args.count,
        "open_close_ns": oc_med,
        "dd_us_per_call": dd_med,
        "musl_read_ns": read_ns,
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
    if read_ns:
        print()
        print(f"static musl read(fd, &c, 1) loop: ns per call, median of {args.rounds} rounds")
        for key, label in READ_CONFIGS.items():
            print(f"{label:<48} {read_ns[key]:>9.0f} {read_ns[key] - read_ns['native']:>12.0f}")
    return 0


READ_CONFIGS = {
    "native": "native",
    "trap": "pysud run --no-rewrite",
    "patterns": "rewriting, the core's patterns only (before)",
    "planner": "rewriting with the planner (now)",
}


def musl_reads(tmp: str, rounds: int, n: int) -> dict[str, float]:
    """Median ns per read of a static musl program's loop, per READ_CONFIGS ({} without musl-gcc)."""
    musl = shutil.which("musl-gcc")
    if musl is None:
        return {}
    src, exe = os.path.join(tmp, "rd.c"), os.path.join(tmp, "rd")
    with open(src, "w") as f:
        f.write(READ_LOOP_C)
    subprocess.run([musl, "-O2", "-static", "-o", exe, src], check=True)
    argvs = {
        "native": [exe, str(n)],
        "trap": under("trap", [exe, str(n)]),
        "patterns": [sys.executable, "-c", SITES_RUNNER, "0", "-", exe, str(n)],
        "planner": [sys.executable, "-c", SITES_RUNNER, "1", "-", exe, str(n)],
    }
    got: dict[str, list[float]] = {k: [] for k in argvs}
    for _ in range(rounds):
        for key, argv in argvs.items():
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            got[key].append(float(out.split()[-1]))
    return {k: statistics.median(v) for k, v in got.items()}


def sites_table(as_json: bool) -> int:
    """Sites each program trapped at, patched with the patterns only / with the planner."""
    here = os.path.dirname(os.path.abspath(__file__))
    progs = os.path.join(here, "..", "tests", "programs")
    with tempfile.TemporaryDirectory() as tmp:
        rows: list[tuple[str, list[str]]] = []
        bb = shutil.which("busybox")
        if bb:
            rows.append(
                ("busybox sh", [bb, "sh", "-c", "echo a | cat; ls / > /dev/null; x=$(echo b); echo $x"])
            )
        tar = shutil.which("tar")
        if tar:
            rows.append(("tar", [tar, "-cf", os.path.join(tmp, "t.tar"), "-C", progs, "."]))
        git = shutil.which("git")
        if git:
            rows.append(
                ("git log", [git, "--no-pager", "-C", os.path.join(here, ".."), "log", "-3", "--stat"])
            )
        go = shutil.which("go")
        if go:
            exe = os.path.join(tmp, "goprog")
            env = dict(os.environ, CGO_ENABLED="0", GOCACHE=os.path.join(tmp, "gocache"), GOFLAGS="-mod=mod")
            r = subprocess.run(
                [go, "build", "-o", exe, os.path.join(progs, "goprog.go")], env=env, capture_output=True
            )
            if r.returncode == 0:
                os.mkdir(os.path.join(tmp, "godir"))
                rows.append(("Go (tests/programs/goprog.go)", [exe, os.path.join(tmp, "godir")]))
        musl = shutil.which("musl-gcc")
        if musl:
            exe = os.path.join(tmp, "musl_static")
            subprocess.run(
                [musl, "-O2", "-static", "-o", exe, os.path.join(progs, "musl_static.c")], check=True
            )
            os.mkdir(os.path.join(tmp, "mdir"))
            rows.append(("musl static (tests/programs/musl_static.c)", [exe, os.path.join(tmp, "mdir")]))
            src = os.path.join(tmp, "rd.c")
            with open(src, "w") as f:
                f.write(READ_LOOP_C)
            subprocess.run([musl, "-O2", "-static", "-o", os.path.join(tmp, "rd"), src], check=True)
            rows.append(("musl read loop", [os.path.join(tmp, "rd"), "1000"]))
        result = {}
        for name, argv in rows:
            counts = {}
            for planner in ("0", "1"):
                out = os.path.join(tmp, "sites.json")
                subprocess.run(
                    [sys.executable, "-c", SITES_RUNNER, planner, out, *argv],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=300,
                )
                with open(out) as f:
                    got = json.load(f)
                why: dict[str, int] = {}
                for site in got["sites"]:
                    why[site["reason"]] = why.get(site["reason"], 0) + 1
                counts[planner] = {
                    "total": len(got["sites"]),
                    "patched": why.pop("patched", 0),
                    "trapping": why,
                    "calls": got["calls"],
                }
            result[name] = {"patterns": counts["0"], "planner": counts["1"]}
    if as_json:
        print(json.dumps(result))
        return 0
    print("sites patched/trapped once, and calls that came in without a trap/all dispatched calls")
    print(f"{'':<36} {'patterns only':^27} {'with planner':^27}")
    print(f"{'program':<36} {'sites':>9} {'calls':>17} {'sites':>9} {'calls':>17}  still trapping (why)")
    for name, r in result.items():
        a, b = r["patterns"], r["planner"]
        why = ", ".join(f"{k} {v}" for k, v in sorted(b["trapping"].items()))
        ca, cb = a["calls"], b["calls"]
        print(
            f"{name[:36]:<36} {a['patched']:>4}/{a['total']:<4} {ca['direct']:>8}/{ca['total']:<8}"
            f" {b['patched']:>4}/{b['total']:<4} {cb['direct']:>8}/{cb['total']:<8}  {why}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
