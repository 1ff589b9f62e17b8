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
    ]


# f(thread, entry, n): n getppid calls through sud_direct_entry, as a compatibility boundary
# (an ntdll stub) makes them:  push rbx; push r12; mov rbx, rdx; mov r12, rsi; mov r8, rdi;
# 1: mov eax, 110; mov rcx, r8; lea r11, [rip + 2f]; jmp r12; 2: dec rbx; jnz 1b;
# pop r12; pop rbx; ret
DIRECT_LOOP = bytes.fromhex("5341544889d34989f44989f8b86e0000004c89c14c8d1d0300000041ffe448ffcb75e9415c5bc3")


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
        },
        "targets": {
            "python_over_floor_max": 1.3,
            "python_return_met": by["python_return"] / by["floor"] <= 1.3,
            "python_native_met": by["python_native"] / by["floor_native"] <= 1.3,
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
    return "\n".join(lines)
