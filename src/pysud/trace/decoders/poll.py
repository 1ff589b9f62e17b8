"""Waiting for descriptors: poll/ppoll, select/pselect6, epoll (strace's poll.c, epoll.c, select.c)."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import (
    ARGLEN,
    CAP_ENTRY,
    CAP_EXIT,
    EXIT,
    Ctx,
    Decoder,
    ResultFn,
    failed,
    fd_text,
    flags,
    kind,
    ptr,
    syscall,
)
from .time import timespec, timeval

EPOLL_EVENTS: X.Flags = (
    (0x1, "EPOLLIN"),
    (0x2, "EPOLLPRI"),
    (0x4, "EPOLLOUT"),
    (0x8, "EPOLLERR"),
    (0x10, "EPOLLHUP"),
    (0x20, "EPOLLNVAL"),
    (0x40, "EPOLLRDNORM"),
    (0x80, "EPOLLRDBAND"),
    (0x100, "EPOLLWRNORM"),
    (0x200, "EPOLLWRBAND"),
    (0x400, "EPOLLMSG"),
    (0x2000, "EPOLLRDHUP"),
    (1 << 28, "EPOLLEXCLUSIVE"),
    (1 << 29, "EPOLLWAKEUP"),
    (1 << 30, "EPOLLONESHOT"),
    (1 << 31, "EPOLLET"),
)
EPOLL_CTL = {1: "EPOLL_CTL_ADD", 2: "EPOLL_CTL_DEL", 3: "EPOLL_CTL_MOD"}
_EVENT = struct.Struct("<IQ")  # packed on x86-64


def pollfds(ctx: Ctx, addr: int, n: int, field: str, only_set: bool = False) -> str:
    data = ctx.read(addr, 8 * min(n, 1024)) if n else b""
    if data is None:
        return ptr(addr)
    items = []
    for j in range(min(n, 1024)):
        fd, ev, rev = struct.unpack_from("<ihh", data, 8 * j)
        v = (ev if field == "events" else rev) & 0xFFFF
        if only_set and not v:
            continue
        items.append(f"{{fd={fd}, {field}={flags(v, X.POLL)}}}")
    return "[" + ", ".join(items) + "]"


def _poll_result(ctx: Ctx, a: tuple[int, ...], r: int) -> str:
    if r == 0:
        return "0 (Timeout)"
    return f"{r} ({pollfds(ctx, a[0], a[1], 'revents', True)})"


def epoll_event(data: bytes, off: int = 0) -> str:
    ev, d = _EVENT.unpack_from(data, off)
    return f"{{events={flags(ev, EPOLL_EVENTS)}, data={{u32={d & 0xFFFFFFFF}, u64={d}}}}}"


def _events(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if failed(r):
            return ptr(a[i])
        data = ctx.read(a[i], _EVENT.size * min(r, 1024)) if r else b""
        if data is None:
            return ptr(a[i])
        return "[" + ", ".join(epoll_event(data, _EVENT.size * j) for j in range(min(r, 1024))) + "]"

    return dec


def _event(ctx: Ctx, addr: int) -> str:
    data = ctx.read(addr, _EVENT.size)
    return ptr(addr) if data is None else epoll_event(data)


def fdset(ctx: Ctx, addr: int, nfds: int, decorate: bool = False) -> str:
    """An fd_set as strace prints it; ``decorate``: with -y paths (arguments, not results)."""
    if not addr:
        return "NULL"
    n = min(max(nfds, 0), 1024)
    data = ctx.read(addr, (n + 63) // 64 * 8)
    if data is None:
        return ptr(addr)
    bits = int.from_bytes(data, "little")
    shown = (fd_text(ctx, fd) if decorate else str(fd) for fd in range(n) if bits >> fd & 1)
    return "[" + " ".join(shown) + "]"


kind(
    "pollfds",
    make=lambda i, p: lambda ctx, call, a, r: pollfds(ctx, a[i], a[1], "events"),
    capture=lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 1, 8, 0, 8192)],
)
kind("epoll_ctl", plain=lambda v: X.xlat_or(EPOLL_CTL, v, "EPOLL_CTL_???"))
kind("epoll_flags", plain=lambda v: flags(v, ((0o2000000, "EPOLL_CLOEXEC"),)))
kind("iepoll_event", make=lambda i, p: lambda ctx, call, a, r: _event(ctx, a[i]) if a[i] else "NULL")
kind("oepoll_events", EXIT, make=_events)
kind(
    "fdset",
    make=lambda i, p: lambda ctx, call, a, r: fdset(ctx, a[i], a[0], True),
)
kind("itimeval", make=lambda i, p: lambda ctx, call, a, r: timeval(ctx, a[i]) if a[i] else "NULL")
kind("itimespec_live", make=lambda i, p: lambda ctx, call, a, r: timespec(ctx, a[i]) if a[i] else "NULL")


def _select_result(nanoseconds: bool) -> ResultFn:
    """strace: `1 (in [3], left {tv_sec=0, tv_nsec=0})`: the sets as the call left them."""

    def result(ctx: Ctx, a: tuple[int, ...], r: int) -> str:
        if r == 0:
            return "0 (Timeout)"
        parts = []
        for name, i in (("in", 1), ("out", 2), ("except", 3)):
            if a[i]:
                s = fdset(ctx, a[i], a[0])
                if s != "[]":
                    parts.append(f"{name} {s}")
        if a[4]:
            parts.append(f"left {timespec(ctx, a[4]) if nanoseconds else timeval(ctx, a[4])}")
        return f"{r} ({', '.join(parts)})"

    return result


syscall(
    "poll",
    "pollfds",
    "u",
    "d",
    result=_poll_result,
    extra=((CAP_EXIT, ARGLEN, 0, 1, 8, 0, 8192),),
)
syscall(
    "ppoll",
    "pollfds",
    "u",
    "itimespec",
    "p",
    "u",
    result=_poll_result,
    extra=((CAP_EXIT, ARGLEN, 0, 1, 8, 0, 8192),),
)
syscall("select", "d", "fdset", "fdset", "fdset", "itimeval", result=_select_result(False), live=True)
syscall(
    "pselect6", "d", "fdset", "fdset", "fdset", "itimespec_live", "p", result=_select_result(True), live=True
)
syscall("epoll_create1", "epoll_flags", ret="fd")
syscall("epoll_ctl", "fd", "epoll_ctl", "fd", "iepoll_event")
syscall("epoll_wait", "fd", "oepoll_events", "d", "d")
syscall("epoll_pwait", "fd", "oepoll_events", "d", "d", "p", "u")
