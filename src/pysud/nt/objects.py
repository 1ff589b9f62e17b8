"""Kernel objects behind NT handles (files, events, mutants, semaphores, timers, keyed events, threads,
keys), the handle table with the process's object namespace, and waiting on objects."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from . import process
from . import status as st

if TYPE_CHECKING:
    from .personality import NtSyscall
    from .registry import Key

#: One condition for every waitable object: waits on several objects stay simple and correct.
CHANGED = threading.Condition()


K = TypeVar("K", bound="NtObject")


class NtObject:
    type_name = "Object"
    #: the full name in the object namespace (``\\BaseNamedObjects\\x``), "" when unnamed
    name = ""

    def close(self) -> None:
        """The last handle went away."""


class Waitable(NtObject):
    def signaled(self) -> bool:
        raise NotImplementedError

    def acquire(self) -> bool | None:
        """A wait was satisfied by this object (auto-reset events reset here); True if abandoned."""
        return None

    def wake_at(self) -> float | None:
        """When (time.monotonic) this object becomes signaled by itself (timers), else None."""
        return None


@dataclass(eq=False)
class File(NtObject):
    fd: int
    path: str  # host path ("" for the console's standard handles)
    access: int
    directory: bool = False
    delete_on_close: bool = False
    listing: list[str] | None = None  # directory entries still to return
    mask: str = "*"  # NtQueryDirectoryFile's file name mask, fixed by the first call
    console: bool = False
    type_name = "File"

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        if self.delete_on_close and self.path:
            try:
                if self.directory:
                    os.rmdir(self.path)
                else:
                    os.unlink(self.path)
            except OSError:
                pass


@dataclass(eq=False)
class Event(Waitable):
    manual_reset: bool  # NotificationEvent; a SynchronizationEvent resets when a wait is satisfied
    state: bool
    type_name = "Event"

    def signaled(self) -> bool:
        return self.state

    def acquire(self) -> None:
        if not self.manual_reset:
            self.state = False


@dataclass(eq=False)
class Thread(Waitable):
    tid: int = 0
    teb: int = 0
    done: bool = False
    exit_status: int = 0x103  # STATUS_PENDING while it runs
    resume: threading.Event = field(default_factory=threading.Event)
    mappings: list[tuple[int, int]] = field(default_factory=list)
    suspend_count: int = 0  # NtSuspendThread - NtResumeThread
    parked_uc: int = 0  # while suspended in the program: the ucontext it resumes from
    #: set by NtSetContextThread while it is suspended inside a blocking call: the CONTEXT (its
    #: ContextFlags the parts set) it takes when it leaves that call (kernel/context.py)
    pending_context: bytearray | None = None
    #: user APCs queued to it: (routine, arg1, arg2, arg3, owner), run in queue order when it
    #: waits alertably (kernel/thread.py); owner is the Timer whose completion routine it is
    apcs: list[tuple[int, int, int, int, NtObject | None]] = field(default_factory=list)
    type_name = "Thread"

    def signaled(self) -> bool:
        return self.done


@dataclass(eq=False)
class Mutant(Waitable):
    """A mutex: owned by one thread (recursively); abandoned when its owner ends."""

    threads: list[Thread]  # the process's threads, to tell whether an owner ended
    owner: int = 0  # native thread id, 0 = free
    count: int = 0  # recursion count of the owner
    abandoned: bool = False
    type_name = "Mutant"

    def _check_owner(self) -> None:
        if self.owner and any(t.tid == self.owner and t.done for t in self.threads):
            self.owner, self.count, self.abandoned = 0, 0, True

    def signaled(self) -> bool:
        self._check_owner()
        return self.owner in (0, threading.get_native_id())

    def acquire(self) -> bool:
        was = self.abandoned
        self.owner = threading.get_native_id()
        self.count += 1
        self.abandoned = False
        return was

    def current_count(self) -> int:
        """MUTANT_BASIC_INFORMATION.CurrentCount: 1 when free, 1 - recursion count when owned."""
        self._check_owner()
        return 1 - self.count


@dataclass(eq=False)
class Semaphore(Waitable):
    count: int
    maximum: int
    type_name = "Semaphore"

    def signaled(self) -> bool:
        return self.count > 0

    def acquire(self) -> None:
        self.count -= 1


@dataclass(eq=False)
class Timer(Waitable):
    """A waitable timer: signaled at its due time, again every period (if any)."""

    manual_reset: bool  # NotificationTimer; a SynchronizationTimer resets when a wait is satisfied
    state: bool = False
    due: float | None = None  # time.monotonic() of the next expiry
    period: float = 0.0  # seconds, 0 = one-shot
    #: the completion routine of the last NtSetTimer: (thread that set it, routine, context)
    apc: tuple[Thread, int, int] | None = None
    #: counts NtSetTimer/NtCancelTimer: a scheduled expiry of an older setting does nothing
    generation: int = 0
    #: the host timer that queues the completion routine at the next expiry (kernel/sync.py)
    waker: threading.Timer | None = None
    type_name = "Timer"

    def close(self) -> None:
        with CHANGED:
            self.generation += 1
            self.apc = None
            if self.waker is not None:
                self.waker.cancel()
                self.waker = None

    def tick(self) -> None:
        now = time.monotonic()
        if self.due is not None and now >= self.due:
            self.state = True
            if self.period:
                missed = int((now - self.due) // self.period) + 1
                self.due += missed * self.period
            else:
                self.due = None

    def signaled(self) -> bool:
        self.tick()
        return self.state

    def acquire(self) -> None:
        if not self.manual_reset:
            self.state = False

    def wake_at(self) -> float | None:
        return self.due


@dataclass(eq=False)
class KeyedEvent(NtObject):
    """A rendezvous of a waiter and a releaser on the same key (an address)."""

    waiters: dict[int, int] = field(default_factory=dict)  # key -> threads waiting
    tokens: dict[int, int] = field(default_factory=dict)  # key -> releases not yet taken by a waiter
    releasers: dict[int, int] = field(default_factory=dict)  # key -> releasers waiting for a waiter
    taken: dict[int, int] = field(default_factory=dict)  # key -> releasers a waiter has answered
    type_name = "KeyedEvent"


@dataclass(eq=False)
class Directory(NtObject):
    """An object directory (``\\BaseNamedObjects``, ``\\Sessions\\1\\BaseNamedObjects``...)."""

    path: str
    type_name = "Directory"


@dataclass(eq=False)
class KeyObject(NtObject):
    """An open registry key (the key itself lives in the registry: nt/registry.py)."""

    key: Key
    access: int
    type_name = "Key"


class HandleTable:
    """Handle values as Windows gives them: multiples of 4, starting at 4.

    It also holds the process's object namespace (``namespace``: lower-case full name -> object,
    kept while a handle is open) and the thread-id alerts of NtAlertThreadByThreadId.
    """

    def __init__(self) -> None:
        self._objects: dict[int, NtObject] = {}
        self._next = 4
        self._lock = threading.Lock()
        self.namespace: dict[str, NtObject] = {}
        self.alerts: set[int] = set()

    def add(self, obj: NtObject) -> int:
        with self._lock:
            h = self._next
            self._next += 4
            self._objects[h] = obj
            return h

    def get(self, handle: int) -> NtObject | None:
        return self._objects.get(handle & 0xFFFFFFFFFFFFFFFF)

    def get_as(self, handle: int, kind: type[K]) -> K | None:
        """The object behind ``handle`` when it is a ``kind``, else None."""
        obj = self._objects.get(handle & 0xFFFFFFFFFFFFFFFF)
        return obj if isinstance(obj, kind) else None

    def remove(self, handle: int) -> NtObject | None:
        with self._lock:
            obj = self._objects.pop(handle & 0xFFFFFFFFFFFFFFFF, None)
        if obj is not None and obj not in self._objects.values():
            if obj.name and self.namespace.get(obj.name.lower()) is obj:
                del self.namespace[obj.name.lower()]
            obj.close()
        return obj

    def close_all(self) -> None:
        for h in list(self._objects):
            self.remove(h)


def wait(objects: list[Waitable], wait_all: bool, deadline: float | None, stop: threading.Event) -> int:
    """Block until one (or all) of ``objects`` is signaled: its index, or -1 on timeout/stop."""
    with CHANGED:
        while True:
            if wait_all:
                if all(o.signaled() for o in objects):
                    for o in objects:
                        o.acquire()
                    return 0
            else:
                for i, o in enumerate(objects):
                    if o.signaled():
                        o.acquire()
                        return i
            if stop.is_set():
                return -1
            timeout = 0.05
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return -1
                timeout = min(timeout, left)
            CHANGED.wait(timeout)


def object_attributes(call: NtSyscall, oa: int) -> tuple[int, str, int]:
    """OBJECT_ATTRIBUTES at ``oa``: (RootDirectory, ObjectName text, Attributes)."""
    _len, root, name_ptr, attrs = struct.unpack("<I4xQQI", call.read(oa, 28))
    name = ""
    if name_ptr:
        length, _max, _pad, buf = struct.unpack("<HHIQ", call.read(name_ptr, 16))
        if length:
            name = call.read(buf, length & ~1).decode("utf-16-le", errors="surrogatepass")
    return root, name, attrs


def timeout_deadline(call: NtSyscall, ptr: int) -> float | None:
    """A LARGE_INTEGER timeout: NULL = forever, negative = relative, positive = absolute (100 ns)."""
    if not ptr:
        return None
    (value,) = struct.unpack("<q", call.read(ptr, 8))
    now = time.monotonic()
    if value < 0:
        return float(now + (-value) / 1e7)
    return float(now + max(0.0, (value - process.system_time()) / 1e7))


STATUS_WAIT_0 = st.STATUS_WAIT_0
STATUS_ABANDONED_WAIT_0 = st.STATUS_ABANDONED_WAIT_0
STATUS_TIMEOUT = st.STATUS_TIMEOUT
#: the longest a wait sleeps between checks of the process's end
_POLL = 0.05


def wait_for(
    objects: list[Waitable],
    wait_all: bool,
    deadline: float | None,
    stop: threading.Event,
    alerted: Callable[[], bool] | None = None,
) -> int:
    """Block until one (or all) of ``objects`` is signaled; the NTSTATUS of the wait.

    STATUS_WAIT_0 + index of the object that satisfied it (the first for a wait on all),
    STATUS_ABANDONED_WAIT_0 + index for an abandoned mutant, STATUS_TIMEOUT at the deadline or
    when the process ends (``stop``).  An alertable wait passes ``alerted`` (called holding
    CHANGED): STATUS_USER_APC once it says so, when no object satisfies the wait (Wine's order).
    """
    with CHANGED:
        while True:
            if wait_all:
                if all(o.signaled() for o in objects):
                    abandoned = [i for i, o in enumerate(objects) if o.acquire()]
                    return STATUS_ABANDONED_WAIT_0 + abandoned[0] if abandoned else STATUS_WAIT_0
            else:
                for i, o in enumerate(objects):
                    if o.signaled():
                        return (STATUS_ABANDONED_WAIT_0 if o.acquire() else STATUS_WAIT_0) + i
            if alerted is not None and alerted():
                return st.STATUS_USER_APC
            if stop.is_set():
                return STATUS_TIMEOUT
            now = time.monotonic()
            timeout = _POLL
            if deadline is not None:
                if deadline <= now:
                    return STATUS_TIMEOUT
                timeout = min(timeout, deadline - now)
            for o in objects:
                at = o.wake_at()
                if at is not None:
                    timeout = min(timeout, max(0.0, at - now))
            CHANGED.wait(timeout)


def wait_until(ready: Callable[[], bool], deadline: float | None, stop: threading.Event) -> bool:
    """Block (holding CHANGED between checks) until ``ready()``; False at the deadline or the end."""
    with CHANGED:
        while not ready():
            now = time.monotonic()
            if stop.is_set() or (deadline is not None and deadline <= now):
                return False
            CHANGED.wait(_POLL if deadline is None else min(_POLL, deadline - now))
        return True


def notify() -> None:
    with CHANGED:
        CHANGED.notify_all()
