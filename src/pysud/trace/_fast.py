"""Compiled line formatters for recorded calls: the hot path of `pysud trace`.

A call the core recorded (pysud.trace._tracer) is printed by a function made for its
syscall number from the same argument kinds as the reference decoders (``decoders``), each
kind contributing its expression over the registers and the captured bytes (``Kind.expr``)
instead of a chain of decoder calls.  A call with a kind that has no expression, a layout or
a result of its own is decoded by the reference decoders (``formatter`` returns None), and
tests hold the two to the same output.
"""

from __future__ import annotations

from collections.abc import Callable

from . import decoders as D
from .decoders._base import CAP_ENTRY, CAP_EXIT, FORMAT_ENV

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
