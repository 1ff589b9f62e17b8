"""Directory entries: getdents64 (strace's dirent64.c, in its short form)."""

from __future__ import annotations

import struct
from typing import Any

from ._base import CAP_EXIT, EXIT, RETLEN, Ctx, Decoder, failed, kind, ptr, syscall


def _count(data: bytes) -> int:
    n, off = 0, 0
    while off + 19 <= len(data):
        reclen = struct.unpack_from("<H", data, off + 16)[0]
        if not reclen:
            break
        off += reclen
        n += 1
    return n


def _dents(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if failed(r):
            return ptr(a[i])
        return f"{ptr(a[i])} /* {_count(ctx.read(a[i], r) or b'')} entries */"

    return dec


kind("dents", EXIT, make=_dents, capture=lambda i, p, s: [(CAP_EXIT, RETLEN, i, 0, 0, 0, 65536)])
syscall("getdents64", "fd", "dents", "u")
