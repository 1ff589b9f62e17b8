"""Reading and writing: read/write, positioned and vectored I/O, lseek, sendfile (strace's io.c)."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import Ctx, Decoder, buf, failed, kind, ptr, regarg, syscall

kind("seek", plain=lambda v: X.SEEK.get(v, str(v)))


def iovec(ctx: Ctx, addr: int, count: int, total: int | None) -> str:
    """strace's iovec array; ``total``: bytes the call moved (out-arguments), None for all."""
    if not addr:
        return "NULL"
    n = min(count, 1024)
    data = ctx.read(addr, 16 * n)
    if data is None:
        return ptr(addr)
    parts = []
    left = total
    for i in range(n):
        base, ln = struct.unpack_from("<QQ", data, 16 * i)
        if i >= ctx.strsize:
            parts.append("...")
            break
        if left is None:
            shown = buf(ctx, base, ln)
        else:
            shown = buf(ctx, base, min(ln, left)) if left > 0 else '""'
            left -= min(ln, left)
        parts.append(f"{{iov_base={shown}, iov_len={ln}}}")
    return "[" + ", ".join(parts) + "]"


def _oiov(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        return ptr(a[i]) if failed(r) else iovec(ctx, a[i], a[int(p)], r)

    return dec


kind("iiov", make=lambda i, p: lambda ctx, call, a, r: iovec(ctx, a[i], a[int(p)], None))
kind("oiov", 1, make=_oiov)

syscall("read", "fd", "obuf:R", "u")
syscall("write", "fd", "ibuf:2", "u")
syscall("pread64", "fd", "obuf:R", "u", "ld")
syscall("pwrite64", "fd", "ibuf:2", "u", "ld")
syscall("readv", "fd", "oiov:2", "u")
syscall("writev", "fd", "iiov:2", "u")
syscall("preadv", "fd", "oiov:2", "u", "ld")
syscall("pwritev", "fd", "iiov:2", "u", "ld")
syscall("lseek", "fd", "ld", "seek")
syscall("sendfile", "fd", "fd", "p", "u")
_ = regarg
