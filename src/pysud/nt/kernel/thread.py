"""NT threads: NtCreateThreadEx starts a real host thread (armed, on a stack of its own, with a TEB),
NtResumeThread, NtTerminateThread, NtQuery/SetInformationThread; user APCs: NtQueueApcThread,
NtTestAlert and their delivery through ntdll's KiUserApcDispatcher.

How a thread enters the program is the personality's (``NtPersonality.thread_main``).

User APCs (NtQueueApcThread's, and timers' completion routines: kernel/sync.py) are queued on the
target's Thread object and run only when it asks: an alertable wait (NtWaitForSingleObject/
MultipleObjects, NtSignalAndWaitForSingleObject, NtDelayExecution, NtRemoveIoCompletionEx with
Alertable) that no object satisfies ends with STATUS_USER_APC, NtTestAlert, and NtContinue with
TestAlert (how KiUserApcDispatcher returns, so the whole queue runs in one delivery; Wine's
LdrInitializeThunk ends that way, so what is queued to a new thread runs before its entry point).
Delivery is Wine 8's (dlls/ntdll/unix/signal_x86_64.c, call_user_apc_dispatcher): below the
interrupted stack, 16-aligned, ``struct apc_stack_layout`` (home space, the routine at +0x20, the
CONTEXT to resume at +0x30: the call's own registers with Rax = STATUS_USER_APC), the CONTEXT's Rip
pushed as a return address, and KiUserApcDispatcher entered with Rcx = the CONTEXT and
Rdx/R8/R9 = the three arguments; it calls routine(arg1, arg2, arg3, context) and NtContinue(context,
TRUE).  Windows' own dispatcher finds the same things on the stack (P1Home..P4Home).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ... import _memory as memory
from .. import objects, process
from .. import status as st
from ..wine import CTX_RAX, CTX_REGS, CTX_RIP
from . import context
from . import process as kprocess

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE


def NtCreateThreadEx(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, _oa, proc, start, arg, flags, _zero, stack_size, max_stack = call.args[:10]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    reserve = nt.image.stack_reserve if nt.image is not None else 1 << 20
    size = max(stack_size, max_stack, reserve, 0x10000)
    size = (size + 0xFFFF) & ~0xFFFF
    th = objects.Thread()
    h = nt.handles.add(th)
    if not flags & 1:  # THREAD_CREATE_FLAGS_CREATE_SUSPENDED
        th.resume.set()
    t = threading.Thread(target=nt.thread_main, args=(th, start, arg, size), daemon=True, name="nt-thread")
    nt.threads.append(th)
    t.start()
    nt.put_u64(call, out, h)
    return st.STATUS_SUCCESS


def NtResumeThread(nt: NtPersonality, call: NtSyscall) -> int:
    handle, prev = call.args[:2]
    th = nt.handles.get(handle)
    if isinstance(th, kprocess.ProcessThread):  # a child process starts when resumed
        nt.put_u32(call, prev, 0 if th.process.popen is not None else 1)
        th.process.start()
        return st.STATUS_SUCCESS
    if handle == CURRENT_THREAD:
        th = context.thread_by_tid(nt, threading.get_native_id())
    if not isinstance(th, objects.Thread):
        return st.STATUS_INVALID_HANDLE
    count = context.resume(th)  # a suspension (NtSuspendThread) ends first
    if count is not None:
        nt.put_u32(call, prev, count)
        return st.STATUS_SUCCESS
    nt.put_u32(call, prev, 0 if th.resume.is_set() else 1)
    th.resume.set()
    return st.STATUS_SUCCESS


def NtTerminateThread(nt: NtPersonality, call: NtSyscall) -> Any:
    handle, code = call.args[0], call.args[1] & 0xFFFFFFFF
    me = getattr(nt.tls, "thread", None)
    if handle in (0, CURRENT_THREAD) or (me is not None and nt.handles.get(handle) is me):
        if me is None:  # the main thread ends the process when it ends
            return nt.exit_process(call, code)
        call.exit_guest(code)
        return None
    return nt._unimplemented_class(call, 0)


def thread_of(nt: NtPersonality, handle: int) -> objects.Thread | int | None:
    """The Thread object of a handle; None for this process's main thread; 0 if no thread."""
    me = getattr(nt.tls, "thread", None)
    if handle == CURRENT_THREAD:
        return me
    obj = nt.handles.get(handle)
    return obj if isinstance(obj, objects.Thread) else 0


def NtQueryInformationThread(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, ret = call.args[:5]
    th = thread_of(nt, handle)
    if th == 0:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    if cls == 0:  # ThreadBasicInformation
        if isinstance(th, objects.Thread):
            status, teb, tid = (th.exit_status if th.done else 0x103), th.teb, th.tid
        else:
            status, teb, tid = 0x103, nt.main_teb, os.getpid()
        ncpu = os.cpu_count() or 1
        data = struct.pack("<I4xQQQQii", status, teb, os.getpid(), tid, (1 << ncpu) - 1, 8, 8)
    elif cls == 12:  # ThreadAmILastThread
        # the main thread is last when no other thread runs; another thread never is, since
        # the main thread's end is the process's end here (Wine's RtlExitUserThread ends the
        # process when told its thread is the last)
        data = struct.pack("<I", int(th is None and all(t.done for t in nt.threads)))
    else:
        return nt._unimplemented_class(call, cls)
    return nt.put_info(call, buf, length, ret, data)


def NtSetInformationThread(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, _length = call.args[:4]
    if thread_of(nt, handle) == 0:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    if cls == 10:  # ThreadZeroTlsCell: TlsFree clears the slot in every thread
        (index,) = struct.unpack("<I", call.read(buf, 4))
        tebs = [nt.main_teb] + [t.teb for t in nt.threads if t.teb and not t.done]
        for teb in tebs:
            if index < 64:
                memory.poke(teb + process.TEB_TLS_SLOTS + 8 * index, bytes(8))
            else:
                (expansion,) = struct.unpack("<Q", memory.peek(teb + process.TEB_TLS_EXPANSION_SLOTS, 8))
                if expansion:
                    call.write(expansion + 8 * (index - 64), bytes(8))
        return st.STATUS_SUCCESS
    if cls in (3, 4, 5, 9, 17, 38):  # priority, base priority, affinity, start address, hide, name
        return st.STATUS_SUCCESS
    return nt._unimplemented_class(call, cls)


# ---- user APCs

STATUS_USER_APC = st.STATUS_USER_APC
#: Wine's struct apc_stack_layout: 4 home slots, the routine, padding, the CONTEXT, rbp, rip
APC_FRAME = 0x510
APC_ROUTINE = 0x20
APC_CONTEXT = 0x30
#: what KiUserApcDispatcher's frame holds of the CONTEXT besides Rip and Rsp: the callee-saved
#: registers, as Wine enters it (an unwinder through the dispatcher finds them there)
_NONVOLATILE = ("rbx", "rbp", "rsi", "rdi", "r12", "r13", "r14", "r15")


def current_thread(nt: NtPersonality) -> objects.Thread:
    """The calling thread's Thread object (the first thread's is made on demand)."""
    th = getattr(nt.tls, "thread", None)
    if isinstance(th, objects.Thread):
        return th
    found = context.thread_by_tid(nt, threading.get_native_id(), create=True)
    assert found is not None
    return found


def alertable(nt: NtPersonality, flag: int) -> Callable[[], bool] | None:
    """For a wait with this Alertable argument: the check (called holding objects.CHANGED) that a
    user APC waits for the calling thread; None when the wait is not alertable.  Without Wine's
    DLLs there is no KiUserApcDispatcher, and NtQueueApcThread queues nothing."""
    if not flag & 0xFF or nt.wine is None:
        return None
    th = current_thread(nt)
    return lambda: bool(th.apcs)


def NtQueueApcThread(nt: NtPersonality, call: NtSyscall) -> int:
    handle, routine, arg1, arg2, arg3 = call.args[:5]
    th = context._thread(nt, handle)
    if th is None:
        return st.STATUS_INVALID_HANDLE if nt.handles.get(handle) is None else st.STATUS_OBJECT_TYPE_MISMATCH
    if nt.wine is None:
        return st.STATUS_NOT_SUPPORTED  # pysud's own ntdll has no KiUserApcDispatcher
    with objects.CHANGED:
        if th.done:
            return st.STATUS_UNSUCCESSFUL  # Wine: a terminated thread takes no APC
        if routine:  # a NULL routine succeeds and queues nothing (Wine)
            th.apcs.append((routine, arg1, arg2, arg3, None))
            objects.CHANGED.notify_all()
    return st.STATUS_SUCCESS


def queue_owned_apc(th: objects.Thread, owner: objects.NtObject, routine: int, *args: int) -> None:
    """Queue ``owner``'s APC (a timer's completion routine), replacing one of it still queued (Wine
    keeps one per owner, Windows one per timer); called holding objects.CHANGED."""
    cancel_owned_apc(th, owner)
    if not th.done:
        a1, a2, a3 = args
        th.apcs.append((routine, a1, a2, a3, owner))
        objects.CHANGED.notify_all()


def cancel_owned_apc(th: objects.Thread, owner: objects.NtObject) -> None:
    th.apcs[:] = [apc for apc in th.apcs if apc[4] is not owner]


def NtTestAlert(nt: NtPersonality, call: NtSyscall) -> Any:
    """Run what is queued for this thread now; the call then returns STATUS_SUCCESS (as Wine's)."""
    if nt.wine is None:
        return st.STATUS_SUCCESS
    if deliver_apc(nt, call, None, st.STATUS_SUCCESS):
        return None
    return st.STATUS_SUCCESS


def deliver_apc(
    nt: NtPersonality, call: NtSyscall, resume: Callable[[], bytes] | None, status: int = STATUS_USER_APC
) -> bool:
    """The first APC queued for this thread runs next: the thread leaves this call into ntdll's
    KiUserApcDispatcher, which resumes the CONTEXT ``resume()`` reads (None: this call's return
    with Rax = ``status``) once the routine returns.  False, touching nothing, when nothing is
    queued."""
    th = current_thread(nt)
    with objects.CHANGED:
        if not th.apcs:
            return False
    assert nt.wine is not None
    if resume is None:
        frame = context._call_context(call)
        struct.pack_into("<Q", frame, CTX_RAX, status)
        ctx = bytes(frame)
    else:
        ctx = resume()  # a bad pointer: the APC stays queued, the call fails (kernel/__init__.py)
    with objects.CHANGED:
        routine, arg1, arg2, arg3, _owner = th.apcs.pop(0)
    regs = dict(zip(CTX_REGS, struct.unpack_from("<16Q", ctx, CTX_RAX), strict=True))
    (rip,) = struct.unpack_from("<Q", ctx, CTX_RIP)
    stack = (regs["rsp"] - APC_FRAME) & ~0xF
    layout = bytes(APC_ROUTINE) + struct.pack("<QQ", routine, 0) + ctx
    call.write(stack - 8, struct.pack("<Q", rip) + layout)
    for name in _NONVOLATILE:
        setattr(call, name, regs[name])
    call.rcx, call.rdx, call.r8, call.r9 = stack + APC_CONTEXT, arg1, arg2, arg3
    call.rsp = stack - 8
    call.rip = nt.wine.exports["KiUserApcDispatcher"]
    return True


def end_wait(nt: NtPersonality, call: NtSyscall, status: int) -> Any:
    """The end of a wait: an alertable one that an APC ended runs it (see deliver_apc)."""
    if status == STATUS_USER_APC and deliver_apc(nt, call, None):
        return None
    return status


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtQueueApcThread,
        NtTestAlert,
        NtCreateThreadEx,
        NtResumeThread,
        NtTerminateThread,
        NtQueryInformationThread,
        NtSetInformationThread,
    )
}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtQueueApcThread": ("ThreadHandle", "ApcRoutine", "ApcArgument1", "ApcArgument2", "ApcArgument3"),
    "NtTestAlert": (),
}
