"""Raw memory for the NT personality: map, protect, read and write this process's own pages."""

from __future__ import annotations

import ctypes

from .. import _elf
from .._elf import MAP_FIXED_NOREPLACE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE

__all__ = [
    "MAP_FIXED_NOREPLACE",
    "PROT_EXEC",
    "PROT_NONE",
    "PROT_READ",
    "PROT_WRITE",
    "map_anywhere",
    "map_at",
    "map_file",
    "peek",
    "poke",
    "protect",
    "unmap",
]

PAGE = 4096


def map_anywhere(size: int, prot: int, what: str, align: int = PAGE) -> int:
    """Anonymous private memory somewhere, aligned to ``align`` (a power of two)."""
    if align <= PAGE:
        return _elf._map(0, size, prot, 0, what)
    raw = _elf._map(0, size + align, PROT_NONE, 0, what)
    start = (raw + align - 1) & ~(align - 1)
    if start > raw:
        _elf.unmap_region(raw, start - raw)
    tail = raw + size + align - (start + size)
    if tail:
        _elf.unmap_region(start + size, tail)
    protect(start, size, prot, what)
    return start


def map_at(addr: int, size: int, prot: int, what: str) -> int:
    """Anonymous private memory exactly at ``addr``; ELFLoadError if the range is in use."""
    return _elf._map(addr, size, prot, MAP_FIXED_NOREPLACE, what)


def map_file(addr: int, size: int, prot: int, fd: int, offset: int, what: str) -> None:
    """The file's bytes from ``offset`` mapped copy-on-write over [addr, addr + size), a range the
    personality already owns (an image view); ELFLoadError if the kernel refuses."""
    ctypes.set_errno(0)
    got = _elf._mmap(addr, size, prot, _elf.MAP_PRIVATE | _elf.MAP_FIXED, fd, offset)
    if got != addr:
        err = ctypes.get_errno()
        raise _elf.ELFLoadError(f"{what}: mmap of the file at {addr:#x} failed: {_elf._errstr(err)}")


def protect(addr: int, size: int, prot: int, what: str = "memory") -> None:
    _elf._protect(addr, size, prot, what)


def unmap(addr: int, size: int) -> None:
    _elf.unmap_region(addr, size)


def poke(addr: int, data: bytes) -> None:
    """Write into this process's memory (pages the personality itself mapped writable)."""
    ctypes.memmove(addr, data, len(data))


def peek(addr: int, size: int) -> bytes:
    return ctypes.string_at(addr, size)
