"""A signal for the program that lands in the gate (the core's own syscall instructions) while a
call is made on the program's behalf: before the syscall instruction the call still runs, after
it its result stands. Calls that never fail with EINTR natively never do under pysud.

Two ways to land there: a perf hardware breakpoint on the gate's syscall instruction that sends
SIGUSR1 (deterministic: the signal arrives with RIP exactly at the instruction, not yet executed),
and another thread of the program hammering it with a signal (SA_RESTART: blocked reads restart).
The oracle is the same program run natively.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import requires_sud
from test_guest_threads import COMPILERS, build

pytestmark = requires_sud

HERE = Path(__file__).parent
REWRITE = [pytest.param("1", id="rewrite"), pytest.param("0", id="no-rewrite")]

# Sets a perf breakpoint (disabled) on the gate's n-th syscall instruction of this thread, which
# then runs the program: the breakpoint signals SIGUSR1 to this thread (F_SETOWN_EX, F_SETSIG).
DRIVER = textwrap.dedent(
    """
    import ctypes, fcntl, os, signal, sys, threading
    import pysud
    from pysud import _core
    exe, which, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    lo, hi = _core.gate_range()
    code = ctypes.string_at(lo, hi - lo)
    sites, i = [], code.find(b"\\x0f\\x05")
    while i >= 0:
        sites.append(i)
        i = code.find(b"\\x0f\\x05", i + 1)
    at = sites[which]
    print("before", code[at - 2:at].hex(), file=sys.stderr)
    class Attr(ctypes.Structure):
        _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                    ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                    ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                    ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
                    ("bp_addr", ctypes.c_uint64), ("bp_len", ctypes.c_uint64), ("rest", ctypes.c_uint64 * 8)]
    a = Attr(type=5, size=112, sample_period=1, wakeup_events=1, bp_type=4, bp_addr=lo + at, bp_len=8)
    a.flags = 1 | (1 << 5) | (1 << 6)  # disabled, exclude_kernel, exclude_hv
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(298), ctypes.byref(a), ctypes.c_long(0), ctypes.c_long(-1),
                      ctypes.c_long(-1), ctypes.c_long(0))
    if fd < 0:
        print("no perf breakpoint:", os.strerror(ctypes.get_errno()), file=sys.stderr)
        sys.exit(77)
    class Owner(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("pid", ctypes.c_int)]
    owner = Owner(0, threading.get_native_id())  # F_OWNER_TID
    libc.fcntl(fd, 15, ctypes.byref(owner))  # F_SETOWN_EX
    fcntl.fcntl(fd, 10, signal.SIGUSR1)  # F_SETSIG
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    sys.exit(pysud.run(exe, [rounds, str(fd)]))
    """
)


def program(tmp_path: Path, name: str, cc: str = "gcc", flags: list[str] | None = None) -> str:
    return build(str(tmp_path), name, (HERE / "programs" / f"{name}.c").read_text(), cc, flags or [])


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("gate", "which", "before"), [("plain", 0, "31c9"), ("cancellable", 1, "7503")])
def test_a_signal_at_the_gates_syscall_instruction_fakes_no_eintr(tmp_path, gate, which, before, rewrite):
    # plain: sud_gate_syscall6 (the program's sigprocmask runs there); cancellable: the
    # cancellation-point gate (dup, close). Before the fix the plain gate answered every
    # sigprocmask interrupted there with EINTR although the call never ran.
    exe = program(tmp_path, "gate_signal")
    rounds = 200
    native = subprocess.run([exe, str(rounds)], capture_output=True, timeout=60)
    assert native.stdout == b"EINTR 0 other errors 0\n"
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    argv = [sys.executable, "-c", DRIVER, exe, str(which), str(rounds)]
    p = subprocess.run(argv, capture_output=True, timeout=120, env=env)
    err = p.stderr.decode(errors="replace")
    if p.returncode == 77:
        pytest.skip(f"perf hardware breakpoints unavailable here ({err.strip().splitlines()[-1]})")
    assert f"before {before}" in err  # the instruction is the gate's we mean
    assert (p.returncode, p.stdout) == (0, native.stdout), err
    handled = int(err.split("handled ")[1].split()[0])
    if handled == 0:  # (no signal, no EINTR possible either: nothing was tested)
        pytest.skip("perf breakpoints open but never fire here (no debug registers in this VM?)")
    assert handled >= rounds, err  # the breakpoint's signal came in every round


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("libc", "cc", "flags"), [COMPILERS[0], COMPILERS[2]], ids=["glibc", "musl-static"])
def test_calls_hammered_by_a_signal_never_fail_with_eintr(tmp_path, libc, cc, flags, rewrite):
    exe = program(tmp_path, "no_eintr", cc, flags)
    native = subprocess.run([exe, "5000"], capture_output=True, timeout=60)
    assert native.stdout == b"EINTR: close 0 dup 0 write 0 read 0; getpid wrong 0; other errors 0\n"
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    argv = [sys.executable, "-m", "pysud", "run", exe, "5000"]
    p = subprocess.run(argv, capture_output=True, timeout=120, env=env)
    assert (p.returncode, p.stdout) == (0, native.stdout), p.stderr.decode(errors="replace")
    assert int(p.stderr.split(b"handled ")[1].split()[0]) > 0  # the handler ran: signals did arrive
