"""`pysud run --trace` for NT calls: one line per call, arguments decoded, the NTSTATUS by name."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

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


def _arg(nt: NtPersonality, call: Syscall, spec: str, value: int) -> str:
    kind, _, name = spec.rpartition(":")
    name = name.lstrip("*")
    try:
        if kind == "oa" and value:
            _l, _root, name_ptr = struct.unpack("<I4xQQ", call.read(value, 24))
            return f"{name}={nt.read_unicode(call, name_ptr)!r}" if name_ptr else f"{name}={value:#x}"
        if kind == "us" and value:
            return f"{name}={nt.read_unicode(call, value)!r}"
    except Exception:  # noqa: BLE001 - a trace line never fails the call
        pass
    return f"{name}={value:#x}"


def describe(nt: NtPersonality, call: Syscall, result: Any) -> str | None:
    """One trace line, or None for pysud's own helper calls."""
    name = call.name
    if name == "PysudNtClose":
        name = "NtClose"
    if not name.startswith("Nt"):
        return None
    specs = SIGNATURES.get(name)
    args = call.args
    if specs is None:
        text = ", ".join(f"{a:#x}" for a in args[:4])
    else:
        text = ", ".join(_arg(nt, call, s, v) for s, v in zip(specs, args, strict=False))
    shown = st.name(result) if isinstance(result, int) else "(exits)"
    return f"[nt] {name}({text}) = {shown}"
