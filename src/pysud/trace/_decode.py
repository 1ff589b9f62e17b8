"""Decoders: syscall arguments and results as strace prints them.

Each syscall has a spec, a tuple of argument kinds (data, below in SPECS); a kind names a small
function. Kinds read at entry (``ENTRY``) are decoded before the call runs, the others (out
arguments) after it, with the result known. Calls without a spec are decoded from the kernel's
prototype (generated table): integers in decimal, pointers in hex, path names as strings.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from .. import _core
from .._abi import X86_64
from . import _xlat as X

Decoder = Callable[["Ctx", Any, tuple[int, ...], int], str | None]
MASK64 = (1 << 64) - 1
NUL = b"\0"


class Ctx:
    """What decoding depends on: the -s limit, -y, and a memory reader."""

    __slots__ = ("fd_paths", "strsize")

    def __init__(self, strsize: int = 32, fd_paths: bool = False) -> None:
        self.strsize = strsize
        self.fd_paths = fd_paths


_read = _core.read_memory

# Memory as the recorder captured it (pysud.trace._records), while a record is decoded:
# address -> bytes (a C string ends with its NUL when complete), or False where the read
# failed.  None: decode from live memory.
snapshot: dict[int, bytes | bool] | None = None


def read(addr: int, n: int) -> bytes | None:
    snap = snapshot
    if snap is not None:
        d = snap.get(addr)
        if d is not None:
            if d is False or len(d) < n:  # type: ignore[arg-type]
                return None
            return d[:n]  # type: ignore[index]
    try:
        return _read(addr, n)
    except (OSError, ValueError, OverflowError):
        return None


def read_cstring(addr: int, limit: int) -> tuple[bytes, bool] | None:
    """(bytes, complete) of the NUL-terminated string at addr, at most limit bytes."""
    snap = snapshot
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
        data = read(addr + len(out), chunk)
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
    data = read(addr, n)
    if data is None:
        return ptr(addr)
    return quote(data, force_hex) + ("..." if size > n else "")


def cstr(ctx: Ctx, addr: int, limit: int | None = None) -> str:
    if not addr:
        return "NULL"
    lim = ctx.strsize if limit is None else limit
    got = read_cstring(addr, lim + 1)
    if got is None:
        return ptr(addr)
    data, complete = got
    if len(data) > lim or not complete:
        return quote(data[:lim]) + "..."
    return quote(data)


def path(ctx: Ctx, addr: int) -> str:
    return cstr(ctx, addr, 4095)


# ---------------------------------------------------------------- numbers and flags


def ptr(v: int) -> str:
    return "NULL" if not v else hex(v & MASK64)


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


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


def fd_text(ctx: Ctx, v: int) -> str:
    fd = s32(v)
    if ctx.fd_paths and fd >= 0:
        try:
            return f"{fd}<{os.readlink(f'/proc/self/fd/{fd}')}>"
        except OSError:
            pass
    return str(fd)


def open_flags(v: int) -> str:
    v &= 0xFFFFFFFF
    acc = X.OPEN_ACCMODE[v & 3]
    rest = flags(v & ~3, X.OPEN_FLAGS, "")
    return f"{acc}|{rest}" if rest else acc


def signame(v: int) -> str:
    if 32 <= v <= 64:  # the kernel's real-time range (glibc reserves the first two)
        return "SIGRTMIN" if v == 32 else f"SIGRT_{v - 32}"
    return X.SIGNALS.get(v, str(v))


def sigset(data: bytes) -> str:
    """strace's sigset: [HUP INT] or ~[...] when more than half are set."""
    bits = int.from_bytes(data, "little")
    nsig = len(data) * 8
    members = [s for s in range(1, nsig + 1) if bits >> (s - 1) & 1]
    inverted = len(members) > nsig // 2
    if inverted:
        members = [s for s in range(1, nsig + 1) if not bits >> (s - 1) & 1]
    names = [signame(s)[3:] if signame(s).startswith("SIG") else signame(s) for s in members]
    names = ["RTMIN" if n == "RTMIN" else n for n in names]
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
    out = f"{{si_signo={name}, si_code={cname}"
    pid, uid = struct.unpack_from("<iI", data, 16)
    if code <= 0 and code not in (-2, -4, -5):  # sent by a process: SI_USER, SI_QUEUE, SI_TKILL, ...
        out += f", si_pid={pid}, si_uid={uid}"
        if code == -1:
            val = struct.unpack_from("<q", data, 24)[0]
            out += f", si_int={s32(val)}, si_ptr={ptr(val)}"
    elif code == -2:  # SI_TIMER
        tid, overrun = struct.unpack_from("<ii", data, 16)
        val = struct.unpack_from("<q", data, 24)[0]
        out += f", si_timerid={tid:#x}, si_overrun={overrun}, si_int={s32(val)}, si_ptr={ptr(val)}"
    elif signo == 17 and code > 0:  # SIGCHLD
        status = struct.unpack_from("<i", data, 24)[0]
        utime, stime = struct.unpack_from("<qq", data, 32)
        st = str(status) if code == 1 else signame(status)
        out += f", si_pid={pid}, si_uid={uid}, si_status={st}, si_utime={utime}, si_stime={stime}"
    elif signo in _FAULTS and 0 < code < 0x80:
        out += f", si_addr={ptr(struct.unpack_from('<Q', data, 16)[0])}"
    return out + "}"


def rlim(v: int) -> str:
    if v == MASK64:
        return "RLIM64_INFINITY"
    if v > 1024 and v % 1024 == 0:
        return f"{v // 1024}*1024"
    return str(v)


def makedev(dev: int) -> str:
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
    minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
    return f"makedev({major:#x}, {minor:#x})"


def file_mode(m: int) -> str:
    kind = X.S_IFMT.get(m & 0o170000, "")
    return f"{kind}|{m & 0o7777:04o}" if kind else f"{m & 0o7777:04o}"


# ---------------------------------------------------------------- structs

_STAT = struct.Struct("<QQQIIIxxxxQqqq")  # dev ino nlink mode uid gid rdev size blksize blocks


def stat_struct(addr: int) -> str:
    data = read(addr, _STAT.size)
    return ptr(addr) if data is None else stat_text(data)


def stat_text(data: bytes) -> str:
    """A struct stat's bytes as strace prints them."""
    _dev, _ino, _nlink, m, _uid, _gid, rdev, size, _bs, _bl = _STAT.unpack_from(data)
    kind = m & 0o170000
    if kind in (0o20000, 0o60000):
        return f"{{st_mode={file_mode(m)}, st_rdev={makedev(rdev)}, ...}}"
    return f"{{st_mode={file_mode(m)}, st_size={size}, ...}}"


def statx_struct(addr: int) -> str:
    data = read(addr, 0x100)
    if data is None:
        return ptr(addr)
    mask, _blksize = struct.unpack_from("<II", data, 0)
    attrs = struct.unpack_from("<Q", data, 8)[0]
    m = struct.unpack_from("<H", data, 0x1C)[0]
    size = struct.unpack_from("<Q", data, 0x28)[0]
    return (
        f"{{stx_mask={flags(mask, X.STATX_MASK)}, stx_attributes={flags(attrs, ())}, "
        f"stx_mode={file_mode(m)}, stx_size={size}, ...}}"
    )


def timespec(addr: int) -> str:
    data = read(addr, 16)
    return ptr(addr) if data is None else timespec_text(data)


def timespec_text(data: bytes) -> str:
    sec, nsec = struct.unpack_from("<qq", data)
    return f"{{tv_sec={sec}, tv_nsec={nsec}}}"


def sockaddr(ctx: Ctx, addr: int, length: int) -> str:
    data = read(addr, min(max(length, 0), 128))
    if data is None or len(data) < 2:
        return ptr(addr)
    fam = int.from_bytes(data[:2], "little")
    name = X.AF.get(fam, str(fam))
    if fam == 1:  # AF_UNIX
        p = data[2:]
        if p[:1] == NUL:  # abstract
            return f"{{sa_family={name}, sun_path=@{quote(p[1:].rstrip(NUL))}}}"
        return f"{{sa_family={name}, sun_path={quote(p.split(NUL)[0])}}}"
    if fam == 2 and len(data) >= 8:  # AF_INET
        port = int.from_bytes(data[2:4], "big")
        ip = ".".join(str(b) for b in data[4:8])
        return f'{{sa_family={name}, sin_port=htons({port}), sin_addr=inet_addr("{ip}")}}'
    return f"{{sa_family={name}, sa_data={quote(data[2:])}}}"


def iovec(ctx: Ctx, addr: int, count: int, total: int | None) -> str:
    if not addr:
        return "NULL"
    data = read(addr, 16 * min(count, 1024))
    if data is None:
        return ptr(addr)
    parts = []
    left = total
    for i in range(min(count, 1024)):
        base, ln = struct.unpack_from("<QQ", data, 16 * i)
        if i >= ctx.strsize:
            parts.append("...")
            break
        if left is None:
            shown = buf(ctx, base, ln)
        else:
            shown = buf(ctx, base, min(ln, left)) if left > 0 else '""'
            left -= min(ln, left)
        parts.append(f"{{iov_base={shown}, iov_len={ln}}}")
    return "[" + ", ".join(parts) + "]"


def wait_status(st: int) -> str:
    if st & 0x7F == 0:
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(st >> 8) & 0xFF}}}]"
    if st & 0xFF == 0x7F:
        return f"[{{WIFSTOPPED(s) && WSTOPSIG(s) == {signame((st >> 8) & 0xFF)}}}]"
    core = " && WCOREDUMP(s)" if st & 0x80 else ""
    return f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {signame(st & 0x7F)}{core}}}]"


def sigaction(addr: int, size: int) -> str:
    data = read(addr, 24 + size)
    if data is None:
        return ptr(addr)
    handler, fl, restorer = struct.unpack_from("<QQQ", data)
    h = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler, hex(handler))
    out = f"{{sa_handler={h}, sa_mask={sigset(data[24:])}, sa_flags={flags(fl, X.SA_FLAGS)}"
    if fl & X.SA_RESTORER:
        out += f", sa_restorer={hex(restorer)}"
    return out + "}"


# ---------------------------------------------------------------- kinds

ENTRY, EXIT = 0, 1


def _arg(fn: Callable[[Ctx, int], str]) -> Callable[[int], Decoder]:
    def make(i: int) -> Decoder:
        return lambda ctx, call, a, r: fn(ctx, a[i])

    return make


def _plain(fn: Callable[[int], str]) -> Callable[[int], Decoder]:
    def make(i: int) -> Decoder:
        return lambda ctx, call, a, r: fn(a[i])

    return make


def _failed(r: int) -> bool:
    return -4096 < r < 0


# kinds that are a function of the register alone: name -> function(value) -> text
PLAIN: dict[str, Callable[[int], str]] = {}


# kind name -> (phase, factory(index, param) -> decoder)
def _kinds() -> dict[str, tuple[int, Callable[[int, str], Decoder]]]:
    k: dict[str, tuple[int, Callable[[int, str], Decoder]]] = {}

    def entry(name: str, plain: Callable[[int], str]) -> None:
        k[name] = (ENTRY, lambda i, p: _plain(plain)(i))
        PLAIN[name] = plain

    entry("d", lambda v: str(s32(v)))
    entry("ld", lambda v: str(s64(v)))
    entry("u", lambda v: str(v & MASK64))
    entry("x", lambda v: hex(v & MASK64) if v else "0")
    entry("p", ptr)
    entry("o", mode)
    entry("open_flags", open_flags)
    entry("prot", lambda v: flags(v, X.PROT, "PROT_NONE"))
    entry(
        "mmap_flags",
        lambda v: "|".join(
            [X.MAP_TYPE.get(v & 0xF, hex(v & 0xF))] + ([flags(v & ~0xF, X.MAP_FLAGS)] if v & ~0xF else [])
        ),
    )
    entry("at_flags", lambda v: flags(v & 0xFFFFFFFF, X.AT_FLAGS))
    entry(
        "statx_flags",
        lambda v: "|".join(
            ["AT_STATX_SYNC_AS_STAT"] + ([flags(v & ~0x6000 & 0xFFFFFFFF, X.AT_FLAGS)] if v & ~0x6000 else [])
        ),
    )
    entry("statx_mask", lambda v: flags(v & 0xFFFFFFFF, X.STATX_MASK))
    entry("access", lambda v: flags(v, X.ACCESS, "F_OK"))
    entry("grnd", lambda v: flags(v, X.GRND))
    entry(
        "clone_flags",
        lambda v: (
            (
                flags(v & ~0xFF, X.CLONE, "")
                + ("|" if v & ~0xFF and v & 0xFF else "")
                + (signame(v & 0xFF) if v & 0xFF else "")
            )
            or "0"
        ),
    )
    entry("seek", lambda v: X.SEEK.get(v, str(v)))
    entry("fadv", lambda v: X.FADV.get(v, str(v)))
    entry("arch_prctl", lambda v: xlat(v, X.ARCH_PRCTL, "ARCH_???"))
    entry("rlimit", lambda v: xlat(v, X.RLIMIT, "RLIMIT_???"))
    entry("signal", lambda v: signame(v))
    entry("sighow", lambda v: xlat(v, X.SIGPROCMASK_HOW, "SIG_???"))
    entry("wait_options", lambda v: flags(v & 0xFFFFFFFF, X.WAIT_OPTIONS))
    entry("pipe_flags", lambda v: flags(v, X.PIPE_FLAGS))
    entry("dup3_flags", lambda v: flags(v, X.DUP3_FLAGS))
    entry("ioctl", lambda v: X.IOCTL.get(v & 0xFFFFFFFF, hex(v & 0xFFFFFFFF)))
    entry("fcntl", lambda v: X.FCNTL.get(v, str(v)))
    entry("clock", lambda v: X.CLOCKS.get(v, str(v)))
    entry("af", lambda v: X.AF.get(v, str(v)))
    entry(
        "socktype",
        lambda v: "|".join(
            [X.SOCK_TYPE.get(v & 0xF, hex(v & 0xF))] + ([flags(v & ~0xF, X.SOCK_FLAGS)] if v & ~0xF else [])
        ),
    )
    k["fd"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: fd_text(ctx, a[i]))
    k["dirfd"] = (
        ENTRY,
        lambda i, p: lambda ctx, call, a, r: "AT_FDCWD" if s32(a[i]) == X.AT_FDCWD else fd_text(ctx, a[i]),
    )
    k["path"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: path(ctx, a[i]))
    k["str"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: cstr(ctx, a[i]))
    k["ibuf"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: buf(ctx, a[i], a[int(p)]))

    def obuf(i: int, p: str) -> Decoder:
        hexed = p.endswith("h")
        p = p.rstrip("h")

        def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
            if _failed(r):
                return ptr(a[i])
            n = r if p == "R" else a[int(p)]
            return buf(ctx, a[i], n, hexed)

        return dec

    k["obuf"] = (EXIT, obuf)

    def out(fn: Callable[[Ctx, tuple[int, ...], int], str]) -> Callable[[int, str], Decoder]:
        def make(i: int, p: str) -> Decoder:
            def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
                if _failed(r) or not a[i]:
                    return ptr(a[i])
                return fn(ctx, a, i)

            return dec

        return make

    k["stat"] = (EXIT, out(lambda ctx, a, i: stat_struct(a[i])))
    k["statx"] = (EXIT, out(lambda ctx, a, i: statx_struct(a[i])))
    k["ostr"] = (EXIT, out(lambda ctx, a, i: cstr(ctx, a[i])))
    k["opath"] = (EXIT, out(lambda ctx, a, i: path(ctx, a[i])))
    k["sysinfo"] = (EXIT, out(lambda ctx, a, i: _sysinfo(a[i])))
    k["pipe"] = (
        EXIT,
        out(lambda ctx, a, i: "[{}, {}]".format(*struct.unpack("<ii", read(a[i], 8) or bytes(8)))),
    )
    k["orlim"] = (EXIT, out(lambda ctx, a, i: _rlimit(a[i])))
    k["irlim"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: _rlimit(a[i]) if a[i] else "NULL")
    k["osigset"] = (EXIT, out(lambda ctx, a, i: _sigset_at(a[i], a[3])))
    k["isigset"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: _sigset_at(a[i], a[3]) if a[i] else "NULL")
    k["isigaction"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: sigaction(a[i], a[3]) if a[i] else "NULL")
    k["osigaction"] = (EXIT, out(lambda ctx, a, i: sigaction(a[i], a[3])))
    k["itimespec"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: timespec(a[i]) if a[i] else "NULL")
    k["otimespec"] = (EXIT, out(lambda ctx, a, i: timespec(a[i])))
    k["uname"] = (EXIT, out(lambda ctx, a, i: _uname(ctx, a[i])))
    k["wstatus"] = (
        EXIT,
        out(lambda ctx, a, i: wait_status(struct.unpack("<i", read(a[i], 4) or bytes(4))[0])),
    )
    k["isockaddr"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: sockaddr(ctx, a[i], a[int(p)]))
    k["iiov"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: iovec(ctx, a[i], a[int(p)], None))

    def oiov(i: int, p: str) -> Decoder:
        return lambda ctx, call, a, r: ptr(a[i]) if _failed(r) else iovec(ctx, a[i], a[int(p)], r)

    k["oiov"] = (EXIT, oiov)

    def dents(i: int, p: str) -> Decoder:
        def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
            if _failed(r):
                return ptr(a[i])
            data = read(a[i], r) or b""
            n, off = 0, 0
            while off + 19 <= len(data):
                reclen = struct.unpack_from("<H", data, off + 16)[0]
                if not reclen:
                    break
                off += reclen
                n += 1
            return f"{ptr(a[i])} /* {n} entries */"

        return dec

    k["dents"] = (EXIT, dents)

    def argv(i: int, p: str) -> Decoder:
        def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
            items: list[str] = []
            vec = a[i]
            if not vec:
                return "NULL"
            while True:
                word = read(vec, 8)
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

    k["argv"] = (ENTRY, argv)

    def envp(i: int, p: str) -> Decoder:
        def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
            n, vec = 0, a[i]
            while vec:
                word = read(vec + 8 * n, 8)
                if word is None or not int.from_bytes(word, "little"):
                    break
                n += 1
            return f"{ptr(a[i])} /* {n} vars */"

        return dec

    k["envp"] = (ENTRY, envp)

    def cpuset(i: int, p: str) -> Decoder:
        def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
            data = None if _failed(r) else read(a[i], r)
            if data is None:
                return ptr(a[i])
            bits = int.from_bytes(data, "little")
            return "[" + " ".join(str(c) for c in range(len(data) * 8) if bits >> c & 1) + "]"

        return dec

    k["cpuset"] = (EXIT, cpuset)
    k["pollfds"] = (ENTRY, lambda i, p: lambda ctx, call, a, r: _pollfds(a[i], a[1], "events"))
    k["prctl"] = (EXIT, lambda i, p: lambda ctx, call, a, r: prctl_text(ctx, a, r))
    return k


def _pollfds(addr: int, n: int, field: str, only_set: bool = False) -> str:
    data = read(addr, 8 * min(n, 1024))
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


def result_suffix(name: str, a: tuple[int, ...], r: int) -> str:
    """What strace adds after some results: poll's revents."""
    if name in ("poll", "ppoll") and r > 0:
        return f" ({_pollfds(a[0], a[1], 'revents', True)})"
    return ""


_SYSINFO = struct.Struct("<q3Q6QHxxxxxxQQI")


def _sysinfo(addr: int) -> str:
    data = read(addr, _SYSINFO.size)
    if data is None:
        return ptr(addr)
    up, l1, l5, l15, tr, fr, sr, br, ts, fs, procs, th, fh, unit = _SYSINFO.unpack(data)
    return (
        f"{{uptime={up}, loads=[{l1}, {l5}, {l15}], totalram={tr}, freeram={fr}, sharedram={sr}, "
        f"bufferram={br}, totalswap={ts}, freeswap={fs}, procs={procs}, totalhigh={th}, freehigh={fh}, "
        f"mem_unit={unit}}}"
    )


def _rlimit(addr: int) -> str:
    data = read(addr, 16)
    if data is None:
        return ptr(addr)
    cur, mx = struct.unpack("<QQ", data)
    return f"{{rlim_cur={rlim(cur)}, rlim_max={rlim(mx)}}}"


def _sigset_at(addr: int, size: int) -> str:
    data = read(addr, min(size, 128))
    return ptr(addr) if data is None else sigset(data)


def _uname(ctx: Ctx, addr: int) -> str:
    data = read(addr, 65 * 2)
    if data is None:
        return ptr(addr)
    sysname = data[:65].split(b"\0")[0]
    node = data[65:130].split(b"\0")[0]
    return f"{{sysname={quote(sysname)}, nodename={quote(node)}, ...}}"


KINDS = _kinds()

# Argument kinds per syscall (x86-64), strace's layout. "kind:param": param names another
# argument (a length) or R (the result).
SPECS: dict[str, tuple[str, ...]] = {
    "read": ("fd", "obuf:R", "u"),
    "write": ("fd", "ibuf:2", "u"),
    "pread64": ("fd", "obuf:R", "u", "ld"),
    "pwrite64": ("fd", "ibuf:2", "u", "ld"),
    "readv": ("fd", "oiov:2", "u"),
    "writev": ("fd", "iiov:2", "u"),
    "open": ("path", "open_flags", "o"),
    "openat": ("dirfd", "path", "open_flags", "o"),
    "creat": ("path", "o"),
    "close": ("fd",),
    "stat": ("path", "stat"),
    "lstat": ("path", "stat"),
    "fstat": ("fd", "stat"),
    "newfstatat": ("dirfd", "path", "stat", "at_flags"),
    "statx": ("dirfd", "path", "statx_flags", "statx_mask", "statx"),
    "statfs": ("path", "p"),
    "fstatfs": ("fd", "p"),
    "lseek": ("fd", "ld", "seek"),
    "mmap": ("p", "u", "prot", "mmap_flags", "fd", "x"),
    "mprotect": ("p", "u", "prot"),
    "munmap": ("p", "u"),
    "brk": ("p",),
    "rt_sigaction": ("signal", "isigaction", "osigaction", "u"),
    "rt_sigprocmask": ("sighow", "isigset", "osigset", "u"),
    "ioctl": ("fd", "ioctl", "p"),
    "access": ("path", "access"),
    "faccessat": ("dirfd", "path", "access"),
    "faccessat2": ("dirfd", "path", "access", "at_flags"),
    "pipe": ("pipe",),
    "pipe2": ("pipe", "pipe_flags"),
    "dup": ("fd",),
    "dup2": ("fd", "fd"),
    "dup3": ("fd", "fd", "dup3_flags"),
    "nanosleep": ("itimespec", "p"),
    "clock_nanosleep": ("clock", "d", "itimespec", "p"),
    "clock_gettime": ("clock", "otimespec"),
    "getpid": (),
    "sendfile": ("fd", "fd", "p", "u"),
    "socket": ("af", "socktype", "d"),
    "connect": ("fd", "isockaddr:2", "u"),
    "bind": ("fd", "isockaddr:2", "u"),
    "clone": ("clone_flags", "p", "p", "p", "x"),  # laid out by _clone below
    "execve": ("path", "argv", "envp"),
    "exit": ("d",),
    "exit_group": ("d",),
    "wait4": ("d", "wstatus", "wait_options", "p"),
    "kill": ("d", "signal"),
    "tgkill": ("d", "d", "signal"),
    "uname": ("uname",),
    "fcntl": ("fd", "fcntl", "x"),
    "getdents64": ("fd", "dents", "u"),
    "getcwd": ("opath", "u"),
    "sysinfo": ("sysinfo",),
    "chdir": ("path",),
    "fchdir": ("fd",),
    "rename": ("path", "path"),
    "renameat": ("dirfd", "path", "dirfd", "path"),
    "renameat2": ("dirfd", "path", "dirfd", "path", "x"),
    "mkdir": ("path", "o"),
    "mkdirat": ("dirfd", "path", "o"),
    "rmdir": ("path",),
    "unlink": ("path",),
    "unlinkat": ("dirfd", "path", "at_flags"),
    "readlink": ("path", "obuf:R", "u"),
    "readlinkat": ("dirfd", "path", "obuf:R", "u"),
    "chmod": ("path", "o"),
    "fchmod": ("fd", "o"),
    "fchmodat": ("dirfd", "path", "o"),
    "umask": ("o",),
    "arch_prctl": ("arch_prctl", "p"),
    "set_tid_address": ("p",),
    "set_robust_list": ("p", "u"),
    "prlimit64": ("d", "rlimit", "irlim", "orlim"),
    "getrlimit": ("rlimit", "orlim"),
    "setrlimit": ("rlimit", "irlim"),
    "getrandom": ("obuf:Rh", "u", "grnd"),
    "fadvise64": ("fd", "ld", "u", "fadv"),
    "ftruncate": ("fd", "ld"),
    "truncate": ("path", "ld"),
    "fsync": ("fd",),
    "fdatasync": ("fd",),
    "utimensat": ("dirfd", "path", "p", "at_flags"),
    "getxattr": ("path", "str", "p", "u"),
    "lgetxattr": ("path", "str", "p", "u"),
    "fgetxattr": ("fd", "str", "p", "u"),
    "mremap": ("p", "u", "u", "x", "p"),
    "madvise": ("p", "u", "d"),
    "futex": ("p", "d", "d", "p", "p", "d"),
    "sched_yield": (),
    "poll": ("pollfds", "u", "d"),
    "sched_getaffinity": ("d", "u", "cpuset"),
    "prctl": ("prctl",),  # the whole argument list depends on the option
}

# Calls whose result strace prints in octal.
OCT_RESULT = frozenset({"umask"})
# Calls whose result strace prints in hex (addresses).
HEX_RESULT = frozenset({"mmap", "brk", "mremap", "shmat"})
# Calls whose result is a new descriptor (-y decorates it).
FD_RESULT = frozenset(
    {
        "open",
        "openat",
        "creat",
        "dup",
        "dup2",
        "dup3",
        "socket",
        "accept",
        "accept4",
        "epoll_create1",
        "eventfd2",
        "memfd_create",
        "timerfd_create",
        "signalfd4",
        "pidfd_open",
        "inotify_init1",
    }
)


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
    if name in ("fd", "dfd", "oldfd", "newfd", "out_fd", "in_fd") and "int" in t:
        return "dirfd" if name == "dfd" else "fd"
    if t == "umode_t" or name == "mode":
        return "o"
    if t in ("int", "pid_t", "uid_t", "gid_t", "clockid_t", "key_t", "timer_t", "mqd_t", "key_serial_t"):
        return "d"
    if t in ("long", "loff_t", "off_t", "ssize_t"):
        return "ld"
    if "unsigned" in t or t in (
        "size_t",
        "u32",
        "u64",
        "__u32",
        "__u64",
        "unsigned",
        "qid_t",
        "aio_context_t",
    ):
        return "u"
    return "x"


# What the recorder (core, sud_trace.c) must capture for a kind to be decoded from its record
# instead of live memory: kind -> ops(index, param, strsize), each op (phase, how, arg,
# lenarg, scale, plus, max) in the core's terms.  A kind absent here is decoded live, so its
# call goes through Python.
CAP_ENTRY, CAP_EXIT = 1, 2
CSTR, ARGLEN, RETLEN, FIXED = 1, 2, 3, 4
CapOp = tuple[int, int, int, int, int, int, int]
PATH_MAX = 4096


def _captures() -> dict[str, Callable[[int, str, int], list[CapOp]]]:
    c: dict[str, Callable[[int, str, int], list[CapOp]]] = {}
    for name, (phase, _) in KINDS.items():
        if phase == ENTRY and name not in (
            "path", "str", "ibuf", "irlim", "isigset", "isigaction", "itimespec", "isockaddr",
            "iiov", "argv", "envp", "pollfds",
        ):  # fmt: skip
            c[name] = lambda i, p, s: []  # plain values: the registers say it all

    def fixed(phase: int, size: int) -> Callable[[int, str, int], list[CapOp]]:
        return lambda i, p, s: [(phase, FIXED, i, 0, 0, size, size)]

    c["path"] = lambda i, p, s: [(CAP_ENTRY, CSTR, i, 0, 0, 0, PATH_MAX)]
    c["str"] = lambda i, p, s: [(CAP_ENTRY, CSTR, i, 0, 0, 0, s + 1)]
    c["ostr"] = lambda i, p, s: [(CAP_EXIT, CSTR, i, 0, 0, 0, s + 1)]
    c["opath"] = lambda i, p, s: [(CAP_EXIT, CSTR, i, 0, 0, 0, PATH_MAX)]
    c["ibuf"] = lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, int(p), 1, 0, s)]

    def obuf(i: int, p: str, s: int) -> list[CapOp]:
        p = p.rstrip("h")
        if p == "R":
            return [(CAP_EXIT, RETLEN, i, 0, 0, 0, s)]
        return [(CAP_EXIT, ARGLEN, i, int(p), 1, 0, s)]

    c["obuf"] = obuf
    c["stat"] = fixed(CAP_EXIT, _STAT.size)
    c["statx"] = fixed(CAP_EXIT, 0x100)
    c["sysinfo"] = fixed(CAP_EXIT, _SYSINFO.size)
    c["pipe"] = fixed(CAP_EXIT, 8)
    c["orlim"] = fixed(CAP_EXIT, 16)
    c["irlim"] = fixed(CAP_ENTRY, 16)
    c["itimespec"] = fixed(CAP_ENTRY, 16)
    c["otimespec"] = fixed(CAP_EXIT, 16)
    c["uname"] = fixed(CAP_EXIT, 130)
    c["wstatus"] = fixed(CAP_EXIT, 4)
    c["osigset"] = lambda i, p, s: [(CAP_EXIT, ARGLEN, i, 3, 1, 0, 128)]
    c["isigset"] = lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 3, 1, 0, 128)]
    c["isigaction"] = lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 3, 1, 24, 152)]
    c["osigaction"] = lambda i, p, s: [(CAP_EXIT, ARGLEN, i, 3, 1, 24, 152)]
    c["isockaddr"] = lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, int(p), 1, 0, 128)]
    c["cpuset"] = lambda i, p, s: [(CAP_EXIT, RETLEN, i, 0, 0, 0, 1024)]
    c["pollfds"] = lambda i, p, s: [(CAP_ENTRY, ARGLEN, i, 1, 8, 0, 8192)]
    return c


CAPTURES = _captures()
# Read after the call by result_suffix (poll's revents).
EXTRA_EXIT_CAPTURES: dict[str, list[CapOp]] = {
    "poll": [(CAP_EXIT, ARGLEN, 0, 1, 8, 0, 8192)],
    "ppoll": [(CAP_EXIT, ARGLEN, 0, 1, 8, 0, 8192)],
}


class CallDecoder:
    """How one syscall number is printed: its name, entry and exit decoders, result style."""

    __slots__ = (
        "entry",
        "exit",
        "fd_result",
        "hex_result",
        "layout",
        "name",
        "nargs",
        "oct_result",
        "resume_at",
        "spec",
    )

    def __init__(self, nr: int) -> None:
        self.name = X86_64.name_of(nr)
        spec = SPECS.get(self.name)
        if spec is None:
            proto = X86_64.prototypes.get(nr)
            if proto is not None:
                spec = tuple(_generic_kind(t, n) for t, n in proto)
            else:  # no decoder and no prototype: six arguments in hex, as strace's printargs
                spec = ("x",) * 6
        self.nargs = len(spec)
        self.spec = spec
        entry: list[tuple[int, Decoder]] = []
        exit_: list[tuple[int, Decoder]] = []
        for i, kind in enumerate(spec):
            kname, _, param = kind.partition(":")
            phase, factory = KINDS[kname]
            (entry if phase == ENTRY else exit_).append((i, factory(i, param)))
        self.entry = tuple(entry)
        self.exit = tuple(exit_)
        # strace prints the arguments before the first out-argument when the call starts;
        # an unfinished line ends there and its resumed line carries the rest
        self.resume_at = min((i for i, _ in exit_), default=self.nargs)
        self.hex_result = self.name in HEX_RESULT
        self.fd_result = self.name in FD_RESULT
        self.oct_result = self.name in OCT_RESULT
        self.layout: Callable[[list[str], tuple[int, ...]], list[str]] | None = LAYOUTS.get(self.name)

    def decode_entry(self, ctx: Ctx, call: Any, args: tuple[int, ...]) -> list[str]:
        out = [""] * self.nargs
        for i, fn in self.entry:
            out[i] = fn(ctx, call, args, 0) or ""
        return out

    def captures(self, strsize: int) -> list[CapOp] | None:
        """What the recorder captures so this call decodes from its record; None: decode live."""
        ops: list[CapOp] = []
        for i, kind in enumerate(self.spec):
            kname, _, param = kind.partition(":")
            make = CAPTURES.get(kname)
            if make is None:
                return None
            ops += make(i, param, strsize)
        ops += EXTRA_EXIT_CAPTURES.get(self.name, [])
        return ops if len(ops) <= 4 and self.name not in LAYOUTS_LIVE else None

    def entry_text(self, out: list[str], args: tuple[int, ...]) -> str:
        """What strace prints when the call starts: up to its first out-argument."""
        if self.resume_at >= self.nargs:
            parts = self.layout(out, args) if self.layout is not None else out
            return f"{self.name}(" + ", ".join(parts)
        head = ", ".join(out[: self.resume_at])
        return f"{self.name}({head}, " if self.resume_at else f"{self.name}("

    def decode_exit(self, ctx: Ctx, call: Any, args: tuple[int, ...], res: int, out: list[str]) -> str:
        for i, fn in self.exit:
            out[i] = fn(ctx, call, args, res) or ""
        if self.layout is not None:
            out = self.layout(out, args)
        return ", ".join(out)


def _openat_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    return out if a[2] & 0o20100100 else out[:3]  # mode only with O_CREAT or O_TMPFILE


def _open_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    return out if a[1] & 0o20100100 else out[:2]


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


def _fcntl_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    cmd = a[1]
    if cmd in (1, 3, 9, 1032, 1034):  # F_GETFD F_GETFL F_GETOWN F_GETPIPE_SZ F_GET_SEALS
        return out[:2]
    if cmd == 2:
        return [*out[:2], "FD_CLOEXEC" if a[2] == 1 else str(a[2])]
    if cmd == 4:
        return [*out[:2], open_flags(a[2])]
    if cmd in (0, 1030, 8, 1031):
        return [*out[:2], str(s32(a[2]))]
    return out


# Calls printed live only: their layout depends on more than the arguments' values.
LAYOUTS_LIVE = frozenset({"clone"})

LAYOUTS: dict[str, Callable[[list[str], tuple[int, ...]], list[str]]] = {
    "openat": _openat_layout,
    "open": _open_layout,
    "clone": _clone_layout,
    "fcntl": _fcntl_layout,
}


def prctl_text(ctx: Ctx, a: tuple[int, ...], r: int) -> str:
    opt = a[0] & 0xFFFFFFFF
    name = X.PRCTL.get(opt)
    if opt == 16:  # PR_GET_NAME
        return f"{name}, {ptr(a[1]) if -4096 < r < 0 else cstr(ctx, a[1], 15)}"
    if opt == 15:
        return f"{name}, {cstr(ctx, a[1], 15)}"
    if name is None:
        return f"{hex(opt)} /* PR_??? */, " + ", ".join(hex(x) for x in a[1:5])
    return f"{name}, " + ", ".join(hex(x) for x in a[1:5])


def error_text(res: int) -> str:
    e = -res
    if e in X.KERNEL_ERRNO:
        name, msg = X.KERNEL_ERRNO[e]
        return f"? {name} ({msg})"
    name = X.ERRNO_NAMES.get(e, str(e))
    return f"-1 {name} ({os.strerror(e)})"
