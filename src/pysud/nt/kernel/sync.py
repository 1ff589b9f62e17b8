"""NT synchronisation calls: events, mutants, semaphores, timers, keyed events, thread-id alerts,
and waits on any waitable object (one, all or any of several, with timeouts).

Wine 8's PE ntdll waits for critical sections, SRW locks, condition variables and
RtlWaitOnAddress through NtWaitForAlertByThreadId/NtAlertThreadByThreadId (seen in
tests/nt/k32sync.c's trace); Windows' ntdll and older Wine use keyed events
(NtWaitForKeyedEvent/NtReleaseKeyedEvent) for critical sections; all of these are here.  An
alertable wait that no object satisfies is ended by a user APC queued to the thread, which then
runs (kernel/thread.py); keyed-event and thread-id-alert waits are not alertable here.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .. import objects, process
from .. import status as st
from . import namespace, thread

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

STATUS_ALERTED = st.STATUS_ALERTED
STATUS_MUTANT_NOT_OWNED = st.STATUS_MUTANT_NOT_OWNED
STATUS_SEMAPHORE_LIMIT_EXCEEDED = st.STATUS_SEMAPHORE_LIMIT_EXCEEDED
STATUS_INVALID_PARAMETER_1 = st.STATUS_INVALID_PARAMETER_1
STATUS_INVALID_PARAMETER_3 = st.STATUS_INVALID_PARAMETER_3
MAXIMUM_WAIT_OBJECTS = 64
ObjT = TypeVar("ObjT", bound=objects.NtObject)


def _bad_handle(nt: NtPersonality, handle: int) -> int:
    """STATUS_INVALID_HANDLE for no object, STATUS_OBJECT_TYPE_MISMATCH for one of another type."""
    return st.STATUS_INVALID_HANDLE if nt.handles.get(handle) is None else st.STATUS_OBJECT_TYPE_MISMATCH


def _event(nt: NtPersonality, handle: int) -> objects.Event | None:
    return nt.handles.get_as(handle, objects.Event)


class _RunningProcess(objects.Waitable):
    """What a wait on the current-process pseudo-handle sees: this process, running while one of
    its threads waits (its end ends the wait through ``nt.exiting``)."""

    type_name = "Process"

    def signaled(self) -> bool:
        return False


_THIS_PROCESS = _RunningProcess()


def _waitable(nt: NtPersonality, handle: int) -> objects.Waitable | None:
    obj = nt.handles.get(handle)
    if obj is None and handle == namespace.CURRENT_THREAD:
        obj = namespace._pseudo(nt, handle)
    elif obj is None and handle == namespace.CURRENT_PROCESS:
        obj = _THIS_PROCESS
    return obj if isinstance(obj, objects.Waitable) else None


def _changed() -> None:
    objects.CHANGED.notify_all()


#: NtOpen<Object>(&handle, access, OBJECT_ATTRIBUTES): a new handle to the named object of that type
NtOpenEvent = namespace.opener("NtOpenEvent", objects.Event)
NtOpenMutant = namespace.opener("NtOpenMutant", objects.Mutant)
NtOpenSemaphore = namespace.opener("NtOpenSemaphore", objects.Semaphore)
NtOpenTimer = namespace.opener("NtOpenTimer", objects.Timer)
NtOpenKeyedEvent = namespace.opener("NtOpenKeyedEvent", objects.KeyedEvent)


# ---------------------------------------------------------------------------------- events


def NtCreateEvent(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa, kind, initial = call.args[:5]
    kind &= 0xFFFFFFFF
    if kind not in (0, 1):
        return st.STATUS_INVALID_PARAMETER
    return namespace.create(
        nt,
        call,
        out,
        oa,
        objects.Event,
        lambda: objects.Event(manual_reset=kind == 0, state=bool(initial & 0xFF)),
    )


def _set_event(nt: NtPersonality, call: NtSyscall, state: bool) -> int:
    handle, prev = call.args[:2]
    ev = _event(nt, handle)
    if ev is None:
        return _bad_handle(nt, handle)
    with objects.CHANGED:
        old = ev.state
        ev.state = state
        _changed()
    nt.put_u32(call, prev, int(old))
    return st.STATUS_SUCCESS


def NtSetEvent(nt: NtPersonality, call: NtSyscall) -> int:
    return _set_event(nt, call, True)


def NtResetEvent(nt: NtPersonality, call: NtSyscall) -> int:
    return _set_event(nt, call, False)


def NtSetEventBoostPriority(nt: NtPersonality, call: NtSyscall) -> int:
    ev = _event(nt, call.args[0])
    if ev is None:
        return _bad_handle(nt, call.args[0])
    with objects.CHANGED:
        ev.state = True
        _changed()
    return st.STATUS_SUCCESS


def NtClearEvent(nt: NtPersonality, call: NtSyscall) -> int:
    ev = _event(nt, call.args[0])
    if ev is None:
        return _bad_handle(nt, call.args[0])
    with objects.CHANGED:
        ev.state = False
    return st.STATUS_SUCCESS


def _query(
    nt: NtPersonality, call: NtSyscall, kind: type[ObjT], size: int, info: Callable[[ObjT], bytes]
) -> int:
    """NtQuery<Object>(handle, class 0, buffer, length, &result): the checks they share, then
    ``info(object)`` (``size`` bytes, its only class) written to the buffer."""
    handle, cls, buf, length, result = call.args[:5]
    obj = nt.handles.get(handle)
    if obj is None or not isinstance(obj, kind):
        return _bad_handle(nt, handle)
    if cls & 0xFFFFFFFF:
        return st.STATUS_INVALID_INFO_CLASS
    if (length & 0xFFFFFFFF) != size:
        return st.STATUS_INFO_LENGTH_MISMATCH
    if not buf:
        return st.STATUS_ACCESS_VIOLATION
    call.write(buf, info(obj))
    nt.put_u32(call, result, size)
    return st.STATUS_SUCCESS


def NtQueryEvent(nt: NtPersonality, call: NtSyscall) -> int:
    """EventBasicInformation: EVENT_TYPE EventType; LONG EventState."""
    return _query(
        nt, call, objects.Event, 8, lambda ev: struct.pack("<Ii", 0 if ev.manual_reset else 1, int(ev.state))
    )


# ---------------------------------------------------------------------------------- mutants


def NtCreateMutant(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa, initial_owner = call.args[:4]

    def make() -> objects.Mutant:
        m = objects.Mutant(threads=nt.threads)
        if initial_owner & 0xFF:
            m.acquire()
        return m

    return namespace.create(nt, call, out, oa, objects.Mutant, make)


def _release_mutant(m: objects.Mutant) -> int | None:
    """Release once; the previous count, or None if the caller does not own it."""
    with objects.CHANGED:
        if m.owner != threading.get_native_id():
            return None
        prev = m.current_count()
        m.count -= 1
        if m.count == 0:
            m.owner = 0
            _changed()
        return prev


def NtQueryMutant(nt: NtPersonality, call: NtSyscall) -> int:
    """MutantBasicInformation: LONG CurrentCount; BOOLEAN OwnedByCaller, AbandonedState."""

    def info(m: objects.Mutant) -> bytes:
        with objects.CHANGED:
            return struct.pack("<iBB2x", m.current_count(), m.owner == threading.get_native_id(), m.abandoned)

    return _query(nt, call, objects.Mutant, 8, info)


def NtReleaseMutant(nt: NtPersonality, call: NtSyscall) -> int:
    handle, prev_ptr = call.args[:2]
    m = nt.handles.get(handle)
    if not isinstance(m, objects.Mutant):
        return _bad_handle(nt, handle)
    prev = _release_mutant(m)
    if prev is None:
        return STATUS_MUTANT_NOT_OWNED
    nt.put_u32(call, prev_ptr, prev)
    return st.STATUS_SUCCESS


# ---------------------------------------------------------------------------------- semaphores


def NtCreateSemaphore(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa, initial, maximum = call.args[:5]
    initial, maximum = _i32(initial), _i32(maximum)
    if maximum <= 0 or not 0 <= initial <= maximum:
        return st.STATUS_INVALID_PARAMETER
    return namespace.create(
        nt, call, out, oa, objects.Semaphore, lambda: objects.Semaphore(count=initial, maximum=maximum)
    )


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _release_semaphore(s: objects.Semaphore, count: int) -> int | None:
    with objects.CHANGED:
        if count <= 0:
            return -1
        if s.count + count > s.maximum:
            return None
        prev = s.count
        s.count += count
        _changed()
        return prev


def NtQuerySemaphore(nt: NtPersonality, call: NtSyscall) -> int:
    """SemaphoreBasicInformation: LONG CurrentCount, MaximumCount."""
    return _query(nt, call, objects.Semaphore, 8, lambda s: struct.pack("<ii", s.count, s.maximum))


def NtReleaseSemaphore(nt: NtPersonality, call: NtSyscall) -> int:
    handle, count, prev_ptr = call.args[:3]
    s = nt.handles.get(handle)
    if not isinstance(s, objects.Semaphore):
        return _bad_handle(nt, handle)
    prev = _release_semaphore(s, _i32(count))
    if prev is None:
        return STATUS_SEMAPHORE_LIMIT_EXCEEDED
    if prev < 0:
        return st.STATUS_INVALID_PARAMETER
    nt.put_u32(call, prev_ptr, prev)
    return st.STATUS_SUCCESS


# ---------------------------------------------------------------------------------- timers


def NtCreateTimer(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa, kind = call.args[:4]
    kind &= 0xFFFFFFFF
    if kind not in (0, 1):  # NotificationTimer, SynchronizationTimer
        return st.STATUS_INVALID_PARAMETER
    return namespace.create(nt, call, out, oa, objects.Timer, lambda: objects.Timer(manual_reset=kind == 0))


def NtQueryTimer(nt: NtPersonality, call: NtSyscall) -> int:
    """TimerBasicInformation: LARGE_INTEGER RemainingTime (100 ns); BOOLEAN TimerState."""

    def info(t: objects.Timer) -> bytes:
        with objects.CHANGED:
            t.tick()
            left = max(0, round((t.due - time.monotonic()) * 1e7)) if t.due is not None else 0
            return struct.pack("<qB7x", left, t.state)

    return _query(nt, call, objects.Timer, 16, info)


def NtSetTimer(nt: NtPersonality, call: NtSyscall) -> int:
    handle, due_ptr, apc, apc_context, _resume, period, prev_ptr = call.args[:7]
    t = nt.handles.get(handle)
    if not isinstance(t, objects.Timer):
        return _bad_handle(nt, handle)
    if apc and nt.wine is None:
        return st.STATUS_NOT_SUPPORTED  # completion routines are APCs: Wine's DLLs only
    if not due_ptr:
        return st.STATUS_ACCESS_VIOLATION
    period = _i32(period)
    if period < 0:
        return st.STATUS_INVALID_PARAMETER
    due = objects.timeout_deadline(call, due_ptr)
    with objects.CHANGED:
        t.tick()
        old = t.state
        t.state = False
        t.due = due
        t.period = period / 1000.0
        _drop_timer_apc(t)
        if apc and due is not None:
            t.apc = (thread.current_thread(nt), apc, apc_context)
            _schedule_timer_apc(t, t.generation, due, nt.exiting)
        _changed()
    nt.put_u32(call, prev_ptr, int(old))
    return st.STATUS_SUCCESS


def _drop_timer_apc(t: objects.Timer) -> None:
    """A new setting or a cancel: the old one's expiries do nothing, its queued routine goes."""
    t.generation += 1
    if t.waker is not None:
        t.waker.cancel()
        t.waker = None
    if t.apc is not None:
        thread.cancel_owned_apc(t.apc[0], t)
        t.apc = None


def _schedule_timer_apc(t: objects.Timer, generation: int, due: float, stop: threading.Event) -> None:
    """At ``due`` the timer's completion routine is queued to the thread that set it, with the
    expiry as a FILETIME (TimerLowValue, TimerHighValue); again each period, until the timer is
    set again, cancelled or closed, or the program ends (``stop``)."""

    def expire() -> None:
        with objects.CHANGED:
            if t.generation != generation or t.apc is None or stop.is_set():
                return
            t.tick()
            setter, routine, context = t.apc
            when = process.system_time() - round((time.monotonic() - due) * 1e7)
            thread.queue_owned_apc(setter, t, routine, context, when & 0xFFFFFFFF, when >> 32)
            if t.period and not setter.done:
                _schedule_timer_apc(t, generation, due + t.period, stop)
            _changed()

    t.waker = threading.Timer(max(0.0, due - time.monotonic()), expire)
    t.waker.daemon = True
    t.waker.start()


def NtCancelTimer(nt: NtPersonality, call: NtSyscall) -> int:
    handle, state_ptr = call.args[:2]
    t = nt.handles.get(handle)
    if not isinstance(t, objects.Timer):
        return _bad_handle(nt, handle)
    with objects.CHANGED:
        t.tick()
        t.due = None
        t.period = 0.0
        _drop_timer_apc(t)
        state = t.state
    nt.put_u32(call, state_ptr, int(state))
    return st.STATUS_SUCCESS


# ---------------------------------------------------------------------------------- waits


def NtWaitForSingleObject(nt: NtPersonality, call: NtSyscall) -> Any:
    handle, alertable, timeout = call.args[:3]
    obj = _waitable(nt, handle)
    if obj is None:
        return _bad_handle(nt, handle)
    deadline = objects.timeout_deadline(call, timeout)
    alerted = thread.alertable(nt, alertable)
    return thread.end_wait(nt, call, objects.wait_for([obj], False, deadline, nt.exiting, alerted))


def NtWaitForMultipleObjects(nt: NtPersonality, call: NtSyscall) -> Any:
    count, handles_ptr, wait_type, alertable, timeout = call.args[:5]
    count &= 0xFFFFFFFF
    wait_type &= 0xFFFFFFFF
    if not 0 < count <= MAXIMUM_WAIT_OBJECTS:
        return STATUS_INVALID_PARAMETER_1
    handles = struct.unpack(f"<{count}Q", call.read(handles_ptr, 8 * count))
    objs = [_waitable(nt, h) for h in handles]
    for h, o in zip(handles, objs, strict=True):
        if o is None:
            return _bad_handle(nt, h)
    if wait_type not in (0, 1):  # WaitAll, WaitAny (Wine takes any non-zero value as WaitAny)
        return STATUS_INVALID_PARAMETER_3
    status = objects.wait_for(
        [o for o in objs if o is not None],
        wait_type == 0,
        objects.timeout_deadline(call, timeout),
        nt.exiting,
        thread.alertable(nt, alertable),
    )
    return thread.end_wait(nt, call, status)


def NtSignalAndWaitForSingleObject(nt: NtPersonality, call: NtSyscall) -> Any:
    signal, handle, alertable, timeout = call.args[:4]
    obj = _waitable(nt, handle)
    if obj is None:
        return _bad_handle(nt, handle)
    target = nt.handles.get(signal)
    if isinstance(target, objects.Event):
        with objects.CHANGED:
            target.state = True
            _changed()
    elif isinstance(target, objects.Semaphore):
        if _release_semaphore(target, 1) is None:
            return STATUS_SEMAPHORE_LIMIT_EXCEEDED
    elif isinstance(target, objects.Mutant):
        if _release_mutant(target) is None:
            return STATUS_MUTANT_NOT_OWNED
    else:
        return _bad_handle(nt, signal)
    deadline = objects.timeout_deadline(call, timeout)
    alerted = thread.alertable(nt, alertable)
    return thread.end_wait(nt, call, objects.wait_for([obj], False, deadline, nt.exiting, alerted))


# ---------------------------------------------------------------------------------- keyed events


def NtCreateKeyedEvent(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa, _flags = call.args[:4]
    return namespace.create(nt, call, out, oa, objects.KeyedEvent, objects.KeyedEvent)


def _keyed(nt: NtPersonality, handle: int) -> objects.KeyedEvent | None:
    """The keyed event of a handle; handle 0 is the process's default one (Windows has one too)."""
    if not handle:
        with objects.CHANGED:
            ke = nt.handles.namespace.get("\\kernelobjects\\critsecoutofmemoryevent")
            if not isinstance(ke, objects.KeyedEvent):
                ke = objects.KeyedEvent()
                ke.name = "\\KernelObjects\\CritSecOutOfMemoryEvent"
                nt.handles.namespace[ke.name.lower()] = ke
            return ke
    obj = nt.handles.get(handle)
    return obj if isinstance(obj, objects.KeyedEvent) else None


def _dec(d: dict[int, int], key: int) -> None:
    d[key] -= 1
    if not d[key]:
        del d[key]


def NtWaitForKeyedEvent(nt: NtPersonality, call: NtSyscall) -> int:
    handle, key, _alertable, timeout = call.args[:4]
    ke = _keyed(nt, handle)
    if ke is None:
        return _bad_handle(nt, handle)
    if key & 1:
        return STATUS_INVALID_PARAMETER_1  # keys are even (addresses)
    deadline = objects.timeout_deadline(call, timeout)
    with objects.CHANGED:
        if ke.releasers.get(key):  # a releaser is waiting for us: answer it
            _dec(ke.releasers, key)
            ke.taken[key] = ke.taken.get(key, 0) + 1
            _changed()
            return st.STATUS_SUCCESS
        ke.waiters[key] = ke.waiters.get(key, 0) + 1
        if objects.wait_until(lambda: ke.tokens.get(key, 0) > 0, deadline, nt.exiting):
            _dec(ke.tokens, key)
            _dec(ke.waiters, key)
            return st.STATUS_SUCCESS
        _dec(ke.waiters, key)
        return st.STATUS_TIMEOUT


def NtReleaseKeyedEvent(nt: NtPersonality, call: NtSyscall) -> int:
    handle, key, _alertable, timeout = call.args[:4]
    ke = _keyed(nt, handle)
    if ke is None:
        return _bad_handle(nt, handle)
    if key & 1:
        return STATUS_INVALID_PARAMETER_1
    deadline = objects.timeout_deadline(call, timeout)
    with objects.CHANGED:
        if ke.waiters.get(key, 0) > ke.tokens.get(key, 0):  # a waiter is there: hand it a token
            ke.tokens[key] = ke.tokens.get(key, 0) + 1
            _changed()
            return st.STATUS_SUCCESS
        ke.releasers[key] = ke.releasers.get(key, 0) + 1
        if objects.wait_until(lambda: ke.taken.get(key, 0) > 0, deadline, nt.exiting):
            _dec(ke.taken, key)
            return st.STATUS_SUCCESS
        _dec(ke.releasers, key)
        return st.STATUS_TIMEOUT


# ---------------------------------------------------------------------------------- thread-id alerts


def NtAlertThreadByThreadId(nt: NtPersonality, call: NtSyscall) -> int:
    tid = call.args[0] & 0xFFFFFFFF
    with objects.CHANGED:
        nt.handles.alerts.add(tid)
        _changed()
    return st.STATUS_SUCCESS


def NtWaitForAlertByThreadId(nt: NtPersonality, call: NtSyscall) -> int:
    _address, timeout = call.args[:2]
    me = threading.get_native_id()
    deadline = objects.timeout_deadline(call, timeout)
    with objects.CHANGED:
        if objects.wait_until(lambda: me in nt.handles.alerts, deadline, nt.exiting):
            nt.handles.alerts.discard(me)
            return STATUS_ALERTED
        return st.STATUS_TIMEOUT


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateEvent,
        NtOpenEvent,
        NtSetEvent,
        NtResetEvent,
        NtSetEventBoostPriority,
        NtClearEvent,
        NtQueryEvent,
        NtCreateMutant,
        NtOpenMutant,
        NtReleaseMutant,
        NtQueryMutant,
        NtCreateSemaphore,
        NtOpenSemaphore,
        NtReleaseSemaphore,
        NtQuerySemaphore,
        NtCreateTimer,
        NtOpenTimer,
        NtSetTimer,
        NtCancelTimer,
        NtQueryTimer,
        NtWaitForSingleObject,
        NtWaitForMultipleObjects,
        NtSignalAndWaitForSingleObject,
        NtCreateKeyedEvent,
        NtOpenKeyedEvent,
        NtWaitForKeyedEvent,
        NtReleaseKeyedEvent,
        NtAlertThreadByThreadId,
        NtWaitForAlertByThreadId,
    )
}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtCreateEvent": ("*EventHandle", "DesiredAccess", "oa:ObjectAttributes", "EventType", "InitialState"),
    "NtOpenEvent": ("*EventHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtSetEvent": ("EventHandle", "*PreviousState"),
    "NtResetEvent": ("EventHandle", "*PreviousState"),
    "NtClearEvent": ("EventHandle",),
    "NtCreateMutant": ("*MutantHandle", "DesiredAccess", "oa:ObjectAttributes", "InitialOwner"),
    "NtOpenMutant": ("*MutantHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtReleaseMutant": ("MutantHandle", "*PreviousCount"),
    "NtCreateSemaphore": (
        "*SemaphoreHandle",
        "DesiredAccess",
        "oa:ObjectAttributes",
        "InitialCount",
        "MaximumCount",
    ),
    "NtOpenSemaphore": ("*SemaphoreHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtReleaseSemaphore": ("SemaphoreHandle", "ReleaseCount", "*PreviousCount"),
    "NtCreateTimer": ("*TimerHandle", "DesiredAccess", "oa:ObjectAttributes", "TimerType"),
    "NtSetTimer": (
        "TimerHandle",
        "DueTime",
        "TimerApcRoutine",
        "TimerContext",
        "ResumeTimer",
        "Period",
        "*PreviousState",
    ),
    "NtCancelTimer": ("TimerHandle", "*CurrentState"),
    "NtSignalAndWaitForSingleObject": ("SignalHandle", "WaitHandle", "Alertable", "Timeout"),
    "NtCreateKeyedEvent": ("*KeyedEventHandle", "DesiredAccess", "oa:ObjectAttributes", "Flags"),
    "NtWaitForKeyedEvent": ("KeyedEventHandle", "Key", "Alertable", "Timeout"),
    "NtReleaseKeyedEvent": ("KeyedEventHandle", "Key", "Alertable", "Timeout"),
    "NtWaitForAlertByThreadId": ("Address", "Timeout"),
    "NtAlertThreadByThreadId": ("ThreadId",),
}
