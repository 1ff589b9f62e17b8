"""futex: only the arguments the operation uses, as strace's futex.c prints them."""

from __future__ import annotations

from typing import Any

from ._base import CAP_ENTRY, FIXED, Ctx, Decoder, chex, kind, ptr, syscall
from .time import timespec

FUTEX_OPS = {
    0: "FUTEX_WAIT",
    1: "FUTEX_WAKE",
    2: "FUTEX_FD",
    3: "FUTEX_REQUEUE",
    4: "FUTEX_CMP_REQUEUE",
    5: "FUTEX_WAKE_OP",
    6: "FUTEX_LOCK_PI",
    7: "FUTEX_UNLOCK_PI",
    8: "FUTEX_TRYLOCK_PI",
    9: "FUTEX_WAIT_BITSET",
    10: "FUTEX_WAKE_BITSET",
    11: "FUTEX_WAIT_REQUEUE_PI",
    12: "FUTEX_CMP_REQUEUE_PI",
    13: "FUTEX_LOCK_PI2",
}
PRIVATE, CLOCK_REALTIME = 128, 256
WAKE_OPS = {0: "FUTEX_OP_SET", 1: "FUTEX_OP_ADD", 2: "FUTEX_OP_OR", 3: "FUTEX_OP_ANDN", 4: "FUTEX_OP_XOR"}
WAKE_CMPS = {
    0: "FUTEX_OP_CMP_EQ",
    1: "FUTEX_OP_CMP_NE",
    2: "FUTEX_OP_CMP_LT",
    3: "FUTEX_OP_CMP_LE",
    4: "FUTEX_OP_CMP_GT",
    5: "FUTEX_OP_CMP_GE",
}


def futex_op(op: int) -> str:
    op &= 0xFFFFFFFF
    name = FUTEX_OPS.get(op & 127)
    if name is None or op & ~(127 | PRIVATE | CLOCK_REALTIME):
        return f"{op:#x} /* FUTEX_??? */"
    if op & PRIVATE:
        name += "_PRIVATE"
    return name + ("|FUTEX_CLOCK_REALTIME" if op & CLOCK_REALTIME else "")


def _bitset(v: int) -> str:
    v &= 0xFFFFFFFF
    return "FUTEX_BITSET_MATCH_ANY" if v == 0xFFFFFFFF else hex(v)


def _wake_op(v: int) -> str:
    v &= 0xFFFFFFFF
    op, cmp = (v >> 28) & 7, (v >> 24) & 7
    shift = "FUTEX_OP_OPARG_SHIFT<<28|" if (v >> 28) & 8 else ""
    opname = WAKE_OPS.get(op, f"{op:#x} /* FUTEX_OP_??? */")
    cmpname = WAKE_CMPS.get(cmp, f"{cmp:#x} /* FUTEX_OP_CMP_??? */")
    return f"{shift}{opname}<<28|{chex((v >> 12) & 0xFFF)}<<12|{cmpname}<<24|{chex(v & 0xFFF)}"


def futex_args(ctx: Ctx, a: tuple[int, ...]) -> str:
    """Everything after the op, for the op's command (strace's SYS_FUNC(futex))."""
    cmd = a[1] & 127
    val, val2, val3 = a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF, a[5]
    head = f"{ptr(a[0])}, {futex_op(a[1])}"

    def ts() -> str:
        return timespec(ctx, a[3]) if a[3] else "NULL"

    if cmd == 0:
        return f"{head}, {val}, {ts()}"
    if cmd in (6, 13):
        return f"{head}, {ts()}"
    if cmd == 9:
        return f"{head}, {val}, {ts()}, {_bitset(val3)}"
    if cmd == 10:
        return f"{head}, {val}, {_bitset(val3)}"
    if cmd == 3:
        return f"{head}, {val}, {val2}, {ptr(a[4])}"
    if cmd in (4, 12):
        return f"{head}, {val}, {val2}, {ptr(a[4])}, {val3 & 0xFFFFFFFF}"
    if cmd == 5:
        return f"{head}, {val}, {val2}, {ptr(a[4])}, {_wake_op(val3)}"
    if cmd == 11:
        return f"{head}, {val}, {ts()}, {ptr(a[4])}"
    if cmd in (1, 2):
        return f"{head}, {val}"
    if cmd in (7, 8):
        return head
    return f"{head}, {val}, {ptr(a[3])}, {ptr(a[4])}, {val3 & 0xFFFFFFFF:#x}"


def _futex(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        return futex_args(ctx, a)

    return dec


# the whole argument list is one kind; the timeout (argument 3) is captured for the wait ops
kind("futex", make=_futex, capture=lambda i, p, s: [(CAP_ENTRY, FIXED, 3, 0, 0, 16, 16)])
syscall("futex", "futex")
