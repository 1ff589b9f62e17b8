"""Kinds every family uses: integers, pointers, descriptors, path names, strings and buffers,
and the helpers the compiled formatters print captured bytes with."""

from __future__ import annotations

import re
from typing import Any

from .. import _xlat as X
from ._base import (
    _ESC,
    ARGLEN,
    CAP_ENTRY,
    CAP_EXIT,
    CSTR,
    ENTRY,
    EXIT,
    MASK64,
    PATH_MAX,
    RETLEN,
    CapOp,
    Ctx,
    Decoder,
    buf,
    cstr,
    dirfd_text,
    failed,
    fd_text,
    kind,
    mode,
    path,
    ptr,
    quote,
    s32,
    s64,
)

# ---------------------------------------------------------------- captured bytes (hot path)
# A capture is bytes (a complete C string ends with its NUL), False (the read failed) or
# None (a NULL pointer, nothing read).

_TABLE = {c: chr(c) for c in range(32, 127)}
_TABLE.update({c: "\\" + format(c, "o") for c in [*range(32), *range(127, 256)]})
_TABLE.update(_ESC)
# a byte printed in octal and followed by an octal digit needs all three digits (strace)
_NEEDS3 = re.compile(rb"[^\x20-\x7e\x09-\x0d][0-7]")
_QUOTED: dict[bytes, str] = {}  # short strings repeat (paths, one-byte buffers): quote each once


def fast_quote(data: bytes) -> str:
    q = _QUOTED.get(data)
    if q is not None:
        return q
    if _NEEDS3.search(data):
        q = quote(data)
    else:
        q = '"' + data.decode("latin-1").translate(_TABLE) + '"'
    if len(data) <= 64:
        if len(_QUOTED) >= 4096:
            _QUOTED.clear()
        _QUOTED[data] = q
    return q


def cstr_cap(c: bytes | bool | None, addr: int, lim: int) -> str:
    if c is None:
        return "NULL"
    if c is False:
        return ptr(addr)
    nul = c.find(0)  # type: ignore[union-attr]
    if 0 <= nul <= lim:
        return fast_quote(c[:nul])  # type: ignore[index]
    return fast_quote(c[:lim]) + "..."  # type: ignore[index]


def buf_cap(c: bytes | bool | None, addr: int, size: int, strsize: int) -> str:
    if c is None:
        return "NULL" if size else '""'
    if c is False:
        return ptr(addr)
    if size > strsize:
        return fast_quote(c[:strsize]) + "..."  # type: ignore[index]
    return fast_quote(c)  # type: ignore[arg-type]


def hexbuf_cap(c: bytes | bool | None, addr: int, size: int, strsize: int) -> str:
    if not c:
        return buf_cap(c, addr, size, strsize)
    n = min(size, strsize)
    return quote(c[:n], True) + ("..." if size > n else "")  # type: ignore[index]


def dirfd(v: int) -> str:
    v &= 0xFFFFFFFF
    return "AT_FDCWD" if v == 0xFFFFFF9C else str((v ^ 0x80000000) - 0x80000000)


_FAILED = "-4096 < ret < 0"
_S32 = "a{i} if a{i} < 0x80000000 else ((a{i} & 0xffffffff) ^ 0x80000000) - 0x80000000"

# ---------------------------------------------------------------- integers and pointers

kind("d", plain=lambda v: str(s32(v)), expr=_S32, signed=32)
kind("ld", plain=lambda v: str(s64(v)), expr="(a{i} ^ 0x8000000000000000) - 0x8000000000000000", signed=64)
kind("u", plain=lambda v: str(v & MASK64), expr="a{i}")
kind("x", plain=lambda v: hex(v & MASK64) if v else "0", expr="hex(a{i}) if a{i} else '0'")
kind("p", plain=ptr, expr="hex(a{i}) if a{i} else 'NULL'")
kind("o", plain=mode, expr="mode(a{i})", env={"mode": mode, "ptr": ptr})
kind(
    "fd",
    make=lambda i, p: lambda ctx, call, a, r: fd_text(ctx, a[i]),
    capture=lambda i, p, s: [],
    expr=_S32,
    signed=32,
)
kind(
    "dirfd",
    make=lambda i, p: lambda ctx, call, a, r: dirfd_text(ctx, a[i]),
    capture=lambda i, p, s: [],
    expr="dirfd(a{i})",
    env={"dirfd": dirfd},
    signed=32,
)

# ---------------------------------------------------------------- strings and buffers

FORMAT_HELPERS: dict[str, object] = {"cstr_cap": cstr_cap, "buf_cap": buf_cap, "hexbuf_cap": hexbuf_cap}
kind(
    "path",
    make=lambda i, p: lambda ctx, call, a, r: path(ctx, a[i]),
    capture=lambda i, p, s: [(CAP_ENTRY, CSTR, i, 0, 0, 0, PATH_MAX)],
    expr=f"cstr_cap(c[{{k}}], a{{i}}, {PATH_MAX - 1})",
    env=FORMAT_HELPERS,
)
kind(
    "str",
    make=lambda i, p: lambda ctx, call, a, r: cstr(ctx, a[i]),
    capture=lambda i, p, s: [(CAP_ENTRY, CSTR, i, 0, 0, 0, s + 1)],
    expr="cstr_cap(c[{k}], a{i}, S)",
)
kind(
    "ostr",
    EXIT,
    make=lambda i, p: lambda ctx, call, a, r: ptr(a[i]) if failed(r) or not a[i] else cstr(ctx, a[i]),
    capture=lambda i, p, s: [(CAP_EXIT, CSTR, i, 0, 0, 0, s + 1)],
)
kind(
    "opath",
    EXIT,
    make=lambda i, p: lambda ctx, call, a, r: ptr(a[i]) if failed(r) or not a[i] else path(ctx, a[i]),
    capture=lambda i, p, s: [(CAP_EXIT, CSTR, i, 0, 0, 0, PATH_MAX)],
)
kind(
    "ibuf",  # ibuf:N: N is the argument holding the length
    make=lambda i, p: lambda ctx, call, a, r: buf(ctx, a[i], a[int(p)]),
    capture=lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, int(p), 1, 0, s)],
    expr="buf_cap(c[{k}], a{i}, a{p}, S)",
)


def _obuf(i: int, p: str) -> Decoder:
    hexed = p.endswith("h")
    p = p.rstrip("h")

    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if failed(r):
            return ptr(a[i])
        n = r if p == "R" else a[int(p)]
        return buf(ctx, a[i], n, hexed)

    return dec


def _obuf_capture(i: int, p: str, s: int) -> list[CapOp]:
    p = p.rstrip("h")
    if p == "R":
        return [(CAP_EXIT, RETLEN, i, 0, 0, 0, s)]
    return [(CAP_EXIT, ARGLEN, i, int(p), 1, 0, s)]


def _obuf_expr(i: int, k: int | None, p: str) -> str:
    fn = "hexbuf_cap" if p.endswith("h") else "buf_cap"
    n = "ret" if p.rstrip("h") == "R" else f"a{p.rstrip('h')}"
    return f"ptr(a{i}) if {_FAILED} else {fn}(c[{k}], a{i}, {n}, S)"


# obuf:R (the result is the length), obuf:N (argument N is), a trailing h: hex (getrandom)
kind("obuf", EXIT, make=_obuf, capture=_obuf_capture, expr=_obuf_expr)

_ = (X, ENTRY)
