"""fcntl and descriptor duplication, pipes (strace's fcntl.c, desc.c, pipe.c)."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import (
    BOTH,
    CAP_EXIT,
    EXIT,
    MASK64,
    Ctx,
    Decoder,
    chex,
    failed,
    fd_text,
    fixed,
    flags,
    kind,
    open_flags,
    out,
    ptr,
    s32,
    syscall,
)

kind("fcntl", plain=lambda v: X.FCNTL.get(v, str(v)))
kind("pipe_flags", plain=lambda v: flags(v, X.PIPE_FLAGS))
kind("dup3_flags", plain=lambda v: flags(v, X.DUP3_FLAGS))


def fd_pair(ctx: Ctx, data: bytes) -> str:
    """pipe's and socketpair's two descriptors (-y decorates them)."""
    a, b = struct.unpack("<ii", data)
    return f"[{fd_text(ctx, a)}, {fd_text(ctx, b)}]"


kind(
    "pipe",
    EXIT,
    make=out(lambda ctx, a, i: fd_pair(ctx, ctx.read(a[i], 8) or bytes(8))),
    capture=fixed(CAP_EXIT, 8),
)

F_GETFD, F_SETFD, F_GETFL, F_SETFL = 1, 2, 3, 4
F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 5, 6, 7, 36, 37, 38
FD_FLAGS: X.Flags = ((1, "FD_CLOEXEC"),)
LOCK_TYPES = {0: "F_RDLCK", 1: "F_WRLCK", 2: "F_UNLCK"}
_FLOCK = struct.Struct("<hhxxxxqqi")


def flock(ctx: Ctx, addr: int, getlk: bool) -> str:
    """strace's struct flock: l_pid only in what F_GETLK returns."""
    data = ctx.read(addr, _FLOCK.size)
    if data is None:
        return ptr(addr)
    typ, whence, start, length, pid = _FLOCK.unpack(data)
    text = (
        f"{{l_type={X.xlat_or(LOCK_TYPES, typ, 'F_???')}, l_whence={X.SEEK.get(whence, str(whence))}, "
        f"l_start={start}, l_len={length}"
    )
    return text + (f", l_pid={pid}}}" if getlk else "}")


def _fcntl_arg(i: int, p: str) -> tuple[Decoder, Any]:
    def entry(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if a[1] in (F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW, F_GETLK, F_OFD_GETLK):
            return flock(ctx, a[i], False) if a[i] else "NULL"
        return chex(a[i] & MASK64)

    def exit_(ctx: Ctx, call: Any, a: tuple[int, ...], r: int, before: str) -> str:
        if a[1] in (F_GETLK, F_OFD_GETLK) and a[i] and not failed(r):
            return flock(ctx, a[i], True)
        return before

    return entry, exit_


kind("fcntl_arg", BOTH, make=_fcntl_arg)


def _fcntl_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    cmd = a[1]
    if cmd in (F_GETFD, F_GETFL, 9, 1032, 1034):  # F_GETOWN F_GETPIPE_SZ F_GET_SEALS
        return out[:2]
    if cmd == F_SETFD:
        return [*out[:2], flags(a[2] & 0xFFFFFFFF, FD_FLAGS)]
    if cmd == F_SETFL:
        return [*out[:2], open_flags(a[2])]
    if cmd in (0, 1030, 8, 1031):  # F_DUPFD F_DUPFD_CLOEXEC F_SETOWN F_SETPIPE_SZ
        return [*out[:2], str(s32(a[2]))]
    return out


def _fcntl_result(ctx: Ctx, a: tuple[int, ...], r: int) -> str:
    """strace's RVAL_HEX|RVAL_STR results: `0x1 (flags FD_CLOEXEC)`, `0x8000 (flags O_RDONLY|...)`."""
    if a[1] == F_GETFD:
        return f"{chex(r)} (flags {flags(r, FD_FLAGS)})" if r else "0"
    if a[1] == F_GETFL:
        return f"{chex(r)} (flags {open_flags(r)})"
    return str(r)


syscall("fcntl", "fd", "fcntl", "fcntl_arg", layout=_fcntl_layout, result=_fcntl_result)
syscall("dup", "fd", ret="fd")
syscall("dup2", "fd", "fd", ret="fd")
syscall("dup3", "fd", "fd", "dup3_flags", ret="fd")
syscall("pipe", "pipe")
syscall("pipe2", "pipe", "pipe_flags")
