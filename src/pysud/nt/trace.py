"""`pysud run --trace` for NT calls: one line per call in strace's conventions (arguments
decoded, strings quoted as strace quotes them, ` = ` at column 40, the NTSTATUS by name), and
the options `pysud trace` shares: a file of its own, time stamps (-t/-tt/-ttt), durations (-T)
and a Chrome/Perfetto timeline (``NtTrace``)."""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _core
from ..trace.decoders import quote
from ..trace.timeline import Timeline
from . import status as st

if TYPE_CHECKING:
    from .personality import NtPersonality
    from .personality import NtSyscall as Syscall

#: Argument names of the calls pysud implements; "oa" arguments are shown as their path,
#: "us" as their string, "*" marks an output pointer.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtClose": ("Handle",),
    "NtCreateFile": (
        "*FileHandle",
        "DesiredAccess",
        "oa:ObjectAttributes",
        "*IoStatusBlock",
        "AllocationSize",
        "FileAttributes",
        "ShareAccess",
        "CreateDisposition",
        "CreateOptions",
        "EaBuffer",
        "EaLength",
    ),
    "NtOpenFile": (
        "*FileHandle",
        "DesiredAccess",
        "oa:ObjectAttributes",
        "*IoStatusBlock",
        "ShareAccess",
        "OpenOptions",
    ),
    "NtReadFile": (
        "FileHandle",
        "Event",
        "ApcRoutine",
        "ApcContext",
        "*IoStatusBlock",
        "*Buffer",
        "Length",
        "ByteOffset",
        "Key",
    ),
    "NtWriteFile": (
        "FileHandle",
        "Event",
        "ApcRoutine",
        "ApcContext",
        "*IoStatusBlock",
        "Buffer",
        "Length",
        "ByteOffset",
        "Key",
    ),
    "NtQueryInformationFile": (
        "FileHandle",
        "*IoStatusBlock",
        "*FileInformation",
        "Length",
        "FileInformationClass",
    ),
    "NtSetInformationFile": (
        "FileHandle",
        "*IoStatusBlock",
        "FileInformation",
        "Length",
        "FileInformationClass",
    ),
    "NtQueryDirectoryFile": (
        "FileHandle",
        "Event",
        "ApcRoutine",
        "ApcContext",
        "*IoStatusBlock",
        "*FileInformation",
        "Length",
        "FileInformationClass",
        "ReturnSingleEntry",
        "us:FileName",
        "RestartScan",
    ),
    "NtDeleteFile": ("oa:ObjectAttributes",),
    "NtQueryAttributesFile": ("oa:ObjectAttributes", "*FileInformation"),
    "NtAllocateVirtualMemory": (
        "ProcessHandle",
        "*BaseAddress",
        "ZeroBits",
        "*RegionSize",
        "AllocationType",
        "Protect",
    ),
    "NtFreeVirtualMemory": ("ProcessHandle", "*BaseAddress", "*RegionSize", "FreeType"),
    "NtProtectVirtualMemory": ("ProcessHandle", "*BaseAddress", "*RegionSize", "NewProtect", "*OldProtect"),
    "NtQueryVirtualMemory": (
        "ProcessHandle",
        "BaseAddress",
        "MemoryInformationClass",
        "*MemoryInformation",
        "Length",
        "*ReturnLength",
    ),
    "NtQuerySystemTime": ("*SystemTime",),
    "NtQueryPerformanceCounter": ("*Counter", "*Frequency"),
    "NtDelayExecution": ("Alertable", "DelayInterval"),
    "NtYieldExecution": (),
    "NtQueryInformationProcess": (
        "ProcessHandle",
        "ProcessInformationClass",
        "*ProcessInformation",
        "Length",
        "*ReturnLength",
    ),
    "NtQuerySystemInformation": ("SystemInformationClass", "*SystemInformation", "Length", "*ReturnLength"),
    "NtTerminateProcess": ("ProcessHandle", "ExitStatus"),
    "NtCreateThreadEx": (
        "*ThreadHandle",
        "DesiredAccess",
        "ObjectAttributes",
        "ProcessHandle",
        "StartRoutine",
        "Argument",
        "CreateFlags",
        "ZeroBits",
        "StackSize",
        "MaximumStackSize",
        "AttributeList",
    ),
    "NtTerminateThread": ("ThreadHandle", "ExitStatus"),
    "NtResumeThread": ("ThreadHandle", "*SuspendCount"),
    "NtCreateEvent": ("*EventHandle", "DesiredAccess", "ObjectAttributes", "EventType", "InitialState"),
    "NtSetEvent": ("EventHandle", "*PreviousState"),
    "NtResetEvent": ("EventHandle", "*PreviousState"),
    "NtClearEvent": ("EventHandle",),
    "NtWaitForSingleObject": ("Handle", "Alertable", "Timeout"),
    "NtWaitForMultipleObjects": ("Count", "Handles", "WaitType", "Alertable", "Timeout"),
}


def _text(nt: NtPersonality, call: Syscall, value: int) -> str:
    """A UTF-16 string of the program's, quoted as strace quotes strings."""
    return quote(nt.read_unicode(call, value).encode("utf-8", "surrogatepass"))


def _arg(nt: NtPersonality, call: Syscall, spec: str, value: int) -> str:
    kind, _, name = spec.rpartition(":")
    name = name.lstrip("*")
    try:
        if kind == "oa" and value:
            _l, _root, name_ptr = struct.unpack("<I4xQQ", call.read(value, 24))
            return f"{name}={_text(nt, call, name_ptr)}" if name_ptr else f"{name}={value:#x}"
        if kind == "us" and value:
            return f"{name}={_text(nt, call, value)}"
    except Exception:  # noqa: BLE001 - a trace line never fails the call
        pass
    return f"{name}={value:#x}" if value else f"{name}=0"


_KERNEL_SIGNATURES: dict[str, tuple[str, ...]] = {}


def _kernel_signatures() -> dict[str, tuple[str, ...]]:
    """The argument names nt/kernel's modules give for their calls (read once)."""
    if not _KERNEL_SIGNATURES:
        from . import kernel

        _KERNEL_SIGNATURES.update(kernel.signatures())
    return _KERNEL_SIGNATURES


def call_text(
    nt: NtPersonality, call: Syscall, args: tuple[int, ...] | None = None
) -> tuple[str, str] | None:
    """(name, arguments' text) of a call, or None for pysud's own helper calls.  ``args``: the
    arguments as the call was made, when its handler has moved the registers since (NtContinue,
    a wait that runs an APC)."""
    name = call.name
    if name == "PysudNtClose":
        name = "NtClose"
    if not name.startswith("Nt"):
        return None
    specs = SIGNATURES.get(name) or _kernel_signatures().get(name)
    values: Sequence[int] = call.args if args is None else args
    if specs is None:
        return name, ", ".join(f"{a:#x}" if a else "0" for a in values[:4])
    return name, ", ".join(_arg(nt, call, s, v) for s, v in zip(specs, values, strict=False))


def result_text(result: Any) -> str:
    """The NTSTATUS by name; `?` for a call that does not return (strace's `= ?`)."""
    return st.name(result) if isinstance(result, int) else "?"


def describe(
    nt: NtPersonality, call: Syscall, result: Any, args: tuple[int, ...] | None = None
) -> str | None:
    """One trace line (None: pysud's own helper call, or the line went to an ``NtTrace``)."""
    got = call_text(nt, call, args)
    if got is None:
        return None
    sink = getattr(nt, "trace", None)
    if isinstance(sink, NtTrace):
        sink.emit(call.tid, got[0], got[1], result_text(result))
        return None
    head = f"[nt] {got[0]}({got[1]})"
    return f"{head:<39} = {result_text(result)}"


class NtTrace:
    """The NT trace with `pysud trace`'s options; passed as the personality's ``trace``.

    ``attach(nt)`` wraps the personality's handlers to note when each call starts (durations
    and timeline slices); lines go to ``output`` (a path, or stderr) with strace's prefixes.
    """

    def __init__(
        self,
        output: str | None = None,
        timestamps: int = 0,
        durations: bool = False,
        timeline: str | None = None,
        lines: bool = True,
    ) -> None:
        self.lines = lines
        self.timestamps = timestamps
        self.durations = durations
        self.timeline = Timeline(timeline) if timeline else None
        fd = (
            2
            if output is None
            else os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        )
        self.fd = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 700)
        if output is not None:
            os.close(fd)
        self.pid = os.getpid()
        self._start = threading.local()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:  # the personality tests `if self.trace:`
        return True

    def attach(self, nt: NtPersonality) -> None:
        """Note each call's start: wrap every handler the personality registered."""
        d = nt.d
        for nr in range(_core.NSYSCALLS):
            h = d.handler_of(nr)
            if h is not None:
                d.on(nr, self._timed(h))

    def _timed(self, h: Any) -> Any:
        start = self._start

        def timed(call: Any) -> Any:
            start.t0 = time.time_ns()
            return h(call)

        return timed

    def emit(self, tid: int, name: str, args: str, result: str) -> None:
        now = time.time_ns()
        t0 = getattr(self._start, "t0", 0) or now
        self._start.t0 = 0
        with self._lock:  # lines and timeline events in one order
            if self.timeline is not None:
                self.timeline.call(self.pid, tid, name, args, result, t0, now - t0)
                if result == "?":
                    self.timeline.instant(self.pid, tid, "exited", {}, now)
            if self.lines:
                self._write(t0, now, name, args, result)

    def _write(self, t0: int, now: int, name: str, args: str, result: str) -> None:
        prefix = ""
        if self.timestamps:
            us = t0 // 1000
            sec, frac = divmod(us, 1_000_000)
            if self.timestamps >= 3:
                prefix = f"{sec}.{frac:06d} "
            else:
                prefix = time.strftime("%H:%M:%S", time.localtime(sec))
                prefix += f".{frac:06d} " if self.timestamps == 2 else " "
        head = f"{prefix}[nt] {name}({args})"
        line = f"{head:<39} = {result}"
        if self.durations and result != "?":
            line += f" <{(now - t0) / 1e9:.6f}>"
        data = (line + "\n").encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        if self.timeline is not None:
            self.timeline.write()
        os.close(self.fd)
