"""ioctl: the request by name and, for terminals and a few generic requests, the argument as
strace's term.c and ioctl.c print it."""

from __future__ import annotations

import struct
from typing import Any

from .. import _xlat as X
from ._base import CAP_ENTRY, CAP_EXIT, FIXED, Ctx, Decoder, failed, kind, ptr, syscall

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
OPOST, ISIG, ICANON, ECHO = 1, 1, 2, 8


def termios(data: bytes) -> str:
    """strace's abbreviated struct termios: {B38400 opost isig icanon echo ...}."""
    _iflag, oflag, cflag, lflag = struct.unpack_from("<IIII", data)
    baud = BAUDS.get(cflag & 0o10017, "B???")

    def on(v: int, bit: int, name: str) -> str:
        return name if v & bit else "-" + name

    return (
        f"{{{baud} {on(oflag, OPOST, 'opost')} {on(lflag, ISIG, 'isig')} "
        f"{on(lflag, ICANON, 'icanon')} {on(lflag, ECHO, 'echo')} ...}}"
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
