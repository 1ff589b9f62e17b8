"""Synchronisation objects: a Windows program using mutants, semaphores, timers, named objects, keyed
events and duplicated handles prints what Wine prints for the same .exe; the handlers called
directly from Python threads (keyed-event rendezvous, thread-id alerts, ping-pong with
signal-and-wait, periodic timers)."""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import requires_sud
from pysud._dispatch import Syscall
from pysud.nt.personality import NtPersonality
from pysud.nt.prefix import find_wine_dlls
from test_nt import CC, build, requires_cc, requires_wine, run_wine
from test_nt import wine_env as wine_env  # the session's Wine prefix (fixture)
from test_nt_registry import NTDLLS, _run_pysud, unimplemented_kernel_calls


@pytest.fixture(scope="module")
def sync_exe(tmp_path_factory: pytest.TempPathFactory) -> str:
    if CC is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed")
    return build(str(tmp_path_factory.mktemp("nt-sync")), "sync")


@requires_sud
@requires_cc
@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("ntdll", NTDLLS)
def test_sync_program_matches_wine(
    sync_exe: str, wine_env: dict[str, str], tmp_path: Path, ntdll: str
) -> None:
    wine_out, wine_status = run_wine(wine_env, sync_exe)
    ours = _run_pysud(sync_exe, tmp_path, "--ntdll", ntdll)
    assert ours.returncode == wine_status == 0, ours.stderr.decode()
    assert ours.stdout.decode() == wine_out.decode()
    assert b"wait abandoned = 0x80\n" in wine_out and b"open after the last close = 0xc0000034\n" in wine_out


@requires_sud
@requires_cc
@pytest.mark.parametrize("ntdll", NTDLLS)
def test_sync_calls_are_handled_here(sync_exe: str, tmp_path: Path, ntdll: str) -> None:
    r = _run_pysud(sync_exe, tmp_path, "--trace", "--ntdll", ntdll)
    err = r.stderr.decode()
    assert r.returncode == 0, err[-3000:]
    for call in (
        "NtCreateMutant",
        "NtReleaseMutant",
        "NtReleaseSemaphore",
        "NtSetTimer",
        "NtReleaseKeyedEvent",
        "NtWaitForKeyedEvent",
        "NtSignalAndWaitForSingleObject",
        "NtDuplicateObject",
        "NtOpenDirectoryObject",
    ):
        assert f"[nt] {call}(" in err, call
    assert not unimplemented_kernel_calls(err)
    out = r.stdout.decode()
    assert "sum 0x1111\n" in out and "wait abandoned = 0x80\n" in out


# ---------------------------------------------------------------------------------- handlers from Python


class Call:
    """An NT call made from Python: arguments as given, memory of this process."""

    def __init__(self, *args: int) -> None:
        self.args = (*args, *(0,) * (16 - len(args)))

    @staticmethod
    def read(addr: int, size: int) -> bytes:
        return ctypes.string_at(addr, size)

    @staticmethod
    def write(addr: int, data: bytes) -> None:
        ctypes.memmove(addr, data, len(data))

    write_u64 = staticmethod(Syscall.write_u64)
    write_u32 = staticmethod(Syscall.write_u32)


@pytest.fixture
def nt() -> Any:
    p = NtPersonality()
    yield p
    p.exiting.set()
    p.close()


def handler(nt: NtPersonality, name: str) -> Callable[[Call], int]:
    h = nt.d.handler_of(name)
    assert h is not None, name
    return h  # type: ignore[return-value]


class Buf:
    """A few bytes of this process's memory the handlers write into."""

    def __init__(self, size: int = 8) -> None:
        self.b = ctypes.create_string_buffer(size)

    @property
    def addr(self) -> int:
        return ctypes.addressof(self.b)

    def u64(self) -> int:
        return int(struct.unpack_from("<Q", self.b.raw)[0])


_TIMEOUTS: dict[float, Buf] = {}


def timeout(seconds: float) -> Buf:
    """A relative LARGE_INTEGER timeout, kept alive for the whole session (handlers read it
    while they wait, after the expression that made it is gone)."""
    b = _TIMEOUTS.get(seconds)
    if b is None:
        b = _TIMEOUTS[seconds] = Buf()
        struct.pack_into("<q", b.b, 0, -round(seconds * 1e7))
    return b


def new(nt: NtPersonality, name: str, *args: int) -> int:
    out = Buf()
    assert handler(nt, name)(Call(out.addr, 0x1F0003, 0, *args)) == 0
    return out.u64()


def test_thread_id_alerts(nt: NtPersonality) -> None:
    wait, alert = handler(nt, "NtWaitForAlertByThreadId"), handler(nt, "NtAlertThreadByThreadId")
    got: list[int] = []
    tid: list[int] = []
    ready = threading.Event()

    def waiter() -> None:
        tid.append(threading.get_native_id())
        ready.set()
        got.append(wait(Call(0, timeout(10).addr)))

    t = threading.Thread(target=waiter)
    t.start()
    ready.wait()
    assert alert(Call(tid[0])) == 0
    t.join(10)
    assert got == [0x101]  # STATUS_ALERTED
    assert wait(Call(0, timeout(0.02).addr)) == 0x102  # nobody alerts this thread
    assert alert(Call(threading.get_native_id())) == 0  # an alert before the wait is kept
    assert wait(Call(0, timeout(5).addr)) == 0x101


def test_keyed_event_pairs_every_waiter_with_one_release(nt: NtPersonality) -> None:
    ke = new(nt, "NtCreateKeyedEvent", 0)
    wait, release = handler(nt, "NtWaitForKeyedEvent"), handler(nt, "NtReleaseKeyedEvent")
    results: list[int] = []
    lock = threading.Lock()

    def waiter() -> None:
        r = wait(Call(ke, 0x1000, 0, timeout(10).addr))
        with lock:
            results.append(r)

    threads = [threading.Thread(target=waiter) for _ in range(6)]
    for t in threads:
        t.start()
    for _ in range(6):  # each release blocks until a waiter takes it, so none is lost
        assert release(Call(ke, 0x1000, 0, timeout(10).addr)) == 0
    for t in threads:
        t.join(10)
    assert results == [0] * 6
    assert release(Call(ke, 0x1000, 0, timeout(0.02).addr)) == 0x102  # no waiter left
    assert wait(Call(0, 0x2000, 0, timeout(0.02).addr)) == 0x102  # the default keyed event (handle 0)


def test_signal_and_wait_ping_pong(nt: NtPersonality) -> None:
    a, b = new(nt, "NtCreateEvent", 1, 0), new(nt, "NtCreateEvent", 1, 0)
    saw = handler(nt, "NtSignalAndWaitForSingleObject")
    wait = handler(nt, "NtWaitForSingleObject")
    rounds = 200
    errors: list[int] = []

    def pong() -> None:
        if wait(Call(a, 0, timeout(10).addr)):
            errors.append(-1)
            return
        for _ in range(rounds - 1):
            r = saw(Call(b, a, 0, timeout(10).addr))
            if r:
                errors.append(r)
                return
        handler(nt, "NtSetEvent")(Call(b, 0))

    t = threading.Thread(target=pong)
    t.start()
    for _ in range(rounds):  # every signal wakes the other side exactly once: no lost wake-up
        assert saw(Call(a, b, 0, timeout(10).addr)) == 0
    t.join(10)
    assert not errors


def test_periodic_timer_ticks(nt: NtPersonality) -> None:
    timer = new(nt, "NtCreateTimer", 1)  # SynchronizationTimer: each tick satisfies one wait
    assert handler(nt, "NtSetTimer")(Call(timer, timeout(0.005).addr, 0, 0, 0, 10, 0)) == 0
    wait = handler(nt, "NtWaitForSingleObject")
    start = time.monotonic()
    for _ in range(5):
        assert wait(Call(timer, 0, timeout(1).addr)) == 0
    elapsed = time.monotonic() - start
    assert 0.04 <= elapsed < 1.0
    assert handler(nt, "NtCancelTimer")(Call(timer, 0)) == 0
    assert wait(Call(timer, 0, timeout(0.03).addr)) == 0x102


def test_wait_ends_when_the_process_ends(nt: NtPersonality) -> None:
    ev = new(nt, "NtCreateEvent", 0, 0)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(handler(nt, "NtWaitForSingleObject")(Call(ev, 0, 0))))
    t.start()
    time.sleep(0.05)
    nt.exiting.set()
    t.join(5)
    assert not t.is_alive() and got == [0x102]


def test_named_objects_are_per_process_and_typed(nt: NtPersonality) -> None:
    name = "\\BaseNamedObjects\\x".encode("utf-16-le")
    text = ctypes.create_string_buffer(name)
    us = ctypes.create_string_buffer(struct.pack("<HHIQ", len(name), len(name), 0, ctypes.addressof(text)))
    oa = ctypes.create_string_buffer(struct.pack("<I4xQQI4xQQ", 48, 0, ctypes.addressof(us), 0x40, 0, 0))
    out = Buf()
    assert handler(nt, "NtCreateSemaphore")(Call(out.addr, 0, ctypes.addressof(oa), 1, 1)) == 0
    assert handler(nt, "NtOpenEvent")(Call(out.addr, 0, ctypes.addressof(oa))) == 0xC0000024
    assert handler(nt, "NtOpenSemaphore")(Call(out.addr, 0, ctypes.addressof(oa))) == 0
    other = NtPersonality()  # another process: its own namespace
    try:
        assert handler(other, "NtOpenSemaphore")(Call(out.addr, 0, ctypes.addressof(oa))) == 0xC0000034
    finally:
        other.close()


# ---------------------------------------------------------------------------------- kernel32 on Wine's DLLs


@requires_sud
@requires_cc
@requires_wine
@pytest.mark.slow
@pytest.mark.skipif(find_wine_dlls() is None, reason="no Wine PE DLLs installed")
def test_kernel32_sync_program_matches_wine(wine_env: dict[str, str], tmp_path: Path) -> None:
    # A mingw C program (msvcrt, kernel32, advapi32: Wine's PE DLLs) whose critical sections, SRW
    # locks, condition variables and WaitOnAddress are contended by several threads.
    assert CC is not None
    exe = str(tmp_path / "k32sync.exe")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nt", "k32sync.c")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, src, "-lsynchronization"], check=True)
    wine_out, wine_status = run_wine(wine_env, exe)
    ours = _run_pysud(exe, tmp_path / "prefix", "--trace")
    assert ours.returncode == wine_status == 0, ours.stderr.decode()[-3000:]
    assert ours.stdout.decode() == wine_out.decode()
    assert b"counter 80000 srw 80000\r\n" in wine_out  # msvcrt text mode, on both
    # Wine 8's ntdll waits through thread-id alerts (RtlWaitOnAddress) for all of these
    err = ours.stderr.decode()
    assert err.count("[nt] NtWaitForAlertByThreadId(") > 10 and "[nt] NtAlertThreadByThreadId(" in err
    assert not unimplemented_kernel_calls(err)
