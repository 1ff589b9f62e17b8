"""The rest of what programs ask the kernel at start-up: uname, sysinfo, getrandom, resource
limits, CPU affinity, prctl (strace's uname.c, sysinfo.c, random.c, resource.c, prctl.c ...)."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import (
    CAP_ENTRY,
    CAP_EXIT,
    EXIT,
    MASK64,
    RETLEN,
    Ctx,
    Decoder,
    cstr,
    failed,
    fixed,
    flags,
    kind,
    out,
    ptr,
    quote,
    s32,
    syscall,
    xlat,
)

SYSINFO = struct.Struct("<q3Q6QHxxxxxxQQI")


def _sysinfo(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], SYSINFO.size)
    if data is None:
        return ptr(a[i])
    up, l1, l5, l15, tr, fr, sr, br, ts, fs, procs, th, fh, unit = SYSINFO.unpack(data)
    return (
        f"{{uptime={up}, loads=[{l1}, {l5}, {l15}], totalram={tr}, freeram={fr}, sharedram={sr}, "
        f"bufferram={br}, totalswap={ts}, freeswap={fs}, procs={procs}, totalhigh={th}, freehigh={fh}, "
        f"mem_unit={unit}}}"
    )


def rlim(v: int) -> str:
    if v == MASK64:
        return "RLIM64_INFINITY"
    if v > 1024 and v % 1024 == 0:
        return f"{v // 1024}*1024"
    return str(v)


def _rlimit(ctx: Ctx, addr: int) -> str:
    data = ctx.read(addr, 16)
    if data is None:
        return ptr(addr)
    cur, mx = struct.unpack("<QQ", data)
    return f"{{rlim_cur={rlim(cur)}, rlim_max={rlim(mx)}}}"


def _uname(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], 65 * 2)
    if data is None:
        return ptr(a[i])
    sysname = data[:65].split(b"\0")[0]
    node = data[65:130].split(b"\0")[0]
    return f"{{sysname={quote(sysname)}, nodename={quote(node)}, ...}}"


def _cpuset(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        data = None if failed(r) else ctx.read(a[i], r)
        if data is None:
            return ptr(a[i])
        bits = int.from_bytes(data, "little")
        return "[" + " ".join(str(c) for c in range(len(data) * 8) if bits >> c & 1) + "]"

    return dec


def prctl_text(ctx: Ctx, a: tuple[int, ...], r: int) -> str:
    opt = a[0] & 0xFFFFFFFF
    name = X.PRCTL.get(opt)
    if opt == 16:  # PR_GET_NAME
        return f"{name}, {ptr(a[1]) if failed(r) else cstr(ctx, a[1], 15)}"
    if opt == 15:
        return f"{name}, {cstr(ctx, a[1], 15)}"
    if name is None:
        return f"{hex(opt)} /* PR_??? */, " + ", ".join(hex(x) for x in a[1:5])
    return f"{name}, " + ", ".join(hex(x) for x in a[1:5])


kind("sysinfo", EXIT, make=out(_sysinfo), capture=fixed(CAP_EXIT, SYSINFO.size))
kind("uname", EXIT, make=out(_uname), capture=fixed(CAP_EXIT, 130))
kind("rlimit", plain=lambda v: xlat(v, X.RLIMIT, "RLIMIT_???"))
kind(
    "irlim",
    make=lambda i, p: lambda ctx, call, a, r: _rlimit(ctx, a[i]) if a[i] else "NULL",
    capture=fixed(CAP_ENTRY, 16),
)
kind("orlim", EXIT, make=out(lambda ctx, a, i: _rlimit(ctx, a[i])), capture=fixed(CAP_EXIT, 16))
kind("grnd", plain=lambda v: flags(v, X.GRND))
kind("cpuset", EXIT, make=_cpuset, capture=lambda i, p, s: [(CAP_EXIT, RETLEN, i, 0, 0, 0, 1024)])
kind("prctl", EXIT, make=lambda i, p: lambda ctx, call, a, r: prctl_text(ctx, a, r))

RUSAGE_WHO = {0: "RUSAGE_SELF", -1: "RUSAGE_CHILDREN", 1: "RUSAGE_THREAD"}


def _rusage(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], 32)
    if data is None:
        return ptr(a[i])
    us, uu, ss, su = struct.unpack("<qqqq", data)
    return f"{{ru_utime={{tv_sec={us}, tv_usec={uu}}}, ru_stime={{tv_sec={ss}, tv_usec={su}}}, ...}}"


kind("rusage_who", plain=lambda v: X.xlat_or(RUSAGE_WHO, s32(v), "RUSAGE_???"))
kind("rusage", EXIT, make=out(_rusage), capture=fixed(CAP_EXIT, 32))
syscall("getrusage", "rusage_who", "rusage")
syscall("uname", "uname")
syscall("sysinfo", "sysinfo")
syscall("getrandom", "obuf:Rh", "u", "grnd")
syscall("prlimit64", "d", "rlimit", "irlim", "orlim")
syscall("getrlimit", "rlimit", "orlim")
syscall("setrlimit", "rlimit", "irlim")
syscall("sched_getaffinity", "d", "u", "cpuset")
syscall("prctl", "prctl")  # the whole argument list depends on the option
