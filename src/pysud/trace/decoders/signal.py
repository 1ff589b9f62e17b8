"""Signals: sigaction, masks, the siginfo and sigset texts of strace's signal.c."""

from __future__ import annotations

import struct

from .. import _xlat as X
from ._base import (
    ARGLEN,
    CAP_ENTRY,
    CAP_EXIT,
    EXIT,
    MASK64,
    Ctx,
    at,
    flags,
    kind,
    out,
    ptr,
    s32,
    signame,
    syscall,
    xlat,
)


def sigset(data: bytes) -> str:
    """strace's sigset: [HUP INT] or ~[...] when more than half are set."""
    bits = int.from_bytes(data, "little")
    nsig = len(data) * 8
    members = [s for s in range(1, nsig + 1) if bits >> (s - 1) & 1]
    inverted = len(members) > nsig // 2
    if inverted:
        members = [s for s in range(1, nsig + 1) if not bits >> (s - 1) & 1]
    names = [signame(s)[3:] if signame(s).startswith("SIG") else signame(s) for s in members]
    return ("~[" if inverted else "[") + " ".join(names) + "]"


_FAULTS = frozenset({4, 5, 7, 8, 11})  # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV


def siginfo(data: bytes) -> str:
    """strace's siginfo: {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=..., ...}."""
    if len(data) < 48:
        return "{...}"
    signo, _errno, code = struct.unpack_from("<iii", data, 0)
    name = signame(signo)
    cname = X.SIG_CODES.get(signo, {}).get(code) if code > 0 and code != 0x80 else None
    if cname is None:
        cname = X.SI_CODES.get(code, str(code))
    text = f"{{si_signo={name}, si_code={cname}"
    pid, uid = struct.unpack_from("<iI", data, 16)
    if code <= 0 and code not in (-2, -4, -5):  # sent by a process: SI_USER, SI_QUEUE, SI_TKILL, ...
        text += f", si_pid={pid}, si_uid={uid}"
        if code == -1:
            val = struct.unpack_from("<q", data, 24)[0]
            text += f", si_int={s32(val)}, si_ptr={ptr(val)}"
    elif code == -2:  # SI_TIMER
        tid, overrun = struct.unpack_from("<ii", data, 16)
        val = struct.unpack_from("<q", data, 24)[0]
        text += f", si_timerid={tid:#x}, si_overrun={overrun}, si_int={s32(val)}, si_ptr={ptr(val)}"
    elif signo == 17 and code > 0:  # SIGCHLD
        status = struct.unpack_from("<i", data, 24)[0]
        utime, stime = struct.unpack_from("<qq", data, 32)
        st = str(status) if code == 1 else signame(status)
        text += f", si_pid={pid}, si_uid={uid}, si_status={st}, si_utime={utime}, si_stime={stime}"
    elif signo in _FAULTS and 0 < code < 0x80:
        text += f", si_addr={ptr(struct.unpack_from('<Q', data, 16)[0])}"
    return text + "}"


def sigaction_text(ctx: Ctx, addr: int, size: int) -> str:
    data = ctx.read(addr, 24 + size)
    if data is None:
        return ptr(addr)
    handler, fl, restorer = struct.unpack_from("<QQQ", data)
    h = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler, hex(handler))
    text = f"{{sa_handler={h}, sa_mask={sigset(data[24:])}, sa_flags={flags(fl, X.SA_FLAGS)}"
    if fl & X.SA_RESTORER:
        text += f", sa_restorer={hex(restorer)}"
    return text + "}"


def sigset_at(ctx: Ctx, addr: int, size: int) -> str:
    data = ctx.read(addr, min(size, 128))
    return ptr(addr) if data is None else sigset(data)


SS_FLAGS: X.Flags = ((1, "SS_ONSTACK"), (2, "SS_DISABLE"), (1 << 31, "SS_AUTODISARM"))


def stack_t(ctx: Ctx, addr: int) -> str:
    data = ctx.read(addr, 24)
    if data is None:
        return ptr(addr)
    sp, fl, size = struct.unpack("<QixxxxQ", data)
    return f"{{ss_sp={ptr(sp)}, ss_flags={flags(fl & 0xFFFFFFFF, SS_FLAGS)}, ss_size={size}}}"


kind("signal", plain=signame)
kind("sighow", plain=lambda v: xlat(v, X.SIGPROCMASK_HOW, "SIG_???"))
kind(
    "isigset",
    make=lambda i, p: lambda ctx, call, a, r: sigset_at(ctx, a[i], a[3]) if a[i] else "NULL",
    capture=lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 3, 1, 0, 128)],
)
kind(
    "osigset",
    EXIT,
    make=out(lambda ctx, a, i: sigset_at(ctx, a[i], a[3])),
    capture=lambda i, p, s: [(CAP_EXIT, ARGLEN, i, 3, 1, 0, 128)],
)
kind(
    "isigaction",
    make=lambda i, p: lambda ctx, call, a, r: sigaction_text(ctx, a[i], a[3]) if a[i] else "NULL",
    capture=lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 3, 1, 24, 152)],
)
kind(
    "osigaction",
    EXIT,
    make=out(lambda ctx, a, i: sigaction_text(ctx, a[i], a[3])),
    capture=lambda i, p, s: [(CAP_EXIT, ARGLEN, i, 3, 1, 24, 152)],
)
kind("istack", make=at(stack_t))
# rt_sigreturn as the core records it: argument 0 holds the mask the frame restores
kind("sigreturn_mask", plain=lambda v: f"{{mask={sigset((v & MASK64).to_bytes(8, 'little'))}}}")
kind("ostack", EXIT, make=out(lambda ctx, a, i: stack_t(ctx, a[i])))

syscall("rt_sigaction", "signal", "isigaction", "osigaction", "u")
syscall("rt_sigprocmask", "sighow", "isigset", "osigset", "u")
syscall("sigaltstack", "istack", "ostack")
syscall("rt_sigreturn", "sigreturn_mask", live=True)  # recorded by the core, never a Python call
kind(
    "isigset1",  # the mask of rt_sigsuspend/rt_sigpending-style calls: its size is argument 1
    make=lambda i, p: lambda ctx, call, a, r: sigset_at(ctx, a[i], a[1]) if a[i] else "NULL",
    capture=lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 1, 1, 0, 128)],
)
syscall("rt_sigsuspend", "isigset1", "u")
syscall("kill", "d", "signal")
syscall("tkill", "d", "signal")
syscall("tgkill", "d", "d", "signal")
