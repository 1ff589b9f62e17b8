"""The public API: every name exported once, typed, documented."""

from __future__ import annotations

import types

import pysud
import pysud.lowlevel


def test_all_is_exact_and_unique():
    assert len(pysud.__all__) == len(set(pysud.__all__))
    for name in pysud.__all__:
        assert hasattr(pysud, name), name
    public = {n for n in dir(pysud) if not n.startswith("_")}
    # beyond __all__ only submodules (nt, trace, cli... once something imported them)
    extra = {n for n in public - set(pysud.__all__) if not isinstance(getattr(pysud, n), types.ModuleType)}
    assert extra <= {"annotations"}


def test_lowlevel_all():
    for name in pysud.lowlevel.__all__:
        assert hasattr(pysud.lowlevel, name), name


def test_public_objects_have_docstrings():
    for name in pysud.__all__:
        obj = getattr(pysud, name)
        if callable(obj) and isinstance(obj, type):
            assert obj.__doc__, name


def test_kernel_constants_match_uapi():
    ll = pysud.lowlevel
    assert ll.PR_SET_SYSCALL_USER_DISPATCH == 59
    assert (ll.PR_SYS_DISPATCH_OFF, ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, ll.PR_SYS_DISPATCH_INCLUSIVE_ON) == (
        0,
        1,
        2,
    )
    assert (ll.SYSCALL_DISPATCH_FILTER_ALLOW, ll.SYSCALL_DISPATCH_FILTER_BLOCK) == (0, 1)
    assert ll.SYS_USER_DISPATCH == 2
    assert ll.PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG == 0x4210
    assert ll.PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG == 0x4211


def test_syscall_table_against_the_kernel():
    """The generated table's numbers do what their names say, asked of the kernel itself."""
    import ctypes
    import os
    import threading

    libc = ctypes.CDLL(None)
    libc.syscall.restype = ctypes.c_long
    abi = pysud.X86_64
    assert libc.syscall(abi.number_of("getpid")) == os.getpid()
    assert libc.syscall(abi.number_of("getppid")) == os.getppid()
    assert libc.syscall(abi.number_of("gettid")) == threading.get_native_id()
    assert libc.syscall(abi.number_of("getuid")) == os.getuid()
    assert pysud.X86_64.number_of("getpid") == 39
    assert pysud.X86_64.name_of(0) == "read"
    assert pysud.X86_64.name_of(9999) == "syscall_9999"
    assert pysud.X86_64.number_of("syscall_9999") == 9999
    assert pysud.I386.number_of("getpid") == 20


def test_unavailable_errors_explain_themselves():
    import errno

    e = pysud.SUDUnavailable(errno.EPERM, "arming")
    assert "kernel.syscall_user_dispatch" in str(e) and e.errno == errno.EPERM
    e = pysud.SUDUnavailable(errno.EINVAL, "arming")
    assert "5.11" in str(e) and "rr" in str(e)
    assert isinstance(e, OSError) and isinstance(e, pysud.PysudError)
