"""`pysud bench` NT rows: one NT call (NtQuerySystemTime, pysud's own Python handler) on each path.

In-process, without a Windows program: a loop calls an ntdll-style stub the way a program calls
ntdll's export (Windows x64 convention, on a stack the personality knows, as a program thread's
is), and the stub reaches the personality's handler on one path:

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

from .. import _core
from .. import _memory as memory
from .._native import CodeBlob

NR_GETPPID = 110
#: f(stub, n, stack_top, out) (SysV): n times stub(out) in the Windows x64 convention, on the stack
#: below stack_top:  push rbx, r12, r13, rbp; mov rbp, rsp; mov rsp, rdx; mov rbx, rdi;
#: mov r12, rsi; mov r13, rcx; sub rsp, 0x30; 1: mov rcx, r13; call rbx; dec r12; jnz 1b;
#: mov rsp, rbp; pop rbp, r13, r12, rbx; ret
LOOP = bytes.fromhex(
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


def measure_nt(iterations: int = 20000, rounds: int = 7) -> dict[str, object]:
    from .personality import NtPersonality

    nt = NtPersonality(ntdll="builtin")
    d = nt.d
    d.set_rewrite(False)  # the trap row is about SIGSYS; the flip rows never trap
    nr = nt.abi.number_of("NtQuerySystemTime")
    assert OTHER_NR not in nt.abi.table and EMPTY_NR not in nt.abi.table
    d.on(EMPTY_NR, lambda call: 0)
    d.arm_thread()
    thread, entry = _core.thread_block(), _core.direct_entry_address()
    code, at = _stubs(nr, thread, entry)
    stubs = CodeBlob(code)
    # the slot Wine's stubs call through: the pop-r11 entry
    slot_addr = stubs.address + at["slot"]
    memory.protect(stubs.address, stubs.size, memory.PROT_READ | memory.PROT_WRITE, "bench stubs")
    memory.poke(slot_addr, struct.pack("<Q", stubs.address + at["wine_entry"]))
    memory.protect(stubs.address, stubs.size, memory.PROT_READ | memory.PROT_EXEC, "bench stubs")
    # every stub but the renumbered one lies in the kept range (Wine's ntdll, in a real run)
    table = list(range(OTHER_NR + 1))
    table[OTHER_NR] = nr
    d.renumber(table, (stubs.address, stubs.address + at["flip_renumbered"]))
    loop = CodeBlob(LOOP, nargs=4)
    stack = memory.map_anywhere(STACK, memory.PROT_READ | memory.PROT_WRITE, "bench NT stack")
    nt.stacks.append((stack, stack + STACK))
    out = ctypes.c_int64()

    def row(key: str) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter_ns()
            loop.run(d, [stubs.address + at[key], iterations, stack + STACK - 0x1000, ctypes.addressof(out)])
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
                samples[key].append(fn())
                counts = d.counts()
                counted[key] = counts.get("NtQuerySystemTime", 0) + counts.get(nt.abi.name_of(EMPTY_NR), 0)
            samples["native"].append(native())
            d.arm_thread()
            if _core.thread_block() != thread:  # the stubs carry it
                raise RuntimeError("bench: the thread block moved")
        d.check()
    finally:
        _core.disarm()
        memory.unmap(stack, STACK)
        stubs.close()
        loop.close()
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
