#!/usr/bin/env python3
"""The NT personality against Wine: ns per NT call in a loop, and hello start-to-exit.

The loop program (tests/nt/loop.c, built with mingw-w64) makes N NtQuerySystemTime calls; the
cost per call is (time(N) - time(0)) / N, so start-up cancels out.  Paths: pysud's own ntdll
(the trap path: SUD's SIGSYS), the program's own `syscall` (trapped the same way), --flip-switch
(when the core has a direct entry), Wine's PE ntdll on pysud (trap path and flip switch: its stubs
`call [0x7ffe1000]`), pysud's Windows-numbered stubs beside Wine's ntdll (--nt-profile) and the
program's own `syscall` with the build's number there (renumbered by the core), and Wine; the
ratio is to a native Linux system call in a loop (getppid, not dispatched).  Start to
exit: the ntdll-only hello on pysud's ntdll, the mingw hello (kernel32 + msvcrt,
tests/nt/wine/hello.c) on Wine's DLLs under pysud, and both under Wine with a warm wineserver
(`wineserver -p` for the whole run).  Each row is the median of --rounds runs, interleaved.

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

from pysud._bench import WarmWine, find_wine

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "tests", "nt")
WINE = find_wine()


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


def build_mingw(out: str, name: str) -> str:
    cc = shutil.which("x86_64-w64-mingw32-gcc")
    assert cc is not None
    exe = os.path.join(out, f"mingw-{name}.exe")
    subprocess.run([cc, "-O2", "-o", exe, os.path.join(SRC, "wine", f"{name}.c")], check=True)
    return exe


def timed(argv: list[str], env: dict[str, str] | None = None, status: int = 0) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=600)
    elapsed = time.perf_counter() - t
    if r.returncode != status:
        raise SystemExit(f"{' '.join(argv)}: exit status {r.returncode}, expected {status}")
    return elapsed


def per_call(argv: list[str], env: dict[str, str] | None, calls: int) -> float:
    """Seconds per call of a loop program given its count as last argument: (t(N) - t(0)) / N,
    so start-up cancels out."""
    return (timed([*argv, str(calls)], env) - timed([*argv, "0"], env)) / calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from pysud import _core
    from pysud.nt.prefix import find_wine_dlls

    wine_dlls = find_wine_dlls()
    with tempfile.TemporaryDirectory() as tmp:
        loop, loop_direct, hello = build(tmp, "loop"), build(tmp, "loop", True), build(tmp, "hello")
        mingw_hello = build_mingw(tmp, "hello")
        builtin = [sys.executable, "-m", "pysud", "run", "--ntdll", "builtin"]
        on_wine = [
            sys.executable,
            "-m",
            "pysud",
            "run",
            "--ntdll",
            "wine",
            "--prefix",
            os.path.join(tmp, "pfx"),
        ]
        paths: dict[str, list[str]] = {
            "pysud ntdll, through ntdll (trap)": [*builtin, loop],
            "pysud ntdll, direct syscall (rewritten site)": [*builtin, loop_direct],
        }
        if hasattr(_core, "direct_entry_address"):
            paths["pysud ntdll, through ntdll (flip-switch)"] = [*builtin, "--flip-switch", loop]
        if wine_dlls:
            win11 = ("--nt-profile", "win11-23h2")  # pysud's Windows-numbered stubs beside Wine's ntdll
            paths["pysud + Wine's DLLs, through ntdll (trap)"] = [*on_wine, "--no-flip-switch", loop]
            paths["pysud + Wine's DLLs, through ntdll (flip-switch)"] = [*on_wine, "--flip-switch", loop]
            paths["pysud + Wine's DLLs, Windows-numbered stub (trap)"] = [
                *on_wine,
                *win11,
                "--no-flip-switch",
                loop,
            ]
            paths["pysud + Wine's DLLs, Windows-numbered stub (flip-switch)"] = [
                *on_wine,
                *win11,
                "--flip-switch",
                loop,
            ]
            paths["pysud + Wine's DLLs, direct syscall, build's number (rewritten)"] = [
                *on_wine,
                *win11,
                loop_direct,
            ]
        warm = WarmWine(WINE, tmp) if WINE else None  # its wineserver stays up: warm for every run
        env = warm.env if warm else None
        if WINE:
            paths["wine"] = [WINE, loop]
        samples: dict[str, list[float]] = {k: [] for k in paths}
        starts: dict[str, list[float]] = {"pysud ntdll hello (ntdll only)": []}
        if wine_dlls:
            starts["pysud + Wine's DLLs hello (msvcrt)"] = []
        if WINE:
            starts["wine hello (ntdll only, warm wineserver)"] = []
            starts["wine hello (msvcrt, warm wineserver)"] = []
        try:
            for _ in range(args.rounds):
                for name, argv in paths.items():
                    samples[name].append(per_call(argv, env if name == "wine" else None, args.calls) * 1e9)
                starts["pysud ntdll hello (ntdll only)"].append(timed([*builtin, hello], status=7) * 1e3)
                if wine_dlls:
                    starts["pysud + Wine's DLLs hello (msvcrt)"].append(
                        timed([*on_wine, mingw_hello], status=42) * 1e3
                    )
                if WINE:
                    starts["wine hello (ntdll only, warm wineserver)"].append(
                        timed([WINE, hello], env, status=7) * 1e3
                    )
                    starts["wine hello (msvcrt, warm wineserver)"].append(
                        timed([WINE, mingw_hello], env, status=42) * 1e3
                    )
        finally:
            if warm is not None:
                warm.close()
    _core.disarm()
    native = min(_core.bench_loop(110, args.calls, False) for _ in range(5)) / args.calls  # getppid
    result = {
        "native_linux_syscall_ns": round(native),
        "ns_per_call": {k: round(statistics.median(v)) for k, v in samples.items()},
        "ms_start_to_exit": {k: round(statistics.median(v), 1) for k, v in starts.items()},
        "calls": args.calls,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'NtQuerySystemTime in a loop (Python handler)':<62} {'ns/call':>9} {'x native':>9}")
    for k, v in result["ns_per_call"].items():
        print(f"{k:<62} {v:>9} {v / native:>9.1f}")
    print(f"{'native: a Linux syscall (getppid), not dispatched':<62} {round(native):>9} {1.0:>9.1f}")
    print(f"{'hello, start to exit':<62} {'ms':>9}")
    for k, v in result["ms_start_to_exit"].items():
        print(f"{k:<62} {v:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
