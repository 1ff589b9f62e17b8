"""Compiled line formatters for recorded calls: the hot path of `pysud trace`.

A call the core recorded (pysud.trace._tracer) is printed by a function made for its
syscall number from the same argument kinds as the reference decoders (``decoders``), each
kind contributing its expression over the registers and the captured bytes (``Kind.expr``)
instead of a chain of decoder calls.  A call with a kind that has no expression, a layout or
a result of its own is decoded by the reference decoders (``formatter`` returns None), and
tests hold the two to the same output.

``program`` turns the same kinds into a template the core runs over whole batches of records
(``_core.format_records``, trace_format.c): literal text, and per argument one operation on
the register or its captured bytes (a number, a pointer, strace's quoted string or buffer) or
a call of the kind's ``plain`` function.  The core prints no name and knows no flag: the
templates carry them.  Tests hold templates, formatters and decoders to the same lines.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from . import decoders as D
from .decoders._base import CAP_ENTRY, CAP_EXIT, FORMAT_ENV, PATH_MAX, mode

_ERRORS: dict[int, str] = {}


def error_text(res: int) -> str:
    t = _ERRORS.get(res)
    if t is None:
        t = _ERRORS[res] = D.error_text(res)
    return t


def result_expr(dec: D.CallDecoder) -> str | None:
    """The result as strace prints it, as an expression over ``ret``; None when it needs more."""
    spec = dec.spec
    if spec.result is not None:
        return None
    if spec.ret == "hex":
        return "E(ret) if -4096 < ret < 0 else hex(ret & 0xffffffffffffffff) if ret else '0'"
    if spec.ret == "oct":
        return "E(ret) if -4096 < ret < 0 else mode(ret)"
    return "E(ret) if -4096 < ret < 0 else ret"  # "fd" too: recording is off with -y


def formatter(
    dec: D.CallDecoder, ops: list[D.CapOp], strsize: int, durations: bool
) -> Callable[..., str] | None:
    """f(prefix, a0, ..., a5, ret, caps, dt) -> the line of a completed recorded call; None: not compiled."""
    result = result_expr(dec)
    if dec.spec.layout is not None or result is None:
        return None
    # where each argument's capture sits in a record's list: entry captures, then exit ones
    order = [op for op in ops if op[0] == CAP_ENTRY] + [op for op in ops if op[0] == CAP_EXIT]
    slot = {op[2]: k for k, op in enumerate(order)}
    env: dict[str, object] = dict(FORMAT_ENV, E=error_text, S=strsize)
    parts = []
    for i, (kind, text) in enumerate(zip(dec.kinds, dec.spec.args, strict=True)):
        e = kind.expr(i, slot.get(i), text.partition(":")[2]) if kind.expr is not None else None
        if e is None:
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


# trace_format.c's instructions: op, argument, capture slot, flags, parameter
_INSN = struct.Struct("<BBBBI")
F_LIT, F_S32, F_S64, F_U64, F_HEX, F_PTR, F_DIRFD, F_CALL, F_CSTR, F_BUF = range(1, 11)
F_RES_DEC, F_RES_HEX, F_RES_CALL = 20, 21, 22
BUF_RET, BUF_FAILED_PTR, BUF_HEX = 1, 2, 4
# kinds the core prints itself (the same text as their ``expr``)
_REGISTER_OPS = {"d": F_S32, "fd": F_S32, "ld": F_S64, "u": F_U64, "x": F_HEX, "p": F_PTR, "dirfd": F_DIRFD}

Program = tuple[bytes, tuple[object, ...]]


def program(dec: D.CallDecoder, ops: list[D.CapOp], strsize: int) -> Program | None:
    """The template of ``dec``'s line for ``_core.format_records``; None: not expressible (the
    Python formatter or the decoders print it)."""
    spec = dec.spec
    if spec.layout is not None or spec.result is not None:
        return None
    order = [op for op in ops if op[0] == CAP_ENTRY] + [op for op in ops if op[0] == CAP_EXIT]
    slot = {op[2]: k for k, op in enumerate(order)}
    code: list[bytes] = []
    objs: list[object] = []

    def obj(o: object) -> int:
        objs.append(o)
        return len(objs) - 1

    def lit(text: str) -> None:
        code.append(_INSN.pack(F_LIT, 0, 0, 0, obj(text.encode())))

    lit(dec.name + "(")
    for i, (kind, text) in enumerate(zip(dec.kinds, spec.args, strict=True)):
        if i:
            lit(", ")
        param = text.partition(":")[2]
        k = slot.get(i, 255)
        op = _REGISTER_OPS.get(kind.name)
        if op is not None:
            code.append(_INSN.pack(op, i, 0, 0, 0))
        elif kind.name in ("path", "str") and k != 255:
            lim = PATH_MAX - 1 if kind.name == "path" else strsize
            code.append(_INSN.pack(F_CSTR, i, k, 0, lim))
        elif kind.name == "ibuf" and k != 255:
            code.append(_INSN.pack(F_BUF, i, k, 0, int(param)))
        elif kind.name == "obuf" and k != 255:
            n = param.rstrip("h")
            flags = BUF_FAILED_PTR | (BUF_HEX if param.endswith("h") else 0) | (BUF_RET if n == "R" else 0)
            code.append(_INSN.pack(F_BUF, i, k, flags, 0 if n == "R" else int(n)))
        elif kind.plain is not None:
            code.append(_INSN.pack(F_CALL, i, 0, 0, obj(kind.plain)))
        else:
            return None
    lit(")")
    if spec.ret == "hex":
        code.append(_INSN.pack(F_RES_HEX, 0, 0, 0, 0))
    elif spec.ret == "oct":
        code.append(_INSN.pack(F_RES_CALL, 0, 0, 0, obj(mode)))
    else:  # "fd" too: recording is off with -y
        code.append(_INSN.pack(F_RES_DEC, 0, 0, 0, 0))
    return b"".join(code), tuple(objs)
