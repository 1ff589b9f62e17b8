"""The object namespace of a process: named objects (``\\BaseNamedObjects\\...``), object
directories, NtDuplicateObject and NtClose.

Names are per pysud process (processes do not share named objects); they compare
case-insensitively when OBJ_CASE_INSENSITIVE is given, as the Win32 layer always does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .. import objects
from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

STATUS_OBJECT_NAME_EXISTS = st.STATUS_OBJECT_NAME_EXISTS
STATUS_OBJECT_PATH_SYNTAX_BAD = st.STATUS_OBJECT_PATH_SYNTAX_BAD
OBJ_OPENIF = 0x80
DUPLICATE_CLOSE_SOURCE = 0x1
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE
#: directories every process sees
_BUILTIN_DIRS = re.compile(
    r"^\\(basenamedobjects|kernelobjects|sessions(\\\d+(\\basenamedobjects)?)?|)$", re.IGNORECASE
)

T = TypeVar("T", bound=objects.NtObject)


def full_name(nt: NtPersonality, call: NtSyscall, oa: int) -> tuple[str, int] | int:
    """(full object name, attributes) of an OBJECT_ATTRIBUTES ("" = unnamed), or an NTSTATUS."""
    if not oa:
        return "", 0
    root, name, attrs = objects.object_attributes(call, oa)
    if root:
        d = nt.handles.get(root)
        if d is None:
            return st.STATUS_INVALID_HANDLE
        if not isinstance(d, objects.Directory):
            return st.STATUS_OBJECT_TYPE_MISMATCH
        if name.startswith("\\"):
            return STATUS_OBJECT_PATH_SYNTAX_BAD
        return (d.path.rstrip("\\") + "\\" + name if name else d.path), attrs
    if name and not name.startswith("\\"):
        return STATUS_OBJECT_PATH_SYNTAX_BAD
    return name, attrs


def create(
    nt: NtPersonality, call: NtSyscall, out: int, oa: int, kind: type[T], make: Callable[[], T]
) -> int:
    """NtCreate<Object>: a new object (named if the attributes name it), or the existing one of
    that name (STATUS_OBJECT_NAME_EXISTS with OBJ_OPENIF, else STATUS_OBJECT_NAME_COLLISION)."""
    if not out:
        return st.STATUS_ACCESS_VIOLATION
    named = full_name(nt, call, oa)
    if isinstance(named, int):
        return named
    name, attrs = named
    with objects.CHANGED:
        if name:
            old = nt.handles.namespace.get(name.lower())
            if old is not None:
                if not attrs & OBJ_OPENIF:
                    return st.STATUS_OBJECT_NAME_COLLISION
                if not isinstance(old, kind):
                    return st.STATUS_OBJECT_TYPE_MISMATCH
                nt.put_handle(call, out, old)
                return STATUS_OBJECT_NAME_EXISTS
        obj = make()
        if name:
            obj.name = name
            nt.handles.namespace[name.lower()] = obj
        nt.put_handle(call, out, obj)
    return st.STATUS_SUCCESS


def open_named(nt: NtPersonality, call: NtSyscall, out: int, oa: int, kind: type[T]) -> int:
    """NtOpen<Object>: a new handle to the named object of that type."""
    if not out:
        return st.STATUS_ACCESS_VIOLATION
    if not oa:
        return st.STATUS_INVALID_PARAMETER
    named = full_name(nt, call, oa)
    if isinstance(named, int):
        return named
    name, _attrs = named
    if not name:
        return st.STATUS_OBJECT_NAME_INVALID
    obj = nt.handles.namespace.get(name.lower())
    if obj is None:
        nt.put_u64(call, out, 0)
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    if not isinstance(obj, kind):
        return st.STATUS_OBJECT_TYPE_MISMATCH
    nt.put_handle(call, out, obj)
    return st.STATUS_SUCCESS


def opener(name: str, kind: type[T]) -> Callable[[NtPersonality, NtSyscall], int]:
    """The handler of ``name``, an NtOpen<Object>(&handle, access, OBJECT_ATTRIBUTES) of ``kind``."""

    def handler(nt: NtPersonality, call: NtSyscall) -> int:
        out, _access, oa = call.args[:3]
        return open_named(nt, call, out, oa, kind)

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = f"{name}: a new handle to the named {kind.__name__} object."
    return handler


def NtCreateDirectoryObject(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa = call.args[:3]
    named = full_name(nt, call, oa)
    if isinstance(named, int):
        return named
    path = named[0]
    return create(nt, call, out, oa, objects.Directory, lambda: objects.Directory(path=path))


def NtOpenDirectoryObject(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa = call.args[:3]
    if not out:
        return st.STATUS_ACCESS_VIOLATION
    named = full_name(nt, call, oa)
    if isinstance(named, int):
        return named
    path = named[0]
    known = isinstance(nt.handles.namespace.get(path.lower()), objects.Directory)
    if not known and not _BUILTIN_DIRS.match(path):
        nt.put_u64(call, out, 0)
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    nt.put_handle(call, out, objects.Directory(path=path or "\\"))
    return st.STATUS_SUCCESS


def _pseudo(nt: NtPersonality, handle: int) -> objects.NtObject | None:
    """The object a pseudo-handle stands for (the current thread), else None."""
    if handle != CURRENT_THREAD:
        return None
    tid = threading.get_native_id()
    for th in nt.threads:
        if th.tid == tid:
            return th
    # the first thread has no Thread object of its own: one is kept in the namespace, under a key
    # no NT name can have (names begin with a backslash)
    with objects.CHANGED:
        known = nt.handles.namespace.get(f"<thread {tid}>")
        if isinstance(known, objects.Thread):
            return known
        first = objects.Thread(tid=tid)
        nt.handles.namespace[f"<thread {tid}>"] = first
        return first


def NtDuplicateObject(nt: NtPersonality, call: NtSyscall) -> int:
    src_process, src, dst_process, out, _access, _attrs, options = call.args[:7]
    if src_process != CURRENT_PROCESS or (dst_process and dst_process != CURRENT_PROCESS):
        return st.STATUS_NOT_SUPPORTED  # handles of other processes: not with one process per pysud
    obj = nt.handles.get(src) or _pseudo(nt, src)
    if obj is None:
        return st.STATUS_INVALID_HANDLE if src != CURRENT_PROCESS else st.STATUS_NOT_SUPPORTED
    if out and dst_process:
        nt.put_handle(call, out, obj)
    if options & DUPLICATE_CLOSE_SOURCE and nt.handles.get(src) is not None:
        nt.handles.remove(src)
    return st.STATUS_SUCCESS


def NtMakeTemporaryObject(nt: NtPersonality, call: NtSyscall) -> int:
    obj = nt.handles.get(call.args[0])
    if obj is None:
        return st.STATUS_INVALID_HANDLE
    return st.STATUS_SUCCESS  # every named object here is temporary already


def NtClose(nt: NtPersonality, call: NtSyscall) -> int:
    return st.STATUS_SUCCESS if nt.handles.remove(call.args[0]) else st.STATUS_INVALID_HANDLE


def PysudNtClose(nt: NtPersonality, call: NtSyscall) -> int:
    """NtClose on pysud's own ntdll's trap path (ntdll.NR_CLOSE_ALIAS)."""
    return NtClose(nt, call)


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtClose,
        PysudNtClose,
        NtCreateDirectoryObject,
        NtOpenDirectoryObject,
        NtDuplicateObject,
        NtMakeTemporaryObject,
    )
}

#: NtClose's alias on pysud's own ntdll's trap path (ntdll.NR_CLOSE_ALIAS)
BUILTIN_ONLY = frozenset({"PysudNtClose"})

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtCreateDirectoryObject": ("*DirectoryHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtOpenDirectoryObject": ("*DirectoryHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtDuplicateObject": (
        "SourceProcessHandle",
        "SourceHandle",
        "TargetProcessHandle",
        "*TargetHandle",
        "DesiredAccess",
        "HandleAttributes",
        "Options",
    ),
}
