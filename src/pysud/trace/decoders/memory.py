"""Memory mappings: mmap, mprotect, munmap, brk, mremap, madvise (strace's mem.c)."""

from __future__ import annotations

from .. import _xlat as X
from ._base import flags, kind, syscall

MADV = {
    0: "MADV_NORMAL",
    1: "MADV_RANDOM",
    2: "MADV_SEQUENTIAL",
    3: "MADV_WILLNEED",
    4: "MADV_DONTNEED",
    8: "MADV_FREE",
    9: "MADV_REMOVE",
    10: "MADV_DONTFORK",
    11: "MADV_DOFORK",
    12: "MADV_MERGEABLE",
    13: "MADV_UNMERGEABLE",
    14: "MADV_HUGEPAGE",
    15: "MADV_NOHUGEPAGE",
    16: "MADV_DONTDUMP",
    17: "MADV_DODUMP",
    18: "MADV_WIPEONFORK",
    19: "MADV_KEEPONFORK",
    20: "MADV_COLD",
    21: "MADV_PAGEOUT",
    22: "MADV_POPULATE_READ",
    23: "MADV_POPULATE_WRITE",
    24: "MADV_DONTNEED_LOCKED",
    25: "MADV_COLLAPSE",
    100: "MADV_HWPOISON",
    101: "MADV_SOFT_OFFLINE",
}
MREMAP: X.Flags = ((1, "MREMAP_MAYMOVE"), (2, "MREMAP_FIXED"), (4, "MREMAP_DONTUNMAP"))

kind("prot", plain=lambda v: flags(v, X.PROT, "PROT_NONE"))
kind(
    "mmap_flags",
    plain=lambda v: "|".join(
        [X.MAP_TYPE.get(v & 0xF, hex(v & 0xF))] + ([flags(v & ~0xF, X.MAP_FLAGS)] if v & ~0xF else [])
    ),
)
kind("madv", plain=lambda v: X.xlat_or(MADV, v, "MADV_???"))
kind("mremap_flags", plain=lambda v: flags(v, MREMAP))

syscall("mmap", "p", "u", "prot", "mmap_flags", "fd", "x", ret="hex")
syscall("mprotect", "p", "u", "prot")
syscall("munmap", "p", "u")
syscall("brk", "p", ret="hex")
syscall("mremap", "p", "u", "u", "mremap_flags", "p", ret="hex")
syscall("madvise", "p", "u", "madv")
