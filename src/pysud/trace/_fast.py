"""Compiled line formatters for recorded calls: the hot path of `pysud trace`.

A call the core recorded (pysud.trace._tracer) is printed by a function made for its
syscall number from the same argument kinds as the reference decoders of ``_decode``,
with each kind an expression over the registers and the captured bytes instead of a chain
of decoder calls.  Only common kinds have an expression; a call with any other kind is
decoded by the reference decoders (``formatter`` returns None), and tests hold the two to
the same output.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import _decode as D
from . import _xlat as X

# ---------------------------------------------------------------- captured bytes
# A capture is bytes (a complete C string ends with its NUL), False (the read failed) or
# None (a NULL pointer, nothing read).

_TABLE = {c: chr(c) for c in range(32, 127)}
_TABLE.update({c: "\\" + format(c, "o") for c in [*range(32), *range(127, 256)]})
_TABLE.update(D._ESC)
# a byte printed in octal and followed by an octal digit needs all three digits (strace)
_NEEDS3 = re.compile(rb"[^\x20-\x7e\x09-\x0d][0-7]")


_QUOTED: dict[bytes, str] = {}  # short strings repeat (paths, one-byte buffers): quote each once


def quote(data: bytes) -> str:
    q = _QUOTED.get(data)
    if q is not None:
        return q
    if _NEEDS3.search(data):
        q = D.quote(data)
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
        return D.ptr(addr)
    nul = c.find(0)  # type: ignore[union-attr]
    if 0 <= nul <= lim:
        return quote(c[:nul])  # type: ignore[index]
    return quote(c[:lim]) + "..."  # type: ignore[index]


def buf_cap(c: bytes | bool | None, addr: int, size: int, strsize: int) -> str:
    if c is None:
        return "NULL" if size else '""'
    if c is False:
        return D.ptr(addr)
    if size > strsize:
        return quote(c[:strsize]) + "..."  # type: ignore[index]
    return quote(c)  # type: ignore[arg-type]


def hexbuf_cap(c: bytes | bool | None, addr: int, size: int, strsize: int) -> str:
    if not c:
        return buf_cap(c, addr, size, strsize)
    n = min(size, strsize)
    return D.quote(c[:n], True) + ("..." if size > n else "")  # type: ignore[index]


def stat_cap(c: bytes | bool | None, addr: int) -> str:
    return D.stat_text(c) if c else D.ptr(addr)  # type: ignore[arg-type]


def timespec_cap(c: bytes | bool | None, addr: int) -> str:
    return D.timespec_text(c) if c else D.ptr(addr)  # type: ignore[arg-type]


def dirfd(v: int) -> str:
    v &= 0xFFFFFFFF
    return "AT_FDCWD" if v == 0xFFFFFF9C else str((v ^ 0x80000000) - 0x80000000)


# ---------------------------------------------------------------- results

_ERRORS: dict[int, str] = {}


def error_text(res: int) -> str:
    t = _ERRORS.get(res)
    if t is None:
        t = _ERRORS[res] = D.error_text(res)
    return t


def result_expr(dec: D.CallDecoder) -> str | None:
    """The result as strace prints it, as an expression over ``ret``; None when it needs more."""
    if dec.name in ("fcntl", "poll", "ppoll"):
        return None
    if dec.hex_result:
        return "E(ret) if -4096 < ret < 0 else hex(ret & 0xffffffffffffffff)"
    if dec.oct_result:
        return "E(ret) if -4096 < ret < 0 else mode(ret)"
    return "E(ret) if -4096 < ret < 0 else ret"


# ---------------------------------------------------------------- formatters

_S32 = "a{i} if a{i} < 0x80000000 else ((a{i} & 0xffffffff) ^ 0x80000000) - 0x80000000"
_EXPR = {
    "d": _S32,
    "fd": _S32,
    "ld": "(a{i} ^ 0x8000000000000000) - 0x8000000000000000",
    "u": "a{i}",
    "x": "hex(a{i}) if a{i} else '0'",
    "p": "hex(a{i}) if a{i} else 'NULL'",
    "dirfd": "dirfd(a{i})",
}
_FAILED = "-4096 < ret < 0"


def formatter(
    dec: D.CallDecoder, ops: list[D.CapOp], strsize: int, durations: bool
) -> Callable[..., str] | None:
    """f(prefix, a0, ..., a5, ret, caps, dt) -> the line of a completed recorded call; None: not compiled."""
    result = result_expr(dec)
    if dec.layout is not None or result is None:
        return None
    # where each argument's capture sits in a record's list: entry captures, then exit ones
    order = [op for op in ops if op[0] == D.CAP_ENTRY] + [op for op in ops if op[0] == D.CAP_EXIT]
    slot = {op[2]: k for k, op in enumerate(order)}
    env: dict[str, object] = {
        "dirfd": dirfd,
        "cstr_cap": cstr_cap,
        "buf_cap": buf_cap,
        "hexbuf_cap": hexbuf_cap,
        "stat_cap": stat_cap,
        "timespec_cap": timespec_cap,
        "ptr": D.ptr,
        "mode": D.mode,
        "E": error_text,
        "S": strsize,
    }
    parts = []
    for i, kind in enumerate(dec.spec):
        kname, _, param = kind.partition(":")
        k = slot.get(i)
        if kname in _EXPR:
            e = _EXPR[kname].format(i=i)
        elif kname == "o":
            e = f"mode(a{i})"
        elif kname in D.PLAIN:
            env[f"k_{kname}"] = D.PLAIN[kname]
            e = f"k_{kname}(a{i})"
        elif kname == "path":
            e = f"cstr_cap(c[{k}], a{i}, 4095)"
        elif kname == "str":
            e = f"cstr_cap(c[{k}], a{i}, S)"
        elif kname == "ibuf":
            e = f"buf_cap(c[{k}], a{i}, a{param}, S)"
        elif kname == "obuf":
            fn = "hexbuf_cap" if param.endswith("h") else "buf_cap"
            n = "ret" if param.rstrip("h") == "R" else f"a{param.rstrip('h')}"
            e = f"ptr(a{i}) if {_FAILED} else {fn}(c[{k}], a{i}, {n}, S)"
        elif kname == "stat":
            e = f"ptr(a{i}) if {_FAILED} or not a{i} else stat_cap(c[{k}], a{i})"
        elif kname == "otimespec":
            e = f"ptr(a{i}) if {_FAILED} or not a{i} else timespec_cap(c[{k}], a{i})"
        elif kname == "itimespec":
            e = f"timespec_cap(c[{k}], a{i}) if a{i} else 'NULL'"
        else:
            return None
        parts.append("{" + e + "}")
    tail = " <{dt / 1e9:.6f}>" if durations else ""
    src = (
        "def f(prefix, a0, a1, a2, a3, a4, a5, ret, c, dt):\n"
        f'    head = f"{{prefix}}{dec.name}({", ".join(parts)})"\n'
        f'    return f"{{head:<39}} = {{{result}}}{tail}\\n"\n'
    )
    exec(compile(src, f"<pysud.trace formatter for {dec.name}>", "exec"), env)
    return env["f"]  # type: ignore[return-value]


_ = X  # the flag tables the plain kinds use live in _xlat
