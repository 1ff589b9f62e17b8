"""NT synchronisation calls: events and waits on any waitable object."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .. import objects
from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall


def _bad_handle(nt: NtPersonality, handle: int) -> int:
    """STATUS_INVALID_HANDLE for no object, STATUS_OBJECT_TYPE_MISMATCH for one of another type."""
    return st.STATUS_INVALID_HANDLE if nt.handles.get(handle) is None else st.STATUS_OBJECT_TYPE_MISMATCH


def _event(nt: NtPersonality, handle: int) -> objects.Event | None:
    obj = nt.handles.get(handle)
    return obj if isinstance(obj, objects.Event) else None


def _waitable(nt: NtPersonality, handle: int) -> objects.Waitable | None:
    obj = nt.handles.get(handle)
    return obj if isinstance(obj, objects.Waitable) else None


def NtCreateEvent(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, _oa, kind, initial = call.args[:5]
    kind &= 0xFFFFFFFF
    if kind not in (0, 1):
        return st.STATUS_INVALID_PARAMETER
    h = nt.handles.add(objects.Event(manual_reset=kind == 0, state=bool(initial & 0xFF)))
    nt.put_u64(call, out, h)
    return st.STATUS_SUCCESS


def _set_event(nt: NtPersonality, call: NtSyscall, state: bool) -> int:
    handle, prev = call.args[:2]
    ev = _event(nt, handle)
    if ev is None:
        return _bad_handle(nt, handle)
    with objects.CHANGED:
        old = ev.state
        ev.state = state
        objects.CHANGED.notify_all()
    nt.put_u32(call, prev, int(old))
    return st.STATUS_SUCCESS


def NtSetEvent(nt: NtPersonality, call: NtSyscall) -> int:
    return _set_event(nt, call, True)


def NtResetEvent(nt: NtPersonality, call: NtSyscall) -> int:
    return _set_event(nt, call, False)


def NtClearEvent(nt: NtPersonality, call: NtSyscall) -> int:
    ev = _event(nt, call.args[0])
    if ev is None:
        return st.STATUS_INVALID_HANDLE
    ev.state = False
    return st.STATUS_SUCCESS


def NtWaitForSingleObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle, _alertable, timeout = call.args[:3]
    obj = _waitable(nt, handle)
    if obj is None:
        return _bad_handle(nt, handle)
    got = objects.wait([obj], False, objects.timeout_deadline(call, timeout), nt.exiting)
    return st.STATUS_TIMEOUT if got < 0 else st.STATUS_WAIT_0


def NtWaitForMultipleObjects(nt: NtPersonality, call: NtSyscall) -> int:
    count, handles_ptr, wait_type, _alertable, timeout = call.args[:5]
    count &= 0xFFFFFFFF
    if not 0 < count <= 64:
        return st.STATUS_INVALID_PARAMETER
    handles = struct.unpack(f"<{count}Q", call.read(handles_ptr, 8 * count))
    objs = [_waitable(nt, h) for h in handles]
    if any(o is None for o in objs):
        return st.STATUS_INVALID_HANDLE
    got = objects.wait(
        [o for o in objs if o is not None],
        wait_type & 0xFFFFFFFF == 0,
        objects.timeout_deadline(call, timeout),
        nt.exiting,
    )
    return st.STATUS_TIMEOUT if got < 0 else st.STATUS_WAIT_0 + got


HANDLERS: dict[str, Any] = {
    "NtCreateEvent": NtCreateEvent,
    "NtSetEvent": NtSetEvent,
    "NtResetEvent": NtResetEvent,
    "NtClearEvent": NtClearEvent,
    "NtWaitForSingleObject": NtWaitForSingleObject,
    "NtWaitForMultipleObjects": NtWaitForMultipleObjects,
}
