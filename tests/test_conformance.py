"""Conformance with the kernel's own test of Syscall User Dispatch.

Each test here mirrors one case of the upstream selftest
tools/testing/selftests/syscall_user_dispatch/sud_test.c (Linux 6.17+, with the
inclusive-mode cases of b6a5a16b8b59) or of the ptrace selftest
tools/testing/selftests/ptrace/get_set_sud.c, through pysud's API: the raw
knobs of ``pysud.lowlevel`` and the everyday ``Dispatcher``/``CodeBlob``.

Anything that arms a thread behind pysud's back, or that may kill the
process, runs in a forked child (``_child``/``_child_killed_by``): the result
comes back through a pipe as JSON, a signal death as the wait status.

The "raw" tests do what sud_test.c does, byte for byte: a one-byte selector,
a SIGSYS handler (here in machine code, because a Python-level handler
returns through an rt_sigreturn that would itself be dispatched) that records
the siginfo, counts, and sets the selector to ALLOW, and a syscall issued from
a known address.  A raw syscall returns -ENOSYS for an unknown number where
libc's syscall() returns -1 with errno ENOSYS.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import select
import signal
import struct
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

import pysud
from pysud import CodeBlob, Dispatcher, Mode, Return, SUDUnavailable
from pysud import lowlevel as ll
from pysud.lowlevel import DispatchConfig

pytestmark = pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")

U64 = 2**64 - 1
MAGIC_SYSCALL_1 = 0xFF00  # sud_test.c on x86-64: no __NR_syscalls, so 0xff00
SYS_getpid = 39
AUDIT_ARCH_X86_64 = 0xC000003E
MAGIC_RESULT = 0x5D5D  # what handlers answer: proof that a call was dispatched
PTRACE_TRACEME = 0
PTRACE_CONT = 7

# mov eax, 39; syscall; ret  -- si_call_addr is the address after syscall: start + 7
GETPID_CODE = b"\xb8\x27\x00\x00\x00\x0f\x05\xc3"
GETPID_CALL_OFFSET = 7
# mov eax, 0xff00; syscall; ret
MAGIC_CODE = b"\xb8" + struct.pack("<I", MAGIC_SYSCALL_1) + b"\x0f\x05\xc3"
# trigger(sel, value, nr): mov [rdi], sil; mov rax, rdx; syscall; mov byte [rdi], 0; ret
# (sud_test.c's "SYSCALL_DISPATCH_ON(glob_sel); syscall(nr)", with no code in between)
TRIGGER_CODE = b"\x40\x88\x37\x48\x89\xd0\x0f\x05\xc6\x07\x00\xc3"
TRIGGER_CALL_OFFSET = 8


# ------------------------------------------------------------------ support


@functools.cache
def _support() -> pysud.Support:
    return pysud.support()


def _require_exclusive() -> None:
    s = _support()
    if not s.exclusive.supported:
        pytest.skip(f"syscall user dispatch unavailable: {s.exclusive.detail}")


def _require_inclusive() -> None:
    _require_exclusive()
    s = _support()
    if not s.inclusive.supported:
        pytest.skip(f"inclusive mode unavailable: {s.inclusive.detail}")


def _require_ptrace_config() -> None:
    _require_exclusive()
    s = _support()
    if not s.ptrace_config.supported:
        pytest.skip(f"ptrace SUD config unavailable: {s.ptrace_config.detail}")


def _arming_denied() -> bool:
    """kernel.syscall_user_dispatch = 0 (newer kernels): arming fails with EPERM."""
    return not _support().sysctl.supported


# ----------------------------------------------------------- child processes


def _run_child(fn: Callable[[], Any], timeout: float = 60.0) -> tuple[int, dict[str, Any] | None]:
    """Run fn() in a forked child; (wait status, {"ok": result} or {"error": traceback} or None)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            try:
                payload: dict[str, Any] = {"ok": fn()}
            except BaseException:  # noqa: BLE001
                payload = {"error": traceback.format_exc()}
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(w, data) :]
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([r], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"child did not finish within {timeout}s")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    return status, (json.loads(data) if data else None)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _child(fn: Callable[[], Any]) -> Any:
    """fn()'s JSON-able result, computed in a child; its exception fails the test."""
    status, payload = _run_child(fn)
    assert payload is not None, f"child produced no result ({_describe(status)})"
    if "error" in payload:
        pytest.fail(f"child raised:\n{payload['error']}", pytrace=False)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, _describe(status)
    return payload["ok"]


def _child_killed_by(fn: Callable[[], Any]) -> int:
    """The signal that killed the child running fn(); fails if it survived."""
    status, payload = _run_child(fn)
    assert os.WIFSIGNALED(status), f"child survived ({_describe(status)}): {payload}"
    return os.WTERMSIG(status)


# ------------------------------------------------- sud_test.c's harness, raw


def _movabs_rax(value: int) -> bytes:
    return b"\x48\xb8" + struct.pack("<Q", value)


class _SigsysRecorder(ctypes.Structure):
    """What the raw handler records: the first 32 bytes of siginfo_t and a count."""

    _fields_ = [
        ("si_signo", ctypes.c_int32),
        ("si_errno", ctypes.c_int32),
        ("si_code", ctypes.c_int32),
        ("_pad", ctypes.c_int32),
        ("si_call_addr", ctypes.c_uint64),
        ("si_syscall", ctypes.c_int32),
        ("si_arch", ctypes.c_uint32),
        ("count", ctypes.c_uint64),
    ]


class _Sigaction(ctypes.Structure):  # glibc's struct sigaction on x86-64
    _fields_ = [
        ("sa_sigaction", ctypes.c_void_p),
        ("sa_mask", ctypes.c_uint64 * 16),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


SA_SIGINFO = 4


class RawHarness:
    """sud_test.c's glob_sel, handle_sigsys and syscall(), for use in a child process.

    The handler copies siginfo (signo, errno, code, call_addr, syscall, arch),
    counts, and sets the selector to ALLOW "in preparation for sigreturn", as
    handle_sigsys does.  It replaces whatever SIGSYS handler was installed.
    """

    def __init__(self) -> None:
        self.sel = ctypes.c_uint8(ll.SYSCALL_DISPATCH_FILTER_ALLOW)
        self.rec = _SigsysRecorder()
        code = (
            _movabs_rax(ctypes.addressof(self.rec))
            + b"\x48\x8b\x0e\x48\x89\x08"  # mov rcx, [rsi]; mov [rax], rcx
            + b"\x48\x8b\x4e\x08\x48\x89\x48\x08"  # ... +8
            + b"\x48\x8b\x4e\x10\x48\x89\x48\x10"  # ... +16 (si_call_addr)
            + b"\x48\x8b\x4e\x18\x48\x89\x48\x18"  # ... +24 (si_syscall, si_arch)
            + b"\x48\xff\x40\x20"  # inc qword [rax+32]
            + _movabs_rax(ctypes.addressof(self.sel))
            + b"\xc6\x00\x00"  # mov byte [rax], 0: SYSCALL_DISPATCH_OFF(glob_sel)
            + b"\xc3"
        )
        self.handler_blob = CodeBlob(code)
        self.trigger_blob = CodeBlob(TRIGGER_CODE)
        self._trigger = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)(
            self.trigger_blob.address
        )
        self.call_addr = self.trigger_blob.address + TRIGGER_CALL_OFFSET

    @property
    def sel_addr(self) -> int:
        return ctypes.addressof(self.sel)

    def install(self) -> None:
        """setup_sigsys_handler()."""
        act = _Sigaction()
        act.sa_sigaction = self.handler_blob.address
        act.sa_flags = SA_SIGINFO
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.sigaction(signal.SIGSYS, ctypes.byref(act), None) != 0:
            raise OSError(ctypes.get_errno(), "sigaction(SIGSYS)")

    def prctl(self, op: int, offset: int, length: int) -> int:
        return ll.prctl(op, offset, length, self.sel_addr)

    def syscall(self, nr: int, selector: int = ll.SYSCALL_DISPATCH_FILTER_BLOCK) -> int:
        """Set the selector to ``selector`` and issue syscall ``nr`` from self.call_addr."""
        return int(self._trigger(self.sel_addr, selector, nr))

    def reset(self) -> None:
        ctypes.memset(ctypes.addressof(self.rec), 0, ctypes.sizeof(self.rec))

    def record(self) -> dict[str, int]:
        names = [field[0] for field in _SigsysRecorder._fields_ if field[0] != "_pad"]
        return {name: getattr(self.rec, name) for name in names}


# ----------------------------------------------------------- pysud helpers


@pytest.fixture(scope="module")
def getpid_blob() -> Any:
    blob = CodeBlob(GETPID_CODE)
    yield blob
    blob.close()


@pytest.fixture(scope="module")
def magic_blob() -> Any:
    blob = CodeBlob(MAGIC_CODE)
    yield blob
    blob.close()


def _direct(blob: CodeBlob) -> Callable[[], int]:
    """The blob called without pysud's thunk: the selector stays as it is."""
    return ctypes.CFUNCTYPE(ctypes.c_int64)(blob.address)


def _getpid_dispatcher(seen: list[tuple[int, str, int, int]], **kw: Any) -> Dispatcher:
    d = Dispatcher(**kw)

    def on_getpid(call: pysud.Syscall) -> int:
        seen.append((call.nr, call.name, call.call_addr, call.arch))
        return MAGIC_RESULT

    d.on("getpid", on_getpid)
    return d


# ============================================= TEST(bad_prctl_param), 14 rows

SEL = "sel"  # the address of a valid selector byte (&sel in sud_test.c)
BAD_PTR = -1  # (void *) -1

EXCL, INCL, OFF = ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, ll.PR_SYS_DISPATCH_INCLUSIVE_ON, ll.PR_SYS_DISPATCH_OFF

BAD_PRCTL_ROWS = [
    # (row, op, offset, len, selector, expected errno or 0, sud_test.c comment)
    (1, -1, 0, 0, SEL, errno.EINVAL, "Invalid op"),
    (2, OFF, 0x1, 0x0, 0, errno.EINVAL, "offset != 0"),
    (3, OFF, 0x0, 0xFF, 0, errno.EINVAL, "len != 0"),
    (4, OFF, 0x0, 0x0, SEL, errno.EINVAL, "sel != NULL"),
    (5, OFF, 0x0, 0x0, 0x0, 0, "Valid parameter"),
    (6, EXCL, 0x1, 0x0, SEL, errno.EINVAL, "Dispatcher region is bad (offset > 0 && len == 0)"),
    (7, EXCL, -1, 0x0, SEL, errno.EINVAL, "Dispatcher region is bad (offset > 0 && len == 0)"),
    (8, EXCL, 0x0, 0x1, BAD_PTR, errno.EFAULT, "Invalid selector"),
    (9, EXCL, 1, -1, SEL, errno.EINVAL, "Dispatcher range overflows unsigned long"),
    (10, EXCL, -1, 0x1, SEL, errno.EINVAL, "Allowed range overflows usigned long"),
    (11, INCL, 1, 0, 0, errno.EINVAL, "0 len should fail for PR_SYS_DISPATCH_INCLUSIVE_ON"),
    (12, INCL, -1, 2, 0, errno.EINVAL, "Range wrap-around should fail"),
    (13, INCL, 2, 3, 0, 0, "Normal range shouldn't fail"),
    (14, INCL, 2, 3, BAD_PTR, errno.EFAULT, "Invalid selector"),
]


def _prctl_in_child(op: int, offset: int, length: int, selector: Any) -> int:
    """prctl(PR_SET_SYSCALL_USER_DISPATCH, ...) in a child, always disarmed afterwards."""

    def run() -> int:
        sel = ctypes.c_uint8(ll.SYSCALL_DISPATCH_FILTER_ALLOW)
        addr = ctypes.addressof(sel) if selector == SEL else selector
        try:
            return ll.prctl(op, offset, length, addr)
        finally:
            ll.prctl(OFF, 0, 0, 0)

    return int(_child(run))


def _expected(op: int, err: int) -> int:
    # Newer kernels (kernel.syscall_user_dispatch sysctl): EPERM after the
    # range checks, before the selector check.
    if op in (EXCL, INCL) and err in (0, errno.EFAULT) and _arming_denied():
        return -errno.EPERM
    return -err


@pytest.mark.parametrize(
    "row,op,offset,length,selector,err,comment", BAD_PRCTL_ROWS, ids=[f"row{r[0]}" for r in BAD_PRCTL_ROWS]
)
def test_bad_prctl_param(
    row: int, op: int, offset: int, length: int, selector: Any, err: int, comment: str
) -> None:
    """sud_test.c TEST(bad_prctl_param): every prctl_valid/prctl_invalid row, exact errno."""
    _require_exclusive()
    if op == INCL:
        _require_inclusive()
    got = _prctl_in_child(op, offset, length, selector)
    want = _expected(op, err)
    assert got == want, (
        f"row {row} ({comment}): prctl({op}, {offset:#x}, {length:#x}, {selector}) = "
        f"{got} ({errno.errorcode.get(-got, got)}), want {want} ({errno.errorcode.get(-want, want)})"
    )


EXTRA_PRCTL_ROWS = [
    # Not in sud_test.c: further consequences of the same kernel checks.
    ("mode 3", 3, 0, 0, SEL, errno.EINVAL),
    ("exclusive (0, -1) accepted", EXCL, 0, -1, SEL, 0),
    ("inclusive (0, 1) accepted", INCL, 0, 1, 0, 0),
    ("inclusive (-2, 2) reaches 2**64", INCL, -2, 2, 0, errno.EINVAL),
    ("EINVAL before EFAULT", INCL, -1, 2, BAD_PTR, errno.EINVAL),
]


@pytest.mark.parametrize(
    "what,op,offset,length,selector,err", EXTRA_PRCTL_ROWS, ids=[r[0] for r in EXTRA_PRCTL_ROWS]
)
def test_bad_prctl_param_extra(what: str, op: int, offset: int, length: int, selector: Any, err: int) -> None:
    """Beyond TEST(bad_prctl_param): the kernel's range/mode rules that the selftest implies."""
    _require_exclusive()
    if op == INCL:
        _require_inclusive()
    assert _prctl_in_child(op, offset, length, selector) == _expected(op, err)


DISPATCHER_BAD_REGIONS = [
    # TEST(bad_prctl_param) rows 6, 7, 9, 10, 11, 12 through Dispatcher.arm_thread()
    (6, Mode.EXCLUSIVE, (1, 0)),
    (7, Mode.EXCLUSIVE, (U64, 0)),
    (9, Mode.EXCLUSIVE, (1, U64)),
    (10, Mode.EXCLUSIVE, (U64, 1)),
    (11, Mode.INCLUSIVE, (1, 0)),
    (12, Mode.INCLUSIVE, (U64, 2)),
]


@pytest.mark.parametrize(
    "row,mode,region", DISPATCHER_BAD_REGIONS, ids=[f"row{r[0]}" for r in DISPATCHER_BAD_REGIONS]
)
def test_bad_prctl_param_through_dispatcher(row: int, mode: Mode, region: tuple[int, int]) -> None:
    """sud_test.c TEST(bad_prctl_param), the bad-region rows: arm_thread() raises SUDUnavailable(EINVAL)."""
    _require_exclusive()
    if mode is Mode.INCLUSIVE:
        _require_inclusive()

    def run() -> Any:
        d = Dispatcher(mode=mode, region=region)
        try:
            d.arm_thread()
        except SUDUnavailable as e:
            return ["SUDUnavailable", e.errno]
        finally:
            ll.prctl(OFF, 0, 0, 0)
        return ["armed", None]

    assert _child(run) == ["SUDUnavailable", errno.EINVAL]


# ===================================== TEST_SIGNAL(dispatch_trigger_sigsys)


def test_dispatch_trigger_sigsys() -> None:
    """sud_test.c TEST_SIGNAL(dispatch_trigger_sigsys, SIGSYS): BLOCK without a handler kills with SIGSYS.

    (The selftest issues sysinfo(); any syscall will do, here getpid.)
    """
    _require_exclusive()

    def run() -> str:
        h = RawHarness()
        signal.signal(signal.SIGSYS, signal.SIG_DFL)
        if h.prctl(EXCL, 0, 0) != 0:
            return "prctl failed"
        h.syscall(SYS_getpid)
        return "Unreachable!"

    assert _child_killed_by(run) == signal.SIGSYS


def test_dispatch_trigger_sigsys_thread_unknown_to_pysud() -> None:
    """sud_test.c TEST_SIGNAL(dispatch_trigger_sigsys, SIGSYS), with pysud's SIGSYS handler installed.

    A thread armed behind pysud's back gets SIGSYS's default action: pysud's
    handler passes the signal on and the process dies of SIGSYS.
    """
    _require_exclusive()

    def run() -> str:
        signal.signal(signal.SIGSYS, signal.SIG_DFL)
        ll.hazard_ranges()  # initialises the core: pysud's SIGSYS handler is now installed
        outcome: list[str] = []

        def thread() -> None:
            sel = ctypes.c_uint8(ll.SYSCALL_DISPATCH_FILTER_ALLOW)
            if ll.prctl(EXCL, 0, 0, ctypes.addressof(sel)) != 0:
                outcome.append("prctl failed")
                return
            trig = CodeBlob(TRIGGER_CODE)
            f = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)(
                trig.address
            )
            f(ctypes.addressof(sel), ll.SYSCALL_DISPATCH_FILTER_BLOCK, SYS_getpid)
            outcome.append("Unreachable!")

        t = threading.Thread(target=thread)
        t.start()
        t.join()
        return outcome[0] if outcome else "thread ended without result"

    assert _child_killed_by(run) == signal.SIGSYS


# ============================================== TEST(dispatch_and_return)


def test_dispatch_and_return_raw() -> None:
    """sud_test.c TEST(dispatch_and_return): raw prctl, selector ALLOW runs natively, BLOCK raises SIGSYS
    once with si_code SYS_USER_DISPATCH, si_errno 0, si_syscall = nr, and the call returns nr (rollback)."""
    _require_exclusive()

    def run() -> dict[str, Any]:
        h = RawHarness()
        h.install()
        out: dict[str, Any] = {"prctl": h.prctl(EXCL, 0, 0), "call_addr": h.call_addr}
        out["allow"] = h.syscall(MAGIC_SYSCALL_1, ll.SYSCALL_DISPATCH_FILTER_ALLOW)
        out["allow_count"] = h.rec.count
        h.reset()
        out["block"] = h.syscall(MAGIC_SYSCALL_1, ll.SYSCALL_DISPATCH_FILTER_BLOCK)
        out["rec"] = h.record()
        out["sel_after"] = h.sel.value
        ll.prctl(OFF, 0, 0, 0)
        return out

    out = _child(run)
    assert out["prctl"] == 0
    assert out["allow"] == -errno.ENOSYS, "Dispatch triggered unexpectedly"
    assert out["allow_count"] == 0, "Dispatch triggered unexpectedly"
    assert out["block"] == MAGIC_SYSCALL_1, "Failed to intercept syscall"
    rec = out["rec"]
    assert rec["count"] == 1, "Failed to emulate syscall"
    assert rec["si_signo"] == signal.SIGSYS
    assert rec["si_code"] == ll.SYS_USER_DISPATCH, "Bad si_code in SIGSYS"
    assert rec["si_errno"] == 0, "Bad si_errno in SIGSYS"
    assert rec["si_syscall"] == MAGIC_SYSCALL_1
    assert rec["si_arch"] == AUDIT_ARCH_X86_64
    assert rec["si_call_addr"] == out["call_addr"], "si_call_addr is not the address after the syscall"
    assert out["sel_after"] == ll.SYSCALL_DISPATCH_FILTER_ALLOW


def test_dispatch_and_return_handler_sees_nr(getpid_blob: CodeBlob) -> None:
    """sud_test.c TEST(dispatch_and_return) through a Dispatcher: selector ALLOW runs the call natively;
    selector BLOCK (CodeBlob.run, and Dispatcher.blocked()) dispatches it to the handler, which sees the
    number, si_call_addr and si_arch, and whose result the code gets back.  pysud's handler only takes
    SIGSYS with si_code SYS_USER_DISPATCH, so a handler call also proves the si_code."""
    _require_exclusive()
    seen: list[tuple[int, str, int, int]] = []
    d = _getpid_dispatcher(seen)
    direct = _direct(getpid_blob)
    want = (SYS_getpid, "getpid", getpid_blob.address + GETPID_CALL_OFFSET, AUDIT_ARCH_X86_64)
    try:
        d.arm_thread()
        assert ll.get_selector() == ll.SYSCALL_DISPATCH_FILTER_ALLOW
        assert direct() == os.getpid(), "Dispatch triggered unexpectedly"
        assert seen == []

        assert getpid_blob.run(d) == MAGIC_RESULT, "Failed to intercept syscall"
        assert seen == [want]
        assert ll.get_selector() == ll.SYSCALL_DISPATCH_FILTER_ALLOW

        seen.clear()
        with d.blocked():
            assert ll.get_selector() == ll.SYSCALL_DISPATCH_FILTER_BLOCK
            r = direct()
        assert r == MAGIC_RESULT, "Failed to intercept syscall"
        assert seen == [want]
    finally:
        d.close()


def test_dispatch_and_return_unknown_number(magic_blob: CodeBlob) -> None:
    """sud_test.c TEST(dispatch_and_return) with its MAGIC_SYSCALL_1 (0xff00), through a Dispatcher:
    natively it fails with ENOSYS; dispatched, the dispatcher's default answers it."""
    _require_exclusive()
    d = Dispatcher(default=Return(MAGIC_RESULT))
    try:
        d.arm_thread()
        assert _direct(magic_blob)() == -errno.ENOSYS, "Dispatch triggered unexpectedly"
        assert d.counts().get("other", 0) == 0
        assert magic_blob.run(d) == MAGIC_RESULT, "Failed to intercept syscall"
        assert d.counts().get("other", 0) == 1, "Failed to emulate syscall"
    finally:
        d.close()


# ===================================================== TEST_SIGNAL(bad_selector)


def test_bad_selector_raw() -> None:
    """sud_test.c TEST_SIGNAL(bad_selector, SIGSYS): selector (char)-1 kills with SIGSYS although a
    SIGSYS handler is installed (the kernel's force_exit_sig)."""
    _require_exclusive()

    def run() -> str:
        h = RawHarness()
        h.install()
        if h.prctl(EXCL, 0, 0) != 0:
            return "prctl failed"
        h.syscall(SYS_getpid, 0xFF)
        return f"Unreachable! (handler count {h.rec.count})"

    assert _child_killed_by(run) == signal.SIGSYS


def test_bad_selector_pysud_thread() -> None:
    """sud_test.c TEST_SIGNAL(bad_selector, SIGSYS) on a thread armed by a Dispatcher: a selector byte of
    0xff written behind pysud's back kills the process with SIGSYS; pysud's handler cannot catch it."""
    _require_exclusive()

    def run() -> str:
        d = Dispatcher()
        d.arm_thread()
        addr = ll.selector_address()
        assert addr is not None
        ctypes.c_uint8.from_address(addr).value = 0xFF
        os.getpid()
        return "Unreachable!"

    assert _child_killed_by(run) == signal.SIGSYS


@pytest.mark.parametrize("value", [2, 0xFF, -1])
def test_bad_selector_refused_by_set_selector(value: int) -> None:
    """sud_test.c TEST_SIGNAL(bad_selector): pysud refuses to store a selector the kernel would kill for;
    set_selector raises ValueError, the selector keeps its value and the thread survives a syscall."""
    _require_exclusive()

    def run() -> list[Any]:
        d = Dispatcher()
        d.arm_thread()
        try:
            ll.set_selector(value)
        except ValueError:
            refused = True
        else:
            refused = False
        sel = ll.get_selector()
        pid = os.getpid()
        d.close()
        return [refused, sel, pid]

    refused, sel, pid = _child(run)
    assert refused, f"set_selector({value}) was accepted"
    assert sel == ll.SYSCALL_DISPATCH_FILTER_ALLOW
    assert pid > 0


def test_unmapped_selector_kills_with_sigsegv() -> None:
    """Not in sud_test.c (kernel rule next to bad_selector): a selector in user range but unmapped is
    accepted by prctl, and the first syscall checked kills the process with SIGSEGV."""
    _require_exclusive()

    def run() -> str:
        from pysud import _elf

        page = _elf._map(0, 4096, _elf.PROT_READ | _elf.PROT_WRITE, 0, "test page")
        _elf.unmap_region(page, 4096)
        r = ll.prctl(EXCL, 0, 0, page)
        if r != 0:
            return f"prctl returned {r}"
        os.getpid()
        return "Unreachable!"

    assert _child_killed_by(run) == signal.SIGSEGV


# ======================================================== TEST(disable_dispatch)


def test_disable_dispatch_raw() -> None:
    """sud_test.c TEST(disable_dispatch): after prctl(OFF, 0, 0, 0) a BLOCK selector has no effect.
    (Unlike the selftest, which sets a different variable, this flips the registered selector.)"""
    _require_exclusive()

    def run() -> dict[str, int]:
        h = RawHarness()
        h.install()
        out = {"arm": h.prctl(EXCL, 0, 0)}
        out["armed_call"] = h.syscall(MAGIC_SYSCALL_1)  # proves the arming took effect
        out["armed_count"] = h.rec.count
        out["off"] = ll.prctl(OFF, 0, 0, 0)
        out["after_off"] = h.syscall(MAGIC_SYSCALL_1)
        out["after_off_count"] = h.rec.count
        return out

    out = _child(run)
    assert out["arm"] == 0
    assert out["armed_call"] == MAGIC_SYSCALL_1 and out["armed_count"] == 1
    assert out["off"] == 0, "Failed to unset syscall user dispatch"
    assert out["after_off"] == -errno.ENOSYS, "Dispatch triggered unexpectedly"
    assert out["after_off_count"] == 1, "Dispatch triggered unexpectedly"


def test_disable_dispatch_pysud(getpid_blob: CodeBlob) -> None:
    """sud_test.c TEST(disable_dispatch) on a Dispatcher's thread: prctl OFF, and disarm_thread(), stop
    dispatch even with pysud's registered selector at BLOCK; arming again restores it."""
    _require_exclusive()

    def run() -> dict[str, Any]:
        seen: list[tuple[int, str, int, int]] = []
        d = _getpid_dispatcher(seen)
        direct = _direct(getpid_blob)
        pid = os.getpid()
        out: dict[str, Any] = {"pid": pid}
        out["armed"] = getpid_blob.run(d)
        out["off"] = ll.prctl(OFF, 0, 0, 0)
        ll.set_selector(ll.SYSCALL_DISPATCH_FILTER_BLOCK)
        out["after_off"] = direct()
        out["python_getpid"] = os.getpid()
        ll.set_selector(ll.SYSCALL_DISPATCH_FILTER_ALLOW)
        out["seen_after_off"] = len(seen)
        d.disarm_thread()
        out["rearmed"] = getpid_blob.run(d)
        d.disarm_thread()
        addr = ll.selector_address()
        assert addr is not None
        sel = ctypes.c_uint8.from_address(addr)
        sel.value = ll.SYSCALL_DISPATCH_FILTER_BLOCK
        out["after_disarm"] = direct()
        sel.value = ll.SYSCALL_DISPATCH_FILTER_ALLOW
        out["seen"] = len(seen)
        return out

    out = _child(run)
    assert out["armed"] == MAGIC_RESULT
    assert out["off"] == 0, "Failed to unset syscall user dispatch"
    assert out["after_off"] == out["pid"], "Dispatch triggered unexpectedly"
    assert out["python_getpid"] == out["pid"]
    assert out["seen_after_off"] == 1
    assert out["rearmed"] == MAGIC_RESULT
    assert out["after_disarm"] == out["pid"], "Dispatch triggered unexpectedly"
    assert out["seen"] == 2


# ===================================================== TEST(direct_dispatch_range)


def test_direct_dispatch_range_raw() -> None:
    """sud_test.c TEST(direct_dispatch_range): exclusive (0, -1) is accepted and allows the whole address
    space, so a BLOCK selector dispatches nothing."""
    _require_exclusive()

    def run() -> dict[str, int]:
        h = RawHarness()
        h.install()
        out = {"prctl": h.prctl(EXCL, 0, -1)}
        out["call"] = h.syscall(SYS_getpid)
        out["count"] = h.rec.count
        out["pid"] = os.getpid()
        ll.prctl(OFF, 0, 0, 0)
        return out

    out = _child(run)
    assert out["prctl"] == 0
    assert out["call"] == out["pid"], "Dispatch triggered unexpectedly"
    assert out["count"] == 0, "Dispatch triggered unexpectedly"


def test_direct_dispatch_range_pysud(getpid_blob: CodeBlob) -> None:
    """sud_test.c TEST(direct_dispatch_range) through a Dispatcher with region (0, 2**64 - 1): nothing
    is dispatched, whether through CodeBlob.run or with the whole thread under blocked()."""
    _require_exclusive()
    seen: list[tuple[int, str, int, int]] = []
    d = _getpid_dispatcher(seen, region=(0, U64))
    try:
        assert getpid_blob.run(d) == os.getpid(), "Dispatch triggered unexpectedly"
        with d.blocked():
            assert ll.get_selector() == ll.SYSCALL_DISPATCH_FILTER_BLOCK
            r = _direct(getpid_blob)()
        assert r == os.getpid(), "Dispatch triggered unexpectedly"
        assert seen == []
    finally:
        d.close()


# ============================================================ TEST(dispatch_range)

# (mode, offset, length, dispatched), offset relative to A = si_call_addr unless absolute
A = "A"
RANGE_CASES = [
    # the eight test_range() calls of sud_test.c, in order
    ("selftest", EXCL, None, 0, 0, True),
    ("selftest", EXCL, A, 0, 1, False),
    ("selftest", EXCL, A, -100, 200, False),
    ("selftest", EXCL, A, +1, 100, True),
    ("selftest", EXCL, A, -100, 100, True),
    ("selftest", INCL, A, 0, 1, True),
    ("selftest", INCL, A, -1, 1, False),
    ("selftest", INCL, A, +1, 1, False),
    # the same boundaries in the other mode (not in sud_test.c)
    ("extra", EXCL, A, -1, 1, True),
    ("extra", EXCL, A, -1, 2, False),
    ("extra", EXCL, A, +1, 1, True),
    ("extra", INCL, A, -100, 200, True),
    ("extra", INCL, A, +1, 100, False),
    ("extra", INCL, A, -100, 100, False),
    ("extra", INCL, A, -1, 2, True),
]


def _case_id(c: tuple[Any, ...]) -> str:
    src, op, base, delta, length, disp = c
    mode = "excl" if op == EXCL else "incl"
    off = f"{delta}" if base is None else f"A{delta:+d}" if delta else "A"
    return f"{src}-{mode}({off},{length})-{'dispatch' if disp else 'native'}"


@pytest.mark.parametrize(
    "src,op,base,delta,length,dispatched", RANGE_CASES, ids=[_case_id(c) for c in RANGE_CASES]
)
def test_dispatch_range_raw(src: str, op: int, base: Any, delta: int, length: int, dispatched: bool) -> None:
    """sud_test.c TEST(dispatch_range): test_range(op, off, size, dispatch) with raw prctl; A is the
    si_call_addr of the syscall site; the ranges are half-open [off, off + len)."""
    _require_exclusive()
    if op == INCL:
        _require_inclusive()

    def run() -> dict[str, Any]:
        h = RawHarness()
        h.install()
        a = h.call_addr
        offset = delta if base is None else a + delta
        out: dict[str, Any] = {"prctl": h.prctl(op, offset, length)}
        out["ret"] = h.syscall(MAGIC_SYSCALL_1)
        out["rec"] = h.record()
        out["A"] = a
        ll.prctl(OFF, 0, 0, 0)
        return out

    out = _child(run)
    assert out["prctl"] == 0
    rec = out["rec"]
    if dispatched:
        assert out["ret"] == MAGIC_SYSCALL_1
        assert rec["count"] == 1
        assert rec["si_call_addr"] == out["A"]
        assert rec["si_syscall"] == MAGIC_SYSCALL_1
    else:
        assert out["ret"] == -errno.ENOSYS
        assert rec["count"] == 0


@pytest.mark.parametrize(
    "src,op,base,delta,length,dispatched", RANGE_CASES, ids=[_case_id(c) for c in RANGE_CASES]
)
def test_dispatch_range_pysud(
    getpid_blob: CodeBlob, src: str, op: int, base: Any, delta: int, length: int, dispatched: bool
) -> None:
    """sud_test.c TEST(dispatch_range) through Dispatcher(mode, region) and CodeBlob.run: A is the handler's
    call_addr (si_call_addr), the address after the blob's syscall instruction."""
    _require_exclusive()
    if op == INCL:
        _require_inclusive()
    a = getpid_blob.address + GETPID_CALL_OFFSET
    offset = delta if base is None else a + delta
    seen: list[tuple[int, str, int, int]] = []
    d = _getpid_dispatcher(seen, mode=Mode(op), region=(offset, length))
    try:
        result = getpid_blob.run(d)
    finally:
        d.close()
    if dispatched:
        assert result == MAGIC_RESULT, "Failed to intercept syscall"
        assert seen == [(SYS_getpid, "getpid", a, AUDIT_ARCH_X86_64)]
    else:
        assert result == os.getpid(), "Dispatch triggered unexpectedly"
        assert seen == []


# ===================================== ptrace PTRACE_GET/SET_SYSCALL_USER_DISPATCH_CONFIG


def _traced_child(arm: Callable[[], dict[str, Any]]) -> tuple[int, int]:
    """Fork a child that is traced by us, stops unarmed, then runs arm(), reports it through a pipe and
    stops again.  Returns (pid, read end of the pipe); the child is at its first stop."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
                os._exit(3)
            os.kill(os.getpid(), signal.SIGSTOP)
            try:
                info: dict[str, Any] = {"ok": arm()}
            except BaseException:  # noqa: BLE001
                info = {"error": traceback.format_exc()}
            os.write(w, json.dumps(info).encode())
            os.close(w)
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _wait_stopped(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.WIFSTOPPED(status), f"tracee did not stop: {_describe(status)}"
    assert os.WSTOPSIG(status) == signal.SIGSTOP


def _ptrace_cont(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(PTRACE_CONT, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "PTRACE_CONT")


def _read_report(fd: int) -> dict[str, Any]:
    ready, _, _ = select.select([fd], [], [], 30)
    assert ready, "tracee sent no report"
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    info = json.loads(data)
    if "error" in info:
        pytest.fail(f"tracee raised:\n{info['error']}", pytrace=False)
    return info["ok"]  # type: ignore[no-any-return]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def test_ptrace_get_set_config() -> None:
    """ptrace selftest get_set_sud.c (PTRACE_GET/SET_SYSCALL_USER_DISPATCH_CONFIG): an unarmed tracee
    reads (0, 0, 0, 0); after a Dispatcher arms it, mode 1 with pysud's selector and gate region; a new
    config (1, NULL, 0x400000, 0x1000) set by the tracer reads back; invalid configs fail with EINVAL
    (or EFAULT for a selector outside user space) and leave the config unchanged; OFF disarms."""
    _require_ptrace_config()

    def arm() -> dict[str, Any]:
        d = Dispatcher()
        d.arm_thread()
        return {"selector": ll.selector_address(), "region": list(d.region)}

    pid, r = _traced_child(arm)
    try:
        _wait_stopped(pid)
        assert ll.ptrace_get_config(pid) == DispatchConfig(0, 0, 0, 0)
        _ptrace_cont(pid)
        _wait_stopped(pid)
        info = _read_report(r)
        start, length = info["region"]
        gate_start, gate_end = ll.gate_range()
        assert (start, length) == (gate_start, gate_end - gate_start)

        cfg = ll.ptrace_get_config(pid)
        assert cfg.mode == ll.PR_SYS_DISPATCH_EXCLUSIVE_ON
        assert cfg.selector == info["selector"]
        assert (cfg.offset, cfg.len) == (start, length)

        new = DispatchConfig(ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, 0, 0x400000, 0x1000)
        ll.ptrace_set_config(pid, new)
        assert ll.ptrace_get_config(pid) == new

        bad = [
            (DispatchConfig(3, 0, 0, 0), errno.EINVAL),  # invalid mode
            (DispatchConfig(ll.PR_SYS_DISPATCH_OFF, 0, 1, 0), errno.EINVAL),  # OFF with offset
            (
                DispatchConfig(ll.PR_SYS_DISPATCH_OFF, info["selector"], 0, 0),
                errno.EINVAL,
            ),  # OFF with selector
            (DispatchConfig(ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, 0, 1, 0), errno.EINVAL),  # offset > 0, len 0
            (DispatchConfig(ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, 0, 1, U64), errno.EINVAL),  # range overflows
            (
                DispatchConfig(ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, U64, 0, 1),
                errno.EFAULT,
            ),  # selector (void *) -1
        ]
        if _arming_denied():
            bad[-1] = (bad[-1][0], errno.EPERM)
        for config, err in bad:
            with pytest.raises(OSError) as exc:
                ll.ptrace_set_config(pid, config)
            assert exc.value.errno == err, f"{config}: {exc.value}"
            assert ll.ptrace_get_config(pid) == new, f"{config} changed the config"

        ll.ptrace_set_config(pid, DispatchConfig(ll.PR_SYS_DISPATCH_OFF, 0, 0, 0))
        assert ll.ptrace_get_config(pid) == DispatchConfig(0, 0, 0, 0)
    finally:
        os.close(r)
        _kill(pid)


def test_ptrace_get_config_inclusive_reads_inverted_range() -> None:
    """Not in the selftests (kernel-derived): GET on an inclusive-armed tracee reports mode 1 and the
    kernel's inverted range (offset + len, 2**64 - len); SET of those values back fails with EINVAL."""
    _require_ptrace_config()
    _require_inclusive()
    region = (0x400000, 0x1000)

    def arm() -> dict[str, Any]:
        d = Dispatcher(mode=Mode.INCLUSIVE, region=region)
        d.arm_thread()
        return {"selector": ll.selector_address()}

    pid, r = _traced_child(arm)
    try:
        _wait_stopped(pid)
        _ptrace_cont(pid)
        _wait_stopped(pid)
        info = _read_report(r)
        cfg = ll.ptrace_get_config(pid)
        off, length = region
        assert cfg == DispatchConfig(
            ll.PR_SYS_DISPATCH_EXCLUSIVE_ON, info["selector"], off + length, 2**64 - length
        )
        with pytest.raises(OSError) as exc:
            ll.ptrace_set_config(pid, cfg)
        assert exc.value.errno == errno.EINVAL
    finally:
        os.close(r)
        _kill(pid)
