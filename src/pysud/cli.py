"""The `pysud` command: check, bench, run, trace.

argparse parses every command line, with one exception kept for start-up's sake: a plain
``pysud run [--no-vdso] [--no-rewrite] [--native-exec] [--hooks FILE] PROGRAM [ARGS]`` is read
by :func:`_run_words`, which gives exactly the namespace argparse would (tests/test_cli.py
compares the two).  Anything else (help, an error, any other option) goes to argparse, so its
messages are argparse's.  argparse with gettext, locale and re, and the parsers built with them,
are ~8 ms of a ~60 ms `pysud run /usr/bin/true`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

#: ``typing`` and ``argparse`` only for the type checker: their imports are a visible part of
#: every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, measuring the terminal as shutil.get_terminal_size does without
    importing shutil (argparse makes a formatter for every option it adds: shutil and the
    compression modules it imports were a visible part of every `pysud` start-up)."""
    import argparse

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return argparse.HelpFormatter(prog, width=(columns or 80) - 2)


def _check(args: argparse.Namespace) -> int:
    from ._kernel import support

    s = support()
    if args.json:
        import json

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
    if args.nt_rounds > 0:
        from .nt.bench import measure_nt, render_nt

        nt_rows = measure_nt(iterations=args.iterations, rounds=args.nt_rounds)
        result["nt"] = nt_rows
        if not args.json:
            print("\n" + render_nt(nt_rows), flush=True)
    if args.nt_program_runs > 0:
        from .nt.bench import measure_nt_program, render_nt_program

        result["nt_program"] = program = measure_nt_program(runs=args.nt_program_runs)
        if not args.json:
            print("\n" + render_nt_program(program), flush=True)
    if args.program_runs > 0:
        result["programs"] = _bench_programs(args)
    if args.trace_runs > 0:
        from ._bench import measure_trace, render_trace

        traced = measure_trace(runs=args.trace_runs, count=args.trace_count)
        result["trace"] = traced
        if not args.json:
            print("\n" + render_trace(traced), flush=True)
    if args.exe_runs > 0:
        from ._bench import measure_nt_startup, render_nt_startup

        result["nt_startup"] = nt = measure_nt_startup(runs=args.exe_runs)
        if not args.json:
            print("\n" + render_nt_startup(nt), flush=True)
    if args.json:
        import json

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


def _hooks_setup(args: argparse.Namespace) -> Any:
    """--hooks FILE...: the files loaded now (their errors before anything runs), applied at setup."""
    if not args.hooks:
        return None
    from ._hooks import setup_for

    return setup_for(args.hooks)


def _run(args: argparse.Namespace) -> int:
    if _is_pe(args.program):
        return _run_nt(args)
    from ._linux import run_command

    setup = _hooks_setup(args)
    # a program that dies of a signal ends `pysud run` by the same signal (WIFSIGNALED)
    return run_command(
        args.program,
        args.args,
        vdso=not args.no_vdso,
        native_exec=args.native_exec,
        setup=setup,
        rewrite=False if args.no_rewrite else None,
    )


_STATUSES = ("successful", "failed", "unfinished", "unavailable", "detached")


def _trace_status(value: str) -> frozenset[str]:
    from .trace import SpecError

    negate = value.startswith("!")
    names = set(filter(None, (value[1:] if negate else value).split(",")))
    if "all" in names:
        names = set(_STATUSES)
    if "none" in names:
        names = set()
    bad = names - set(_STATUSES)
    if bad:
        raise SpecError(f"invalid status {sorted(bad)[0]!r} (one of {', '.join(_STATUSES)}, all, none)")
    return frozenset(set(_STATUSES) - names if negate else names)


def _trace_signals(value: str) -> frozenset[int]:
    import signal as _signal

    from .trace import SpecError

    negate = value.startswith("!")
    nums: set[int] = set()
    for item in filter(None, (value[1:] if negate else value).split(",")):
        if item == "all":
            nums.update(range(1, 65))
        elif item == "none":
            continue
        elif item.isdigit() and 0 < int(item) < 65:
            nums.add(int(item))
        else:
            name = item.upper() if item.upper().startswith("SIG") else "SIG" + item.upper()
            sig = getattr(_signal, name, None)
            if not isinstance(sig, int) or name.startswith("SIG_"):
                raise SpecError(f"invalid signal {item!r}")
            nums.add(int(sig))
    return frozenset(set(range(1, 65)) - nums if negate else nums)


def _trace(args: argparse.Namespace) -> int:
    from .trace import SpecError, TraceOptions, parse_inject, syscall_set, trace_program

    if args.attach is not None:
        raise SpecError(
            "-p (attach to a running process) cannot apply: pysud traces a program it runs in its own "
            "process, by Syscall User Dispatch, and cannot reach into another process; run the program "
            "under `pysud trace` instead, or use strace -p"
        )
    if args.program is None:
        raise SpecError("a program to run is required: pysud trace [options] PROGRAM [ARGS]")
    trace = None
    inject = []
    status = None
    signals = None
    if args.failed_only or args.successful_only:
        status = frozenset({"failed"} if args.failed_only else {"successful"})
    for expr in args.expr or []:
        key, eq, value = expr.partition("=")
        if not eq:
            key, value = "trace", expr
        if key in ("trace", "t"):
            trace = syscall_set(value)
        elif key == "inject":
            inject.append(parse_inject(value))
        elif key == "status":
            status = _trace_status(value)
        elif key in ("signal", "signals", "s"):
            signals = _trace_signals(value)
        else:
            raise SpecError(f"-e {key}=: only trace=, status=, signal= and inject= are supported")
    if args.sort_by not in ("time", "calls", "name", "errors", "avg-time", "min-time", "max-time", "nothing"):
        raise SpecError(
            f"-S {args.sort_by}: sort by time, calls, name, errors, avg-time, min-time, max-time or nothing"
        )
    opts = TraceOptions(
        output=args.output,
        follow=args.follow,
        strsize=args.strsize,
        fd_paths=args.fd_paths,
        durations=args.durations,
        timestamps=min(args.timestamps, 3),
        relative=args.relative,
        json=args.json,
        summary="C" if args.summary_and_lines else ("c" if args.summary else ""),
        summary_wall=args.wall,
        sort_by=args.sort_by,
        trace=trace,
        status=status,
        signals=signals,
        paths=tuple(args.paths or ()),
        inject=inject,
        timeline=args.timeline,
    )
    setup = _hooks_setup(args)
    # as strace: a program that dies of a signal ends `pysud trace` by the same signal
    return trace_program(
        args.program,
        args.args,
        opts,
        vdso=not args.no_vdso,
        setup=setup,
        die_with_program=True,
        rewrite=False if args.no_rewrite else None,
    )


def _trace_arguments(t: argparse.ArgumentParser) -> None:
    import argparse

    t.add_argument("-o", dest="output", metavar="FILE", help="write the trace to FILE (default: stderr)")
    t.add_argument("-f", dest="follow", action="store_true", help="follow forked children (and threads)")
    t.add_argument("-s", dest="strsize", type=int, default=32, metavar="N", help="string limit (default 32)")
    t.add_argument("-y", dest="fd_paths", action="store_true", help="print paths of file descriptors")
    t.add_argument("-T", dest="durations", action="store_true", help="time spent in each call")
    t.add_argument(
        "-t",
        dest="timestamps",
        action="count",
        default=0,
        help="time of day on each line; -tt with microseconds, -ttt in seconds since the epoch",
    )
    t.add_argument(
        "-r", dest="relative", action="store_true", help="time since the previous line on each line"
    )
    t.add_argument("-c", dest="summary", action="store_true", help="summary table only")
    t.add_argument("-C", dest="summary_and_lines", action="store_true", help="lines and summary table")
    t.add_argument(
        "-w",
        dest="wall",
        action="store_true",
        help="summary of wall-clock latency (pysud's -c always measures it: see docs/trace.md)",
    )
    t.add_argument(
        "-S", dest="sort_by", default="time", metavar="SORTBY", help="sort the summary (default: time)"
    )
    t.add_argument("-z", dest="successful_only", action="store_true", help="only calls that succeeded")
    t.add_argument("-Z", dest="failed_only", action="store_true", help="only calls that failed")
    t.add_argument(
        "-P", dest="paths", action="append", metavar="PATH", help="only calls that touch PATH (by name or fd)"
    )
    t.add_argument(
        "-e",
        dest="expr",
        action="append",
        metavar="EXPR",
        help="trace=SET (names, /regex, ?name, %%file %%process %%network %%memory %%signal %%desc %%ipc "
        "%%creds %%clock %%pure %%stat %%lstat %%fstat %%%%stat %%statfs %%fstatfs %%%%statfs, !negated), "
        "status=SET (successful failed unfinished), signal=SET, or "
        "inject=SET:error=ERRNO|retval=N[:when=first[..last][+step]]",
    )
    t.add_argument("-p", dest="attach", metavar="PID", help="not available: see the description")
    t.add_argument("--json", action="store_true", help="one JSON object per call")
    t.add_argument(
        "--timeline",
        metavar="FILE",
        help="also write the run as Chrome/Perfetto trace-event JSON (ui.perfetto.dev, chrome://tracing)",
    )
    t.add_argument("--no-vdso", action="store_true", help="hide the vDSO: time calls become syscalls")
    t.add_argument(
        "--no-rewrite",
        action="store_true",
        help="keep every syscall site trapping (default: patch a trapped `mov $nr,%%eax; syscall` site of "
        "the program so later calls skip the kernel's SIGSYS; also PYSUD_REWRITE=0)",
    )
    _hooks_option(t)
    t.add_argument("program", nargs="?")
    t.add_argument("args", nargs=argparse.REMAINDER)


def _hooks_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hooks",
        action="append",
        metavar="FILE",
        help="a Python file defining hooks(d), which registers handlers on the program's dispatcher "
        '(d.on("uname", handler)); a handler returning pysud.NATIVE passes the call on. Repeatable; '
        "see docs/guide.md",
    )


def _nt_environment() -> dict[str, str] | None:
    """A child of a Windows program gets the environment its parent gave (process creation)."""
    raw = os.environ.pop("PYSUD_NT_ENVIRONMENT", None)
    if raw is None:
        return None
    import json

    env = json.loads(raw)
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else None


def _run_nt(args: argparse.Namespace) -> int:
    """A Windows program (MZ): the NT personality; the exit code's low byte is the status."""
    from .nt import run as run_nt

    drives = dict(d.split("=", 1) for d in args.drive) if args.drive else None
    hooks = _hooks_setup(args)
    sink = None
    if args.trace_output or args.trace_timestamps or args.trace_durations or args.timeline:
        # the NT trace with pysud trace's options (nt/trace.py)
        from .nt.trace import NtTrace

        sink = NtTrace(
            output=args.trace_output,
            timestamps=args.trace_timestamps,
            durations=args.trace_durations,
            timeline=args.timeline,
            lines=bool(args.trace or args.trace_output or args.trace_timestamps or args.trace_durations),
        )

    def setup(nt: Any) -> None:
        if args.no_rewrite:
            nt.d.set_rewrite(False)  # (the personality switched it on, with its TEB locator)
        if hooks is not None:
            hooks(nt)
        if sink is not None:
            sink.attach(nt)  # after the hooks: their handlers are timed too

    report = os.environ.pop("PYSUD_NT_EXIT_FD", None)  # a parent pysud waits for the whole code
    try:
        code = run_nt(
            args.program,
            args.args,
            profile=args.nt_profile,
            drives=drives,
            trace=sink if sink is not None else args.trace,  # type: ignore[arg-type]
            flip_switch=args.flip_switch,
            setup=setup,
            ntdll=args.ntdll,
            dlls=args.dlls,
            prefix=args.prefix,
            command_line=args.nt_command_line,
            env=_nt_environment(),
        )
    finally:
        if sink is not None:
            sink.close()
    if report is not None and report.isdigit():
        import struct

        try:
            os.write(int(report), struct.pack("<I", code & 0xFFFFFFFF))
            os.close(int(report))
        except OSError:
            pass
    return code & 0xFF


def _check_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--json", action="store_true", help="one JSON object")


def _bench_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument("--json", action="store_true", help="one JSON object")
    b.add_argument("--iterations", type=int, default=20000, help="calls per measurement (default 20000)")
    b.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is reported")
    b.add_argument(
        "--nt-rounds",
        type=int,
        default=7,
        help="rounds of the NT call rows (one NT call with a Python handler per path; 0 skips them)",
    )
    b.add_argument(
        "--nt-program-runs",
        type=int,
        default=3,
        help="runs of the NT program rows (a mingw program's NtQuerySystemTime loop under `pysud run`; "
        "0 skips them)",
    )
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
        "--trace-count",
        type=int,
        default=40000,
        help="busybox dd bs=1 count for the trace rows (default 40000)",
    )
    b.add_argument(
        "--exe-runs",
        type=int,
        default=5,
        help="rounds of the hello.exe rows, pysud vs wine (default 5; 0 skips them)",
    )


def _run_arguments(r: argparse.ArgumentParser) -> None:
    import argparse

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
    nt.add_argument("--trace-output", metavar="FILE", help="the NT trace to FILE (as pysud trace -o)")
    nt.add_argument(
        "--trace-timestamps",
        type=int,
        choices=(1, 2, 3),
        default=0,
        help="time stamps on NT trace lines: 1 as -t, 2 as -tt, 3 as -ttt",
    )
    nt.add_argument("--trace-durations", action="store_true", help="time spent in each NT call (as -T)")
    nt.add_argument(
        "--timeline",
        metavar="FILE",
        help="the NT calls as Chrome/Perfetto trace-event JSON (as pysud trace --timeline)",
    )
    nt.add_argument(
        "--nt-profile",
        default=None,
        help="Windows build whose syscall numbers programs see (default: win11-23h2 on pysud's ntdll; "
        "on Wine's DLLs, Wine's own numbering unless a build is given)",
    )
    nt.add_argument(
        "--drive",
        action="append",
        metavar="C=DIR",
        help="map a drive letter to a host directory (default: C: is a fresh scratch directory)",
    )
    nt.add_argument(
        "--flip-switch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NT calls through ntdll enter without a kernel trap (default: with Wine's DLLs only)",
    )
    nt.add_argument(
        "--ntdll",
        choices=("auto", "wine", "builtin"),
        default="auto",
        help="wine: Wine's PE DLLs (ntdll, kernel32, msvcrt, ...); builtin: pysud's own ntdll "
        "(ntdll-only programs); auto (default): wine when installed",
    )
    nt.add_argument("--dlls", metavar="DIR", help="a directory of x64 PE DLLs to use instead of Wine's")
    nt.add_argument(
        "--nt-command-line", help=argparse.SUPPRESS
    )  # a child's exact command line (process creation)
    nt.add_argument(
        "--prefix",
        metavar="DIR",
        help="the prefix (drive_c, registry) for Wine's DLLs (default: $PYSUD_PREFIX or "
        "~/.local/share/pysud/prefix)",
    )
    _hooks_option(r)
    r.add_argument("program")
    r.add_argument("args", nargs=argparse.REMAINDER)


# name, what `pysud --help` says of it, the description of `pysud NAME --help` (None: the same),
# its handler, and what adds its options
_COMMANDS: tuple[tuple[str, str, str | None, Callable[[argparse.Namespace], int], Any], ...] = (
    (
        "check",
        "what this machine supports; exit status 1 if dispatch is unusable",
        None,
        _check,
        _check_arguments,
    ),
    ("bench", "ns per system call on each path, side by side", None, _bench, _bench_arguments),
    (
        "run",
        "run a Linux x86-64 program, or an x64 Windows one (PE), in this process, its system calls "
        "dispatched",
        "Load PROGRAM into this Python process and run it natively; every system call it makes goes through "
        "a dispatcher whose default runs it natively. Exit status propagated.",
        _run,
        _run_arguments,
    ),
    (
        "trace",
        "run a program in this process and print its system calls as strace does",
        "Run PROGRAM in this Python process (as `pysud run`) and print every system call it makes in "
        "strace's format, with strace's options. There is no -p PID: tracing works by Syscall User "
        "Dispatch inside the traced process itself, so it cannot attach to a process that is already "
        "running elsewhere.",
        _trace,
        _trace_arguments,
    ),
)


#: `pysud run`'s options that take no value, by their attribute, as :func:`_run_words` reads them
_RUN_FLAGS = {"--no-vdso": "no_vdso", "--no-rewrite": "no_rewrite", "--native-exec": "native_exec"}


def _run_words(words: list[str]) -> argparse.Namespace | None:
    """``run`` [flags] [--hooks FILE] PROGRAM [ARGS]: the namespace argparse gives, or None.

    None for anything else (an option written any other way, an abbreviation, ``--`` before or
    right after the program, ``-h``, a program whose name starts with ``-``, no program):
    argparse parses those, so its help and errors stay its own.  The defaults are
    _run_arguments's (tests/test_cli.py checks both agree on many command lines)."""
    if len(words) < 2 or words[0] != "run":
        return None
    values: dict[str, Any] = {
        "command": "run",
        "no_vdso": False,
        "no_rewrite": False,
        "native_exec": False,
        "trace": False,
        "trace_output": None,
        "trace_timestamps": 0,
        "trace_durations": False,
        "timeline": None,
        "nt_profile": None,
        "drive": None,
        "flip_switch": None,
        "ntdll": "auto",
        "dlls": None,
        "nt_command_line": None,
        "prefix": None,
        "hooks": None,
    }
    i = 1
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            break
        if word in _RUN_FLAGS:
            values[_RUN_FLAGS[word]] = True
        elif word == "--hooks" and i + 1 < len(words) and words[i + 1][:1] not in ("", "-"):
            i += 1
            values["hooks"] = [*(values["hooks"] or ()), words[i]]
        else:
            return None
        i += 1
    else:
        return None  # no program: argparse's error
    if words[i + 1 : i + 2] == ["--"]:
        return None  # (argparse takes a `--` right after the program away)
    import types

    values.update(program=words[i], args=words[i + 1 :], func=_run)
    return types.SimpleNamespace(**values)  # type: ignore[return-value]  # (argparse's, by duck typing)


def _parse(words: list[str]) -> argparse.Namespace:
    """The command line by argparse (exits with its message for help and errors)."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="pysud",
        description="Syscall User Dispatch for Python: native code at full speed, "
        "its system calls in Python. Not a security boundary.",
        formatter_class=_formatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    # Only the command given gets its options (a few dozen add_argument calls are a visible part
    # of every start-up); without a known command, every one does (help, errors).
    chosen = words[0] if words and words[0] in {c[0] for c in _COMMANDS} else None
    for name, summary, description, func, add_arguments in _COMMANDS:
        p = sub.add_parser(name, help=summary, description=description, formatter_class=_formatter)
        if chosen is None or chosen == name:
            add_arguments(p)
        p.set_defaults(func=func)
    return ap.parse_args(words)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = _run_words(words) or _parse(words)
    try:
        return int(args.func(args))
    except Exception as e:  # the CLI reports, never dumps a traceback on a user
        from ._errors import PysudError
        from .trace import SpecError

        if isinstance(e, PysudError | OSError | SpecError):
            print(f"pysud: {e}{_where_handler_raised(e)}", file=sys.stderr)
            return 2
        raise


def _where_handler_raised(e: BaseException) -> str:
    """For a HandlerError: `` (FILE:LINE)`` of the innermost frame of the handler outside pysud."""
    import os
    import traceback

    from ._errors import HandlerError

    cause = e.__cause__
    if not isinstance(e, HandlerError) or cause is None:
        return ""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frames = [f for f in traceback.extract_tb(cause.__traceback__) if not f.filename.startswith(package)]
    return f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def entry() -> NoReturn:
    """The ``pysud`` command (and ``python -m pysud``): :func:`main`, then out.

    When the program has ended and no other thread runs, the interpreter's own teardown (freeing
    every module and object, ~10-15 ms: a fifth of `pysud run /usr/bin/true`) is skipped: the
    exit functions run (the start-up cache, a hooks file's), the standard streams are flushed,
    and the process ends with the status.  Otherwise (threads left) Python exits as usual."""
    import _thread

    status = main()
    # no Python thread left: none started (_thread's count, threading's threads included), and
    # none threading knows of (a program's thread that asked a handler for call.thread)
    threading = sys.modules.get("threading")
    if _thread._count() == 0 and (threading is None or threading.active_count() == 1):
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status & 0xFF)
    sys.exit(status)


if __name__ == "__main__":
    entry()
