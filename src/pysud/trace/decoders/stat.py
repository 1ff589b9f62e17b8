"""stat, statx, statfs and the struct stat strace prints (strace's stat.c, statx.c)."""

from __future__ import annotations

import struct

from .. import _xlat as X
from ._base import CAP_EXIT, EXIT, Ctx, file_mode, fixed, flags, kind, out, ptr, syscall

STAT = struct.Struct("<QQQIIIxxxxQqqq")  # dev ino nlink mode uid gid rdev size blksize blocks


def makedev(dev: int) -> str:
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
    minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
    return f"makedev({major:#x}, {minor:#x})"


def stat_text(data: bytes) -> str:
    """A struct stat's bytes as strace prints them."""
    _dev, _ino, _nlink, m, _uid, _gid, rdev, size, _bs, _bl = STAT.unpack_from(data)
    if m & 0o170000 in (0o20000, 0o60000):
        return f"{{st_mode={file_mode(m)}, st_rdev={makedev(rdev)}, ...}}"
    return f"{{st_mode={file_mode(m)}, st_size={size}, ...}}"


def stat_cap(c: bytes | bool | None, addr: int) -> str:
    return stat_text(c) if c else ptr(addr)  # type: ignore[arg-type]


def _stat(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], STAT.size)
    return ptr(a[i]) if data is None else stat_text(data)


def statx_text(data: bytes) -> str:
    mask = struct.unpack_from("<I", data, 0)[0]
    attrs = struct.unpack_from("<Q", data, 8)[0]
    m = struct.unpack_from("<H", data, 0x1C)[0]
    size = struct.unpack_from("<Q", data, 0x28)[0]
    return (
        f"{{stx_mask={flags(mask, X.STATX_MASK)}, stx_attributes={flags(attrs, ())}, "
        f"stx_mode={file_mode(m)}, stx_size={size}, ...}}"
    )


def _statx(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], 0x100)
    return ptr(a[i]) if data is None else statx_text(data)


kind(
    "stat",
    EXIT,
    make=out(_stat),
    capture=fixed(CAP_EXIT, STAT.size),
    expr="ptr(a{i}) if -4096 < ret < 0 or not a{i} else stat_cap(c[{k}], a{i})",
    env={"stat_cap": stat_cap},
)
kind("statx", EXIT, make=out(_statx), capture=fixed(CAP_EXIT, 0x100))
kind(
    "statx_flags",
    plain=lambda v: "|".join(
        ["AT_STATX_SYNC_AS_STAT"] + ([flags(v & ~0x6000 & 0xFFFFFFFF, X.AT_FLAGS)] if v & ~0x6000 else [])
    ),
)
kind("statx_mask", plain=lambda v: flags(v & 0xFFFFFFFF, X.STATX_MASK))

syscall("stat", "path", "stat")
syscall("lstat", "path", "stat")
syscall("fstat", "fd", "stat")
syscall("newfstatat", "dirfd", "path", "stat", "at_flags")
syscall("statx", "dirfd", "path", "statx_flags", "statx_mask", "statx")
syscall("statfs", "path", "p")
syscall("fstatfs", "fd", "p")
