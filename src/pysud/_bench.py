"""`pysud bench`: ns per system call on each path, measured side by side in one run.

Rows are measured in interleaved rounds (every row once per round) and the
median round is reported, so drift in machine load hits all rows alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from . import _core
from ._dispatch import NATIVE, Dispatcher

NR_GETPPID = 110  # cheap, no arguments, no side effects


@dataclass
class Row:
    key: str
    label: str
    ns: float = 0.0


def _rows() -> list[Row]:
    return [
        Row("native", "native (thread not armed)"),
        Row("allow", "armed, selector ALLOW"),
        Row("floor", "floor: minimal C SIGSYS handler"),
        Row("floor_native", "floor + running the call natively"),
        Row("fast_native", "dispatched, fast path NATIVE (no Python)"),
        Row("python_return", "dispatched, Python handler returns a value"),
        Row("python_native", "dispatched, Python handler returns NATIVE"),
        Row("direct_fast", "flip switch, fast path NATIVE (no Python)"),
        Row("direct_python", "flip switch, Python handler returns a value"),
        Row("rewrite_fast", "rewritten site, fast path NATIVE (no Python)"),
        Row("rewrite_python", "rewritten site, Python handler returns a value"),
    ]


# f(thread, entry, n): n getppid calls through sud_direct_entry, as a compatibility boundary
# (an ntdll stub) makes them:  push rbx; push r12; mov rbx, rdx; mov r12, rsi; mov r8, rdi;
# 1: mov eax, 110; mov rcx, r8; lea r11, [rip + 2f]; jmp r12; 2: dec rbx; jnz 1b;
# pop r12; pop rbx; ret
DIRECT_LOOP = bytes.fromhex("5341544889d34989f44989f8b86e0000004c89c14c8d1d0300000041ffe448ffcb75e9415c5bc3")
# f(n): n getppid calls from one `mov eax, 110; syscall` site, which the core rewrites after its
# first trap:  1: mov eax, 110; syscall; dec rdi; jnz 1b; ret
SITE_LOOP = bytes.fromhex("b86e0000000f0548ffcf75f4c3")


def measure(iterations: int = 20000, rounds: int = 7) -> dict[str, object]:
    nr = NR_GETPPID
    fast = Dispatcher()
    fast.set_fast(nr, NATIVE)
    py_ret = Dispatcher()
    py_ret.on(nr, lambda call: 0)
    py_nat = Dispatcher()

    py_nat.on(nr, lambda call: NATIVE)

    def armed(d: Dispatcher, block: bool) -> Callable[[], int]:
        def run() -> int:
            d.arm_thread()
            return int(_core.bench_loop(nr, iterations, block))

        return run

    def native() -> int:
        _core.disarm()
        return int(_core.bench_loop(nr, iterations, False))

    def floor() -> int:
        fast.arm_thread()
        return int(_core.bench_floor(nr, iterations))

    def floor_native() -> int:
        fast.arm_thread()
        return int(_core.bench_floor(nr, iterations, True))

    import ctypes
    import time

    code_addr, code_size = _core.map_code(DIRECT_LOOP)
    loop = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)(code_addr)
    entry = _core.direct_entry_address()

    def direct(d: Dispatcher) -> Callable[[], int]:
        def run() -> int:
            d.arm_thread()
            thread = _core.thread_block()
            t0 = time.perf_counter_ns()
            loop(thread, entry, iterations)
            return time.perf_counter_ns() - t0

        return run

    from ._native import CodeBlob

    site_loop = CodeBlob(SITE_LOOP, nargs=1)
    for d in (fast, py_ret):
        d.set_rewrite(True)  # whatever PYSUD_REWRITE says: this row is about the rewritten path

    def rewritten(d: Dispatcher) -> Callable[[], int]:
        def run() -> int:
            t0 = time.perf_counter_ns()
            site_loop.run(d, [iterations])
            return time.perf_counter_ns() - t0

        return run

    runs: dict[str, Callable[[], int]] = {
        "native": native,
        "allow": armed(fast, False),
        "floor": floor,
        "floor_native": floor_native,
        "fast_native": armed(fast, True),
        "python_return": armed(py_ret, True),
        "python_native": armed(py_nat, True),
        "direct_fast": direct(fast),
        "direct_python": direct(py_ret),
        "rewrite_fast": rewritten(fast),
        "rewrite_python": rewritten(py_ret),
    }
    rows = _rows()
    samples: dict[str, list[float]] = {r.key: [] for r in rows}
    for fn in runs.values():  # warm-up: first arming, first Python calls
        fn()
    for _ in range(rounds):
        for row in rows:
            samples[row.key].append(runs[row.key]() / iterations)
    _core.disarm()
    _core.unmap(code_addr, code_size)
    py_ret.check()
    py_nat.check()
    for row in rows:
        row.ns = statistics.median(samples[row.key])
    by = {r.key: r.ns for r in rows}
    return {
        "syscall": "getppid",
        "iterations": iterations,
        "rounds": rounds,
        "ns_per_call": by,
        "ratios": {
            "allow_over_native_ns": by["allow"] - by["native"],
            "fast_native_over_floor": by["fast_native"] / by["floor"],
            "python_return_over_floor": by["python_return"] / by["floor"],
            "python_native_over_floor": by["python_native"] / by["floor"],
            "python_native_over_floor_native": by["python_native"] / by["floor_native"],
            "fast_native_over_floor_native": by["fast_native"] / by["floor_native"],
            "direct_python_over_trap_python": by["direct_python"] / by["python_return"],
            "rewrite_python_over_floor": by["rewrite_python"] / by["floor"],
            "rewrite_fast_over_native": by["rewrite_fast"] / by["native"],
        },
        "targets": {
            "python_over_floor_max": 1.3,
            "python_return_met": by["python_return"] / by["floor"] <= 1.3,
            "python_native_met": by["python_native"] / by["floor_native"] <= 1.3,
            "rewrite_python_over_floor_max": 0.35,
            "rewrite_python_met": by["rewrite_python"] / by["floor"] <= 0.35,
            "rewrite_fast_over_native_max": 3.0,
            "rewrite_fast_met": by["rewrite_fast"] / by["native"] <= 3.0,
        },
        "labels": {r.key: r.label for r in rows},
    }


def render(result: dict[str, object]) -> str:
    ns = result["ns_per_call"]
    labels = result["labels"]
    assert isinstance(ns, dict) and isinstance(labels, dict)
    floor = ns["floor"]
    native = ns["native"]
    lines = [
        f"pysud bench: {result['syscall']} x {result['iterations']}, median of {result['rounds']} "
        "interleaved rounds",
        f"{'path':<46} {'ns/call':>9} {'x native':>9} {'x floor':>8}",
        "-" * 75,
    ]
    for key, label in labels.items():
        v = ns[key]
        lines.append(f"{label:<46} {v:>9.0f} {v / native:>9.2f} {v / floor:>8.2f}")
    ratios = result["ratios"]
    assert isinstance(ratios, dict)
    lines.append("-" * 75)
    lines.append(
        f"ALLOW path adds {ratios['allow_over_native_ns']:.0f} ns over native (the kernel's selector read)"
    )
    lines.append(
        f"Python handler: {ratios['python_return_over_floor']:.2f}x the floor (returns a value), "
        f"{ratios['python_native_over_floor_native']:.2f}x the floor that also runs the call (NATIVE); "
        "target <= 1.30x"
    )
    lines.append(
        f"Flip switch (no kernel trap): {ratios['direct_python_over_trap_python']:.2f}x the trap path "
        "with the same Python handler"
    )
    lines.append(
        f"Rewritten site: Python handler {ratios['rewrite_python_over_floor']:.2f}x the floor (target "
        f"<= 0.35x), fast path {ratios['rewrite_fast_over_native']:.2f}x native (target <= 3x)"
    )
    return "\n".join(lines)


# ---- whole programs: `pysud run` start-up and a syscall-heavy program, wall time per run


@dataclass
class ProgramRow:
    key: str
    label: str
    argv: list[str]
    group: str  # rows in a group are compared with the group's first row
    seconds: float = 0.0
    env: dict[str, str] | None = None  # set in the environment for this row


def pysud_command() -> list[str]:
    """The `pysud` command as a user runs it: the script pip installed next to this interpreter
    (scripts/pysud) when it runs with this interpreter, else ``python -m pysud`` (which imports
    runpy's modules besides)."""
    import os
    import sys

    here = os.path.dirname(sys.executable)
    script = os.path.join(here, "pysud")
    try:
        with open(script, "rb") as f:
            interp = os.fsdecode(f.readline()[2:].strip())
    except OSError:
        interp = ""
    # (a venv's python and python3 are the same interpreter)
    same = os.path.dirname(interp) == here and os.path.realpath(interp) == os.path.realpath(sys.executable)
    if same and os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "pysud"]


def _program_rows(count: int) -> tuple[list[ProgramRow], list[str]]:
    """The rows this machine can measure, and notes on the ones it cannot."""
    import shutil
    import sys

    py = sys.executable
    true = shutil.which("true") or "/bin/true"
    run = [*pysud_command(), "run"]
    rows = [
        ProgramRow("true_native", f"native {true}", [true], "start-up"),
        ProgramRow("python_floor", "python3 -c pass (Python itself)", [py, "-c", "pass"], "start-up"),
        ProgramRow(
            "python_import",
            "python3 -c 'import pysud' (the CLI's floor)",
            [py, "-c", "import pysud"],
            "start-up",
        ),
        ProgramRow("true_pysud", f"pysud run {true} (warm cache)", [*run, true], "start-up"),
        ProgramRow(
            "true_pysud_cold",
            f"PYSUD_CACHE=0 pysud run {true} (cold)",
            [*run, true],
            "start-up",
            env={"PYSUD_CACHE": "0"},
        ),
        ProgramRow("true_inprocess", f"pysud.run({true!r}) in this process", [], "start-up"),
    ]
    notes = []
    dd = shutil.which("dd")
    if dd is None:
        notes.append("no dd on PATH: syscall-heavy rows skipped")
        return rows, notes
    heavy = [dd, "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}"]
    rows += [
        ProgramRow("dd_native", f"native dd bs=1 count={count}", heavy, "heavy"),
        ProgramRow("dd_pysud", "pysud run dd (every call through the dispatcher)", [*run, *heavy], "heavy"),
        ProgramRow(
            "dd_pysud_trap",
            "pysud run --no-rewrite dd (every call a SIGSYS)",
            [*run, "--no-rewrite", *heavy],
            "heavy",
        ),
    ]
    strace = shutil.which("strace")
    if strace is None:
        notes.append("strace not installed: no strace row (apt-get install strace)")
    else:
        rows.append(
            ProgramRow(
                "dd_strace", "strace -f -o /dev/null dd", [strace, "-f", "-o", "/dev/null", *heavy], "heavy"
            )
        )
    return rows, notes


def measure_programs(runs: int = 10, heavy_runs: int = 3, count: int = 20000) -> dict[str, object]:
    """Median wall time per run of each program row, in interleaved rounds.

    Start-up rows run ``runs`` times, the syscall-heavy rows (``dd bs=1``: one read and one
    write per byte) ``heavy_runs`` times.  Subprocess rows include the interpreter's start-up,
    which the ``python3 -c 'import pysud'`` row measures alone.
    """
    import os
    import subprocess
    import time

    from ._errors import PysudError
    from ._linux import run as run_program

    rows, notes = _program_rows(count)
    d = Dispatcher()
    true_path = rows[0].argv[0]

    def once(row: ProgramRow) -> float:
        t0 = time.perf_counter()
        if not row.argv:
            status = run_program(true_path, dispatcher=d)
        else:
            env = {**os.environ, **row.env} if row.env else None
            done = subprocess.run(row.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            status = done.returncode
        t = time.perf_counter() - t0
        if status != 0:
            raise PysudError(f"bench: {' '.join(row.argv) or row.label} failed with status {status}")
        return t

    samples: dict[str, list[float]] = {r.key: [] for r in rows}
    for row in rows:  # warm-up: page cache, first imports
        once(row)
    for i in range(max(runs, heavy_runs)):
        for row in rows:
            if i < (runs if row.group == "start-up" else heavy_runs):
                samples[row.key].append(once(row))
    _core.disarm()
    d.check()
    for row in rows:
        row.seconds = statistics.median(samples[row.key])
    by = {r.key: r.seconds for r in rows}
    marginal: dict[str, float] = {}
    calls = 2 * count  # dd bs=1: a read and a write per byte
    if "dd_pysud" in by:
        # start-up taken out on both sides: what each extra system call costs under pysud run
        extra = (by["dd_pysud"] - by["true_pysud"]) - (by["dd_native"] - by["true_native"])
        marginal["pysud_us_per_call"] = extra / calls * 1e6
    if "dd_pysud_trap" in by:
        extra = (by["dd_pysud_trap"] - by["true_pysud"]) - (by["dd_native"] - by["true_native"])
        marginal["pysud_trap_us_per_call"] = extra / calls * 1e6
    if "dd_strace" in by:
        marginal["strace_us_per_call"] = (by["dd_strace"] - by["dd_native"]) / calls * 1e6
    return {
        "runs": runs,
        "heavy_runs": heavy_runs,
        "dd_count": count,
        "seconds_per_run": by,
        "marginal": marginal,
        "labels": {r.key: r.label for r in rows},
        "groups": {r.key: r.group for r in rows},
        "notes": notes,
    }


def render_programs(result: dict[str, object]) -> str:
    secs = result["seconds_per_run"]
    labels = result["labels"]
    groups = result["groups"]
    marginal = result["marginal"]
    notes = result["notes"]
    assert isinstance(secs, dict) and isinstance(labels, dict) and isinstance(groups, dict)
    assert isinstance(marginal, dict) and isinstance(notes, list)
    lines = [
        f"pysud run: wall time per run, median of {result['runs']} (start-up) / {result['heavy_runs']} "
        "(syscall-heavy) interleaved rounds",
        f"{'program':<56} {'ms/run':>9} {'x native':>9}",
        "-" * 76,
    ]
    first: dict[str, float] = {}
    for key, label in labels.items():
        base = first.setdefault(groups[key], secs[key])
        lines.append(f"{label:<56} {secs[key] * 1e3:>9.1f} {secs[key] / base:>9.1f}")
    lines.append("-" * 76)
    if "pysud_us_per_call" in marginal:
        lines.append(
            f"per system call over native (start-up subtracted): pysud run "
            f"{marginal['pysud_us_per_call']:.2f} us"
            + (
                f" (--no-rewrite {marginal['pysud_trap_us_per_call']:.2f} us)"
                if "pysud_trap_us_per_call" in marginal
                else ""
            )
            + (
                f", strace {marginal['strace_us_per_call']:.2f} us"
                if "strace_us_per_call" in marginal
                else ""
            )
        )
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


# ---- `pysud trace` against strace: a syscall-heavy program traced to a file


def _trace_rows(count: int, out: str) -> tuple[list[ProgramRow], list[str]]:
    import os
    import shutil
    import sys

    notes: list[str] = []
    # busybox's dd (static: no loader, the calls are dd's own) where installed, else coreutils'
    busybox = shutil.which("busybox")
    dd = [busybox, "dd"] if busybox else [shutil.which("dd") or "dd"]
    strace = shutil.which("strace")
    taskset = shutil.which("taskset")
    if (not busybox and not shutil.which("dd")) or strace is None:
        return [], ["dd or strace missing: no trace rows (apt-get install busybox-static strace)"]
    if not busybox:
        notes.append("busybox missing: coreutils dd instead (apt-get install busybox-static)")
    rows: list[ProgramRow] = []
    pin = [taskset, "-c", "0"] if taskset else None
    if pin is None:
        notes.append("taskset missing: no pinned rows")
    for n in (0, count):
        heavy = [*dd, "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}"]
        tools = [
            ("native", f"native {os.path.basename(dd[0])} dd", heavy),
            (
                "pysud",
                "pysud trace -f -o FILE dd",
                [sys.executable, "-m", "pysud", "trace", "-f", "-o", out, *heavy],
            ),
            ("strace", "strace -f -o FILE dd", [strace, "-f", "-o", out, *heavy]),
        ]
        for key, label, argv in tools:
            rows.append(ProgramRow(f"{key}_{n}", f"{label} count={n}", argv, "default"))
            if pin is not None:
                rows.append(
                    ProgramRow(
                        f"{key}_{n}_pinned", f"taskset -c 0 {label} count={n}", [*pin, *argv], "pinned"
                    )
                )
    return rows, notes


def measure_trace(runs: int = 3, count: int = 40000) -> dict[str, object]:
    """Wall time of dd bs=1 (a read and a write per byte) traced to a file by `pysud trace` and by
    strace, as run by default and pinned to one CPU, in interleaved rounds; the per-call cost is the
    slope between count=0 and count=N runs (start-up taken out), and where pysud's time goes."""
    import os
    import subprocess
    import tempfile
    import time

    from ._errors import PysudError

    fd, out = tempfile.mkstemp(prefix="pysud-bench-trace-")
    os.close(fd)
    try:
        rows, notes = _trace_rows(count, out)

        def once(row: ProgramRow) -> float:
            t0 = time.perf_counter()
            env = {**os.environ, **row.env} if row.env else None
            done = subprocess.run(row.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            t = time.perf_counter() - t0
            if done.returncode != 0:
                raise PysudError(
                    f"bench: {' '.join(row.argv)} failed: {done.stderr.decode(errors='replace')}"
                )
            return t

        samples: dict[str, list[float]] = {r.key: [] for r in rows}
        for i in range(2 * runs + 1):  # start-up rows (count=0) are cheap and noisy: more of them
            for row in rows:
                if i < runs or row.key.split("_")[1] == "0":
                    samples[row.key].append(once(row))
        by = {r.key: statistics.median(samples[r.key]) for r in rows}
        calls = 2 * count
        per_call: dict[str, float] = {}
        for key in ("native", "pysud", "strace"):
            for sfx in ("", "_pinned"):
                if f"{key}_{count}{sfx}" in by:
                    per_call[f"{key}{sfx}"] = (by[f"{key}_{count}{sfx}"] - by[f"{key}_0{sfx}"]) / calls * 1e6
        breakdown = _trace_breakdown(count)
    finally:
        os.unlink(out)
    return {
        "runs": runs,
        "dd_count": count,
        "seconds_per_run": by,
        "us_per_call": per_call,
        "labels": {r.key: r.label for r in rows},
        "breakdown": breakdown,
        "notes": notes,
    }


def _trace_breakdown(count: int) -> dict[str, float]:
    """Where `pysud trace`'s time per call goes, measured in this process (µs per call)."""
    import os
    import shutil
    import tempfile
    import time

    from ._linux import LinuxPersonality, find_program
    from .trace import TraceOptions, Tracer

    dd = shutil.which("busybox") or shutil.which("dd")  # argv[0] "dd": busybox runs its dd
    if dd is None:
        return {}
    spent = {"decode": 0.0, "output": 0.0}

    class Timed(Tracer):
        def _consume(self, data: bytes) -> None:
            t0 = time.perf_counter()
            super()._consume(data)
            spent["decode"] += time.perf_counter() - t0

    def run(n: int, traced: bool) -> float:
        fd, out = tempfile.mkstemp(prefix="pysud-bench-trace-")
        os.close(fd)
        try:
            d = Dispatcher()
            p = LinuxPersonality(d)
            # decoding in line (no decoder thread), so its cost can be measured
            tracer = Timed(TraceOptions(output=out, follow=True, background=False)) if traced else None
            if tracer is not None:
                tracer.attach(d, record=True)
                o = tracer.out
                assert o is not None
                flush = o._flush

                def timed_flush() -> None:
                    t0 = time.perf_counter()
                    flush()
                    spent["output"] += time.perf_counter() - t0

                o._flush = timed_flush  # type: ignore[method-assign]
            argv = [b"dd", b"if=/dev/zero", b"of=/dev/null", b"bs=1", f"count={n}".encode()]
            devnull = os.open(os.devnull, os.O_WRONLY)
            saved = os.dup(2)
            os.dup2(devnull, 2)
            t0 = time.perf_counter()
            try:
                p.run(find_program(dd), argv, [])
                if tracer is not None:
                    tracer.finish()
            finally:
                t = time.perf_counter() - t0
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)
            return t
        finally:
            os.unlink(out)

    calls = 2 * count
    run(100, True)  # warm-up
    spent["decode"] = spent["output"] = 0.0
    untraced = run(count, False) - run(0, False)
    spent["decode"] = spent["output"] = 0.0
    traced = run(count, True)
    decode, output = spent["decode"], spent["output"]
    spent["decode"] = spent["output"] = 0.0
    traced -= run(0, True) - spent["decode"] - spent["output"]
    floor = _core.bench_floor(NR_GETPPID, 20000) / 20000 / 1e3
    return {
        "total": traced / calls * 1e6,
        "sigsys_floor": floor,
        "run_untraced": untraced / calls * 1e6,
        "record": (traced - untraced - decode - output) / calls * 1e6,
        "decode": (decode - output) / calls * 1e6 if decode > output else decode / calls * 1e6,
        "output": output / calls * 1e6,
    }


def render_trace(result: dict[str, object]) -> str:
    secs = result["seconds_per_run"]
    labels = result["labels"]
    per = result["us_per_call"]
    bd = result["breakdown"]
    notes = result["notes"]
    assert isinstance(secs, dict) and isinstance(labels, dict) and isinstance(per, dict)
    assert isinstance(bd, dict) and isinstance(notes, list)
    n = int(result["dd_count"])  # type: ignore[call-overload]
    lines = [
        f"pysud trace vs strace: dd bs=1 count={n} ({2 * n} calls) traced to a file, median of "
        f"{result['runs']} interleaved rounds",
        f"{'run':<72} {'s/run':>8}",
        "-" * 81,
    ]
    for key, label in labels.items():
        if key.split("_")[1] != "0":
            lines.append(f"{label:<72} {secs[key]:>8.2f}")
    lines.append("-" * 81)
    for sfx, name in (("", "as run by default"), ("_pinned", "pinned to one CPU (taskset -c 0)")):
        if f"pysud{sfx}" in per and f"strace{sfx}" in per:
            whole = secs[f"strace_{n}{sfx}"] / secs[f"pysud_{n}{sfx}"]
            lines.append(
                f"{name}: per call pysud {per[f'pysud{sfx}']:.2f} us, strace {per[f'strace{sfx}']:.2f} us "
                f"-> {per[f'strace{sfx}'] / per[f'pysud{sfx}']:.1f}x faster (whole run {whole:.1f}x)"
            )
    if bd:
        lines.append(
            "where pysud trace's time per call goes (in-process, us): "
            f"total {bd['total']:.2f} = the untraced run {bd['run_untraced']:.2f} (dispatch, native call "
            f"and dd's own work, on rewritten sites; a trapping site adds the SIGSYS round trip, "
            f"{bd['sigsys_floor']:.2f}) + recording in C {bd['record']:.2f} "
            f"+ decoding/formatting {bd['decode']:.2f} "
            f"+ output {bd['output']:.2f} (decoding measured in line; `pysud trace` decodes on a thread of "
            "its own where the process may use more than one CPU, off the program's per-call path)"
        )
    lines += [f"note: {x}" for x in notes]
    return "\n".join(lines)


# ---- a Windows program: hello.exe (mingw, msvcrt) start to exit under pysud and under wine

#: the program of the rows (tests/nt/wine/hello.c): printf through msvcrt, argv, status 42
HELLO_C = r"""/* printf through msvcrt, argv, the exit status from main. */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("hello from a mingw program, %d arguments\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    fflush(stdout);
    return 42;
}
"""
HELLO_STATUS = 42
#: a row of measure_nt_startup: (label, argv, environment or None for this one's, exit status)
_Command = tuple[str, list[str], "dict[str, str] | None", int]


def find_wine() -> str | None:
    """Wine's 64-bit loader (Debian installs it off PATH), or None."""
    import os
    import shutil

    for w in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine")):
        if w and os.path.exists(w):
            return w
    return None


class WarmWine:
    """A throw-away WINEPREFIX whose wineserver stays up (``wineserver -p``) while the object is
    open, as a Wine user has it after a first program; ``env`` runs programs in it."""

    def __init__(self, wine: str, directory: str) -> None:
        import os
        import subprocess

        self.wine = wine
        self.server = os.path.join(os.path.dirname(wine), "wineserver")
        self.env = dict(os.environ, WINEPREFIX=os.path.join(directory, "wine"), WINEDEBUG="-all")
        null = subprocess.DEVNULL  # no pipes: the server forks and stays, holding what it inherited
        os.makedirs(self.env["WINEPREFIX"], exist_ok=True)  # the server starts in it
        if os.path.exists(self.server):  # first, so that wineboot's programs use it
            subprocess.run([self.server, "-p"], env=self.env, stdout=null, stderr=null, timeout=60)
        subprocess.run([wine, "wineboot", "-i"], env=self.env, stdout=null, stderr=null, timeout=600)

    def close(self) -> None:
        """Stop the wineserver and wait until it saved the prefix (before its directory goes)."""
        import os
        import subprocess

        if os.path.exists(self.server):
            for flag in ("-k", "-w"):
                subprocess.run([self.server, flag], env=self.env, stdout=subprocess.DEVNULL, timeout=60)


def measure_nt_startup(runs: int = 5) -> dict[str, object]:
    """Wall time of hello.exe (mingw, printf through msvcrt) from start to exit: `pysud run` on
    Wine's DLLs in a warm prefix, the first run in a new prefix, and `wine` with a warm wineserver;
    `pysud run /usr/bin/true` is Python's and the CLI's floor.  Medians of interleaved rounds."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    import time

    from ._errors import PysudError
    from .nt.prefix import find_wine_dlls

    notes: list[str] = []
    cc = shutil.which("x86_64-w64-mingw32-gcc")
    dlls = find_wine_dlls()
    wine = find_wine()
    if cc is None:
        notes.append("x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64): no hello.exe rows")
    if dlls is None:
        notes.append("no Wine PE DLLs (wine64 8.0+): no `pysud run hello.exe` row")
    if wine is None:
        notes.append("wine not installed: no wine row")
    true = shutil.which("true") or "/bin/true"
    rows: dict[str, _Command] = {}
    first: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pysud-bench-nt-", ignore_cleanup_errors=True) as tmp:
        rows["true_pysud"] = (
            f"pysud run {true} (the Python floor)",
            [sys.executable, "-m", "pysud", "run", true],
            None,
            0,
        )
        warm = None
        cold: _Command | None = None
        if cc is not None:
            src, exe = os.path.join(tmp, "hello.c"), os.path.join(tmp, "hello.exe")
            with open(src, "w") as f:
                f.write(HELLO_C)
            subprocess.run([cc, "-O2", "-o", exe, src], check=True)
            if dlls is not None:
                run = [sys.executable, "-m", "pysud", "run", "--ntdll", "wine", "--prefix"]
                rows["hello_pysud"] = (
                    "pysud run hello.exe (Wine's DLLs, warm prefix)",
                    [*run, os.path.join(tmp, "prefix"), exe],
                    None,
                    HELLO_STATUS,
                )
                cold = ("", [*run, os.path.join(tmp, "cold"), exe], None, HELLO_STATUS)
            if wine is not None:
                warm = WarmWine(wine, tmp)
                rows["hello_wine"] = ("wine hello.exe (warm wineserver)", [wine, exe], warm.env, HELLO_STATUS)

        def once(row: _Command) -> float:
            _label, argv, env, status = row
            t0 = time.perf_counter()
            done = subprocess.run(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=600
            )
            t = time.perf_counter() - t0
            if done.returncode != status:
                raise PysudError(
                    f"bench: {' '.join(argv)} exited with {done.returncode}, not {status}: "
                    + done.stderr.decode(errors="replace")[-400:]
                )
            return t

        try:
            if cold is not None:  # one run only: a new prefix is made once
                first["hello_pysud_cold"] = once(cold)
            samples: dict[str, list[float]] = {k: [] for k in rows}
            for row in rows.values():  # warm-up: page cache, the prefix's cache, the wineserver
                once(row)
            for _ in range(runs):
                for key, row in rows.items():
                    samples[key].append(once(row))
        finally:
            if warm is not None:
                warm.close()
    by = {k: statistics.median(v) for k, v in samples.items()}
    by.update(first)
    return {
        "runs": runs,
        "seconds_per_run": by,
        "labels": {k: label for k, (label, _a, _e, _s) in rows.items()},
        "notes": notes,
    }


def render_nt_startup(result: dict[str, object]) -> str:
    secs = result["seconds_per_run"]
    labels = result["labels"]
    notes = result["notes"]
    assert isinstance(secs, dict) and isinstance(labels, dict) and isinstance(notes, list)
    lines = [
        f"a Windows program, start to exit: median of {result['runs']} interleaved rounds",
        f"{'program':<56} {'ms/run':>9} {'x wine':>9}",
        "-" * 76,
    ]
    wine = secs.get("hello_wine")
    for key, label in labels.items():
        ratio = f"{secs[key] / wine:>9.2f}" if wine else f"{'-':>9}"
        lines.append(f"{label:<56} {secs[key] * 1e3:>9.1f} {ratio}")
    lines.append("-" * 76)
    if "hello_pysud_cold" in secs:
        lines.append(
            f"first pysud run in a new prefix (makes drive_c, the registry, the image cache): "
            f"{secs['hello_pysud_cold'] * 1e3:.0f} ms"
        )
    import sys

    if sys.flags.dont_write_bytecode:
        lines.append(
            "note: PYTHONDONTWRITEBYTECODE is set: a module without a current .pyc is compiled in every run"
        )
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
