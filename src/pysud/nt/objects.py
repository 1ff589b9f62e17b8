"""Kernel objects behind NT handles: files and directories, events, threads; the handle table."""

from __future__ import annotations

import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import process

if TYPE_CHECKING:
    from .personality import NtSyscall

#: One condition for every waitable object: waits on several objects stay simple and correct.
CHANGED = threading.Condition()


class NtObject:
    type_name = "Object"

    def close(self) -> None:
        """The last handle went away."""


class Waitable(NtObject):
    def signaled(self) -> bool:
        raise NotImplementedError

    def acquire(self) -> None:
        """A wait was satisfied by this object (auto-reset events reset here)."""


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
    type_name = "Thread"

    def signaled(self) -> bool:
        return self.done


class HandleTable:
    """Handle values as Windows gives them: multiples of 4, starting at 4."""

    def __init__(self) -> None:
        self._objects: dict[int, NtObject] = {}
        self._next = 4
        self._lock = threading.Lock()

    def add(self, obj: NtObject) -> int:
        with self._lock:
            h = self._next
            self._next += 4
            self._objects[h] = obj
            return h

    def get(self, handle: int) -> NtObject | None:
        return self._objects.get(handle & 0xFFFFFFFFFFFFFFFF)

    def remove(self, handle: int) -> NtObject | None:
        with self._lock:
            obj = self._objects.pop(handle & 0xFFFFFFFFFFFFFFFF, None)
        if obj is not None and obj not in self._objects.values():
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


def timeout_deadline(call: NtSyscall, ptr: int) -> float | None:
    """A LARGE_INTEGER timeout: NULL = forever, negative = relative, positive = absolute (100 ns)."""
    if not ptr:
        return None
    (value,) = struct.unpack("<q", call.read(ptr, 8))
    now = time.monotonic()
    if value < 0:
        return float(now + (-value) / 1e7)
    return float(now + max(0.0, (value - process.system_time()) / 1e7))


def notify() -> None:
    with CHANGED:
        CHANGED.notify_all()
