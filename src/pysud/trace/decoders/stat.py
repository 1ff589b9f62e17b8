"""stat, statx, statfs and the struct stat strace prints (strace's stat.c, statx.c)."""

from __future__ import annotations

import struct

from .. import _xlat as X
from ._base import CAP_EXIT, EXIT, Ctx, chex, file_mode, fixed, flags, kind, out, ptr, syscall

STAT = struct.Struct("<QQQIIIxxxxQqqq")  # dev ino nlink mode uid gid rdev size blksize blocks


def makedev(dev: int) -> str:
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
    minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
    return f"makedev({chex(major)}, {chex(minor)})"


def stat_text(data: bytes) -> str:
    """A struct stat's bytes as strace prints them."""
    _dev, _ino, _nlink, m, _uid, _gid, rdev, size, _bs, _bl = STAT.unpack_from(data)
    if m & 0o170000 in (0o20000, 0o60000):
        return f"{{st_mode={file_mode(m)}, st_rdev={makedev(rdev)}, ...}}"
    return f"{{st_mode={file_mode(m)}, st_size={size}, ...}}"


def stat_cap(c: bytes | bool | None, addr: int) -> str:
    return stat_text(c) if c else ptr(addr)  # type: ignore[arg-type]


def _stat(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], STAT.size)
    return ptr(a[i]) if data is None else stat_text(data)


def statx_text(data: bytes) -> str:
    mask = struct.unpack_from("<I", data, 0)[0]
    attrs = struct.unpack_from("<Q", data, 8)[0]
    m = struct.unpack_from("<H", data, 0x1C)[0]
    size = struct.unpack_from("<Q", data, 0x28)[0]
    return (
        f"{{stx_mask={flags(mask, X.STATX_MASK)}, stx_attributes={flags(attrs, ())}, "
        f"stx_mode={file_mode(m)}, stx_size={size}, ...}}"
    )


def _statx(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], 0x100)
    return ptr(a[i]) if data is None else statx_text(data)


kind(
    "stat",
    EXIT,
    make=out(_stat),
    capture=fixed(CAP_EXIT, STAT.size),
    expr="ptr(a{i}) if -4096 < ret < 0 or not a{i} else stat_cap(c[{k}], a{i})",
    env={"stat_cap": stat_cap},
)
kind("statx", EXIT, make=out(_statx), capture=fixed(CAP_EXIT, 0x100))
kind(
    "statx_flags",
    plain=lambda v: "|".join(
        ["AT_STATX_SYNC_AS_STAT"] + ([flags(v & ~0x6000 & 0xFFFFFFFF, X.AT_FLAGS)] if v & ~0x6000 else [])
    ),
)
kind("statx_mask", plain=lambda v: flags(v & 0xFFFFFFFF, X.STATX_MASK))

syscall("stat", "path", "stat")
syscall("lstat", "path", "stat")
syscall("fstat", "fd", "stat")
syscall("newfstatat", "dirfd", "path", "stat", "at_flags")
syscall("statx", "dirfd", "path", "statx_flags", "statx_mask", "statx")
FS_MAGIC = {
    0xEF53: "EXT2_SUPER_MAGIC",
    0x01021994: "TMPFS_MAGIC",
    0x9FA0: "PROC_SUPER_MAGIC",
    0x62656572: "SYSFS_MAGIC",
    0x794C7630: "OVERLAYFS_SUPER_MAGIC",
    0x9123683E: "BTRFS_SUPER_MAGIC",
    0x58465342: "XFS_SUPER_MAGIC",
    0x6969: "NFS_SUPER_MAGIC",
    0x63677270: "CGROUP2_SUPER_MAGIC",
    0x1CD1: "DEVPTS_SUPER_MAGIC",
    0x73717368: "SQUASHFS_MAGIC",
    0x01021997: "V9FS_MAGIC",
    0x65735546: "FUSE_SUPER_MAGIC",
    0x858458F6: "RAMFS_MAGIC",
}
ST_FLAGS: X.Flags = (
    (1, "ST_RDONLY"),
    (2, "ST_NOSUID"),
    (4, "ST_NODEV"),
    (8, "ST_NOEXEC"),
    (16, "ST_SYNCHRONOUS"),
    (32, "ST_VALID"),
    (64, "ST_MANDLOCK"),
    (1024, "ST_NOATIME"),
    (2048, "ST_NODIRATIME"),
    (4096, "ST_RELATIME"),
    (8192, "ST_NOSYMFOLLOW"),
)
STATFS = struct.Struct("<qq5QiiqqQ32x")


def statfs_text(data: bytes) -> str:
    typ, bsize, blocks, bfree, bavail, files, ffree, fs0, fs1, namelen, frsize, fl = STATFS.unpack(data)
    kind_ = FS_MAGIC.get(typ, hex(typ))
    return (
        f"{{f_type={kind_}, f_bsize={bsize}, f_blocks={blocks}, f_bfree={bfree}, f_bavail={bavail}, "
        f"f_files={files}, f_ffree={ffree}, "
        f"f_fsid={{val=[{chex(fs0 & 0xFFFFFFFF)}, {chex(fs1 & 0xFFFFFFFF)}]}}, "
        f"f_namelen={namelen}, f_frsize={frsize}, f_flags={flags(fl, ST_FLAGS)}}}"
    )


def _statfs(ctx: Ctx, a: tuple[int, ...], i: int) -> str:
    data = ctx.read(a[i], STATFS.size)
    return ptr(a[i]) if data is None else statfs_text(data)


kind("statfs", EXIT, make=out(_statfs), capture=fixed(CAP_EXIT, STATFS.size))
syscall("statfs", "path", "statfs")
syscall("fstatfs", "fd", "statfs")
