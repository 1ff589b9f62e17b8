"""The `pysud` command: check, bench."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


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
    if args.trace_runs > 0:
        from ._bench import measure_trace, render_trace

        traced = measure_trace(runs=args.trace_runs, count=args.trace_count)
        result["trace"] = traced
        if not args.json:
            print("\n" + render_trace(traced), flush=True)
    if args.json:
        print(json.dumps(result))
    return 0


def _is_pe(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"MZ"
    except OSError:
        return False


def _bench_programs(args: argparse.Namespace) -> dict[str, object]:
    """`pysud run` rows: start-up against native, a syscall-heavy program against native and strace."""
    from ._bench import measure_programs, render_programs

    runs = args.program_runs
    result = measure_programs(runs=runs, heavy_runs=max(1, min(3, runs)))
    if not args.json:
        print("\n" + render_programs(result))
    return result


def _run(args: argparse.Namespace) -> int:
    if _is_pe(args.program):
        return _run_nt(args)
    from ._linux import run

    return run(
        args.program,
        args.args,
        vdso=not args.no_vdso,
        native_exec=args.native_exec,
        rewrite=False if args.no_rewrite else None,
    )


def _trace(args: argparse.Namespace) -> int:
    from .trace import SpecError, TraceOptions, parse_inject, syscall_set, trace_program

    trace = None
    inject = []
    for expr in args.expr or []:
        key, eq, value = expr.partition("=")
        if not eq:
            key, value = "trace", expr
        if key in ("trace", "t"):
            trace = syscall_set(value)
        elif key == "inject":
            inject.append(parse_inject(value))
        else:
            raise SpecError(f"-e {key}=: only trace= and inject= are supported")
    opts = TraceOptions(
        output=args.output,
        follow=args.follow,
        strsize=args.strsize,
        fd_paths=args.fd_paths,
        durations=args.durations,
        timestamps=args.timestamps >= 2,
        json=args.json,
        summary="C" if args.summary_and_lines else ("c" if args.summary else ""),
        trace=trace,
        inject=inject,
    )
    return trace_program(
        args.program, args.args, opts, vdso=not args.no_vdso, rewrite=False if args.no_rewrite else None
    )


def _trace_parser(sub: Any) -> None:
    t = sub.add_parser(
        "trace",
        help="run a program in this process and print its system calls as strace does",
        description="Run PROGRAM in this Python process (as `pysud run`) and print every system call it "
        "makes in strace's format, with strace's options. There is no -p PID: tracing works by Syscall "
        "User Dispatch inside the traced process itself, so it cannot attach to a process that is "
        "already running elsewhere.",
    )
    t.add_argument("-o", dest="output", metavar="FILE", help="write the trace to FILE (default: stderr)")
    t.add_argument("-f", dest="follow", action="store_true", help="follow forked children (and threads)")
    t.add_argument("-s", dest="strsize", type=int, default=32, metavar="N", help="string limit (default 32)")
    t.add_argument("-y", dest="fd_paths", action="store_true", help="print paths of file descriptors")
    t.add_argument("-T", dest="durations", action="store_true", help="time spent in each call")
    t.add_argument("-t", dest="timestamps", action="count", default=0, help="-tt: wall clock, microseconds")
    t.add_argument("-c", dest="summary", action="store_true", help="summary table only")
    t.add_argument("-C", dest="summary_and_lines", action="store_true", help="lines and summary table")
    t.add_argument(
        "-e",
        dest="expr",
        action="append",
        metavar="EXPR",
        help="trace=SET (names, %%file %%process %%network %%memory %%signal %%desc, !negated) or "
        "inject=SET:error=ERRNO|retval=N[:when=first[..last][+step]]",
    )
    t.add_argument("--json", action="store_true", help="one JSON object per call")
    t.add_argument("--no-vdso", action="store_true", help="hide the vDSO: time calls become syscalls")
    t.add_argument(
        "--no-rewrite",
        action="store_true",
        help="keep every syscall site trapping (default: patch a trapped `mov $nr,%%eax; syscall` site of "
        "the program so later calls skip the kernel's SIGSYS; also PYSUD_REWRITE=0)",
    )
    t.add_argument("program")
    t.add_argument("args", nargs=argparse.REMAINDER)
    t.set_defaults(func=_trace)


def _run_nt(args: argparse.Namespace) -> int:
    """A Windows program (MZ): the NT personality; the exit code's low byte is the status."""
    from .nt import run as run_nt

    drives = dict(d.split("=", 1) for d in args.drive) if args.drive else None
    code = run_nt(
        args.program,
        args.args,
        profile=args.nt_profile,
        drives=drives,
        trace=args.trace,
        flip_switch=args.flip_switch,
    )
    return code & 0xFF


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
    b.add_argument(
        "--trace-runs",
        type=int,
        default=3,
        help="rounds of the `pysud trace` vs strace rows (default 3; 0 skips them)",
    )
    b.add_argument(
        "--trace-count", type=int, default=20000, help="dd bs=1 count for the trace rows (default 20000)"
    )
    b.set_defaults(func=_bench)
    r = sub.add_parser(
        "run",
        help="run a Linux x86-64 program, or an x64 Windows one (PE), in this process, its system calls "
        "dispatched",
        description="Load PROGRAM into this Python process and run it natively; every system call it "
        "makes goes through a dispatcher whose default runs it natively. Exit status propagated.",
    )
    r.add_argument("--no-vdso", action="store_true", help="hide the vDSO: time calls become syscalls")
    r.add_argument(
        "--no-rewrite",
        action="store_true",
        help="keep every syscall site trapping (default: patch a trapped `mov $nr,%%eax; syscall` site of "
        "the program so later calls skip the kernel's SIGSYS; also PYSUD_REWRITE=0)",
    )
    r.add_argument(
        "--native-exec",
        action="store_true",
        help="let the program's execve replace the process natively (default: the new image is loaded "
        "in-process and stays intercepted)",
    )
    nt = r.add_argument_group("Windows (PE) programs")
    nt.add_argument("--trace", action="store_true", help="print each NT call, arguments decoded, to stderr")
    nt.add_argument(
        "--nt-profile", default="win11-23h2", help="Windows build whose syscall numbers ntdll uses"
    )
    nt.add_argument(
        "--drive",
        action="append",
        metavar="C=DIR",
        help="map a drive letter to a host directory (default: C: is a fresh scratch directory)",
    )
    nt.add_argument("--flip-switch", action="store_true", help="ntdll calls enter without a kernel trap")
    r.add_argument("program")
    r.add_argument("args", nargs=argparse.REMAINDER)
    r.set_defaults(func=_run)
    _trace_parser(sub)
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as e:  # the CLI reports, never dumps a traceback on a user
        from ._errors import PysudError
        from .trace import SpecError

        if isinstance(e, PysudError | OSError | SpecError):
            print(f"pysud: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
