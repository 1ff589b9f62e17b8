"""I/O completion ports: NtCreateIoCompletion, NtSetIoCompletion, NtRemoveIoCompletion(Ex).

A completion port is a queue of (key, value, status, information) packets: PostQueuedCompletionStatus
adds one (NtSetIoCompletion), GetQueuedCompletionStatus(Ex) takes one or several, waiting up to a
timeout (STATUS_TIMEOUT when none came).  Go's runtime sleeps on one for its timers and network
poller (netpoll_windows.go), so every Go program needs them.  The port is also waitable: signaled
while packets are queued, as Windows' KQUEUE is.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import objects
from .. import status as st
from . import namespace, thread

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

#: sizeof(FILE_IO_COMPLETION_INFORMATION): CompletionKey, CompletionValue, IO_STATUS_BLOCK
_PACKET = 32


@dataclass(eq=False)
class IoCompletion(objects.Waitable):
    #: queued packets: (key, value, status, information)
    packets: deque[tuple[int, int, int, int]] = field(default_factory=deque)
    type_name = "IoCompletion"

    def signaled(self) -> bool:
        return bool(self.packets)


def _port(nt: NtPersonality, handle: int) -> IoCompletion | None:
    return nt.handles.get_as(handle, IoCompletion)


def NtCreateIoCompletion(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa, _threads = call.args[:4]
    return namespace.create(nt, call, out, oa, IoCompletion, IoCompletion)


NtOpenIoCompletion = namespace.opener("NtOpenIoCompletion", IoCompletion)


def NtSetIoCompletion(nt: NtPersonality, call: NtSyscall) -> int:
    handle, key, value, status, information = call.args[:5]
    port = _port(nt, handle)
    if port is None:
        return st.STATUS_INVALID_HANDLE
    with objects.CHANGED:
        port.packets.append((key, value, status & 0xFFFFFFFF, information))
        objects.CHANGED.notify_all()
    return st.STATUS_SUCCESS


def _take(
    nt: NtPersonality,
    call: NtSyscall,
    port: IoCompletion,
    timeout: int,
    most: int,
    alerted: Callable[[], bool] | None = None,
) -> list[Any]:
    """Up to ``most`` packets, waiting until the first one comes or the timeout passes (or, for
    an alertable wait, a user APC is queued: none then)."""
    deadline = objects.timeout_deadline(call, timeout)
    with objects.CHANGED:
        ready = (lambda: bool(port.packets) or alerted()) if alerted else (lambda: bool(port.packets))
        if not objects.wait_until(ready, deadline, nt.exiting) or not port.packets:
            return []
        return [port.packets.popleft() for _ in range(min(most, len(port.packets)))]


def NtRemoveIoCompletion(nt: NtPersonality, call: NtSyscall) -> int:
    handle, key_out, value_out, iosb, timeout = call.args[:5]
    port = _port(nt, handle)
    if port is None:
        return st.STATUS_INVALID_HANDLE
    got = _take(nt, call, port, timeout, 1)
    if not got:
        return st.STATUS_TIMEOUT
    key, value, status, information = got[0]
    nt.put_u64(call, key_out, key)
    nt.put_u64(call, value_out, value)
    nt.put_iosb(call, iosb, status, information)
    return st.STATUS_SUCCESS


def NtRemoveIoCompletionEx(nt: NtPersonality, call: NtSyscall) -> Any:
    """GetQueuedCompletionStatusEx; an alertable one that a user APC ends gives STATUS_USER_APC
    (and runs the APC: kernel/thread.py)."""
    handle, info, count, written, timeout, alertable = call.args[:6]
    count &= 0xFFFFFFFF
    port = _port(nt, handle)
    if port is None:
        return st.STATUS_INVALID_HANDLE
    if not count:
        return st.STATUS_INVALID_PARAMETER
    alerted = thread.alertable(nt, alertable)
    got = _take(nt, call, port, timeout, count, alerted)
    if not got:
        nt.put_u32(call, written, 1)  # Wine 8's count when nothing was removed
        if alerted is not None and thread.deliver_apc(nt, call, None):
            return None  # the call returns STATUS_USER_APC once the APC has run
        return st.STATUS_TIMEOUT
    call.write(info, b"".join(struct.pack("<QQQQ", k, v, s, i) for k, v, s, i in got))
    nt.put_u32(call, written, len(got))
    return st.STATUS_SUCCESS


def NtQueryIoCompletion(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, ret = call.args[:5]
    port = _port(nt, handle)
    if port is None:
        return st.STATUS_INVALID_HANDLE
    if cls & 0xFFFFFFFF != 0:  # IoCompletionBasicInformation: the queue depth
        return st.STATUS_INVALID_INFO_CLASS
    if length & 0xFFFFFFFF < 4:
        return st.STATUS_INFO_LENGTH_MISMATCH
    nt.put_u32(call, buf, len(port.packets))
    nt.put_u32(call, ret, 4)
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateIoCompletion,
        NtOpenIoCompletion,
        NtSetIoCompletion,
        NtRemoveIoCompletion,
        NtRemoveIoCompletionEx,
        NtQueryIoCompletion,
    )
}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtCreateIoCompletion": ("*IoCompletionHandle", "DesiredAccess", "oa:ObjectAttributes", "Count"),
    "NtOpenIoCompletion": ("*IoCompletionHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtSetIoCompletion": ("IoCompletionHandle", "KeyContext", "ApcContext", "IoStatus", "Information"),
    "NtRemoveIoCompletion": (
        "IoCompletionHandle",
        "*KeyContext",
        "*ApcContext",
        "*IoStatusBlock",
        "Timeout",
    ),
    "NtRemoveIoCompletionEx": (
        "IoCompletionHandle",
        "*IoCompletionInformation",
        "Count",
        "*NumEntriesRemoved",
        "Timeout",
        "Alertable",
    ),
}
