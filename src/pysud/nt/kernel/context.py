"""Thread contexts: NtSuspendThread, NtGetContextThread, NtSetContextThread (and the suspension side
of NtResumeThread).

A thread is suspended the way Wine suspends one: a signal.  NtSuspendThread sends the target the
kick signal (its handler is pysud's PysudKick stub, set by PysudStart); the handler parks in
PysudKick, inside the signal frame, until the suspend count is back to zero.  Its context is that
frame's ucontext: the general registers and the XSAVE image (x87, MXCSR, XMM) of the program at the
interruption, read by NtGetContextThread and written by NtSetContextThread; the handler's return
(an rt_sigreturn) resumes the program from it.  A thread inside a call that blocks (a wait) is
suspended in the kernel, as on Windows: its context is the call's registers, and the signal,
held by the core until the call ends, parks it then if it is still suspended.  A context set
while it is there is kept (read back by NtGetContextThread) and taken when the thread leaves the
call, whenever that is, as Wine does: with CONTEXT_INTEGER its RAX replaces the call's status.

Go's runtime preempts goroutines this way (SuspendThread, GetThreadContext, SetThreadContext to
inject a call, ResumeThread): without it a goroutine in a loop without calls stops the world.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

from ... import _core
from .. import objects
from .. import status as st
from ..wine import CONTEXT_SIZE, CTX_EFLAGS, CTX_FLAGS, CTX_FLTSAVE, CTX_RAX, CTX_REGS, CTX_RIP
from .exception import (
    _GREG_ORDER,
    CONTEXT_CONTROL,
    CONTEXT_FLOATING_POINT,
    CONTEXT_INTEGER,
    KICK_SIGNAL,
    UC_FPREGS,
    UC_GREGS,
    restore_context,
    vector_state_of,
)

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE
CONTEXT_AMD64 = 0x100000
CONTEXT_SEGMENTS = 0x4
SYS_TGKILL = 234
STATUS_THREAD_IS_TERMINATING = 0xC000004B
STATUS_SUSPEND_COUNT_EXCEEDED = 0xC000004A
MAXIMUM_SUSPEND_COUNT = 127
#: how long NtGetContextThread waits for a suspended thread to stop (it may be outside the program)
STOP_TIMEOUT = 2.0
#: calls that may block for long: a thread inside one is suspended "in the kernel"
BLOCKING = frozenset(
    {
        "NtWaitForSingleObject",
        "NtWaitForMultipleObjects",
        "NtSignalAndWaitForSingleObject",
        "NtDelayExecution",
        "NtWaitForKeyedEvent",
        "NtReleaseKeyedEvent",
        "NtWaitForAlertByThreadId",
        "NtRemoveIoCompletion",
        "NtRemoveIoCompletionEx",
        "NtReadFile",
        "NtSuspendThread",
    }
)
#: the parts of a CONTEXT NtSetContextThread writes
_PARTS = CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_SEGMENTS | CONTEXT_FLOATING_POINT
#: ucontext general registers -> index (struct sigcontext: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp)
_UC_INDEX = {name: i for i, name in enumerate(_GREG_ORDER)}
_UC_RIP, _UC_EFLAGS = 16, 17


def blocking(nt: NtPersonality, handler: Any) -> Any:
    """``handler`` with the calling thread's call on record while it runs (see BLOCKING)."""

    def tracked(call: NtSyscall) -> Any:
        tid = threading.get_native_id()
        nt.blocked[tid] = call
        try:
            result = handler(call)
        finally:
            with objects.CHANGED:  # NtSetContextThread sees the call or none, with its context
                nt.blocked.pop(tid, None)
                th = getattr(nt.tls, "thread", None) or thread_by_tid(nt, tid)
                ctx = th.pending_context if th is not None else None
                if th is not None:
                    th.pending_context = None
        if ctx is None:
            return result
        restore_context(call, bytes(ctx))  # the context set while it was suspended in here
        (flags,) = struct.unpack_from("<I", ctx, CTX_FLAGS)
        return None if flags & CONTEXT_INTEGER else result

    tracked.__name__ = getattr(handler, "__name__", "handler")
    tracked.__wrapped__ = handler  # type: ignore[attr-defined]
    return tracked


def _thread(nt: NtPersonality, handle: int) -> objects.Thread | None:
    """The Thread of a handle (the current-thread pseudo-handle included), else None."""
    if handle == CURRENT_THREAD:
        return thread_by_tid(nt, threading.get_native_id(), create=True)
    obj = nt.handles.get(handle)
    return obj if isinstance(obj, objects.Thread) else None


def thread_by_tid(nt: NtPersonality, tid: int, create: bool = False) -> objects.Thread | None:
    """The Thread object of a native thread id: a thread of NtCreateThreadEx, or the first thread's
    (kept in the namespace once a handle to it exists, as NtDuplicateObject makes one)."""
    for th in nt.threads:
        if th.tid == tid:
            return th
    key = f"<thread {tid}>"
    known = nt.handles.namespace.get(key)
    if isinstance(known, objects.Thread):
        return known
    if not create:
        return None
    with objects.CHANGED:
        known = nt.handles.namespace.get(key)
        if not isinstance(known, objects.Thread):
            known = objects.Thread(tid=tid)
            known.resume.set()
            nt.handles.namespace[key] = known
        return known


def NtSuspendThread(nt: NtPersonality, call: NtSyscall) -> int:
    handle, prev = call.args[:2]
    th = _thread(nt, handle)
    if th is None:
        return st.STATUS_INVALID_HANDLE
    if th.done:
        return STATUS_THREAD_IS_TERMINATING
    me = th.tid == threading.get_native_id()
    with objects.CHANGED:
        count = th.suspend_count
        if count >= MAXIMUM_SUSPEND_COUNT:
            return STATUS_SUSPEND_COUNT_EXCEEDED
        th.suspend_count = count + 1
    nt.put_u32(call, prev, count + (1 if not th.tid and not th.resume.is_set() else 0))  # created suspended
    if me:  # suspending oneself: stopped in this call until another thread resumes it
        objects.wait_until(lambda: th.suspend_count == 0 or nt.leaving, None, nt.exiting)
    elif count == 0 and th.tid and nt.fault_action:
        _core.syscall(SYS_TGKILL, os.getpid(), th.tid, KICK_SIGNAL)
    return st.STATUS_SUCCESS


def resume(th: objects.Thread) -> int | None:
    """NtResumeThread's suspension side: the previous count, or None when there was no suspension."""
    with objects.CHANGED:
        count = th.suspend_count
        if not count:
            return None
        th.suspend_count = count - 1
        objects.CHANGED.notify_all()
        return count


def park(nt: NtPersonality, call: NtSyscall) -> Any:
    """PysudKick on a thread that is to be suspended: stay in the signal handler until resumed."""
    uc = call.args[0]
    th = thread_by_tid(nt, threading.get_native_id())
    if th is None or not uc:
        return st.STATUS_SUCCESS
    # parked_uc is set and cleared under the lock the suspension count and the context calls hold:
    # a thread that was resumed never shows its frame to a later suspension while it leaves it
    with objects.CHANGED:
        th.parked_uc = uc
        objects.CHANGED.notify_all()
        try:
            while th.suspend_count and not nt.leaving and not nt.exiting.is_set():
                objects.CHANGED.wait(0.05)
        finally:
            th.parked_uc = 0
    if nt.leaving or nt.exiting.is_set():
        call.exit_guest(nt.exit_status)
        return None
    return st.STATUS_SUCCESS


# ---- CONTEXT <-> the registers of a parked thread (its ucontext) or of a call


def _fx_of_xsave(image: bytes) -> bytes:
    """The FXSAVE part of an XSAVE image, with components in their initial state as such."""
    fx = bytearray(image[:512])
    (bv,) = struct.unpack_from("<Q", image, 512)
    if not bv & 1:
        fx[0:24] = struct.pack("<H22x", 0x37F)
        fx[32:160] = bytes(128)
    if not bv & 2:
        fx[160:416] = bytes(256)
    return bytes(fx)


def _full_context(regs: dict[str, int], rip: int, eflags: int, fx: bytes | None) -> bytearray:
    ctx = bytearray(CONTEXT_SIZE)
    flags = CONTEXT_AMD64 | CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_SEGMENTS
    struct.pack_into("<HHHHHH", ctx, 0x38, 0x33, 0x2B, 0x2B, 0x53, 0x2B, 0x2B)
    struct.pack_into("<I", ctx, CTX_EFLAGS, eflags & 0xFFFFFFFF)
    struct.pack_into("<16Q", ctx, CTX_RAX, *(regs[r] for r in CTX_REGS))
    struct.pack_into("<Q", ctx, CTX_RIP, rip)
    if fx is not None:
        flags |= CONTEXT_FLOATING_POINT
        ctx[CTX_FLTSAVE : CTX_FLTSAVE + 512] = fx
        ctx[0x34:0x38] = fx[24:28]  # MxCsr
    struct.pack_into("<I", ctx, CTX_FLAGS, flags)
    return ctx


def _parked_context(call: NtSyscall, uc: int) -> bytearray:
    gregs = struct.unpack("<23Q", call.read(uc + UC_GREGS, 23 * 8))
    regs = {name: gregs[i] for name, i in _UC_INDEX.items()}
    (fp,) = struct.unpack("<Q", call.read(uc + UC_FPREGS, 8))
    fx = _fx_of_xsave(call.read(fp, 576)) if fp else None
    return _full_context(regs, gregs[_UC_RIP], gregs[_UC_EFLAGS], fx)


def _call_context(call: NtSyscall) -> bytearray:
    regs = {name: getattr(call, name) for name in CTX_REGS}
    try:
        fx: bytes | None = call.vector_state()
    except RuntimeError:
        fx = None
    return _full_context(regs, call.rip, call.rflags, fx)


def _merge(dest: bytearray, ctx: bytes | bytearray, flags: int) -> None:
    """Copy the parts of ``ctx`` that ``flags`` asks for into ``dest``."""
    if flags & CONTEXT_CONTROL:
        dest[0x38:0x3A] = ctx[0x38:0x3A]  # SegCs
        dest[0x42:0x48] = ctx[0x42:0x48]  # SegSs, EFlags
        rsp = CTX_RAX + 8 * CTX_REGS.index("rsp")
        dest[rsp : rsp + 8] = ctx[rsp : rsp + 8]
        dest[CTX_RIP : CTX_RIP + 8] = ctx[CTX_RIP : CTX_RIP + 8]
    if flags & CONTEXT_INTEGER:
        for i, name in enumerate(CTX_REGS):
            if name != "rsp":
                at = CTX_RAX + 8 * i
                dest[at : at + 8] = ctx[at : at + 8]
    if flags & CONTEXT_SEGMENTS:
        dest[0x3A:0x42] = ctx[0x3A:0x42]  # SegDs, SegEs, SegFs, SegGs
    if flags & CONTEXT_FLOATING_POINT:
        dest[0x34:0x38] = ctx[0x34:0x38]
        dest[CTX_FLTSAVE : CTX_FLTSAVE + 512] = ctx[CTX_FLTSAVE : CTX_FLTSAVE + 512]


def _stopped(nt: NtPersonality, th: objects.Thread) -> bool:
    """Wait until a suspended thread has stopped: parked, or inside a blocking call; True holding
    objects.CHANGED (the caller's ``with``), so it stays so until the caller lets go."""
    deadline = time.monotonic() + STOP_TIMEOUT
    return objects.wait_until(
        lambda: bool(th.parked_uc) or th.tid in nt.blocked or th.done, deadline, nt.exiting
    )


def NtGetContextThread(nt: NtPersonality, call: NtSyscall) -> int:
    handle, out = call.args[:2]
    th = _thread(nt, handle)
    if th is None:
        return st.STATUS_INVALID_HANDLE
    dest = bytearray(call.read(out, CONTEXT_SIZE))
    (flags,) = struct.unpack_from("<I", dest, CTX_FLAGS)
    if th.tid == threading.get_native_id():
        ctx = _call_context(call)
    else:
        if not th.suspend_count:
            return st.STATUS_UNSUCCESSFUL  # a running thread has no context to read
        with objects.CHANGED:  # the frame (or the call) stays while this holds the lock (see park)
            if not _stopped(nt, th) or th.done:
                return st.STATUS_UNSUCCESSFUL
            uc = th.parked_uc
            blocked = nt.blocked.get(th.tid)
            if uc:
                ctx = _parked_context(call, uc)
            elif blocked is not None:
                ctx = th.pending_context or _call_context(blocked)
            else:
                return st.STATUS_UNSUCCESSFUL
    _merge(dest, ctx, flags)
    call.write(out, bytes(dest))
    return st.STATUS_SUCCESS


def _apply_parked(call: NtSyscall, uc: int, ctx: bytes, flags: int) -> None:
    """Write a CONTEXT's parts into a parked thread's ucontext (rt_sigreturn loads them)."""
    gregs = list(struct.unpack("<23Q", call.read(uc + UC_GREGS, 23 * 8)))
    values = dict(zip(CTX_REGS, struct.unpack_from("<16Q", ctx, CTX_RAX), strict=True))
    if flags & CONTEXT_INTEGER:
        for name in CTX_REGS:
            if name != "rsp":
                gregs[_UC_INDEX[name]] = values[name]
    if flags & CONTEXT_CONTROL:
        gregs[_UC_INDEX["rsp"]] = values["rsp"]
        (gregs[_UC_RIP],) = struct.unpack_from("<Q", ctx, CTX_RIP)
        (eflags,) = struct.unpack_from("<I", ctx, CTX_EFLAGS)
        gregs[_UC_EFLAGS] = (gregs[_UC_EFLAGS] & ~0x0CD5) | (eflags & 0x0CD5)
    call.write(uc + UC_GREGS, struct.pack("<23Q", *gregs))
    (fp,) = struct.unpack("<Q", call.read(uc + UC_FPREGS, 8))
    if flags & CONTEXT_FLOATING_POINT and fp:
        fx = vector_state_of(ctx)
        # x87 control/status and MXCSR (the frame's MXCSR_MASK stays), registers; the software
        # bytes at 464 (the frame's XSAVE description) stay as the kernel checks them
        call.write(fp, fx[:28])
        call.write(fp + 32, fx[32:416])
        (bv,) = struct.unpack("<Q", call.read(fp + 512, 8))
        call.write(fp + 512, struct.pack("<Q", bv | 3))


def NtSetContextThread(nt: NtPersonality, call: NtSyscall) -> Any:
    handle, src = call.args[:2]
    th = _thread(nt, handle)
    if th is None:
        return st.STATUS_INVALID_HANDLE
    ctx = call.read(src, CONTEXT_SIZE)
    (flags,) = struct.unpack_from("<I", ctx, CTX_FLAGS)
    if th.tid == threading.get_native_id():
        restore_context(call, ctx)  # this thread goes on from the new context
        return None if flags & CONTEXT_INTEGER else st.STATUS_SUCCESS
    if not th.suspend_count:
        return st.STATUS_UNSUCCESSFUL
    with objects.CHANGED:  # the frame (or the call) stays while this holds the lock (see park)
        if not _stopped(nt, th) or th.done or not th.suspend_count:
            return st.STATUS_UNSUCCESSFUL
        uc = th.parked_uc
        blocked = nt.blocked.get(th.tid)
        if uc:
            _apply_parked(call, uc, ctx, flags)
        elif blocked is not None:  # taken when it leaves the call (see blocking)
            pending = th.pending_context
            if pending is None:  # the call's registers, no part of them to restore yet
                pending = _call_context(blocked)
                struct.pack_into("<I", pending, CTX_FLAGS, CONTEXT_AMD64)
            _merge(pending, ctx, flags)
            (had,) = struct.unpack_from("<I", pending, CTX_FLAGS)
            struct.pack_into("<I", pending, CTX_FLAGS, had | (flags & _PARTS))
            th.pending_context = pending
        else:
            return st.STATUS_UNSUCCESSFUL
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {f.__name__: f for f in (NtSuspendThread, NtGetContextThread, NtSetContextThread)}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtSuspendThread": ("ThreadHandle", "*PreviousSuspendCount"),
    "NtGetContextThread": ("ThreadHandle", "*Context"),
    "NtSetContextThread": ("ThreadHandle", "Context"),
}
