"""Decoders: syscall arguments and results as strace prints them, one module per family of
calls (as strace keeps src/<family>.c), all declared through ``_base.kind`` and
``_base.syscall``.

Calls without a spec are decoded from the kernel's prototype (generated table): integers in
decimal, pointers in hex, path names as strings; without a prototype, six arguments in hex.
"""

from __future__ import annotations

import os
from typing import Any

from ..._abi import X86_64
from .. import _xlat as X
from . import (  # noqa: F401  (each family registers its kinds and specs)
    common,
    dirent,
    fcntl,
    file,
    futex,
    io,
    ioctl,
    memory,
    net,
    poll,
    process,
    signal,
    stat,
    system,
    time,
)
from ._base import (
    BOTH,
    CAP_ENTRY,
    CAP_EXIT,
    ENTRY,
    EXIT,
    KINDS,
    MASK64,
    SPECS,
    CapOp,
    Ctx,
    Decoder,
    Spec,
    chex,
    fd_text,
    mode,
    ptr,
    quote,
    s32,
    s64,
    signame,
)
from .signal import siginfo

__all__ = [
    "CAP_ENTRY",
    "CAP_EXIT",
    "KINDS",
    "SPECS",
    "CallDecoder",
    "CapOp",
    "Ctx",
    "captures_of",
    "error_text",
    "ptr",
    "quote",
    "s32",
    "siginfo",
    "signame",
]


def _generic_kind(typ: str, name: str) -> str:
    t = typ.replace("const ", "")
    if "*" in t:
        if t == "char *" and name in (
            "filename",
            "pathname",
            "path",
            "oldname",
            "newname",
            "name",
            "dir_name",
        ):
            return "path"
        return "p"
    if name in ("fd", "dfd", "oldfd", "newfd", "out_fd", "in_fd", "fd_in", "fd_out", "epfd") and "int" in t:
        return "dirfd" if name == "dfd" else "fd"
    if t == "umode_t" or name == "mode":
        return "o"
    if t in ("int", "pid_t", "uid_t", "gid_t", "clockid_t", "key_t", "timer_t", "mqd_t", "key_serial_t"):
        return "d"
    if t in ("long", "loff_t", "off_t", "ssize_t"):
        return "ld"
    if "unsigned" in t or t in ("size_t", "u32", "u64", "__u32", "__u64", "qid_t", "aio_context_t"):
        return "u"
    return "x"


def spec_of(name: str, nr: int) -> Spec:
    spec = SPECS.get(name)
    if spec is not None:
        return spec
    proto = X86_64.prototypes.get(nr)
    if proto is not None:
        return Spec(tuple(_generic_kind(t, n) for t, n in proto))
    return Spec(("x",) * 6)  # no decoder and no prototype: six arguments in hex, as strace's printargs


def error_text(res: int) -> str:
    e = -res
    if e in X.KERNEL_ERRNO:
        name, msg = X.KERNEL_ERRNO[e]
        return f"? {name} ({msg})"
    name = X.ERRNO_NAMES.get(e, str(e))
    return f"-1 {name} ({os.strerror(e)})"


def _captures(spec: Spec, strsize: int) -> list[CapOp] | None:
    if spec.live:
        return None
    ops: list[CapOp] = []
    for i, text in enumerate(spec.args):
        k = KINDS[text.partition(":")[0]]
        if k.capture is None:
            return None
        ops += k.capture(i, text.partition(":")[2], strsize)
    ops += spec.extra
    return ops if len(ops) <= 4 else None


def captures_of(nr: int, strsize: int) -> list[CapOp] | None:
    """CallDecoder(nr).captures(strsize), without making the decoders (the tracer's start-up)."""
    return _captures(spec_of(X86_64.name_of(nr), nr), strsize)


class CallDecoder:
    """How one syscall number is printed: its name, entry and exit decoders, result style."""

    __slots__ = ("both", "entry", "exit", "kinds", "name", "nargs", "resume_at", "spec")

    def __init__(self, nr: int) -> None:
        self.name = X86_64.name_of(nr)
        self.spec = spec_of(self.name, nr)
        self.nargs = len(self.spec.args)
        self.kinds = tuple(KINDS[k.partition(":")[0]] for k in self.spec.args)
        entry: list[tuple[int, Decoder]] = []
        exit_: list[tuple[int, Decoder]] = []
        both: list[tuple[int, Any]] = []
        for i, (k, text) in enumerate(zip(self.kinds, self.spec.args, strict=True)):
            made = k.make(i, text.partition(":")[2])
            if k.phase == ENTRY:
                entry.append((i, made))
            elif k.phase == EXIT:
                exit_.append((i, made))
            else:
                entry.append((i, made[0]))
                both.append((i, made[1]))
        self.entry = tuple(entry)
        self.exit = tuple(exit_)
        self.both = tuple(both)
        # strace prints the arguments before the first out-argument when the call starts;
        # an unfinished line ends there and its resumed line carries the rest
        self.resume_at = min((i for i, k in enumerate(self.kinds) if k.phase != ENTRY), default=self.nargs)

    def decode_entry(self, ctx: Ctx, call: Any, args: tuple[int, ...]) -> list[str]:
        out = [""] * self.nargs
        for i, fn in self.entry:
            try:
                out[i] = fn(ctx, call, args, 0) or ""
            except Exception:  # noqa: BLE001 - a decoder's bug never changes what the program sees
                out[i] = ptr(args[i])
        return out

    def captures(self, strsize: int) -> list[CapOp] | None:
        """What the recorder captures so this call decodes from its record; None: decode live."""
        return _captures(self.spec, strsize)

    def entry_text(self, out: list[str], args: tuple[int, ...]) -> str:
        """What strace prints when the call starts: up to its first out-argument."""
        if self.resume_at >= self.nargs:
            layout = self.spec.layout
            parts = layout(out, args) if layout is not None else out
            return f"{self.name}(" + ", ".join(parts)
        head = ", ".join(out[: self.resume_at])
        return f"{self.name}({head}, " if self.resume_at else f"{self.name}("

    def decode_exit(self, ctx: Ctx, call: Any, args: tuple[int, ...], res: int, out: list[str]) -> str:
        for i, fn in self.exit:
            try:
                out[i] = fn(ctx, call, args, res) or ""
            except Exception:  # noqa: BLE001 - as in decode_entry
                out[i] = ptr(args[i])
        for i, fn2 in self.both:
            try:
                out[i] = fn2(ctx, call, args, res, out[i]) or ""
            except Exception:  # noqa: BLE001
                out[i] = ptr(args[i])
        layout = self.spec.layout
        if layout is not None:
            try:
                out = layout(out, args)
            except Exception:  # noqa: BLE001
                pass
        return ", ".join(out)

    def result_text(self, ctx: Ctx, args: tuple[int, ...], res: int | None) -> str:
        """The result as strace prints it after ` = `."""
        if res is None:
            return "?"
        if -4096 < res < 0:
            return error_text(res)
        spec = self.spec
        if spec.result is not None:
            try:
                return spec.result(ctx, args, res)
            except Exception:  # noqa: BLE001 - as in decode_entry
                return str(s64(res))
        if spec.ret == "hex":
            return chex(res & MASK64)
        if spec.ret == "oct":
            return mode(res)
        if spec.ret == "fd" and ctx.fd_paths:
            return fd_text(ctx, res)
        return str(s64(res))

    def json_args(self, args: tuple[int, ...]) -> list[int]:
        """The raw arguments, signed where the kind is (fd -1, not 4294967295)."""
        out = []
        for k, v in zip(self.kinds, args, strict=False):
            out.append(s32(v) if k.signed == 32 else s64(v) if k.signed == 64 else v & MASK64)
        return out


_ = (BOTH, CAP_ENTRY, CAP_EXIT, signame)
