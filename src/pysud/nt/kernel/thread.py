"""NT threads: NtCreateThreadEx starts a real host thread (armed, on a stack of its own, with a TEB),
NtResumeThread, NtTerminateThread, NtQuery/SetInformationThread.

How a thread enters the program is the personality's (``NtPersonality.thread_main``).
"""

from __future__ import annotations

import os
import struct
import threading
from typing import TYPE_CHECKING, Any

from ... import _memory as memory
from .. import objects, process
from .. import status as st
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
    if not isinstance(th, objects.Thread):
        return st.STATUS_INVALID_HANDLE
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


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateThreadEx,
        NtResumeThread,
        NtTerminateThread,
        NtQueryInformationThread,
        NtSetInformationThread,
    )
}
