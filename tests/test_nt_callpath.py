"""One NT call on each path (nt/bench.py's stubs: the trap, pysud's ntdll stub, Wine's stub through
its slot, a renumbered Windows-numbered stub), inside a program's run and from a plain native call
outside one: the handler writes what it should, and a bad pointer is STATUS_ACCESS_VIOLATION with
the host alive.  Then the same with a real mingw program on Wine's DLLs, `wine` as the oracle."""

from __future__ import annotations

import collections
import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import requires_sud
from pysud import _memory as memory
from pysud.nt import bench
from pysud.nt.personality import NtPersonality
from pysud.nt.process import system_time
from test_nt import wine_env as wine_env  # the session's Wine prefix (fixture)
from test_nt_wine import CC, SRC, WINE, requires_cc, requires_dlls, requires_wine

STATUS_ACCESS_VIOLATION = 0xC0000005
AFTER_2020 = 132223104000000000
PATHS = ["trap", "flip_builtin", "flip_wine", "flip_renumbered"]

pytestmark = requires_sud


@pytest.fixture
def paths() -> Iterator[bench.Paths]:
    nt = NtPersonality(ntdll="builtin")
    p = bench.Paths(nt)
    try:
        yield p
    finally:
        p.close()
        nt.close()


def _counted(p: bench.Paths) -> int:
    return p.nt.d.counts().get("NtQuerySystemTime", 0)


@pytest.mark.parametrize("in_run", [True, False], ids=["in-run", "outside-run"])
@pytest.mark.parametrize("key", PATHS)
def test_each_path_reaches_the_handler(paths: bench.Paths, key: str, in_run: bool) -> None:
    out = ctypes.c_int64(0)
    paths.nt.d.reset_counts()
    before = system_time()
    assert paths.call(key, 3, ctypes.addressof(out), in_run) == 0
    assert before <= out.value <= system_time()  # the handler's FILETIME, now
    assert _counted(paths) == 3  # the personality's handler saw each call (renumbered: as its own)
    paths.nt.d.check()


@pytest.mark.parametrize("in_run", [True, False], ids=["in-run", "outside-run"])
@pytest.mark.parametrize("key", PATHS)
def test_a_bad_pointer_is_access_violation_and_the_host_goes_on(
    paths: bench.Paths, key: str, in_run: bool
) -> None:
    # NULL, a low address, a read-only page: the checked copy (the run's fault handler, or the
    # kernel's process_vm_writev outside a run) fails, the dispatcher's error path answers
    # STATUS_ACCESS_VIOLATION; no handler error, the page keeps its bytes, the next call works
    page = memory.map_anywhere(0x1000, memory.PROT_READ | memory.PROT_WRITE, "a read-only page")
    try:
        memory.poke(page, b"\x5a" * 8)
        memory.protect(page, 0x1000, memory.PROT_READ, "a read-only page")
        paths.nt.d.reset_counts()
        for bad in (0, 0x10, page):
            assert paths.call(key, 1, bad, in_run) == STATUS_ACCESS_VIOLATION, hex(bad)
        assert ctypes.string_at(page, 8) == b"\x5a" * 8
        assert _counted(paths) == 3
        paths.nt.d.check()  # the error path answered them all: nothing for the host to raise
        out = ctypes.c_int64(0)
        assert paths.call(key, 1, ctypes.addressof(out), in_run) == 0
        assert out.value > AFTER_2020
    finally:
        memory.unmap(page, 0x1000)


def test_args_read_when_asked_for_are_the_conventions(paths: bench.Paths) -> None:
    # call.args is a sequence over the registers and the stack (read when asked for): every way
    # of taking it gives what the NT convention puts there (r10, rdx, r8, r9, [rsp+0x28], ...)
    import struct

    seen: list[object] = []

    def check(call: object) -> int:
        a = call.args  # type: ignore[attr-defined]
        regs = (call.r10, call.rdx, call.r8, call.r9)  # type: ignore[attr-defined]
        stack = struct.unpack("<12Q", call.read(call.rsp + 0x28, 96))  # type: ignore[attr-defined]
        full = regs + stack
        seen.append(
            (
                len(a) == 16,
                a[0] == call.arg0 == regs[0],  # type: ignore[attr-defined]
                a[:4] == regs and a[4:] == stack and a[2:7] == full[2:7] and a[::3] == full[::3],
                a[-1] == full[15] and a[-16] == full[0],
                tuple(a) == full and list(a) == list(full) and a == full and repr(a) == repr(full),
                call.record().args == full,  # type: ignore[attr-defined]
            )
        )
        for bad in (16, -17):
            with pytest.raises(IndexError):
                a[bad]
        with pytest.raises(TypeError):
            a["x"]
        return 0

    paths.nt.d.on(bench.EMPTY_NR, check)
    out = ctypes.c_int64(0)
    for in_run in (True, False):
        assert paths.call("flip_wine_empty", 1, ctypes.addressof(out), in_run) == 0
    paths.nt.d.check()
    assert seen == [(True,) * 6] * 2


def test_args_past_the_stacks_end_read_as_zero() -> None:
    # a stack slot that cannot be read is 0 (the program's stack ends there), never a fault
    from pysud import _core

    layout = _core.ArgLayout(("r10", "rdx"), 0x28, 6)
    with pytest.raises(ValueError):
        _core.ArgLayout(("nosuch",), 0, 2)
    with pytest.raises(TypeError):
        layout(object())  # type: ignore[arg-type]
    got: list[object] = []
    nt = NtPersonality(ntdll="builtin")
    p = bench.Paths(nt)
    try:

        def handler(call: object) -> int:
            old = call.rsp  # type: ignore[attr-defined]
            call.rsp = 0x1000  # type: ignore[attr-defined]  # nothing mapped at 0x1028
            got.append(tuple(layout(call)))  # type: ignore[arg-type]
            call.rsp = old  # type: ignore[attr-defined]
            return 0

        nt.d.on(bench.EMPTY_NR, handler)
        out = ctypes.c_int64(0)
        assert p.call("flip_wine_empty", 1, ctypes.addressof(out), True) == 0
        nt.d.check()
    finally:
        p.close()
        nt.close()
    assert len(got) == 1 and got[0][2:] == (0, 0, 0, 0)


def test_a_handler_error_is_still_an_error(paths: bench.Paths) -> None:
    # only a bad pointer (and an NtStatusError) is a status: a bug in a handler stays pysud's error
    from pysud._errors import HandlerError

    def broken(call: object) -> int:
        raise ZeroDivisionError("a bug")

    paths.nt.on("NtQuerySystemTime", broken)
    out = ctypes.c_int64(0)
    for in_run in (True, False):  # the program got ENOSYS; the host hears of it when it returns
        with pytest.raises(HandlerError, match="ZeroDivisionError"):
            paths.call("flip_wine", 1, ctypes.addressof(out), in_run)
    assert out.value == 0


# ----------------------------------------------------------------------------- a real program


@pytest.fixture(scope="module")
def badtime(tmp_path_factory: pytest.TempPathFactory) -> str:
    assert CC is not None
    exe = str(tmp_path_factory.mktemp("callpath") / "badtime.exe")
    cmd = [CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, "badtime.c"), "-lntdll"]
    subprocess.run(cmd, check=True)
    return exe


def _pysud(
    exe: str, *args: str, prefix: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--ntdll", "wine", "--prefix", prefix, *options, exe, *args],
        capture_output=True,
        timeout=120,
    )


@requires_cc
@requires_dlls
@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("switch", ["--flip-switch", "--no-flip-switch"])
def test_a_programs_bad_pointers_match_wine(
    badtime: str, wine_env: dict[str, str], tmp_path, switch: str
) -> None:
    assert WINE is not None
    wine = subprocess.run([WINE, badtime], env=wine_env, capture_output=True, timeout=120)
    ours = _pysud(badtime, prefix=str(tmp_path / "prefix"), options=(switch, "--trace"))
    expected = b"null c0000005\nlow c0000005\nreadonly c0000005\nreadonly unchanged 1\ngood 0\nafter 2020 1\n"
    expected = expected.replace(b"\n", b"\r\n")  # msvcrt's text mode
    assert wine.stdout == expected and wine.returncode == 0
    assert ours.stdout == expected, ours.stderr.decode()[-2000:]
    assert ours.returncode == 0
    trace = [line for line in ours.stderr.decode().splitlines() if "NtQuerySystemTime(" in line]
    # pysud's handler answered the program's bad ones (start-up makes good ones of its own)
    bad = [line for line in trace if line.endswith("= STATUS_ACCESS_VIOLATION")]
    assert len(bad) == 3 and "SystemTime=0)" in bad[0] and "SystemTime=0x10)" in bad[1], trace


@requires_cc
@requires_dlls
def test_the_bench_program_is_answered_by_pysud(tmp_path) -> None:
    # the program of the bench's program rows: every call of its loop reaches pysud's handler
    exe = bench.build_program(str(tmp_path))
    assert exe is not None
    r = _pysud(exe, "5", prefix=str(tmp_path / "prefix"), options=("--trace",))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    per_call, status, got = r.stdout.split()
    assert float(per_call) > 0 and status == b"0"
    assert abs(int(got) - system_time()) < 600 * 10**7
    trace = [line for line in r.stderr.decode().splitlines() if "NtQuerySystemTime(" in line]
    # 5 warm-up calls and 5 timed, into the same variable (start-up makes calls of its own)
    where = collections.Counter(line.split("SystemTime=")[1].split(")")[0] for line in trace)
    assert where.most_common(1)[0][1] == 10, trace
