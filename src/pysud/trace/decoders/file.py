"""File names and descriptors: open, access, links, directories, modes, xattrs (strace's open.c,
access.c, file.c ...)."""

from __future__ import annotations

import struct
import time as _time

from .. import _xlat as X
from ._base import Ctx, flags, kind, open_flags, ptr, syscall

UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def _one_time(sec: int, nsec: int) -> str:
    if nsec == UTIME_NOW:
        return f"{{tv_sec={sec}, tv_nsec=UTIME_NOW}}"
    if nsec == UTIME_OMIT:
        return f"{{tv_sec={sec}, tv_nsec=UTIME_OMIT}}"
    try:
        stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.localtime(sec))
        zone = _time.strftime("%z", _time.localtime(sec))
    except (OverflowError, OSError, ValueError):
        return f"{{tv_sec={sec}, tv_nsec={nsec}}}"
    frac = f".{nsec:09d}" if nsec else ""
    return f"{{tv_sec={sec}, tv_nsec={nsec}}} /* {stamp}{frac}{zone} */"


def utimes(ctx: Ctx, addr: int) -> str:
    """utimensat's two timespecs, with strace's date comments."""
    data = ctx.read(addr, 32)
    if data is None:
        return ptr(addr)
    s1, n1, s2, n2 = struct.unpack("<qqqq", data)
    return f"[{_one_time(s1, n1)}, {_one_time(s2, n2)}]"


kind("utimes", make=lambda i, p: lambda ctx, call, a, r: utimes(ctx, a[i]) if a[i] else "NULL")

kind("open_flags", plain=open_flags)
kind("access", plain=lambda v: flags(v, X.ACCESS, "F_OK"))
kind("at_flags", plain=lambda v: flags(v & 0xFFFFFFFF, X.AT_FLAGS))
# faccessat2: 0x200 is AT_EACCESS there (AT_REMOVEDIR elsewhere)
ACCESS_AT_FLAGS: X.Flags = ((0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_EACCESS"), (0x1000, "AT_EMPTY_PATH"))
kind("access_at_flags", plain=lambda v: flags(v & 0xFFFFFFFF, ACCESS_AT_FLAGS))
kind("fadv", plain=lambda v: X.FADV.get(v, str(v)))


def _openat_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    return out if a[2] & 0o20100100 else out[:3]  # mode only with O_CREAT or O_TMPFILE


def _open_layout(out: list[str], a: tuple[int, ...]) -> list[str]:
    return out if a[1] & 0o20100100 else out[:2]


syscall("open", "path", "open_flags", "o", layout=_open_layout, ret="fd")
syscall("openat", "dirfd", "path", "open_flags", "o", layout=_openat_layout, ret="fd")
syscall("creat", "path", "o", ret="fd")
syscall("close", "fd")
syscall("access", "path", "access")
syscall("faccessat", "dirfd", "path", "access")
syscall("faccessat2", "dirfd", "path", "access", "access_at_flags")
syscall("chdir", "path")
syscall("fchdir", "fd")
syscall("rename", "path", "path")
syscall("renameat", "dirfd", "path", "dirfd", "path")
RENAME_FLAGS: X.Flags = ((1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT"))
kind("rename_flags", plain=lambda v: flags(v & 0xFFFFFFFF, RENAME_FLAGS))
LOCK_OPS: X.Flags = ((1, "LOCK_SH"), (2, "LOCK_EX"), (4, "LOCK_NB"), (8, "LOCK_UN"))
kind("flock_op", plain=lambda v: flags(v & 0xFFFFFFFF, LOCK_OPS))
CLOSE_RANGE: X.Flags = ((2, "CLOSE_RANGE_UNSHARE"), (4, "CLOSE_RANGE_CLOEXEC"))
kind("close_range_flags", plain=lambda v: flags(v & 0xFFFFFFFF, CLOSE_RANGE))
MFD: X.Flags = (
    (1, "MFD_CLOEXEC"),
    (2, "MFD_ALLOW_SEALING"),
    (4, "MFD_HUGETLB"),
    (8, "MFD_NOEXEC_SEAL"),
    (16, "MFD_EXEC"),
)
kind("memfd_flags", plain=lambda v: flags(v & 0xFFFFFFFF, MFD))
EFD: X.Flags = ((1, "EFD_SEMAPHORE"), (0o2000000, "EFD_CLOEXEC"), (0o4000, "EFD_NONBLOCK"))
kind("efd_flags", plain=lambda v: flags(v & 0xFFFFFFFF, EFD))
FD_CLOEXEC_NONBLOCK = ((0o4000, "NONBLOCK"), (0o2000000, "CLOEXEC"))
kind(
    "tfd_flags", plain=lambda v: flags(v & 0xFFFFFFFF, tuple((b, "TFD_" + n) for b, n in FD_CLOEXEC_NONBLOCK))
)
kind("in_flags", plain=lambda v: flags(v & 0xFFFFFFFF, tuple((b, "IN_" + n) for b, n in FD_CLOEXEC_NONBLOCK)))

syscall("renameat2", "dirfd", "path", "dirfd", "path", "rename_flags")
syscall("flock", "fd", "flock_op")
syscall("close_range", "fd", "u", "close_range_flags")
syscall("memfd_create", "str", "memfd_flags", ret="fd")
syscall("eventfd2", "u", "efd_flags", ret="fd")
syscall("timerfd_create", "clock", "tfd_flags", ret="fd")
syscall("inotify_init1", "in_flags", ret="fd")
syscall("mkdir", "path", "o")
syscall("mkdirat", "dirfd", "path", "o")
syscall("rmdir", "path")
syscall("unlink", "path")
syscall("unlinkat", "dirfd", "path", "at_flags")
syscall("symlink", "path", "path")
syscall("symlinkat", "path", "dirfd", "path")
syscall("link", "path", "path")
syscall("linkat", "dirfd", "path", "dirfd", "path", "at_flags")
syscall("readlink", "path", "obuf:R", "u")
syscall("readlinkat", "dirfd", "path", "obuf:R", "u")
syscall("chmod", "path", "o")
syscall("fchmod", "fd", "o")
syscall("fchmodat", "dirfd", "path", "o")
syscall("chown", "path", "d", "d")
syscall("fchown", "fd", "d", "d")
syscall("lchown", "path", "d", "d")
syscall("fchownat", "dirfd", "path", "d", "d", "at_flags")
syscall("umask", "o", ret="oct")
syscall("getcwd", "opath", "u")
syscall("utimensat", "dirfd", "path", "utimes", "at_flags")
syscall("getxattr", "path", "str", "p", "u")
syscall("lgetxattr", "path", "str", "p", "u")
syscall("fgetxattr", "fd", "str", "p", "u")
syscall("truncate", "path", "ld")
syscall("ftruncate", "fd", "ld")
syscall("fsync", "fd")
syscall("fdatasync", "fd")
syscall("fadvise64", "fd", "ld", "u", "fadv")
