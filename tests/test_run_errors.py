"""Errors never vanish: handler errors on any program thread, calls run in C past the ring,
and errors in a forked child (which must never run the rest of the host's script)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pysud
from asm import assemble
from conftest import requires_sud

pytestmark = requires_sud

HERE = Path(__file__).parent


def build_c(name: str, tmp_path: Path) -> str:
    exe = tmp_path / name
    subprocess.run(
        ["gcc", "-O1", "-pthread", "-o", str(exe), str(HERE / "programs" / f"{name}.c")],
        check=True,
        timeout=120,
    )
    return str(exe)


THREAD_ERROR = """
import json, sys, threading
import pysud
out, exe = sys.argv[1:3]
d = pysud.Dispatcher()
first = threading.get_native_id()
seen = []
@d.on("getppid")
def fails_on_other_threads(call):
    if call.tid != first:
        seen.append(call.tid)
        raise ValueError("handler bug on a program thread")
    return pysud.NATIVE
try:
    status = pysud.run(exe, [], dispatcher=d)
    result = {"status": status}
except pysud.HandlerError as e:
    result = {"error": str(e), "n": len(e.errors), "cause": type(e.__cause__).__name__}
result["seen"] = len(seen)
json.dump(result, open(out, "w"))
"""


def test_handler_error_on_a_program_thread_reaches_run(tmp_path):
    exe = build_c("fork_busy", tmp_path)  # a second thread makes 20 getppid calls
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-c", THREAD_ERROR, str(out), exe], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["seen"] == 20
    assert data["n"] == 20 and data["cause"] == "ValueError", data
    assert "handler bug on a program thread" in data["error"]


CHILD_ERROR = """
import os, sys
import pysud
log = sys.argv[1]
d = pysud.Dispatcher()
host = os.getpid()
@d.on("exit_group")
def fails_in_child(call):
    if os.getpid() != host:
        raise RuntimeError("handler bug in the child")
    return pysud.NATIVE
try:
    status = pysud.run("/bin/sh", ["-c", "/bin/true; echo parent done"], dispatcher=d)
except pysud.PysudError as e:
    status = repr(e)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, b"after run() in %d: %r\\n" % (os.getpid(), status))
"""


def test_handler_error_in_a_forked_child_never_returns_into_the_host_script(tmp_path):
    log = tmp_path / "log"
    r = subprocess.run(
        [sys.executable, "-c", CHILD_ERROR, str(log)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "parent done\n"
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines  # the host's, only
    assert lines[0].endswith(": 0")  # the host's run() returned the shell's status
    assert "pysud: in a process the program forked:" in r.stderr
    assert "handler bug in the child" in r.stderr


MANY_MMAPS = """
#include <sys/mman.h>
long many(int n) {
    long ok = 0;
    for (int i = 0; i < n; i++) {
        void *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED && munmap(p, 4096) == 0)
            ok++;
    }
    return ok;
}
"""


def test_calls_run_in_c_past_the_ring_are_never_lost_silently(tmp_path):
    """1,000 libc mmaps in one wrapped call: each reaches the handler, or check() says how many did not."""
    (tmp_path / "many.c").write_text(MANY_MMAPS)
    lib = tmp_path / "libmany.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "many.c")], check=True)
    many = ctypes.CDLL(str(lib)).many
    many.restype = ctypes.c_long
    many.argtypes = [ctypes.c_int]
    d = pysud.Dispatcher()
    heard: list[bool] = []
    d.on("mmap", lambda call: heard.append(call.deferred) or pysud.NATIVE)
    n = 1000
    lost = 0
    try:
        assert d.wrap(many)(n) == n
    except pysud.CallsLost as e:
        lost = e.lost
    assert d.counts()["mmap"] == n
    assert len(heard) + lost == n, (len(heard), lost)
    assert all(heard), "libc's mmap is run in C and heard afterwards"
    assert len(heard) >= 512  # the ring keeps at least this many per thread


# ---- bad pointers and numbers: the kernel's answer, never a handler error


def test_bad_pointers_to_the_personalitys_calls_get_efault(tmp_path):
    """readlink(at) of /proc/self/exe, arch_prctl(ARCH_GET_FS), execve: EFAULT as natively, status 0."""
    exe = build_c("efault", tmp_path)
    native = subprocess.run([exe], capture_output=True, timeout=60)
    assert native.stdout.count(b": -14") == 9
    ours = subprocess.run([sys.executable, "-m", "pysud", "run", exe], capture_output=True, timeout=60)
    assert (ours.stdout, ours.stderr, ours.returncode) == (native.stdout, native.stderr, native.returncode)


def test_native_with_a_number_beyond_32_bits_is_an_error():
    """The kernel reads 32 bits of RAX: 2**32 + 39 would silently be getpid."""
    blob = pysud.CodeBlob(assemble("mov eax, 110\nsyscall\nret"))  # getppid
    d = pysud.Dispatcher()
    raised: list[str] = []

    @d.on("getppid")
    def odd(call: pysud.Syscall) -> object:
        for nr in (2**32 + 39, -1):
            try:
                call.native(nr=nr)
            except ValueError as e:
                raised.append(str(e))
        return call.native(nr=39)  # getpid, in range

    assert blob.run(d) == os.getpid()
    assert len(raised) == 2 and "out of range" in raised[0]


def test_unbounded_reentry_raises_instead_of_returning_a_value():
    """A handler that re-enters itself through a wrapped call ends in RecursionError, which surfaces.

    At the recursion limit even the error path cannot run Python; the core keeps the error for
    check() instead of printing it as unraisable and handing back a plain ENOSYS.
    """
    libc = ctypes.CDLL(None)
    d = pysud.Dispatcher()
    f = d.wrap(libc.getppid)
    d.on("getppid", lambda call: f())
    with pytest.raises(pysud.HandlerError) as info:
        f()
    seen: dict[int, BaseException] = {}
    todo: list[BaseException] = [info.value]
    while todo:  # the errors of every level, down to the innermost
        e = todo.pop()
        if id(e) not in seen:
            seen[id(e)] = e
            todo += [x for _, x in getattr(e, "errors", [])] + ([e.__cause__] if e.__cause__ else [])
    assert any(isinstance(e, RecursionError) for e in seen.values())
