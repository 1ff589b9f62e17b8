"""Clocks and sleeps: nanosleep, clock_* and the timespec strace prints (strace's time.c)."""

from __future__ import annotations

import struct

from .. import _xlat as X
from ._base import CAP_ENTRY, CAP_EXIT, EXIT, Ctx, fixed, flags, kind, out, ptr, syscall


def timespec_text(data: bytes) -> str:
    sec, nsec = struct.unpack_from("<qq", data)
    return f"{{tv_sec={sec}, tv_nsec={nsec}}}"


def timespec(ctx: Ctx, addr: int) -> str:
    data = ctx.read(addr, 16)
    return ptr(addr) if data is None else timespec_text(data)


def timespec_cap(c: bytes | bool | None, addr: int) -> str:
    return timespec_text(c) if c else ptr(addr)  # type: ignore[arg-type]


def timeval(ctx: Ctx, addr: int) -> str:
    data = ctx.read(addr, 16)
    if data is None:
        return ptr(addr)
    sec, usec = struct.unpack("<qq", data)
    return f"{{tv_sec={sec}, tv_usec={usec}}}"


kind("clock", plain=lambda v: X.CLOCKS.get(v, str(v)))
kind(
    "itimespec",
    make=lambda i, p: lambda ctx, call, a, r: timespec(ctx, a[i]) if a[i] else "NULL",
    capture=fixed(CAP_ENTRY, 16),
    expr="timespec_cap(c[{k}], a{i}) if a{i} else 'NULL'",
    env={"timespec_cap": timespec_cap},
)
kind(
    "otimespec",
    EXIT,
    make=out(lambda ctx, a, i: timespec(ctx, a[i])),
    capture=fixed(CAP_EXIT, 16),
    expr="ptr(a{i}) if -4096 < ret < 0 or not a{i} else timespec_cap(c[{k}], a{i})",
)
kind("otimeval", EXIT, make=out(lambda ctx, a, i: timeval(ctx, a[i])), capture=fixed(CAP_EXIT, 16))

# a sleep's remaining time: written only when a signal interrupts it (EINTR)
kind(
    "rem",
    EXIT,
    make=lambda i, p: (
        lambda ctx, call, a, r: "NULL" if not a[i] else timespec(ctx, a[i]) if r == -4 else ptr(a[i])
    ),
    capture=fixed(CAP_EXIT, 16),
)
syscall("nanosleep", "itimespec", "rem")
kind("clock_flags", plain=lambda v: flags(v & 0xFFFFFFFF, ((1, "TIMER_ABSTIME"),)))
syscall("clock_nanosleep", "clock", "clock_flags", "itimespec", "rem")
syscall("clock_gettime", "clock", "otimespec")
syscall("clock_getres", "clock", "otimespec")
syscall("gettimeofday", "otimeval", "p")
