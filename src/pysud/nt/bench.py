"""`pysud bench` NT rows: one NT call (NtQuerySystemTime, pysud's own Python handler) on each path.

In-process, without a Windows program file: a loop calls an ntdll-style stub the way a program
calls ntdll's export (Windows x64 convention), and runs as a program's thread does: entered through
the personality's call thunk (``run_guest``: the program's signals virtual, the core's fault
handler installed, so handlers read and write the program's memory with the checked plain copy).
The stub reaches the personality's handler on one path:

- trap: the stub's own ``syscall`` (SIGSYS; the core's site rewriting off for this row);
- flip switch, pysud's ntdll: the stub jumps to a trampoline that enters the core's direct entry
  with RCX = the thread block and R11 = a ``ret`` (nt/ntdll.py; the real one loads RCX from the TEB);
- flip switch, Wine's stub: ``call [slot]``, the slot holding pysud's entry that pops the return
  address into R11 (nt/wine.py, ``build_helpers``; Wine's stubs call through 0x7ffe1000);
- the same with the stub outside the core's kept range and a Windows build's number, renumbered
  to the personality's (the Windows-numbered stubs beside Wine's ntdll, ``--nt-profile``).

Rows are measured in interleaved rounds and the median round is reported; the ratio is to a
native Linux system call in the same loop harness (getppid, thread not armed).
"""

from __future__ import annotations

import ctypes
import statistics
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import _core
from .. import _memory as memory
from .._native import CodeBlob

if TYPE_CHECKING:
    from .personality import NtPersonality

NR_GETPPID = 110
#: f(stub, n, out) (Windows x64): n times stub(out):  push rbx, rsi, rdi; sub rsp, 0x20;
#: mov rbx, rcx; mov rsi, rdx; mov rdi, r8; 1: mov rcx, rdi; call rbx; dec rsi; jnz 1b;
#: add rsp, 0x20; pop rdi, rsi, rbx; ret
LOOP = bytes.fromhex("5356574883ec204889cb4889d64c89c74889f9ffd348ffce75f64883c4205f5e5bc3")
#: the same from a native call outside a run: f(stub, n, stack_top, out) (SysV), on the stack
#: below stack_top:  push rbx, r12, r13, rbp; mov rbp, rsp; mov rsp, rdx; mov rbx, rdi;
#: mov r12, rsi; mov r13, rcx; sub rsp, 0x30; 1: mov rcx, r13; call rbx; dec r12; jnz 1b;
#: mov rsp, rbp; pop rbp, r13, r12, rbx; ret
LOOP_SYSV = bytes.fromhex(
    "5341544155554889e54889d44889fb4989f44989cd4883ec304c89e9ffd349ffcc75f64889ec5d415d415c5bc3"
)
ROWS = {
    "trap": "NT call, trap (the stub's syscall, SIGSYS)",
    "flip_builtin": "NT call, flip switch (pysud's ntdll stub)",
    "flip_wine": "NT call, flip switch (Wine's stub: call [slot])",
    "flip_renumbered": "NT call, flip switch, Windows-numbered stub (renumbered)",
    "flip_wine_empty": "the same path as Wine's stub, a handler that only returns 0",
}
STACK = 1 << 20
#: A mingw program (kernel32, msvcrt, ntdll imports) that makes N NtQuerySystemTime calls through
#: its ntdll import (Wine's stub, as any program's call reaches it) and times them with
#: QueryPerformanceCounter: prints "<ns per call> <last status> <the time it got>".  Its first
#: min(N, 1000) calls are a warm-up.
PROGRAM_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

NTSTATUS NTAPI NtQuerySystemTime(LARGE_INTEGER *);

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    LARGE_INTEGER f, t0, t1, now;
    NTSTATUS s = 0;
    QueryPerformanceFrequency(&f);
    for (long i = 0; i < n && i < 1000 && !s; i++)
        s = NtQuerySystemTime(&now);
    QueryPerformanceCounter(&t0);
    for (long i = 0; i < n && !s; i++)
        s = NtQuerySystemTime(&now);
    QueryPerformanceCounter(&t1);
    printf("%.1f %lx %lld\n", (double)(t1.QuadPart - t0.QuadPart) * 1e9 / (double)f.QuadPart / (double)n,
           (unsigned long)s, (long long)now.QuadPart);
    return s ? 1 : 0;
}
"""
PROGRAM_ROWS = {
    "program_flip": "a mingw program on Wine's DLLs (pysud run, flip switch)",
    "program_trap": "the same program, trap path (pysud run --no-flip-switch)",
}
#: the Windows build's number of the renumbered row, and the number of the empty handler's row:
#: numbers no call of the personality has
OTHER_NR = 0x1E8
EMPTY_NR = 0x1E9


def _stubs(nr: int, thread: int, entry: int) -> tuple[bytes, dict[str, int]]:
    """The rows' stubs and entries in one blob, 0x40 bytes each; offsets by name.  The
    renumbered row's stub comes last, alone outside the range the core keeps numbers in."""
    mov = b"\x4c\x8b\xd1\xb8"  # mov r10, rcx; mov eax, imm32
    names = ("trap", "flip_builtin", "flip_wine", "flip_wine_empty", "tramp", "wine_entry", "flip_renumbered")
    at = {name: 0x40 * i for i, name in enumerate(names)}
    at["slot"] = 0x40 * len(names)  # the qword Wine's stubs call through (filled in by the caller)
    code = bytearray(b"\xcc" * (at["slot"] + 0x40))

    def put(name: str, data: bytes) -> None:
        assert len(data) <= 0x40
        code[at[name] : at[name] + len(data)] = data

    put("trap", mov + struct.pack("<I", nr) + b"\x0f\x05\xc3")  # ...; syscall; ret
    # pysud's ntdll: the stub jumps to the trampoline, which sets RCX and R11 and jumps to the entry
    stub = mov + struct.pack("<I", nr)
    put(
        "flip_builtin", stub + b"\xe9" + struct.pack("<i", at["tramp"] - (at["flip_builtin"] + len(stub) + 5))
    )
    ret_at = at["tramp"] + 0x3F
    t = b"\x48\xb9" + struct.pack("<Q", thread)  # movabs rcx, thread
    t += b"\x4c\x8d\x1d" + struct.pack("<i", ret_at - (at["tramp"] + len(t) + 7))  # lea r11, [rip -> ret]
    t += b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", entry)  # jmp [rip]
    put("tramp", t.ljust(0x3F, b"\xcc") + b"\xc3")
    # Wine's layout: ...; call [rip -> slot]; ret, the slot holding the pop-r11 entry
    for name, number in (("flip_wine", nr), ("flip_wine_empty", EMPTY_NR), ("flip_renumbered", OTHER_NR)):
        s = mov + struct.pack("<I", number)
        put(name, s + b"\xff\x15" + struct.pack("<i", at["slot"] - (at[name] + len(s) + 6)) + b"\xc3")
    pop = b"\x41\x5b" + b"\x48\xb9" + struct.pack("<Q", thread)  # pop r11; movabs rcx, thread
    put("wine_entry", pop + b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", entry))  # jmp [rip]
    return bytes(code), at


class Paths:
    """The rows' stubs on this (armed) thread, for a personality on pysud's own ntdll: ``call``
    makes n calls of one row's stub, as a program's thread (``in_run``: entered through the call
    thunk, under the run's fault handler) or from a plain native call outside a run (a code blob
    under the dispatcher); the bench and the tests use it.  Rewriting stays off (the trap row is
    about SIGSYS)."""

    def __init__(self, nt: NtPersonality) -> None:
        from . import _profiles
        from . import ntdll as ntdll_mod

        self.nt = nt
        d = nt.d
        d.set_rewrite(False)
        nr = nt.abi.number_of("NtQuerySystemTime")
        assert OTHER_NR not in nt.abi.table and EMPTY_NR not in nt.abi.table
        d.on(EMPTY_NR, lambda call: 0)
        d.arm_thread()
        self.thread = _core.thread_block()
        code, self.at = _stubs(nr, self.thread, _core.direct_entry_address())
        self.stubs = CodeBlob(code)
        # the slot Wine's stubs call through: the pop-r11 entry
        slot_addr = self.stubs.address + self.at["slot"]
        memory.protect(
            self.stubs.address, self.stubs.size, memory.PROT_READ | memory.PROT_WRITE, "bench stubs"
        )
        memory.poke(slot_addr, struct.pack("<Q", self.stubs.address + self.at["wine_entry"]))
        memory.protect(
            self.stubs.address, self.stubs.size, memory.PROT_READ | memory.PROT_EXEC, "bench stubs"
        )
        # every stub but the renumbered one lies in the kept range (Wine's ntdll, in a real run)
        table = list(range(OTHER_NR + 1))
        table[OTHER_NR] = nr
        d.renumber(table, (self.stubs.address, self.stubs.address + self.at["flip_renumbered"]))
        self.loop = CodeBlob(LOOP)
        self.outside = CodeBlob(LOOP_SYSV, nargs=4)
        # the call thunk of pysud's ntdll enters the loop as a program's thread (PysudReturn ends it)
        nt.ntdll = ntdll_mod.build(_profiles.TABLES[nt.profile], nt.version)
        self.stack = memory.map_anywhere(STACK, memory.PROT_READ | memory.PROT_WRITE, "bench NT stack")

    def call(self, key: str, n: int, out: int, in_run: bool = True) -> int:
        """n calls of ``key``'s stub with the argument ``out``; the last call's status."""
        stub = self.stubs.address + self.at[key]
        if in_run:
            return self.nt._call_guest(self.loop.address, (stub, n, out, 0), self.stack + STACK, "call")
        return self.outside.run(self.nt.d, [stub, n, self.stack + STACK - 0x1000, out]) & 0xFFFFFFFF

    def close(self) -> None:
        _core.disarm()
        memory.unmap(self.stack, STACK)
        self.stubs.close()
        self.loop.close()
        self.outside.close()
        if self.nt.ntdll is not None:
            self.nt.ntdll.release()
            self.nt.ntdll = None


def measure_nt(iterations: int = 20000, rounds: int = 7) -> dict[str, object]:
    from .personality import NtPersonality

    nt = NtPersonality(ntdll="builtin")
    d = nt.d
    paths = Paths(nt)
    out = ctypes.c_int64()

    def row(key: str) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter_ns()
            paths.call(key, iterations, ctypes.addressof(out))
            return (time.perf_counter_ns() - t0) / iterations

        return run

    def native() -> float:
        _core.disarm()
        return _core.bench_loop(NR_GETPPID, iterations, False) / iterations

    runs = {key: row(key) for key in ROWS}
    samples: dict[str, list[float]] = {key: [] for key in [*ROWS, "native"]}
    counted = {key: 0 for key in ROWS}
    try:
        for fn in runs.values():  # warm-up
            fn()
        for _ in range(rounds):
            for key, fn in runs.items():
                d.reset_counts()
                out.value = 0
                samples[key].append(fn())
                counts = d.counts()
                counted[key] = counts.get("NtQuerySystemTime", 0) + counts.get(nt.abi.name_of(EMPTY_NR), 0)
                if key != "flip_wine_empty" and out.value < 132223104000000000:  # after 2020
                    raise RuntimeError(f"bench: {key}: the handler wrote no system time ({out.value})")
            samples["native"].append(native())
            d.arm_thread()
            if _core.thread_block() != paths.thread:  # the stubs carry it
                raise RuntimeError("bench: the thread block moved")
        d.check()
    finally:
        paths.close()
        nt.close()
    for key in ROWS:  # the handler saw every call, on every path
        if counted[key] != iterations:
            raise RuntimeError(f"bench: {key}: the handler saw {counted[key]} of {iterations} calls")
    ns = {key: statistics.median(v) for key, v in samples.items()}
    return {
        "call": "NtQuerySystemTime",
        "iterations": iterations,
        "rounds": rounds,
        "ns_per_call": ns,
        "labels": dict(ROWS, native="native Linux syscall (getppid, not armed)"),
        "target_flip_switch_ns": 1000,
        "target_met": ns["flip_wine"] <= 1000 and ns["flip_builtin"] <= 1000,
    }


def build_program(directory: str) -> str | None:
    """PROGRAM_C built with mingw-w64 in ``directory``; None without the compiler."""
    import os
    import shutil
    import subprocess

    cc = shutil.which("x86_64-w64-mingw32-gcc")
    if cc is None:
        return None
    src, exe = os.path.join(directory, "nt_query_system_time.c"), os.path.join(directory, "ntqst.exe")
    with open(src, "w") as f:
        f.write(PROGRAM_C)
    subprocess.run([cc, "-O2", "-o", exe, src, "-lntdll"], check=True, timeout=300)
    return exe


def run_program(exe: str, calls: int, prefix: str, *extra: str) -> tuple[float, int, int]:
    """`pysud run [extra] exe calls` on Wine's DLLs: (ns per call, last status, the time it got)."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pysud",
            "run",
            "--ntdll",
            "wine",
            "--prefix",
            prefix,
            *extra,
            exe,
            str(calls),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 3:
        raise RuntimeError(
            f"bench: {exe} exited with {done.returncode}: {done.stdout[-200:]}{done.stderr[-400:]}"
        )
    return float(fields[0]), int(fields[1], 16), int(fields[2])


def measure_nt_program(calls: int = 200000, runs: int = 3) -> dict[str, object]:
    """PROGRAM_C under `pysud run` on Wine's DLLs: ns per NtQuerySystemTime as the program measures
    it (QueryPerformanceCounter around its loop), flip switch and trap path; medians of
    interleaved runs.  Empty rows (with a note) without mingw-w64 or Wine's PE DLLs."""
    import tempfile

    from .prefix import find_wine_dlls
    from .process import system_time

    notes: list[str] = []
    ns: dict[str, float] = {}
    if find_wine_dlls() is None:
        notes.append("no Wine PE DLLs (wine64 8.0+): no program rows")
    with tempfile.TemporaryDirectory(prefix="pysud-bench-ntcall-") as tmp:
        exe = build_program(tmp) if not notes else None
        if exe is None and not notes:
            notes.append("x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64): no program rows")
        if exe is not None:
            prefix = f"{tmp}/prefix"
            flags = {"program_flip": ("--flip-switch",), "program_trap": ("--no-flip-switch",)}
            counts = {"program_flip": calls, "program_trap": max(1, calls // 10)}
            samples: dict[str, list[float]] = {key: [] for key in PROGRAM_ROWS}
            run_program(exe, 1000, prefix)  # the prefix is made once
            for _ in range(runs):
                for key in PROGRAM_ROWS:
                    per_call, status, got = run_program(exe, counts[key], prefix, *flags[key])
                    if status != 0 or abs(got - system_time()) > 600 * 10**7:  # 10 minutes, in 100 ns
                        raise RuntimeError(f"bench: {key}: status {status:#x}, time {got}")
                    samples[key].append(per_call)
            ns = {key: statistics.median(v) for key, v in samples.items()}
    return {"calls": calls, "runs": runs, "ns_per_call": ns, "labels": dict(PROGRAM_ROWS), "notes": notes}


def render_nt_program(result: dict[str, object]) -> str:
    ns = result["ns_per_call"]
    labels = result["labels"]
    notes = result["notes"]
    assert isinstance(ns, dict) and isinstance(labels, dict) and isinstance(notes, list)
    lines = [
        f"NT rows, a real program: NtQuerySystemTime through ntdll's export x {result['calls']} "
        "(x 1/10 on the trap path),",
        f"timed by the program, median of {result['runs']} runs",
    ]
    for key, label in labels.items():
        if key in ns:
            lines.append(f"{label:<58} {ns[key]:>9.0f}")
    lines += [f"  ({note})" for note in notes]
    return "\n".join(lines)


def render_nt(result: dict[str, object]) -> str:
    ns = result["ns_per_call"]
    labels = result["labels"]
    assert isinstance(ns, dict) and isinstance(labels, dict)
    lines = [
        f"NT rows: {result['call']} with pysud's Python handler x {result['iterations']}, "
        f"median of {result['rounds']} rounds",
        f"{'path':<58} {'ns/call':>9} {'x native':>9}",
        "-" * 78,
    ]
    for key, label in labels.items():
        lines.append(f"{label:<58} {ns[key]:>9.0f} {ns[key] / ns['native']:>9.1f}")
    met = "met" if result["target_met"] else "NOT met"
    lines.append(f"target: an NT call with a Python handler <= 1 us on the flip-switch path: {met}")
    return "\n".join(lines)
