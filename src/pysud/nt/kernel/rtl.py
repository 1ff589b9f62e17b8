"""The C-library and Rtl helpers of pysud's own ntdll, answered in Python: the heap (malloc from the
host's libc), RtlInitUnicodeString/RtlInitAnsiString, RtlNtStatusToDosError, RtlGetCurrentPeb,
memset/memcpy/memmove/strlen/wcslen.

They are exports of the builtin ntdll only (``ntdll.PRIVATE`` numbers them); Wine's ntdll has its
own, so none of these is registered on Wine's numbering.  They are library functions, not kernel
calls: a bad pointer is the program's crash, not STATUS_ACCESS_VIOLATION (``PROBE = False``).
"""

from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING, Any

from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

#: library functions: a bad pointer is not answered with STATUS_ACCESS_VIOLATION (kernel/__init__.py)
PROBE = False
HEAP_ZERO_MEMORY = 0x8

_libc = ctypes.CDLL(None, use_errno=True)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.calloc.restype = ctypes.c_void_p
_libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_libc.realloc.restype = ctypes.c_void_p
_libc.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]

_DOS_ERRORS = {
    st.STATUS_SUCCESS: 0,
    st.STATUS_NOT_IMPLEMENTED: 1,
    st.STATUS_OBJECT_NAME_NOT_FOUND: 2,
    st.STATUS_OBJECT_PATH_NOT_FOUND: 3,
    st.STATUS_ACCESS_DENIED: 5,
    st.STATUS_INVALID_HANDLE: 6,
    st.STATUS_NO_MEMORY: 8,
    st.STATUS_END_OF_FILE: 38,
    st.STATUS_INVALID_PARAMETER: 87,
    st.STATUS_OBJECT_NAME_COLLISION: 183,
    st.STATUS_DIRECTORY_NOT_EMPTY: 145,
    st.STATUS_TIMEOUT: 258,
}


def RtlAllocateHeap(nt: NtPersonality, call: NtSyscall) -> int:
    _heap, flags, size = call.args[:3]
    size = max(size, 1)
    ptr = _libc.calloc(1, size) if flags & HEAP_ZERO_MEMORY else _libc.malloc(size)
    if ptr:
        nt.heap_sizes[ptr] = size
    return ptr or 0


def RtlFreeHeap(nt: NtPersonality, call: NtSyscall) -> int:
    ptr = call.args[2]
    if ptr and nt.heap_sizes.pop(ptr, None) is not None:
        _libc.free(ptr)
        return 1
    return 1 if not ptr else 0


def RtlReAllocateHeap(nt: NtPersonality, call: NtSyscall) -> int:
    _heap, _flags, ptr, size = call.args[:4]
    if ptr not in nt.heap_sizes:
        return 0
    new = _libc.realloc(ptr, max(size, 1))
    if new:
        nt.heap_sizes.pop(ptr)
        nt.heap_sizes[new] = size
    return new or 0


def RtlSizeHeap(nt: NtPersonality, call: NtSyscall) -> int:
    return nt.heap_sizes.get(call.args[2], 0xFFFFFFFFFFFFFFFF)


def RtlNtStatusToDosError(nt: NtPersonality, call: NtSyscall) -> int:
    return _DOS_ERRORS.get(call.args[0] & 0xFFFFFFFF, 317)  # ERROR_MR_MID_NOT_FOUND


def RtlGetCurrentPeb(nt: NtPersonality, call: NtSyscall) -> int:
    return nt.peb


def _wcs_length(call: NtSyscall, ptr: int) -> int:
    n = 0
    while True:
        chunk = call.read(ptr + 2 * n, 256)
        for i in range(0, 256, 2):
            if chunk[i] == 0 and chunk[i + 1] == 0:
                return n + i // 2
        n += 128


def RtlInitUnicodeString(nt: NtPersonality, call: NtSyscall) -> int:
    dst, src = call.args[:2]
    n = 2 * _wcs_length(call, src) if src else 0
    call.write(dst, struct.pack("<HHIQ", min(n, 0xFFFC), min(n + 2, 0xFFFE) if src else 0, 0, src))
    return dst


def RtlInitAnsiString(nt: NtPersonality, call: NtSyscall) -> int:
    dst, src = call.args[:2]
    n = len(call.read_cstring(src, 0xFFFE)) if src else 0
    call.write(dst, struct.pack("<HHIQ", n, n + 1 if src else 0, 0, src))
    return dst


def memset(nt: NtPersonality, call: NtSyscall) -> int:
    dst, c, n = call.args[:3]
    if n:
        call.write(dst, bytes([c & 0xFF]) * n)
    return dst


def memcpy(nt: NtPersonality, call: NtSyscall) -> int:
    dst, src, n = call.args[:3]
    if n:
        call.write(dst, call.read(src, n))
    return dst


def strlen(nt: NtPersonality, call: NtSyscall) -> int:
    return len(call.read_cstring(call.args[0], 1 << 30))


def wcslen(nt: NtPersonality, call: NtSyscall) -> int:
    return _wcs_length(call, call.args[0])


def memmove(nt: NtPersonality, call: NtSyscall) -> int:
    return memcpy(nt, call)


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        RtlAllocateHeap,
        RtlFreeHeap,
        RtlReAllocateHeap,
        RtlSizeHeap,
        RtlNtStatusToDosError,
        RtlGetCurrentPeb,
        RtlInitUnicodeString,
        RtlInitAnsiString,
        memset,
        memcpy,
        memmove,
        strlen,
        wcslen,
    )
}
#: exports of pysud's own ntdll only (Wine's ntdll has these functions in itself)
BUILTIN_ONLY = frozenset(HANDLERS)
