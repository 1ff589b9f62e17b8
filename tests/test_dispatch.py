"""The Dispatcher API: handlers, results, defaults, fast path, errors, memory access."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

import pysud
from asm import assemble
from conftest import requires_sud
from pysud import NATIVE, RAISE, CodeBlob, Dispatcher, Errno, Return

pytestmark = requires_sud

NR_GETPID = 39
NR_GETPPID = 110

# mov eax, <nr>; syscall; ret  -> returns the call's RAX
GETPID_BLOB = assemble("mov eax, 39\nsyscall\nret")
# six arguments passed straight to syscall nr 500 (unassigned): rax=500
ARGS_BLOB = assemble(
    """
    mov eax, 500
    mov r10, rcx
    syscall
    ret
    """
)


def test_handler_result_reaches_foreign_code():
    d = Dispatcher()
    seen = []

    @d.on("getpid")
    def fake(call):
        seen.append((call.nr, call.name, call.arch))
        return 4242

    blob = CodeBlob(GETPID_BLOB)
    assert blob.run(d) == 4242
    assert seen == [(NR_GETPID, "getpid", pysud.X86_64.audit_arch)]
    blob.close()


def test_unhandled_calls_run_natively_by_default():
    d = Dispatcher()
    assert CodeBlob(GETPID_BLOB).run(d) == os.getpid()
    assert d.counts() == {"getpid": 1}


def test_handler_sees_six_arguments_and_call_address():
    d = Dispatcher()
    got = {}

    @d.on(500)
    def h(call):
        got["args"] = call.args
        got["call_addr"] = call.call_addr
        got["name"] = call.name
        return sum(call.args)

    blob = CodeBlob(ARGS_BLOB)
    args = [1, 2, 3, 4, 5, 6]
    assert blob.run(d, args) == 21
    assert got["args"] == tuple(args)
    # si_call_addr is the address after the syscall instruction
    syscall_at = blob.code.index(b"\x0f\x05")
    assert got["call_addr"] == blob.address + syscall_at + 2
    assert got["name"] == "syscall_500"


def test_args_agree_with_the_abi_table():
    """The core's argument registers and pysud._abi's are the same data."""
    d = Dispatcher()
    ok = []

    @d.on(500)
    def h(call):
        ok.append(call.args == tuple(getattr(call, r) for r in pysud.X86_64.argument_registers))
        return 0

    CodeBlob(ARGS_BLOB).run(d, [11, 22, 33, 44, 55, 66])
    assert ok == [True]


def test_native_with_changed_arguments(tmp_path, libc):
    """A handler can run the call natively with other arguments (here: another path)."""
    real = tmp_path / "real.txt"
    real.write_text("the real file\n")
    d = Dispatcher()

    @d.on("openat")
    def redirect(call):
        path = call.read_cstring(call.args[1])
        if path == b"/nonexistent/pysud":
            buf = ctypes.create_string_buffer(str(real).encode())
            # keep buf alive for the call; the kernel copies the path
            return call.native(call.args[0], ctypes.addressof(buf))
        return NATIVE

    libc.open.restype = ctypes.c_int
    libc.open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    fd = d.wrap(libc.open)(b"/nonexistent/pysud", os.O_RDONLY)
    assert fd >= 0
    assert os.read(fd, 100) == b"the real file\n"
    os.close(fd)


def test_fail_with_errno_sets_errno_through_libc(libc):
    d = Dispatcher()
    d.on("getppid", lambda call: call.fail(errno.EPERM))
    libc.syscall.restype = ctypes.c_long
    r = d.wrap(libc.syscall)(NR_GETPPID)
    assert r == -1
    assert ctypes.get_errno() == errno.EPERM


@pytest.mark.parametrize(
    "result, expected",
    [
        (Errno(errno.EACCES), -errno.EACCES),
        (Return(77), 77),
        (-errno.ENOENT, -errno.ENOENT),
        (2**63 + 5, -(2**63) + 5),  # a full 64-bit unsigned value lands in RAX as is
    ],
)
def test_handler_result_kinds(result, expected):
    d = Dispatcher()
    d.on("getpid", lambda call: result)
    assert CodeBlob(GETPID_BLOB).run(d) == expected


def test_handler_that_sets_registers_and_returns_none():
    d = Dispatcher()

    def foreign_abi(call):
        call.rax = 123
        call.rdx = 456  # a foreign ABI may return a second value

    d.on(500, foreign_abi)
    blob = CodeBlob(assemble("mov eax, 500\nsyscall\nadd rax, rdx\nret"))
    assert blob.run(d) == 579


def test_none_without_setting_registers_is_an_error():
    d = Dispatcher()
    d.on("getpid", lambda call: None)
    with pytest.raises(pysud.HandlerError) as ei:
        CodeBlob(GETPID_BLOB).run(d)
    assert isinstance(ei.value.__cause__, TypeError)
    assert "returned None" in str(ei.value.__cause__)


def test_handler_exception_gives_defined_result_then_surfaces():
    d = Dispatcher(handler_error=Errno(errno.EIO))

    @d.on("getpid")
    def broken(call):
        raise ValueError("boom")

    blob = CodeBlob(assemble("mov eax, 39\nsyscall\nmov r8, rax\nmov eax, 39\nsyscall\nadd rax, r8\nret"))
    with pytest.raises(pysud.HandlerError) as ei:
        blob.run(d)
    err = ei.value
    assert isinstance(err.__cause__, ValueError)
    assert err.call.name == "getpid" and err.call.nr == NR_GETPID
    assert len(err.errors) == 2  # both calls failed; both are reported
    # the foreign code went on with a defined result; prove it by a run that does not raise
    d.on("getpid", lambda call: 5)
    assert blob.run(d) == 10


def test_handler_error_result_seen_by_foreign_code(libc):
    d = Dispatcher(handler_error=Errno(errno.EIO))
    d.on("getppid", lambda call: 1 / 0)
    libc.syscall.restype = ctypes.c_long
    f = d.wrap(libc.syscall)
    with pytest.raises(pysud.HandlerError):
        f(NR_GETPPID)
    assert ctypes.get_errno() == errno.EIO


def test_default_errno_and_raise():
    d = Dispatcher(default=Errno(errno.ENOSYS))
    assert CodeBlob(GETPID_BLOB).run(d) == -errno.ENOSYS
    d2 = Dispatcher(default=RAISE)
    with pytest.raises(pysud.HandlerError) as ei:
        CodeBlob(GETPID_BLOB).run(d2)
    assert isinstance(ei.value.__cause__, pysud.UnhandledSyscall)


def test_fast_path_actions_and_counts():
    d = Dispatcher()
    calls = []
    d.on("getpid", lambda call: calls.append(1) or 1)
    d.set_fast("getpid", Errno(errno.EPERM))  # takes precedence over the handler
    blob = CodeBlob(GETPID_BLOB)
    assert blob.run(d) == -errno.EPERM
    d.set_fast("getpid", Return(9))
    assert blob.run(d) == 9
    d.set_fast("getpid", NATIVE)
    assert blob.run(d) == os.getpid()
    d.set_fast("getpid", None)
    assert blob.run(d) == 1
    assert calls == [1]
    assert d.counts()["getpid"] == 4
    d.reset_counts()
    assert d.counts() == {}


def test_remove_handler():
    d = Dispatcher()
    d.on("getpid", lambda call: 1)
    d.remove("getpid")
    assert CodeBlob(GETPID_BLOB).run(d) == os.getpid()


def test_unknown_names_and_bad_values_are_clear_errors():
    d = Dispatcher()
    with pytest.raises(pysud.UnknownSyscall, match="no_such_call"):
        d.on("no_such_call", lambda c: 0)
    with pytest.raises(pysud.UnknownSyscall):
        d.on(100000, lambda c: 0)
    with pytest.raises(TypeError):
        d.on("getpid", 42)
    with pytest.raises(TypeError):
        d.set_fast("getpid", RAISE)
    with pytest.raises(ValueError):
        Errno(0)
    with pytest.raises(TypeError):
        Dispatcher(default="native")
    with pytest.raises(ValueError):
        Dispatcher(mode=pysud.Mode.INCLUSIVE)  # needs a region
    with pytest.raises(ValueError):
        pysud.lowlevel.set_selector(2)


def test_memory_access_from_handler():
    d = Dispatcher()
    buf = ctypes.create_string_buffer(b"hello, pysud", 64)
    out = {}

    @d.on(500)
    def h(call):
        out["cstr"] = call.read_cstring(call.args[0])
        out["bytes"] = call.read(call.args[0], 5)
        call.write(call.args[0], b"HELLO")
        out["struct"] = call.read_struct(call.args[0], ctypes.c_char * 5).raw
        with pytest.raises(pysud.GuestMemoryError):
            call.read(8, 16)  # a bad pointer raises, the process survives
        with pytest.raises(pysud.GuestMemoryError):
            call.write(8, b"x")
        return 0

    CodeBlob(ARGS_BLOB).run(d, [ctypes.addressof(buf)])
    assert out == {"cstr": b"hello, pysud", "bytes": b"hello", "struct": b"HELLO"}
    assert buf.value == b"HELLO, pysud"


def test_syscall_object_outlives_the_call():
    d = Dispatcher()
    kept = []
    d.on("getpid", lambda call: kept.append(call) or 1)
    CodeBlob(GETPID_BLOB).run(d)
    call = kept[0]
    assert call.nr == NR_GETPID and not call.live
    assert "getpid" in repr(call)
    with pytest.raises(RuntimeError, match="returned"):
        call.rax = 5
    with pytest.raises(RuntimeError):
        call.native()


def test_thread_identity_in_handler():
    import threading

    d = Dispatcher()
    who = []
    d.on("getpid", lambda call: who.append((call.tid, call.thread)) or 0)
    CodeBlob(GETPID_BLOB).run(d)
    assert who == [(threading.get_native_id(), threading.current_thread())]


def test_handler_can_do_anything_python_can(tmp_path):
    """print, open files, start threads, take locks: handlers are outside signal context."""
    import threading

    d = Dispatcher()
    lock = threading.Lock()

    @d.on("getpid")
    def busy(call):
        with lock:
            (tmp_path / "f").write_text("written from a handler")
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            print("printed from a handler")
            big = b"x" * 10_000_000  # large allocations go through malloc/mmap
            return len(big)

    assert CodeBlob(GETPID_BLOB).run(d) == 10_000_000
    assert (tmp_path / "f").read_text() == "written from a handler"


def test_blob_errors():
    with pytest.raises(ValueError):
        CodeBlob(b"")
    with pytest.raises(TypeError):
        CodeBlob("not bytes")  # type: ignore[arg-type]
    b = CodeBlob(GETPID_BLOB)
    b.close()
    with pytest.raises(ValueError, match="closed"):
        b.run(Dispatcher())


def test_nested_dispatch_from_a_handler():
    """A handler may run foreign code under dispatch itself; frames nest on the dispatch stack."""
    d = Dispatcher()
    inner = CodeBlob(assemble("mov eax, 500\nsyscall\nret"))
    outer = CodeBlob(GETPID_BLOB)
    depth = []

    @d.on(500)
    def leaf(call):
        depth.append("leaf")
        return 7

    @d.on("getpid")
    def middle(call):
        depth.append("middle")
        return inner.run(d) * 10

    assert outer.run(d) == 70
    assert depth == ["middle", "leaf"]


def test_python_host_calls_are_not_intercepted(libc):
    """Only the wrapped function's calls reach handlers, not ctypes' or Python's around it."""
    d = Dispatcher()
    names = []
    for name in ("getpid", "write", "futex", "mmap", "read", "openat", "close", "getppid"):
        d.on(name, lambda call: names.append(call.name) or NATIVE)
    libc.getppid.restype = ctypes.c_int
    f = d.wrap(libc.getppid)
    for _ in range(50):
        f()
        os.getpid()  # the host's own call, with the thread armed
    assert names == ["getppid"] * 50


def test_blocked_and_allowed_scopes_nest():
    d = Dispatcher()
    seen = []
    d.on("getppid", lambda call: seen.append(1) or 999)
    lowlevel = pysud.lowlevel
    with d.blocked():
        assert lowlevel.get_selector() == 1
        # Python's own call made with the selector at BLOCK is dispatched
        assert os.getppid() == 999
        with d.allowed():
            assert lowlevel.get_selector() == 0
            assert os.getppid() != 999
            with d.blocked():
                assert os.getppid() == 999
            assert lowlevel.get_selector() == 0
        assert lowlevel.get_selector() == 1
    assert lowlevel.get_selector() == 0
    assert len(seen) == 2


def test_blocked_puts_the_selector_back_and_raises_handler_errors_at_its_end():
    d = Dispatcher()

    def broken(call):
        raise RuntimeError("broken handler")

    d.on("getppid", broken)
    with pytest.raises(ZeroDivisionError):
        with d.blocked():
            1 / 0  # noqa: B018
    assert pysud.lowlevel.get_selector() == 0
    with pytest.raises(pysud.HandlerError) as ei:
        with d.blocked():
            os.getppid()  # the handler raises: the call fails, the error comes at the block's end
            assert pysud.lowlevel.get_selector() == 1
    assert isinstance(ei.value.__cause__, RuntimeError)
    assert pysud.lowlevel.get_selector() == 0


def test_dispatchers_are_independent():
    a, b = Dispatcher(), Dispatcher()
    a.on("getpid", lambda c: 1)
    b.on("getpid", lambda c: 2)
    blob = CodeBlob(GETPID_BLOB)
    assert [blob.run(a), blob.run(b), blob.run(a)] == [1, 2, 1]
    assert a.counts() == {"getpid": 2} and b.counts() == {"getpid": 1}


def test_closed_dispatcher_refuses_to_arm():
    d = Dispatcher()
    d.close()
    with pytest.raises(RuntimeError, match="closed"):
        d.arm_thread()


def test_handler_runs_with_host_tls_while_foreign_code_has_its_own_fs():
    """Foreign code sets its own FS base; the handler (CPython, glibc: all TLS) still works,
    sees the foreign FS base in call.fs_base, and the foreign code gets its FS back."""
    foreign_tls = ctypes.create_string_buffer(4096)
    blob = CodeBlob(
        assemble(
            """
            push rbx
            rdfsbase rbx          # the host's FS
            wrfsbase rdi          # the foreign code's own TLS
            mov eax, 500
            syscall
            rdfsbase rcx          # FS after the call
            wrfsbase rbx          # back to the host's before returning to ctypes
            sub rcx, rdi          # 0 if the foreign FS came back
            add rax, rcx
            pop rbx
            ret
            """
        )
    )
    d = Dispatcher()
    seen = {}

    @d.on(500)
    def h(call):
        import threading

        seen["fs"] = call.fs_base
        seen["thread"] = threading.current_thread().name  # TLS-heavy work
        seen["tid"] = threading.get_native_id()
        return 1000

    assert blob.run(d, [ctypes.addressof(foreign_tls)]) == 1000
    assert seen["fs"] == ctypes.addressof(foreign_tls)
    assert seen["thread"] == "MainThread"


def test_handler_runs_with_sigsys_unblocked():
    import signal

    d = Dispatcher()
    masks = []
    d.on("getpid", lambda call: masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])) or 0)
    CodeBlob(GETPID_BLOB).run(d)
    assert masks and signal.SIGSYS not in masks[0]


def test_foreign_code_cannot_block_sigsys_or_take_it_over():
    """rt_sigprocmask cannot leave SIGSYS blocked; rt_sigaction(SIGSYS) is refused."""
    import signal

    blob = CodeBlob(
        assemble(
            """
            sub rsp, 40
            mov qword ptr [rsp], -1   # block every signal
            mov eax, 14               # rt_sigprocmask(SIG_BLOCK, &all, &old, 8)
            mov edi, 0
            mov rsi, rsp
            lea rdx, [rsp+8]
            mov r10d, 8
            syscall
            mov eax, 14               # read the mask back into [rsp+16]
            mov edi, 0
            xor esi, esi
            lea rdx, [rsp+16]
            mov r10d, 8
            syscall
            mov eax, 14               # restore the old mask
            mov edi, 2
            lea rsi, [rsp+8]
            xor edx, edx
            mov r10d, 8
            syscall
            mov rax, [rsp+16]
            add rsp, 40
            ret
            """
        )
    )
    d = Dispatcher()
    mask = blob.run(d)
    assert not mask & (1 << (signal.SIGSYS - 1))
    assert mask & (1 << (signal.SIGUSR1 - 1))
    act = (ctypes.c_ulong * 4)(1, 0, 0, 0)  # SIG_IGN
    sigaction = CodeBlob(assemble("mov eax, 13\nmov r10, rcx\nsyscall\nret"))
    assert sigaction.run(d, [signal.SIGSYS, ctypes.addressof(act), 0, 8]) == -errno.EINVAL
    assert sigaction.run(d, [signal.SIGUSR2, 0, ctypes.addressof(act), 8]) == 0  # reading works


def _blob(nr: int) -> CodeBlob:
    return CodeBlob(assemble(f"mov eax, {nr}\nsyscall\nret"))


@pytest.mark.parametrize("lock_safe", [True, False])
def test_default_table_in_one_call_is_the_per_number_one(lock_safe: bool) -> None:
    """The default setter writes the core's whole action table at once; each number's action
    there is the one the per-number path (_sync) writes: handlers, fast actions, recorded calls
    and lock hazards keep theirs, every other number gets the default."""
    d = Dispatcher(lock_safe=lock_safe)
    d.on("getpid", lambda call: 7)
    d.set_fast("getppid", Return(9))
    d._recorded.add(102)  # (as the recorder marks getuid)
    for default in (Errno(errno.EPERM), Return(5), RAISE, NATIVE):
        d.default = default
        bulk = d._policy.actions()
        for nr in range(pysud._core.NSYSCALLS):
            d._sync(nr)
        assert d._policy.actions() == bulk, default
    hazard = {nr for nr in range(pysud._core.NSYSCALLS) if bulk[nr * 16 + 4]}
    assert hazard == ({9, 10, 11, 12, 25, 28, 56, 57, 58, 202, 435} if lock_safe else set())  # mmap...clone3
    d._recorded.discard(102)
    d.default = Errno(errno.EPERM)
    # and what the calls then do
    assert _blob(NR_GETPID).run(d) == 7
    assert _blob(NR_GETPPID).run(d) == 9
    assert _blob(102).run(d) == -errno.EPERM  # getuid: the default
    d.default = NATIVE
    assert _blob(102).run(d) == os.getuid()
    d.remove("getpid")
    assert _blob(NR_GETPID).run(d) == os.getpid()


def test_action_table_is_checked() -> None:
    d = Dispatcher()
    table = d._policy.actions()
    with pytest.raises(ValueError, match="entries"):
        d._policy.set_actions(table[:-1])
    with pytest.raises(ValueError, match="unknown action kind"):
        d._policy.set_actions(b"\x7f" * len(table))
    assert d._policy.actions() == table  # a refused table changes nothing
