"""File names and descriptors: open, access, links, directories, modes, xattrs (strace's open.c,
access.c, file.c ...)."""

from __future__ import annotations

from .. import _xlat as X
from ._base import flags, kind, open_flags, syscall

kind("open_flags", plain=open_flags)
kind("access", plain=lambda v: flags(v, X.ACCESS, "F_OK"))
kind("at_flags", plain=lambda v: flags(v & 0xFFFFFFFF, X.AT_FLAGS))
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
syscall("faccessat2", "dirfd", "path", "access", "at_flags")
syscall("chdir", "path")
syscall("fchdir", "fd")
syscall("rename", "path", "path")
syscall("renameat", "dirfd", "path", "dirfd", "path")
syscall("renameat2", "dirfd", "path", "dirfd", "path", "x")
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
syscall("utimensat", "dirfd", "path", "p", "at_flags")
syscall("getxattr", "path", "str", "p", "u")
syscall("lgetxattr", "path", "str", "p", "u")
syscall("fgetxattr", "fd", "str", "p", "u")
syscall("truncate", "path", "ld")
syscall("ftruncate", "fd", "ld")
syscall("fsync", "fd")
syscall("fdatasync", "fd")
syscall("fadvise64", "fd", "ld", "u", "fadv")
