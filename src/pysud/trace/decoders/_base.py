"""What every decoder family uses: the decoding context (memory reader), strace's quoting and
number styles, and the one registry where argument kinds and syscall specs are declared.

A *kind* says how one argument prints (``kind()``): when (entry or exit), the decoder, what
the core's recorder must capture for it to print from a record (``capture``) and, for the hot
path, a Python expression the compiled formatters use (``expr``). A *spec* says how a syscall
prints (``syscall()``): its argument kinds, an optional layout (which arguments show) and how
its result prints. Each family module (file.py, futex.py, ...) declares its kinds and specs
with these two functions; nothing else needs to know about a new decoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ... import _core
from .. import _xlat as X

MASK64 = (1 << 64) - 1
NUL = b"\0"
PATH_MAX = 4096
ENTRY, EXIT, BOTH = 0, 1, 2  # BOTH: read at entry, printed at exit with what was read
# What the recorder (core, sud_trace.c) captures: (phase, how, arg, lenarg, scale, plus, max).
CAP_ENTRY, CAP_EXIT = 1, 2
CSTR, ARGLEN, RETLEN, FIXED = 1, 2, 3, 4
CapOp = tuple[int, int, int, int, int, int, int]


class Ctx:
    """What decoding depends on: the -s limit, -y, and where program memory is read from.

    ``snapshot`` is memory as the recorder captured it while a record is decoded (address ->
    bytes, a complete C string ending with its NUL, or False where the read failed); None:
    read the live process.
    """

    __slots__ = ("fd_paths", "reader", "snapshot", "strsize")

    def __init__(
        self,
        strsize: int = 32,
        fd_paths: bool = False,
        reader: Callable[[int, int], bytes] | None = None,
    ) -> None:
        self.strsize = strsize
        self.fd_paths = fd_paths
        self.reader = reader or _core.read_memory
        self.snapshot: dict[int, bytes | bool] | None = None

    def read(self, addr: int, n: int) -> bytes | None:
        snap = self.snapshot
        if snap is not None:
            d = snap.get(addr)
            if d is not None:
                if d is False or len(d) < n:  # type: ignore[arg-type]
                    return None
                return d[:n]  # type: ignore[index]
        try:
            return self.reader(addr, n)
        except (OSError, ValueError, OverflowError):
            return None

    def cstring(self, addr: int, limit: int) -> tuple[bytes, bool] | None:
        """(bytes, complete) of the NUL-terminated string at addr, at most limit bytes."""
        snap = self.snapshot
        if snap is not None:
            d = snap.get(addr)
            if d is not None:
                if d is False:
                    return None
                nul = d.find(NUL)  # type: ignore[union-attr]
                if 0 <= nul < limit:
                    return d[:nul], True  # type: ignore[index]
                return d[:limit], False  # type: ignore[index]
        out = b""
        while len(out) < limit:
            chunk = min(4096 - ((addr + len(out)) & 4095), limit - len(out))
            data = self.read(addr + len(out), chunk)
            if data is None:
                return None if not out else (out, False)
            nul = data.find(b"\0")
            if nul >= 0:
                return out + data[:nul], True
            out += data
        return out, False


# ---------------------------------------------------------------- strings

_ESC = {ord('"'): '\\"', ord("\\"): "\\\\", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def quote(data: bytes, force_hex: bool = False) -> str:
    """strace's string_quote: printable as is, C escapes, octal for the rest; hex if forced."""
    if force_hex:
        return '"' + "".join(f"\\x{c:02x}" for c in data) + '"'
    out = ['"']
    n = len(data)
    for i, c in enumerate(data):
        e = _ESC.get(c)
        if e is not None:
            out.append(e)
        elif 32 <= c < 127:
            out.append(chr(c))
        elif i + 1 < n and 48 <= data[i + 1] <= 55:
            out.append(f"\\{c >> 6}{(c >> 3) & 7}{c & 7}")
        else:
            out.append("\\" + format(c, "o"))
    out.append('"')
    return "".join(out)


def buf(ctx: Ctx, addr: int, size: int, force_hex: bool = False) -> str:
    if not addr and size:
        return "NULL"
    n = min(size, ctx.strsize)
    data = ctx.read(addr, n)
    if data is None:
        return ptr(addr)
    return quote(data, force_hex) + ("..." if size > n else "")


def cstr(ctx: Ctx, addr: int, limit: int | None = None) -> str:
    if not addr:
        return "NULL"
    lim = ctx.strsize if limit is None else limit
    got = ctx.cstring(addr, lim + 1)
    if got is None:
        return ptr(addr)
    data, complete = got
    if len(data) > lim or not complete:
        return quote(data[:lim]) + "..."
    return quote(data)


def path(ctx: Ctx, addr: int) -> str:
    return cstr(ctx, addr, PATH_MAX - 1)


# ---------------------------------------------------------------- numbers and flags


def ptr(v: int) -> str:
    return "NULL" if not v else hex(v & MASK64)


def chex(v: int) -> str:
    """C's %#x: 0 stays 0."""
    return hex(v) if v else "0"


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def failed(r: int) -> bool:
    return -4096 < r < 0


def flags(v: int, table: X.Flags, zero: str = "0") -> str:
    if not v:
        return zero
    names = []
    for bit, name in table:
        if v & bit == bit:
            names.append(name)
            v &= ~bit
    if v:
        names.append(hex(v))
    return "|".join(names)


def xlat(v: int, table: dict[int, str], unknown: str = "") -> str:
    name = table.get(v)
    if name is not None:
        return name
    return f"{hex(v)} /* {unknown or '???'} */" if unknown else hex(v)


def mode(v: int) -> str:
    """C's %#03o, as strace prints modes: 000, 022, 0644."""
    return ("0" + format(v & 0o7777, "o") if v & 0o7777 else "0").rjust(3, "0")


def file_mode(m: int) -> str:
    """strace's sprintmode: S_IFDIR|S_ISVTX|0777."""
    kind = X.S_IFMT.get(m & 0o170000)
    out = f"{kind}|" if kind else ""
    for bit, name in ((0o4000, "S_ISUID"), (0o2000, "S_ISGID"), (0o1000, "S_ISVTX")):
        if m & bit:
            out += f"{name}|"
    return out + mode(m & 0o777)


def fd_path(ctx: Ctx, fd: int) -> str | None:
    if not ctx.fd_paths:
        return None
    try:
        return os.readlink("/proc/self/fd/cwd" if fd == X.AT_FDCWD else f"/proc/self/fd/{fd}")
    except OSError:
        return None


def fd_text(ctx: Ctx, v: int) -> str:
    fd = s32(v)
    if ctx.fd_paths and fd >= 0:
        p = fd_path(ctx, fd)
        if p is not None:
            return f"{fd}<{p}>"
    return str(fd)


def dirfd_text(ctx: Ctx, v: int) -> str:
    fd = s32(v)
    if fd == X.AT_FDCWD:
        if ctx.fd_paths:
            try:
                return f"AT_FDCWD<{os.getcwd()}>"
            except OSError:
                pass
        return "AT_FDCWD"
    return fd_text(ctx, v)


def open_flags(v: int) -> str:
    v &= 0xFFFFFFFF
    acc = X.OPEN_ACCMODE[v & 3]
    rest = flags(v & ~3, X.OPEN_FLAGS, "")
    return f"{acc}|{rest}" if rest else acc


def signame(v: int) -> str:
    if 32 <= v <= 64:  # the kernel's real-time range (glibc reserves the first two)
        return "SIGRTMIN" if v == 32 else f"SIGRT_{v - 32}"
    return X.SIGNALS.get(v, str(v))


# ---------------------------------------------------------------- the registry

# ctx, call (the live Syscall or None), arguments, result -> text (None: empty)
Decoder = Callable[[Ctx, Any, tuple[int, ...], int], str | None]
CaptureFn = Callable[[int, str, int], list[CapOp]]  # (index, param, strsize) -> ops
ExprFn = Callable[[int, "int | None", str], "str | None"]  # (index, capture slot, param) -> expr


@dataclass(frozen=True)
class Kind:
    """How one argument prints."""

    name: str
    phase: int  # ENTRY: decoded before the call runs; EXIT: after, with the result known
    # (index, param) -> decoder; for BOTH a pair (entry decoder, exit decoder that also gets
    # the entry's text)
    make: Callable[[int, str], Any]
    capture: CaptureFn | None = None  # None: only decodable from live memory
    expr: ExprFn | None = None  # None: the compiled formatters leave the call to the decoders
    plain: Callable[[int], str] | None = None  # the value alone says it all
    signed: int = 0  # 32 or 64: the value is signed (JSON prints it so)


KINDS: dict[str, Kind] = {}
# Names the compiled formatters' expressions may use (each kind adds its helpers).
FORMAT_ENV: dict[str, object] = {}


def _no_capture(i: int, p: str, s: int) -> list[CapOp]:
    return []


def kind(
    name: str,
    phase: int = ENTRY,
    *,
    make: Callable[[int, str], Any] | None = None,
    plain: Callable[[int], str] | None = None,
    capture: CaptureFn | None = None,
    expr: ExprFn | str | None = None,
    env: dict[str, object] | None = None,
    signed: int = 0,
) -> None:
    """Declare an argument kind. ``plain``: a function of the register alone (no memory, no
    capture, compiled as a call); ``expr`` as a string is a template over {i} (the argument
    index), {k} (its capture slot) and {p} (the kind's parameter)."""
    if name in KINDS:
        raise ValueError(f"kind {name!r} declared twice")
    if plain is not None:
        fn = plain
        make = make or (lambda i, p: lambda ctx, call, a, r: fn(a[i]))
        capture = capture or _no_capture
        if expr is None:
            FORMAT_ENV[f"k_{name}"] = fn
            expr = f"k_{name}(a{{i}})"
    assert make is not None
    if isinstance(expr, str):
        template = expr
        expr = lambda i, k, p: template.format(i=i, k=k, p=p)  # noqa: E731
    if env:
        FORMAT_ENV.update(env)
    KINDS[name] = Kind(name, phase, make, capture, expr, plain, signed)


Layout = Callable[[list[str], tuple[int, ...]], list[str]]
ResultFn = Callable[[Ctx, tuple[int, ...], int], str]


@dataclass(frozen=True)
class Spec:
    """How one syscall prints."""

    args: tuple[str, ...]
    layout: Layout | None = None  # which decoded arguments show, in what form
    ret: str = "d"  # result style: d (signed), hex, oct, fd (-y decorates), or custom below
    result: ResultFn | None = None  # a successful result's text, when it needs the arguments or memory
    live: bool = False  # needs the live process (never decoded from a record)
    extra: tuple[CapOp, ...] = field(default=())  # captures besides the arguments' (for result)


SPECS: dict[str, Spec] = {}


def syscall(
    name: str,
    *args: str,
    layout: Layout | None = None,
    ret: str = "d",
    result: ResultFn | None = None,
    live: bool = False,
    extra: tuple[CapOp, ...] = (),
) -> None:
    """Declare how syscall ``name`` prints: argument kinds (``kind`` or ``kind:param``)."""
    if name in SPECS:
        raise ValueError(f"syscall {name!r} declared twice")
    SPECS[name] = Spec(tuple(args), layout, ret, result, live, extra)


def fixed(phase: int, size: int) -> CaptureFn:
    """A capture of ``size`` bytes at the argument."""
    return lambda i, p, s: [(phase, FIXED, i, 0, 0, size, size)]


def out(fn: Callable[[Ctx, tuple[int, ...], int], str]) -> Callable[[int, str], Decoder]:
    """An out-argument: its address if the call failed or it is NULL, else fn's text."""

    def make(i: int, p: str) -> Decoder:
        def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
            if failed(r) or not a[i]:
                return ptr(a[i])
            return fn(ctx, a, i)

        return dec

    return make


def at(fn: Callable[[Ctx, int], str]) -> Callable[[int, str], Decoder]:
    """An in-argument read from memory: NULL, or fn's text."""
    return lambda i, p: lambda ctx, call, a, r: fn(ctx, a[i]) if a[i] else "NULL"


def regarg(fn: Callable[[Ctx, int], str]) -> Callable[[int, str], Decoder]:
    """An in-argument that is a function of the context and the register."""
    return lambda i, p: lambda ctx, call, a, r: fn(ctx, a[i])
