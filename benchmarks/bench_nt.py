#!/usr/bin/env python3
"""The NT personality against Wine: ns per NT call in a loop, and hello start-to-exit.

The loop program (tests/nt/loop.c, built with mingw-w64) makes N NtQuerySystemTime calls; the
cost per call is (time(N) - time(0)) / N, so start-up cancels out.  Paths: pysud through ntdll
(the trap path: SUD's SIGSYS), pysud with the program's own `syscall` (trapped the same way),
pysud with --flip-switch (when the core has a direct entry), and Wine.  Each row is the median of
--rounds runs, interleaved.

Usage: python3 benchmarks/bench_nt.py [--json] [--calls N] [--rounds R]
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

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "tests", "nt")
WINE = next(
    (w for w in ("/usr/lib/wine/wine64", shutil.which("wine64") or "") if w and os.path.exists(w)), None
)


def build(out: str, name: str, direct: bool = False) -> str:
    cc = shutil.which("x86_64-w64-mingw32-gcc")
    if cc is None:
        raise SystemExit("x86_64-w64-mingw32-gcc is needed (apt: gcc-mingw-w64-x86-64)")
    exe = os.path.join(out, f"{name}{'-direct' if direct else ''}.exe")
    flags = ["-DDIRECT_SYSCALLS"] if direct else []
    subprocess.run(
        [
            cc,
            "-O2",
            "-nostdlib",
            "-ffreestanding",
            "-e",
            "mainCRTStartup",
            f"-I{SRC}",
            *flags,
            "-o",
            exe,
            os.path.join(SRC, f"{name}.c"),
            "-lntdll",
            "-lgcc",
        ],
        check=True,
    )
    return exe


def timed(argv: list[str], env: dict[str, str] | None = None, status: int = 0) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=600)
    elapsed = time.perf_counter() - t
    if r.returncode != status:
        raise SystemExit(f"{' '.join(argv)}: exit status {r.returncode}, expected {status}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from pysud import _core

    with tempfile.TemporaryDirectory() as tmp:
        loop, loop_direct, hello = build(tmp, "loop"), build(tmp, "loop", True), build(tmp, "hello")
        pysud = [sys.executable, "-m", "pysud", "run"]
        paths: dict[str, list[str]] = {
            "pysud, through ntdll (trap)": [*pysud, loop],
            "pysud, direct syscall (trap)": [*pysud, loop_direct],
        }
        if hasattr(_core, "direct_entry_address"):
            paths["pysud, through ntdll (flip-switch)"] = [*pysud, "--flip-switch", loop]
        env = None
        if WINE:
            env = dict(os.environ, WINEPREFIX=os.path.join(tmp, "wine"), WINEDEBUG="-all")
            subprocess.run([WINE, "wineboot", "-i"], env=env, capture_output=True, timeout=600)
            paths["wine"] = [WINE, loop]
        samples: dict[str, list[float]] = {k: [] for k in paths}
        starts: dict[str, list[float]] = {"pysud hello": [], **({"wine hello": []} if WINE else {})}
        for _ in range(args.rounds):
            for name, argv in paths.items():
                e = env if name == "wine" else None
                full = timed([*argv, str(args.calls)], e)
                empty = timed([*argv, "0"], e)
                samples[name].append((full - empty) / args.calls * 1e9)
            starts["pysud hello"].append(timed([*pysud, hello], status=7) * 1e3)  # hello exits with 7
            if WINE:
                starts["wine hello"].append(timed([WINE, hello], env, status=7) * 1e3)
    result = {
        "ns_per_call": {k: round(statistics.median(v)) for k, v in samples.items()},
        "ms_start_to_exit": {k: round(statistics.median(v), 1) for k, v in starts.items()},
        "calls": args.calls,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'NtQuerySystemTime in a loop':<40} {'ns/call':>9}")
    for k, v in result["ns_per_call"].items():
        print(f"{k:<40} {v:>9}")
    print(f"{'hello, start to exit':<40} {'ms':>9}")
    for k, v in result["ms_start_to_exit"].items():
        print(f"{k:<40} {v:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
