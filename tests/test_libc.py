"""Functions of shared libraries under dispatch (ctypes and cffi), and the libc lock hazard."""

from __future__ import annotations

import ctypes
import errno
import os
import threading

import pytest

import pysud
from asm import assemble
from conftest import requires_sud
from pysud import NATIVE, CodeBlob, Dispatcher

pytestmark = requires_sud


def test_wrapped_libc_write_is_traced(tmp_path, libc):
    d = Dispatcher()
    writes = []

    @d.on("write")
    def trace(call):
        fd, buf, n = call.args[:3]
        writes.append((fd, call.read(buf, n)))
        return NATIVE

    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    libc.dprintf.restype = ctypes.c_int
    dprintf = d.wrap(libc.dprintf)
    assert dprintf(fd, b"%s=%d\n", b"answer", 42) == 10
    os.close(fd)
    assert path.read_bytes() == b"answer=42\n"
    assert writes == [(fd, b"answer=42\n")]


def test_wrap_keeps_ctypes_signature(libc):
    d = Dispatcher()
    d.on("getppid", lambda call: 5)
    f = libc.syscall
    f.restype = ctypes.c_long
    f.argtypes = [ctypes.c_long]
    w = d.wrap(f)
    assert w(110) == 5
    with pytest.raises(ctypes.ArgumentError):
        w("not a number")
    assert w.__wrapped__ is f


def test_errcheck_is_kept(libc):
    d = Dispatcher()
    d.on("getppid", lambda call: 3)
    f = ctypes.CDLL(None).getppid
    f.errcheck = lambda result, func, args: result * 2
    assert d.wrap(f)() == 6


def test_wrap_rejects_what_it_cannot_call():
    d = Dispatcher()
    with pytest.raises(TypeError, match="cannot wrap"):
        d.wrap(print)


def test_cffi_function():
    cffi = pytest.importorskip("cffi", reason="cffi is a test dependency (pip install .[test])")
    ffi = cffi.FFI()
    ffi.cdef("int getpid(void); long syscall(long number, ...);")
    C = ffi.dlopen(None)
    d = Dispatcher()
    d.on("getpid", lambda call: 31337)
    assert d.wrap(C.getpid, ffi=ffi)() == 31337
    assert C.getpid() == os.getpid()  # the unwrapped function is untouched


def test_memory_calls_from_libc_are_deferred_not_deadlocked(libc):
    """malloc holds its arena lock around mmap; the Python handler must not run then.

    The call is run in C and the handler hears of it afterwards, with the result.
    The handler allocates a lot (it would deadlock if it ran inside malloc).
    """
    d = Dispatcher()
    heard = []

    @d.on("mmap")
    def on_mmap(call):
        junk = [bytearray(1 << 20) for _ in range(8)]  # malloc-heavy work
        heard.append((call.deferred, call.name, call.args[1], call.native(), len(junk)))
        return NATIVE

    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 20  # above the mmap threshold: malloc maps it
    p = d.wrap(libc.malloc)(size)
    assert p
    libc.free(p)
    assert heard, "the handler was told about the mmap"
    deferred, name, length, result, _ = heard[0]
    assert (deferred, name) == (True, "mmap")
    assert length >= size
    assert result > 0 and result <= p < result + length


def test_memory_calls_from_foreign_code_reach_python_live():
    """The same call made directly by foreign code (not libc) goes to the handler live."""
    blob = CodeBlob(
        assemble(
            """
            mov eax, 9        # mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
            xor edi, edi
            mov esi, 4096
            mov edx, 1
            mov r10d, 0x22
            mov r8, -1
            xor r9d, r9d
            syscall
            ret
            """
        )
    )
    d = Dispatcher()
    heard = []
    d.on("mmap", lambda call: heard.append(call.deferred) or -errno.ENOMEM)
    assert blob.run(d) == -errno.ENOMEM
    assert heard == [False]


def test_lock_safe_can_be_turned_off():
    d = Dispatcher(lock_safe=False)
    assert not d.lock_safe
    assert pysud.LOCK_HAZARD_CALLS >= {"mmap", "brk", "futex", "clone"}


def test_wrapped_calls_from_many_threads(libc):
    d = Dispatcher()
    counts: dict[int, int] = {}
    lock = threading.Lock()

    @d.on("getppid")
    def h(call):
        with lock:
            counts[call.tid] = counts.get(call.tid, 0) + 1
        return 1

    libc.getppid.restype = ctypes.c_int
    f = d.wrap(libc.getppid)

    def work():
        assert sum(f() for _ in range(200)) == 200

    ts = [threading.Thread(target=work) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(counts.values()) == [200] * 6


def test_callback_into_python_from_wrapped_code(libc):
    """qsort calls back into Python: the callback's own syscalls are dispatched too (selector BLOCK),
    and it still works (handlers re-enter Python safely)."""
    d = Dispatcher()
    seen = []
    d.on("getppid", lambda call: seen.append(1) or 1)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))

    def cmp(a, b):
        os.getppid()  # made with the selector at BLOCK: dispatched
        return a[0] - b[0]

    arr = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
    libc.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, CMP]
    libc.qsort.restype = None
    d.wrap(libc.qsort)(arr, 5, ctypes.sizeof(ctypes.c_int), CMP(cmp))
    assert list(arr) == [1, 2, 3, 4, 5]
    assert len(seen) >= 4
