"""This process's own memory, for every loader: map, protect, unmap, read and write pages.

The ELF loader (``_elf.py``), the Linux personality's brk, and the NT personality (its PE loader,
image sections, NtAllocateVirtualMemory, section views, stacks) all map through these functions.
A mapping that fails raises :class:`MappingError`, which names what was being mapped and carries
the errno; each loader turns it into its own error (``ELFLoadError``, ``PELoadError``) or an
NTSTATUS for the program, so no personality reports another's error type.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os

from ._errors import PysudError

__all__ = [
    "MAP_ANONYMOUS",
    "MAP_FIXED",
    "MAP_FIXED_NOREPLACE",
    "MAP_NORESERVE",
    "MAP_PRIVATE",
    "MAP_SHARED",
    "MAP_STACK",
    "PAGE_SIZE",
    "PROT_EXEC",
    "PROT_NONE",
    "PROT_READ",
    "PROT_WRITE",
    "MappingError",
    "map_anon",
    "map_anywhere",
    "map_at",
    "map_fd",
    "page_down",
    "page_up",
    "peek",
    "poke",
    "protect",
    "unmap",
]

PAGE_SIZE = 4096  # x86-64
PROT_NONE = 0
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_NORESERVE = 0x4000
MAP_STACK = 0x20000
MAP_FIXED_NOREPLACE = 0x100000

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_mprotect = _libc.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FAILED = ctypes.c_void_p(-1).value


class MappingError(PysudError):
    """A mapping (mmap, mprotect) failed; the message names what was being mapped and why.

    ``errno`` is the call's (EEXIST for a fixed address already in use)."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


def _errstr(err: int) -> str:
    return f"{_errno.errorcode.get(err, str(err))} ({os.strerror(err)})"


def page_down(x: int) -> int:
    return x & ~(PAGE_SIZE - 1)


def page_up(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def map_fd(addr: int, size: int, prot: int, flags: int, fd: int, offset: int, what: str) -> int:
    """mmap ``size`` bytes of ``fd`` (or anonymous memory for fd -1) with ``flags``; MappingError
    saying ``what`` failed and why.  With MAP_FIXED_NOREPLACE the result is ``addr`` or an error,
    also on kernels before 4.17 (which take the flag as a hint)."""
    ctypes.set_errno(0)
    got = _mmap(addr or None, size, prot, flags, fd, offset)
    if got == _MAP_FAILED:
        err = ctypes.get_errno()
        raise MappingError(f"{what}: mmap of {size:#x} bytes at {addr:#x} failed: {_errstr(err)}", err)
    result = int(got or 0)
    if flags & MAP_FIXED_NOREPLACE and result != addr:
        _munmap(result, size)
        raise MappingError(f"{what}: {addr:#x}..{addr + size:#x} is already in use", _errno.EEXIST)
    return result


def map_anon(addr: int, size: int, prot: int, flags: int, what: str) -> int:
    """Anonymous private memory (``flags`` adds MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_NORESERVE...)."""
    return map_fd(addr, size, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, what)


def map_at(addr: int, size: int, prot: int, what: str) -> int:
    """Anonymous private memory exactly at ``addr``; MappingError (EEXIST) if the range is in use."""
    return map_anon(addr, size, prot, MAP_FIXED_NOREPLACE, what)


def map_anywhere(size: int, prot: int, what: str, align: int = PAGE_SIZE, flags: int = 0) -> int:
    """Anonymous private memory somewhere, aligned to ``align`` (a power of two)."""
    if align <= PAGE_SIZE:
        return map_anon(0, size, prot, flags, what)
    raw = map_anon(0, size + align, PROT_NONE, flags, what)
    start = (raw + align - 1) & ~(align - 1)
    if start > raw:
        unmap(raw, start - raw)
    tail = raw + size + align - (start + size)
    if tail:
        unmap(start + size, tail)
    if prot != PROT_NONE:
        protect(start, size, prot, what)
    return start


def protect(addr: int, size: int, prot: int, what: str = "memory") -> None:
    if _mprotect(addr, size, prot) != 0:
        err = ctypes.get_errno()
        raise MappingError(f"{what}: mprotect of {addr:#x}..{addr + size:#x} failed: {_errstr(err)}", err)


def unmap(addr: int, size: int) -> None:
    """munmap a range mapped here; OSError if the kernel refuses (a bad range is pysud's bug)."""
    if _munmap(addr, size) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"munmap of {addr:#x}..{addr + size:#x} failed: {os.strerror(err)}")


def poke(addr: int, data: bytes) -> None:
    """Write into this process's memory (pages mapped writable here)."""
    ctypes.memmove(addr, data, len(data))


def peek(addr: int, size: int) -> bytes:
    return ctypes.string_at(addr, size)
