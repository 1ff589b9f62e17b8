"""The `pysud` command: check, bench."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _check(args: argparse.Namespace) -> int:
    from ._kernel import support

    s = support()
    if args.json:
        print(json.dumps(s.as_dict(), indent=2))
    else:
        print(f"kernel {s.kernel} on {s.machine}")
        for name in ("exclusive", "inclusive", "ptrace_config", "fsgsbase", "sysctl"):
            f = getattr(s, name)
            print(f"  {name:<14} {'yes' if f.supported else 'no ':<4} {f.detail}")
        print("syscall user dispatch is usable" if s.usable else "syscall user dispatch is NOT usable here")
    return 0 if s.usable else 1


def _bench(args: argparse.Namespace) -> int:
    from ._bench import measure, render

    result = measure(iterations=args.iterations, rounds=args.rounds)
    if not args.json:
        print(render(result), flush=True)
    if args.program_runs > 0:
        result["programs"] = _bench_programs(args)
    if args.json:
        print(json.dumps(result))
    return 0


def _bench_programs(args: argparse.Namespace) -> dict[str, object]:
    """`pysud run` rows: start-up against native, a syscall-heavy program against native and strace."""
    from ._bench import measure_programs, render_programs

    runs = args.program_runs
    result = measure_programs(runs=runs, heavy_runs=max(1, min(3, runs)))
    if not args.json:
        print("\n" + render_programs(result))
    return result


def _run(args: argparse.Namespace) -> int:
    from ._linux import run

    return run(args.program, args.args, vdso=not args.no_vdso)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="pysud",
        description="Syscall User Dispatch for Python: native code at full speed, "
        "its system calls in Python. Not a security boundary.",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="what this machine supports; exit status 1 if dispatch is unusable")
    c.add_argument("--json", action="store_true", help="one JSON object")
    c.set_defaults(func=_check)
    b = sub.add_parser("bench", help="ns per system call on each path, side by side")
    b.add_argument("--json", action="store_true", help="one JSON object")
    b.add_argument("--iterations", type=int, default=20000, help="calls per measurement (default 20000)")
    b.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is reported")
    b.add_argument(
        "--program-runs",
        type=int,
        default=10,
        help="runs per `pysud run` start-up row (default 10; 0 skips the program rows)",
    )
    b.set_defaults(func=_bench)
    r = sub.add_parser(
        "run",
        help="run a Linux x86-64 program in this process, its system calls dispatched",
        description="Load PROGRAM into this Python process and run it natively; every system call it "
        "makes goes through a dispatcher whose default runs it natively. Exit status propagated.",
    )
    r.add_argument("--no-vdso", action="store_true", help="hide the vDSO: time calls become syscalls")
    r.add_argument("program")
    r.add_argument("args", nargs=argparse.REMAINDER)
    r.set_defaults(func=_run)
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as e:  # the CLI reports, never dumps a traceback on a user
        from ._errors import PysudError

        if isinstance(e, PysudError | OSError):
            print(f"pysud: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
