"""Sockets: socket, bind/connect/accept, send/recv, msghdr, socket options (strace's net.c,
sockaddr.c, msghdr.c)."""

from __future__ import annotations

import _socket  # socket.py's C half: the same constants, as ints (socket.py makes enums of them: slow)
import struct
from typing import Any

from .. import _xlat as X
from ._base import BOTH, ENTRY, NUL, Ctx, Decoder, buf, failed, flags, kind, ptr, quote, s32, syscall
from .fcntl import fd_pair
from .io import iovec

MSG_FLAGS: X.Flags = tuple(
    (v, k)
    for k, v in sorted(vars(_socket).items(), key=lambda kv: kv[1] if isinstance(kv[1], int) else 0)
    if k.startswith("MSG_") and isinstance(v, int) and v and v & (v - 1) == 0 and k != "MSG_EOF"
)
SOL = {0: "SOL_IP", 1: "SOL_SOCKET", 6: "SOL_TCP", 17: "SOL_UDP", 41: "SOL_IPV6"}
PROTO = {0: "IPPROTO_IP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 1: "IPPROTO_ICMP", 58: "IPPROTO_ICMPV6"}
SHUT = {0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"}


def _names(prefix: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for k, v in vars(_socket).items():
        if k.startswith(prefix) and isinstance(v, int):
            out.setdefault(v, k)
    return out


OPTNAMES = {1: _names("SO_"), 6: _names("TCP_"), 0: _names("IP_"), 41: _names("IPV6_")}
OPTNAMES[1].update({15: "SO_REUSEPORT", 2: "SO_REUSEADDR", 7: "SO_SNDBUF", 8: "SO_RCVBUF", 3: "SO_TYPE"})


def socktype(v: int) -> str:
    t = X.SOCK_TYPE.get(v & 0xF, hex(v & 0xF))
    return f"{t}|{flags(v & ~0xF, X.SOCK_FLAGS)}" if v & ~0xF else t


def sockaddr(ctx: Ctx, addr: int, length: int) -> str:
    if not addr:
        return "NULL"
    data = ctx.read(addr, min(max(length, 0), 128))
    if data is None or len(data) < 2:
        return ptr(addr)
    fam = int.from_bytes(data[:2], "little")
    name = X.AF.get(fam, str(fam))
    if fam == 1:  # AF_UNIX
        p = data[2:]
        if not p:
            return f"{{sa_family={name}}}"
        if p[:1] == NUL:  # abstract
            return f"{{sa_family={name}, sun_path=@{quote(p[1:].rstrip(NUL))}}}"
        return f"{{sa_family={name}, sun_path={quote(p.split(NUL)[0])}}}"
    if fam == 2 and len(data) >= 8:  # AF_INET
        port = int.from_bytes(data[2:4], "big")
        ip = ".".join(str(b) for b in data[4:8])
        return f'{{sa_family={name}, sin_port=htons({port}), sin_addr=inet_addr("{ip}")}}'
    if fam == 10 and len(data) >= 24:  # AF_INET6
        port = int.from_bytes(data[2:4], "big")
        flow, scope = (
            struct.unpack_from("<I", data, 4)[0],
            struct.unpack_from("<I", data, 24)[0] if len(data) >= 28 else 0,
        )
        ip = _socket.inet_ntop(_socket.AF_INET6, data[8:24])
        return (
            f"{{sa_family={name}, sin6_port=htons({port}), sin6_flowinfo=htonl({_socket.ntohl(flow)}), "
            f'inet_pton(AF_INET6, "{ip}", &sin6_addr), sin6_scope_id={scope}}}'
        )
    return f"{{sa_family={name}, sa_data={quote(data[2:])}}}"


def _u32(ctx: Ctx, addr: int) -> int | None:
    d = ctx.read(addr, 4)
    return None if d is None else struct.unpack("<I", d)[0]


# socklen_t in/out: [128 => 2], or [16] when the call left it as it was
def _socklen(i: int, p: str) -> tuple[Decoder, Any]:
    def entry(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        v = _u32(ctx, a[i]) if a[i] else None
        return "" if v is None else str(v)

    def exit_(ctx: Ctx, call: Any, a: tuple[int, ...], r: int, before: str) -> str:
        if not a[i]:
            return "NULL"
        if not before:
            return ptr(a[i])
        v = None if failed(r) else _u32(ctx, a[i])
        return f"[{before}]" if v is None or str(v) == before else f"[{before} => {v}]"

    return entry, exit_


def _osockaddr(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if failed(r) or not a[i]:
            return ptr(a[i])
        n = _u32(ctx, a[int(p)]) if a[int(p)] else 0
        return sockaddr(ctx, a[i], n or 0)

    return dec


def _cmsgs(ctx: Ctx, addr: int, size: int) -> str:
    data = ctx.read(addr, min(size, 4096))
    if data is None:
        return ptr(addr)
    items, off = [], 0
    while off + 16 <= len(data):
        ln, level, typ = struct.unpack_from("<Qii", data, off)
        if ln < 16:
            break
        lv = SOL.get(level, str(level))
        body = data[off + 16 : off + ln]
        if level == 1 and typ == 1:  # SCM_RIGHTS
            fds = struct.unpack(f"<{len(body) // 4}i", body[: len(body) // 4 * 4])
            shown = ", ".join(map(str, fds))
            items.append(f"{{cmsg_len={ln}, cmsg_level={lv}, cmsg_type=SCM_RIGHTS, cmsg_data=[{shown}]}}")
        elif level == 1 and typ == 2 and len(body) >= 12:  # SCM_CREDENTIALS
            pid, uid, gid = struct.unpack_from("<iII", body)
            items.append(
                f"{{cmsg_len={ln}, cmsg_level={lv}, cmsg_type=SCM_CREDENTIALS, "
                f"cmsg_data={{pid={pid}, uid={uid}, gid={gid}}}}}"
            )
        else:
            items.append(f"{{cmsg_len={ln}, cmsg_level={lv}, cmsg_type={typ:#x}}}")
        off += (ln + 7) & ~7
    return "[" + ", ".join(items) + "]"


_MSGHDR = struct.Struct("<QIxxxxQQQQi")  # name namelen iov iovlen control controllen flags


def msghdr(ctx: Ctx, addr: int, total: int | None, namelen_before: int | None = None) -> str:
    data = ctx.read(addr, _MSGHDR.size + 4)
    if data is None:
        return ptr(addr)
    name, namelen, iov, iovlen, control, controllen, fl = _MSGHDR.unpack_from(data)
    parts = []
    if name and namelen:
        parts.append(f"msg_name={sockaddr(ctx, name, namelen)}")
    else:
        parts.append(f"msg_name={ptr(name)}")
    if namelen_before is not None and namelen_before != namelen:
        parts.append(f"msg_namelen={namelen_before} => {namelen}")
    else:
        parts.append(f"msg_namelen={namelen}")
    parts.append(f"msg_iov={iovec(ctx, iov, iovlen, total)}")
    parts.append(f"msg_iovlen={iovlen}")
    if controllen:
        parts.append(f"msg_control={_cmsgs(ctx, control, controllen)}")
    parts.append(f"msg_controllen={controllen}")
    parts.append(f"msg_flags={flags(fl & 0xFFFFFFFF, MSG_FLAGS)}")
    return "{" + ", ".join(parts) + "}"


def _omsghdr(i: int, p: str) -> tuple[Decoder, Any]:
    def entry(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        d = ctx.read(a[i] + 8, 4) if a[i] else None
        return "" if d is None else str(struct.unpack("<I", d)[0])

    def exit_(ctx: Ctx, call: Any, a: tuple[int, ...], r: int, before: str) -> str:
        if failed(r) or not a[i]:
            return ptr(a[i])
        return msghdr(ctx, a[i], r, int(before) if before else None)

    return entry, exit_


def _optval(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        if not a[i]:
            return "NULL"
        n = a[4] if p == "in" else (_u32(ctx, a[4]) if a[4] else 0) or 0
        if p == "out" and failed(r):
            return ptr(a[i])
        if n == 4:
            d = ctx.read(a[i], 4)
            return ptr(a[i]) if d is None else f"[{struct.unpack('<i', d)[0]}]"
        return buf(ctx, a[i], n, True)

    return dec


def _socket_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    if a[0] in (2, 10):  # AF_INET, AF_INET6: the protocol by name
        return [*out[:2], PROTO.get(a[2], str(a[2]))]
    return out


kind("af", plain=lambda v: X.AF.get(v, str(v)))
kind("socktype", plain=socktype)
kind("sock_flags", plain=lambda v: flags(v, X.SOCK_FLAGS))
kind("msg_flags", plain=lambda v: flags(v & 0xFFFFFFFF, MSG_FLAGS))
kind("sol", plain=lambda v: X.xlat_or(SOL, s32(v), "SOL_???"))
kind("shut", plain=lambda v: X.xlat_or(SHUT, v, "SHUT_???"))
kind("isockaddr", make=lambda i, p: lambda ctx, call, a, r: sockaddr(ctx, a[i], a[int(p)]))
kind("osockaddr", 1, make=_osockaddr)
kind("socklen", BOTH, make=_socklen)
kind("imsghdr", make=lambda i, p: lambda ctx, call, a, r: msghdr(ctx, a[i], None) if a[i] else "NULL")
kind("omsghdr", BOTH, make=_omsghdr)
kind("ioptval", make=lambda i, p: _optval(i, "in"))
kind("ooptval", 1, make=lambda i, p: _optval(i, "out"))
kind("sockpair", 1, make=lambda i, p: lambda ctx, call, a, r: _pair(ctx, a[i], r))


def _pair(ctx: Ctx, addr: int, r: int) -> str:
    d = None if failed(r) else ctx.read(addr, 8)
    return ptr(addr) if d is None else fd_pair(ctx, d)


def _optname(out: list[str], a: tuple[int, ...]) -> list[str]:
    names = OPTNAMES.get(s32(a[1]), {})
    return [out[0], out[1], names.get(s32(a[2]), str(s32(a[2]))), *out[3:]]


syscall("socket", "af", "socktype", "d", layout=_socket_layout, ret="fd")
syscall("socketpair", "af", "socktype", "d", "sockpair", layout=lambda o, a: _socket_layout(o[:3], a) + o[3:])
syscall("bind", "fd", "isockaddr:2", "u")
syscall("connect", "fd", "isockaddr:2", "u")
syscall("listen", "fd", "d")
syscall("accept", "fd", "osockaddr:2", "socklen", ret="fd")
syscall("accept4", "fd", "osockaddr:2", "socklen", "sock_flags", ret="fd")
syscall("getsockname", "fd", "osockaddr:2", "socklen")
syscall("getpeername", "fd", "osockaddr:2", "socklen")
syscall("sendto", "fd", "ibuf:2", "u", "msg_flags", "isockaddr:5", "u")
syscall("recvfrom", "fd", "obuf:R", "u", "msg_flags", "osockaddr:5", "socklen")
syscall("sendmsg", "fd", "imsghdr", "msg_flags")
syscall("recvmsg", "fd", "omsghdr", "msg_flags")
syscall("shutdown", "fd", "shut")
syscall("setsockopt", "fd", "sol", "d", "ioptval", "u", layout=_optname)
syscall("getsockopt", "fd", "sol", "d", "ooptval", "socklen", layout=_optname)
_ = ENTRY
