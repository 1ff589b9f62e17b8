"""Processes and threads: clone/clone3, execve, exit, wait4, arch_prctl and the thread set-up
calls (strace's clone.c, execve.c, wait.c, process.c)."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import (
    CAP_EXIT,
    EXIT,
    Ctx,
    Decoder,
    cstr,
    failed,
    fixed,
    flags,
    kind,
    out,
    ptr,
    signame,
    syscall,
    xlat,
)


def clone_flags(v: int) -> str:
    sig = v & 0xFF
    text = flags(v & ~0xFF, X.CLONE, "")
    if sig:
        text += ("|" if text else "") + signame(sig)
    return text or "0"


def wait_status(st: int) -> str:
    if st & 0x7F == 0:
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(st >> 8) & 0xFF}}}]"
    if st & 0xFF == 0x7F:
        return f"[{{WIFSTOPPED(s) && WSTOPSIG(s) == {signame((st >> 8) & 0xFF)}}}]"
    if st == 0xFFFF:
        return "[{WIFCONTINUED(s)}]"
    core = " && WCOREDUMP(s)" if st & 0x80 else ""
    return f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {signame(st & 0x7F)}{core}}}]"


def _argv(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        items: list[str] = []
        vec = a[i]
        if not vec:
            return "NULL"
        while True:
            word = ctx.read(vec, 8)
            if word is None:
                return ptr(a[i])
            s = int.from_bytes(word, "little")
            if not s:
                break
            if len(items) >= ctx.strsize:
                items.append("...")
                break
            items.append(cstr(ctx, s))
            vec += 8
        return "[" + ", ".join(items) + "]"

    return dec


def _envp(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        n, vec = 0, a[i]
        if not vec:
            return "NULL"
        while True:
            word = ctx.read(vec + 8 * n, 8)
            if word is None or not int.from_bytes(word, "little"):
                break
            n += 1
        return f"{ptr(a[i])} /* {n} vars */"

    return dec


kind("clone_flags", plain=clone_flags)
kind("argv", make=_argv)
kind("envp", make=_envp)
kind(
    "wstatus",
    EXIT,
    make=out(lambda ctx, a, i: wait_status(struct.unpack("<i", ctx.read(a[i], 4) or bytes(4))[0])),
    capture=fixed(CAP_EXIT, 4),
)
kind("wait_options", plain=lambda v: flags(v & 0xFFFFFFFF, X.WAIT_OPTIONS))
kind("arch_prctl", plain=lambda v: xlat(v, X.ARCH_PRCTL, "ARCH_???"))


def _clone_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    fl = a[0]
    parts = [f"child_stack={out[1]}", f"flags={out[0]}"]
    if fl & 0x100000:
        parts.append(f"parent_tid={out[2]}")
    if fl & 0x1200000:
        parts.append(f"child_tidptr={out[3]}")
    if fl & 0x80000:
        parts.append(f"tls={out[4]}")
    return parts


_CLONE_ARGS = struct.Struct("<11Q")  # flags pidfd child_tid parent_tid exit_signal stack stack_size tls
# set_tid set_tid_size cgroup


def _clone3_args(ctx: Ctx, addr: int, size: int) -> str:
    data = ctx.read(addr, min(size, _CLONE_ARGS.size))
    if data is None or len(data) < 64:
        return ptr(addr)
    data = data.ljust(_CLONE_ARGS.size, b"\0")
    fl, pidfd, ctid, ptid, sig, stack, ssize, tls, set_tid, set_tid_size, cgroup = _CLONE_ARGS.unpack(data)
    parts = [f"flags={flags(fl, X.CLONE, '0')}"]
    if fl & 0x1000:
        parts.append(f"pidfd={ptr(pidfd)}")
    if fl & 0x1200000:
        parts.append(f"child_tid={ptr(ctid)}")
    if fl & 0x100000:
        parts.append(f"parent_tid={ptr(ptid)}")
    parts.append(f"exit_signal={signame(sig) if sig else 0}")
    parts.append(f"stack={ptr(stack)}")
    parts.append(f"stack_size={hex(ssize) if ssize else 0}")
    if fl & 0x80000:
        parts.append(f"tls={ptr(tls)}")
    if set_tid_size:
        parts.append(f"set_tid={ptr(set_tid)}, set_tid_size={set_tid_size}")
    if fl & 0x200000000:
        parts.append(f"cgroup={cgroup}")
    return "{" + ", ".join(parts) + "}"


def _clone3(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if not a[0]:
            return "NULL"
        text = _clone3_args(ctx, a[0], a[1])
        data = ctx.read(a[0], 32)
        if data is not None and not failed(r) and struct.unpack_from("<Q", data)[0] & 0x100000:
            ptid = struct.unpack_from("<Q", data, 24)[0]
            got = ctx.read(ptid, 4)
            if got is not None:
                text += f" => {{parent_tid=[{struct.unpack('<i', got)[0]}]}}"
        return text

    return dec


kind("clone3_args", EXIT, make=_clone3)

syscall("clone", "clone_flags", "p", "p", "p", "x", layout=_clone_layout, live=True)
syscall("clone3", "clone3_args", "u")
syscall("execve", "path", "argv", "envp")
syscall("execveat", "dirfd", "path", "argv", "envp", "at_flags")
syscall("exit", "d")
syscall("exit_group", "d")
syscall("wait4", "d", "wstatus", "wait_options", "p")
syscall("arch_prctl", "arch_prctl", "p")
syscall("set_tid_address", "p")
syscall("set_robust_list", "p", "u")


def _gids(ctx: Ctx, addr: int, n: int) -> str:
    n = min(max(n, 0), 65536)
    data = ctx.read(addr, 4 * n) if n else b""
    if data is None:
        return ptr(addr)
    return "[" + ", ".join(str(g) for g in struct.unpack(f"<{n}I", data)) + "]"


def _ogids(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if failed(r) or not a[i]:
            return ptr(a[i])
        return _gids(ctx, a[i], min(a[0] & 0xFFFFFFFF, r))

    return dec


kind("ogids", EXIT, make=_ogids)
kind(
    "igids", make=lambda i, p: lambda ctx, call, a, r: _gids(ctx, a[i], a[0] & 0xFFFFFFFF) if a[i] else "NULL"
)
syscall("getgroups", "d", "ogids")
syscall("setgroups", "d", "igids")
syscall("getpid")
syscall("sched_yield")
