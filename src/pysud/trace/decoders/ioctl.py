"""ioctl: the request by name and, for terminals and a few generic requests, the argument as
strace's term.c and ioctl.c print it."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import CAP_ENTRY, CAP_EXIT, FIXED, Ctx, Decoder, failed, flags, kind, ptr, syscall

TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TIOCGPGRP, TIOCSPGRP, TIOCGWINSZ, TIOCSWINSZ = 0x540F, 0x5410, 0x5413, 0x5414
FIONREAD, FIONBIO = 0x541B, 0x5421
BAUDS = {
    0: "B0", 1: "B50", 2: "B75", 3: "B110", 4: "B134", 5: "B150", 6: "B200", 7: "B300", 8: "B600",
    9: "B1200", 10: "B1800", 11: "B2400", 12: "B4800", 13: "B9600", 14: "B19200", 15: "B38400",
    0o10001: "B57600", 0o10002: "B115200", 0o10003: "B230400", 0o10004: "B460800",
    0o10005: "B500000", 0o10006: "B576000", 0o10007: "B921600", 0o10010: "B1000000",
    0o10011: "B1152000", 0o10012: "B1500000", 0o10013: "B2000000", 0o10014: "B2500000",
    0o10015: "B3000000", 0o10016: "B3500000", 0o10017: "B4000000",
}  # fmt: skip
IFLAGS: X.Flags = tuple(
    (v, n)
    for v, n in (
        (0o1, "IGNBRK"), (0o2, "BRKINT"), (0o4, "IGNPAR"), (0o10, "PARMRK"), (0o20, "INPCK"),
        (0o40, "ISTRIP"), (0o100, "INLCR"), (0o200, "IGNCR"), (0o400, "ICRNL"), (0o1000, "IUCLC"),
        (0o2000, "IXON"), (0o4000, "IXANY"), (0o10000, "IXOFF"), (0o20000, "IMAXBEL"), (0o40000, "IUTF8"),
    )
)  # fmt: skip
OFLAGS: X.Flags = (
    (0o1, "OPOST"), (0o2, "OLCUC"), (0o4, "ONLCR"), (0o10, "OCRNL"), (0o20, "ONOCR"), (0o40, "ONLRET"),
    (0o100, "OFILL"), (0o200, "OFDEL"),
)  # fmt: skip
# the output delay fields strace prints before the flags: (mask, {value: name})
ODELAYS = (
    (0o400, {0: "NL0", 0o400: "NL1"}),
    (0o3000, {0: "CR0", 0o1000: "CR1", 0o2000: "CR2", 0o3000: "CR3"}),
    (0o14000, {0: "TAB0", 0o4000: "TAB1", 0o10000: "TAB2", 0o14000: "TAB3"}),
    (0o20000, {0: "BS0", 0o20000: "BS1"}),
    (0o100000, {0: "VT0", 0o100000: "VT1"}),
    (0o40000, {0: "FF0", 0o40000: "FF1"}),
)
CFLAGS: X.Flags = (
    (0o100, "CSTOPB"), (0o200, "CREAD"), (0o400, "PARENB"), (0o1000, "PARODD"), (0o2000, "HUPCL"),
    (0o4000, "CLOCAL"), (0o10000000000, "CMSPAR"), (0o20000000000, "CRTSCTS"),
)  # fmt: skip
LFLAGS: X.Flags = (  # in strace's order (xlat/term_lflags.in)
    (0o1, "ISIG"), (0o2, "ICANON"), (0o4, "XCASE"), (0o10, "ECHO"), (0o20, "ECHOE"), (0o40, "ECHOK"),
    (0o100, "ECHONL"), (0o200, "NOFLSH"), (0o100000, "IEXTEN"), (0o1000, "ECHOCTL"), (0o2000, "ECHOPRT"),
    (0o4000, "ECHOKE"), (0o10000, "FLUSHO"), (0o40000, "PENDIN"), (0o400, "TOSTOP"), (0o200000, "EXTPROC"),
)  # fmt: skip
CSIZE = {0: "CS5", 0o20: "CS6", 0o40: "CS7", 0o60: "CS8"}


def _oflag(v: int) -> str:
    parts = [names[v & mask] for mask, names in ODELAYS]
    rest = v & ~sum(mask for mask, _ in ODELAYS)
    if rest:
        parts.append(flags(rest, OFLAGS))
    return "|".join(parts)


def _cflag(v: int) -> str:
    parts = [BAUDS.get(v & 0o10017, f"{v & 0o10017:#o}")]
    ibaud = (v >> 16) & 0o10017
    if ibaud:
        parts.append(f"{BAUDS.get(ibaud, f'{ibaud:#o}')}<<IBSHIFT")
    parts.append(CSIZE[v & 0o60])
    rest = v & ~(0o10017 | (0o10017 << 16) | 0o60)
    if rest:
        parts.append(flags(rest, CFLAGS))
    return "|".join(parts)


def termios(data: bytes) -> str:
    """strace's struct termios: the four flag words by name, the rest elided."""
    iflag, oflag, cflag, lflag = struct.unpack_from("<IIII", data)
    return (
        f"{{c_iflag={flags(iflag, IFLAGS)}, c_oflag={_oflag(oflag)}, c_cflag={_cflag(cflag)}, "
        f"c_lflag={flags(lflag, LFLAGS)}, ...}}"
    )


def winsize(data: bytes) -> str:
    row, col, xp, yp = struct.unpack_from("<HHHH", data)
    return f"{{ws_row={row}, ws_col={col}, ws_xpixel={xp}, ws_ypixel={yp}}}"


# request -> (size, when the argument is read: "in" or "out", text)
_ARGS = {
    TCGETS: (36, "out", termios),
    TCSETS: (36, "in", termios),
    TCSETSW: (36, "in", termios),
    TCSETSF: (36, "in", termios),
    TIOCGWINSZ: (8, "out", winsize),
    TIOCSWINSZ: (8, "in", winsize),
    TIOCGPGRP: (4, "out", lambda d: f"[{struct.unpack('<i', d[:4])[0]}]"),
    TIOCSPGRP: (4, "in", lambda d: f"[{struct.unpack('<i', d[:4])[0]}]"),
    FIONREAD: (4, "out", lambda d: f"[{struct.unpack('<i', d[:4])[0]}]"),
    FIONBIO: (4, "in", lambda d: f"[{struct.unpack('<i', d[:4])[0]}]"),
}


def _arg(i: int, p: str) -> Decoder:
    def dec(ctx: Ctx, call: Any, a: tuple[int, ...], r: int) -> str:
        req = a[1] & 0xFFFFFFFF
        how = _ARGS.get(req)
        if req == 0x40049409:  # FICLONE: the source descriptor, by value
            return str(a[i] & 0xFFFFFFFF if a[i] < 0x80000000 else a[i] - (1 << 64))
        if how is None:
            return ptr(a[i]) if req not in (0x5451, 0x5450) else ""
        size, when, text = how
        if when == "out" and failed(r):
            return ptr(a[i])
        data = ctx.read(a[i], size) if a[i] else None
        return ptr(a[i]) if data is None else text(data)

    return dec


def _layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    return out[:2] if (a[1] & 0xFFFFFFFF) in (0x5451, 0x5450) else out  # FIOCLEX FIONCLEX: no argument


kind("ioctl", plain=lambda v: X.IOCTL.get(v & 0xFFFFFFFF, hex(v & 0xFFFFFFFF)))
# the argument of the terminal requests: 36 bytes (struct termios) covers every one above
kind(
    "ioctl_arg",
    1,
    make=_arg,
    capture=lambda i, p, s: [(CAP_ENTRY, FIXED, i, 0, 0, 36, 36), (CAP_EXIT, FIXED, i, 0, 0, 36, 36)],
)
syscall("ioctl", "fd", "ioctl", "ioctl_arg", layout=_layout)
