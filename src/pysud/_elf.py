"""In-process ELF loader: map an x86-64 program and build its initial stack the way execve does.

Nothing here runs the program.  :func:`load_image` maps every ``PT_LOAD`` of an
executable (or of its interpreter) into the current process, copying the file's
bytes rather than mapping the file, zeroing the bss and applying the segments'
final protections; :func:`build_stack` lays out argc, argv, envp and the
auxiliary vector exactly as the kernel's ``create_elf_tables`` does.  Every
problem with the input file is reported as :class:`ELFLoadError`.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import stat
import struct

from . import _cache, _memory
from ._errors import PysudError
from ._memory import (
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_NORESERVE,
    MAP_STACK,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    MappingError,
)

#: ``typing`` only for the type checker: its import is a visible part of every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "AT_BASE",
    "AT_CLKTCK",
    "AT_EGID",
    "AT_ENTRY",
    "AT_EUID",
    "AT_EXECFN",
    "AT_FLAGS",
    "AT_GID",
    "AT_HWCAP",
    "AT_HWCAP2",
    "AT_MINSIGSTKSZ",
    "AT_NULL",
    "AT_PAGESZ",
    "AT_PHDR",
    "AT_PHENT",
    "AT_PHNUM",
    "AT_PLATFORM",
    "AT_RANDOM",
    "AT_SECURE",
    "AT_SYSINFO_EHDR",
    "AT_UID",
    "ELFLoadError",
    "LoadedImage",
    "build_stack",
    "host_auxv",
    "load_image",
    "unload",
    "unmap_region",
]

# --- constants -----------------------------------------------------------------------------------

#: Highest user address + 1 with 4-level paging; the kernel refuses segments beyond it.
TASK_SIZE = (1 << 47) - PAGE_SIZE
PLATFORM = b"x86_64"

EM_X86_64 = 62
ET_EXEC = 2
ET_DYN = 3
PT_LOAD = 1
PT_INTERP = 3
PT_PHDR = 6
PT_GNU_STACK = 0x6474E551
PF_X = 1
PF_W = 2
PF_R = 4

_EHDR_SIZE = 64
_PHDR_SIZE = 56
#: The kernel refuses program header tables larger than 64 KiB.
_MAX_PHNUM = 65536 // _PHDR_SIZE
#: The kernel's PATH_MAX for the interpreter name.
_MAX_INTERP = 4096


AT_NULL = 0
AT_PHDR = 3
AT_PHENT = 4
AT_PHNUM = 5
AT_PAGESZ = 6
AT_BASE = 7
AT_FLAGS = 8
AT_ENTRY = 9
AT_UID = 11
AT_EUID = 12
AT_GID = 13
AT_EGID = 14
AT_PLATFORM = 15
AT_HWCAP = 16
AT_CLKTCK = 17
AT_SECURE = 23
AT_RANDOM = 25
AT_HWCAP2 = 26
AT_EXECFN = 31
AT_SYSINFO_EHDR = 33
AT_MINSIGSTKSZ = 51

DEFAULT_STACK_SIZE = 8 << 20


class ELFLoadError(PysudError):
    """A program or interpreter cannot be loaded; the message names the file and the reason.

    ``errno`` is what the kernel's execve would fail with for the same file (ENOEXEC for a
    malformed or foreign ELF file, ENOENT for a missing interpreter, the open/read error...).
    """

    def __init__(self, message: str, errno: int = _errno.ENOEXEC) -> None:
        super().__init__(message)
        self.errno = errno


# --- memory (the mapping layer every loader shares: _memory.py) -----------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _map(addr: int, size: int, prot: int, flags: int, what: str) -> int:
    """mmap anonymous memory; ELFLoadError saying ``what`` failed and why."""
    try:
        return _memory.map_anon(addr, size, prot, flags, what)
    except MappingError as e:
        raise ELFLoadError(str(e)) from None


def _protect(addr: int, size: int, prot: int, what: str) -> None:
    try:
        _memory.protect(addr, size, prot, what)
    except MappingError as e:
        raise ELFLoadError(str(e)) from None


#: munmap a range this module mapped (an image's mapping or a stack from build_stack)
unmap_region = _memory.unmap
_page_down = _memory.page_down
_page_up = _memory.page_up


# --- the image -----------------------------------------------------------------------------------


class _Record:
    """Equality and a field-by-field repr for the plain classes below (no ``dataclasses``: its
    import brings ``inspect`` with ``ast``, ``dis`` and ``tokenize``, a visible part of every
    ``pysud run``'s start-up)."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"


class LoadedImage(_Record):
    """An ELF file mapped into this process, with what the auxiliary vector needs to describe it.

    ``path``; ``base``: the load bias, what was added to every p_vaddr (0 for ET_EXEC);
    ``entry``: the absolute entry point; ``phdr``: the absolute address of the program header
    table in memory, for AT_PHDR; ``phent``, ``phnum``; ``interp``: PT_INTERP's path, or None for
    a static program or an interpreter itself; ``start``, ``end``: the mapped range [start, end),
    everything the image occupies lies inside it; ``brk_start``: the page-aligned end of the
    highest segment including its bss, where the program break starts; ``mappings``: (addr, size)
    ranges to munmap on unload; ``e_type``: ET_EXEC or ET_DYN; ``exec_stack``: PT_GNU_STACK asks
    for an executable stack.
    """

    __slots__ = (
        "base",
        "brk_start",
        "e_type",
        "end",
        "entry",
        "exec_stack",
        "interp",
        "mappings",
        "path",
        "phdr",
        "phent",
        "phnum",
        "start",
    )

    def __init__(
        self,
        path: str,
        base: int,
        entry: int,
        phdr: int,
        phent: int,
        phnum: int,
        interp: str | None,
        start: int,
        end: int,
        brk_start: int,
        mappings: list[tuple[int, int]] | None = None,
        e_type: int = ET_DYN,
        exec_stack: bool = False,
    ) -> None:
        self.path = path
        self.base = base
        self.entry = entry
        self.phdr = phdr
        self.phent = phent
        self.phnum = phnum
        self.interp = interp
        self.start = start
        self.end = end
        self.brk_start = brk_start
        self.mappings: list[tuple[int, int]] = [] if mappings is None else mappings
        self.e_type = e_type
        self.exec_stack = exec_stack

    def __repr__(self) -> str:
        return (
            f"<LoadedImage {self.path!r} base={self.base:#x} entry={self.entry:#x} "
            f"range={self.start:#x}..{self.end:#x} interp={self.interp!r}>"
        )


class _Segment(_Record):
    __slots__ = ("filesz", "flags", "memsz", "offset", "vaddr")

    def __init__(self, vaddr: int, offset: int, filesz: int, memsz: int, flags: int) -> None:
        self.vaddr = vaddr
        self.offset = offset
        self.filesz = filesz
        self.memsz = memsz
        self.flags = flags


def _read_file_stat(path: str) -> tuple[bytearray, os.stat_result]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ELFLoadError(f"{path}: cannot open: {exc.strerror}", exc.errno or _errno.ENOENT) from exc
    if stat.S_ISDIR(st.st_mode):
        raise ELFLoadError(f"{path}: is a directory, not an ELF executable", _errno.EACCES)
    if not stat.S_ISREG(st.st_mode):
        raise ELFLoadError(f"{path}: not a regular file", _errno.EACCES)
    try:
        with open(path, "rb") as f:
            return bytearray(f.read()), os.fstat(f.fileno())
    except OSError as exc:
        raise ELFLoadError(f"{path}: cannot read: {exc.strerror}", exc.errno or _errno.EIO) from exc


def _enum(value: Any, names: dict[str, int]) -> int:
    """pyelftools gives known enum values as names and unknown ones as ints; normalise to int."""
    if isinstance(value, str):
        return names.get(value, -1)
    return int(value)


_E_TYPES = {"ET_NONE": 0, "ET_REL": 1, "ET_EXEC": ET_EXEC, "ET_DYN": ET_DYN, "ET_CORE": 4}
_P_TYPES = {"PT_LOAD": PT_LOAD, "PT_INTERP": PT_INTERP, "PT_PHDR": PT_PHDR, "PT_GNU_STACK": PT_GNU_STACK}


class _Parsed(_Record):
    __slots__ = ("e_type", "entry", "exec_stack", "interp", "loads", "phdr_vaddr", "phnum", "phoff")

    def __init__(
        self,
        e_type: int,
        entry: int,
        phoff: int,
        phnum: int,
        loads: list[_Segment],
        phdr_vaddr: int | None,
        interp: str | None,
        exec_stack: bool,
    ) -> None:
        self.e_type = e_type
        self.entry = entry
        self.phoff = phoff
        self.phnum = phnum
        self.loads = loads
        self.phdr_vaddr = phdr_vaddr
        self.interp = interp
        self.exec_stack = exec_stack


def _parse(path: str, data: bytearray, st: os.stat_result | None = None) -> _Parsed:
    """Validate the ELF header and program headers as binfmt_elf does; raise ELFLoadError on anything off.

    With the file's ``st`` (taken with ``data``), a valid file's result is kept in the persistent
    cache (:mod:`pysud._cache`) under its identity, and a later run takes it from there without
    importing pyelftools.
    """
    key = None
    if st is not None and st.st_size == len(data):
        key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        parsed = _from_cache(_cache.ELF.get(key))
        if parsed is None or not _in_bounds(parsed, len(data)):
            parsed = _parse_headers(path, data)
            _cache.ELF.put(key, _to_cache(parsed))
    else:
        parsed = _parse_headers(path, data)
    if parsed.interp is not None:
        try:
            ist = os.stat(parsed.interp)
        except OSError as exc:
            raise ELFLoadError(
                f"{path}: interpreter {parsed.interp} does not exist ({exc.strerror})",
                exc.errno or _errno.ENOENT,
            ) from exc
        if not stat.S_ISREG(ist.st_mode):
            raise ELFLoadError(f"{path}: interpreter {parsed.interp} is not a regular file")
    return parsed


def _to_cache(p: _Parsed) -> list[Any]:
    loads = [[s.vaddr, s.offset, s.filesz, s.memsz, s.flags] for s in p.loads]
    return [p.e_type, p.entry, p.phoff, p.phnum, loads, p.phdr_vaddr, p.interp, p.exec_stack]


def _from_cache(value: Any) -> _Parsed | None:
    """A cached _Parsed, or None if there is none or it is not the shape _to_cache writes."""
    if value is None:
        return None
    try:
        e_type, entry, phoff, phnum, loads, phdr_vaddr, interp, exec_stack = value
        segs = [_Segment(*(int(v) for v in seg)) for seg in loads]
        if not segs or any(len(seg) != 5 for seg in loads):
            return None
        if interp is not None and not isinstance(interp, str):
            return None
        phdr = int(phdr_vaddr) if phdr_vaddr is not None else None
        return _Parsed(int(e_type), int(entry), int(phoff), int(phnum), segs, phdr, interp, bool(exec_stack))
    except (TypeError, ValueError):
        return None


def _in_bounds(p: _Parsed, size: int) -> bool:
    """The bounds the loader relies on (copying file bytes, mapping segments) hold for a cached
    result, as _parse_checked made sure for a parsed one: an edited cache file cannot make the
    loader read outside the file or map outside user space."""
    if not 1 <= p.phnum <= _MAX_PHNUM or p.phoff < 0 or p.phoff + p.phnum * _PHDR_SIZE > size:
        return False
    if not 0 <= p.entry < TASK_SIZE or p.e_type not in (ET_EXEC, ET_DYN):
        return False
    for seg in p.loads:
        if (
            min(seg.vaddr, seg.offset, seg.filesz, seg.flags) < 0
            or not 0 < seg.memsz <= TASK_SIZE - seg.vaddr
        ):
            return False
        if seg.filesz > seg.memsz or (
            seg.filesz and (seg.offset + seg.filesz > size or seg.offset < seg.vaddr % PAGE_SIZE)
        ):
            return False
    return True


def _parse_headers(path: str, data: bytearray) -> _Parsed:
    if len(data) == 0:
        raise ELFLoadError(f"{path}: empty file, not an ELF executable")
    if data[:4] != b"\x7fELF":
        raise ELFLoadError(f"{path}: not an ELF file (bad magic {bytes(data[:4])!r})")
    if len(data) < _EHDR_SIZE:
        raise ELFLoadError(f"{path}: truncated ELF file ({len(data)} bytes, shorter than an ELF header)")
    if data[4] == 1:
        raise ELFLoadError(f"{path}: 32-bit ELF (ELFCLASS32); only 64-bit x86-64 programs are supported")
    if data[4] != 2:
        raise ELFLoadError(f"{path}: invalid ELF class {data[4]} in e_ident")
    if data[5] != 1:
        raise ELFLoadError(f"{path}: not a little-endian ELF file (EI_DATA={data[5]})")
    # pyelftools is imported where an ELF file is parsed, not by whoever imports this module
    from elftools.common.exceptions import ELFError
    from elftools.construct import ConstructError

    try:
        return _parse_checked(path, data)
    except ELFLoadError:
        raise
    except (ELFError, ConstructError, struct.error, ValueError, IndexError, KeyError, TypeError) as exc:
        raise ELFLoadError(f"{path}: malformed ELF file: {exc}") from exc


def _parse_checked(path: str, data: bytearray) -> _Parsed:
    # The structures alone (what ELFFile builds first): no ELFFile, whose import pulls in the DWARF
    # readers (~20 ms of every `pysud run`'s start-up); a loader needs only these two headers.
    from elftools.elf.structs import ELFStructs

    structs = ELFStructs(little_endian=True, elfclass=64)
    structs.create_basic_structs()
    hdr = structs.Elf_Ehdr.parse(bytes(data[:_EHDR_SIZE]))
    structs.create_advanced_structs(hdr["e_type"], hdr["e_machine"], hdr["e_ident"]["EI_OSABI"])
    machine = _enum(hdr["e_machine"], {"EM_X86_64": EM_X86_64})
    if machine != EM_X86_64:
        raise ELFLoadError(f"{path}: wrong machine {hdr['e_machine']} (e_machine), expected EM_X86_64")
    e_type = _enum(hdr["e_type"], _E_TYPES)
    if e_type not in (ET_EXEC, ET_DYN):
        raise ELFLoadError(f"{path}: ELF type {hdr['e_type']} is not an executable (ET_EXEC or ET_DYN)")
    phentsize = int(hdr["e_phentsize"])
    phnum = int(hdr["e_phnum"])
    phoff = int(hdr["e_phoff"])
    if phentsize != _PHDR_SIZE:
        raise ELFLoadError(f"{path}: bad program headers: e_phentsize is {phentsize}, expected {_PHDR_SIZE}")
    if not 1 <= phnum <= _MAX_PHNUM:
        raise ELFLoadError(f"{path}: bad program headers: e_phnum is {phnum}")
    if phoff + phnum * phentsize > len(data):
        raise ELFLoadError(
            f"{path}: truncated file: program headers at {phoff:#x}+{phnum * phentsize:#x} "
            f"lie beyond its {len(data):#x} bytes"
        )
    entry = int(hdr["e_entry"])
    if entry >= TASK_SIZE:
        raise ELFLoadError(f"{path}: entry point {entry:#x} is not a user-space address")

    loads: list[_Segment] = []
    phdr_vaddr: int | None = None
    interp: str | None = None
    exec_stack = False
    for i in range(phnum):
        ph = structs.Elf_Phdr.parse(bytes(data[phoff + i * phentsize : phoff + (i + 1) * phentsize]))
        p_type = _enum(ph["p_type"], _P_TYPES)
        offset, vaddr = int(ph["p_offset"]), int(ph["p_vaddr"])
        filesz, memsz, flags = int(ph["p_filesz"]), int(ph["p_memsz"]), int(ph["p_flags"])
        if p_type == PT_LOAD:
            if filesz > memsz:
                raise ELFLoadError(f"{path}: bad program header {i}: filesz {filesz:#x} > memsz {memsz:#x}")
            if vaddr >= TASK_SIZE or memsz > TASK_SIZE - vaddr:
                raise ELFLoadError(
                    f"{path}: bad program header {i}: segment {vaddr:#x}+{memsz:#x} is outside user space"
                )
            if filesz and (offset > len(data) or filesz > len(data) - offset):
                raise ELFLoadError(
                    f"{path}: truncated file: segment {i} needs bytes {offset:#x}..{offset + filesz:#x} "
                    f"of a {len(data):#x}-byte file"
                )
            if filesz and offset < vaddr % PAGE_SIZE:
                raise ELFLoadError(
                    f"{path}: bad program header {i}: p_offset {offset:#x} and p_vaddr {vaddr:#x} "
                    "cannot be mapped page-aligned"
                )
            if memsz:
                loads.append(_Segment(vaddr, offset, filesz, memsz, flags))
        elif p_type == PT_INTERP:
            if interp is not None:
                raise ELFLoadError(f"{path}: more than one PT_INTERP")
            if not 2 <= filesz <= _MAX_INTERP or offset > len(data) or filesz > len(data) - offset:
                raise ELFLoadError(f"{path}: bad PT_INTERP (offset {offset:#x}, size {filesz:#x})")
            raw = bytes(data[offset : offset + filesz])
            if raw[-1] != 0 or raw[0] == 0:  # the kernel, too, only checks the final NUL
                raise ELFLoadError(f"{path}: PT_INTERP is not a NUL-terminated path")
            interp = os.fsdecode(raw[: raw.index(0)])
        elif p_type == PT_PHDR:
            phdr_vaddr = vaddr
        elif p_type == PT_GNU_STACK:
            exec_stack = bool(flags & PF_X)
    if not loads:
        raise ELFLoadError(f"{path}: no PT_LOAD segment, nothing to load")
    # Where the program headers are in memory: the kernel uses the PT_LOAD holding e_phoff's bytes.
    for seg in loads:
        if seg.offset <= phoff and phoff + phnum * phentsize <= seg.offset + seg.filesz:
            phdr_vaddr = seg.vaddr + (phoff - seg.offset)
            break
    return _Parsed(e_type, entry, phoff, phnum, loads, phdr_vaddr, interp, exec_stack)


def _prot(flags: int) -> int:
    return (
        (PROT_READ if flags & PF_R else 0)
        | (PROT_WRITE if flags & PF_W else 0)
        | (PROT_EXEC if flags & PF_X else 0)
    )


def _max_align(path: str, data: bytearray, phoff: int, phnum: int) -> int:
    """The largest power-of-two p_align among PT_LOADs (the kernel aligns an ET_DYN's bias to it)."""
    align = PAGE_SIZE
    for i in range(phnum):
        p_type, _, _, _, _, _, _, p_align = struct.unpack_from("<IIQQQQQQ", data, phoff + i * _PHDR_SIZE)
        if p_type == PT_LOAD and p_align > align and p_align & (p_align - 1) == 0:
            align = p_align
    if align > TASK_SIZE // 4:
        raise ELFLoadError(f"{path}: segment alignment {align:#x} is absurdly large")
    return align


def _reserve(path: str, parsed: _Parsed, lo: int, span: int, align: int, base_hint: int | None) -> int:
    """Reserve the image's whole address range PROT_NONE; return its start."""
    if parsed.e_type == ET_EXEC:
        return _map(lo, span, PROT_NONE, MAP_FIXED_NOREPLACE | MAP_NORESERVE, f"{path}: fixed-address image")
    hint = _page_down(base_hint + lo) if base_hint is not None else 0
    if align <= PAGE_SIZE:
        return _map(hint, span, PROT_NONE, MAP_NORESERVE, f"{path}: reserving the image's range")
    # Over-reserve, then trim to an aligned start.
    total = span + align
    raw = _map(hint, total, PROT_NONE, MAP_NORESERVE, f"{path}: reserving the image's range")
    start = (raw + align - 1) & ~(align - 1)
    if start > raw:
        unmap_region(raw, start - raw)
    if raw + total > start + span:
        unmap_region(start + span, raw + total - (start + span))
    return start


def check_image(path: str | os.PathLike[str]) -> None:
    """Everything execve checks before its point of no return, without mapping anything.

    The headers of the program and of its interpreter, as :func:`load_image` reads them;
    raises ELFLoadError (its ``errno`` is what execve fails with) if either would not load.
    """
    spath = os.fspath(path)
    parsed = _parse(spath, *_read_file_stat(spath))
    if parsed.interp is not None:
        _parse(parsed.interp, *_read_file_stat(parsed.interp))


def load_image(path: str | os.PathLike[str], *, base_hint: int | None = None) -> LoadedImage:
    """Map an x86-64 ELF executable (ET_EXEC at its own addresses, ET_DYN anywhere) without running it.

    ``base_hint`` is the preferred load bias for an ET_DYN image (a hint: the kernel picks
    elsewhere if the range is taken); ignored for ET_EXEC, whose range must be free or
    ELFLoadError is raised.  Release with :func:`unload`.
    """
    spath = os.fspath(path)
    data, st = _read_file_stat(spath)
    parsed = _parse(spath, data, st)
    lo = _page_down(min(s.vaddr for s in parsed.loads))
    hi = _page_up(max(s.vaddr + s.memsz for s in parsed.loads))
    span = hi - lo
    if parsed.e_type == ET_DYN and span > TASK_SIZE // 2:
        raise ELFLoadError(f"{spath}: segments span {span:#x} bytes, too large to load")
    align = _max_align(spath, data, parsed.phoff, parsed.phnum) if parsed.e_type == ET_DYN else PAGE_SIZE
    start = _reserve(spath, parsed, lo, span, align, base_hint)
    base = start - lo if parsed.e_type == ET_DYN else 0
    try:
        for seg in parsed.loads:
            _fill_segment(spath, data, seg, base)
        for seg in parsed.loads:
            addr = base + _page_down(seg.vaddr)
            _protect(addr, _page_up(base + seg.vaddr + seg.memsz) - addr, _prot(seg.flags), spath)
    except BaseException:
        unmap_region(start, span)
        raise
    return LoadedImage(
        path=spath,
        base=base,
        entry=base + parsed.entry,
        phdr=base + parsed.phdr_vaddr if parsed.phdr_vaddr is not None else 0,
        phent=_PHDR_SIZE,
        phnum=parsed.phnum,
        interp=parsed.interp,
        start=start,
        end=start + span,
        brk_start=base + hi,
        mappings=[(start, span)],
        e_type=parsed.e_type,
        exec_stack=parsed.exec_stack,
    )


def _fill_segment(path: str, data: bytearray, seg: _Segment, base: int) -> None:
    """Give one segment fresh writable pages in the reservation and copy its file bytes in.

    Like the kernel's file mapping, the copy starts at the page holding p_vaddr (the bytes
    before p_vaddr in that page come from the file too); without a bss the rest of the last
    page also holds file bytes, with one it is zero (the kernel's padzero).
    """
    page = _page_down(seg.vaddr)
    size = _page_up(seg.vaddr + seg.memsz) - page
    addr = _map(base + page, size, PROT_READ | PROT_WRITE, MAP_FIXED, f"{path}: segment at {seg.vaddr:#x}")
    if not seg.filesz:
        return
    in_page = seg.vaddr - page
    file_start = seg.offset - in_page
    count = in_page + seg.filesz
    if seg.memsz == seg.filesz:
        count = min(_page_up(count), len(data) - file_start)
    src = (ctypes.c_char * count).from_buffer(data, file_start)
    ctypes.memmove(addr, src, count)


def unload(image: LoadedImage) -> None:
    """Unmap everything load_image mapped for ``image``; calling it twice is harmless."""
    while image.mappings:
        addr, size = image.mappings.pop()
        unmap_region(addr, size)


# --- the initial stack ---------------------------------------------------------------------------


def host_auxv() -> dict[int, int]:
    """This process's own auxiliary vector (from /proc/self/auxv), AT_NULL excluded."""
    result: dict[int, int] = {}
    try:
        with open("/proc/self/auxv", "rb") as f:
            raw = f.read()
    except OSError:
        getauxval = _libc.getauxval
        getauxval.restype = ctypes.c_ulong
        getauxval.argtypes = [ctypes.c_ulong]
        for key in (AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ, AT_CLKTCK, AT_PAGESZ, AT_SYSINFO_EHDR):
            value = int(getauxval(key))
            if value:
                result[key] = value
        return result
    for key, value in struct.iter_unpack("<QQ", raw[: len(raw) // 16 * 16]):
        if key == AT_NULL:
            break
        result[key] = value
    return result


def build_stack(
    image: LoadedImage,
    interp: LoadedImage | None,
    argv: list[bytes],
    envp: list[bytes],
    *,
    execfn: bytes,
    stack_size: int = DEFAULT_STACK_SIZE,
    vdso_base: int | None,
) -> tuple[int, int, int]:
    """Map a stack and lay out the process's start-up data on it as execve would.

    From the top down, as the kernel's copy_strings and create_elf_tables place them: an
    8-byte NULL, the execfn string, the envp strings, the argv strings (so argv[0] is
    lowest and argv then envp strings are contiguous), 16-byte alignment, the platform
    string "x86_64", the 16 AT_RANDOM bytes, then at the 16-byte aligned initial rsp: argc,
    argv pointers, NULL, envp pointers, NULL, auxv pairs ending in AT_NULL.

    Returns (stack mapping address, stack mapping size, initial rsp); release the mapping
    with :func:`unmap_region`.
    """
    for s in (*argv, *envp, execfn):
        if b"\0" in s:
            raise ValueError(f"argument, environment string or execfn contains a NUL byte: {s!r}")
    if stack_size < 64 * 1024 or stack_size % PAGE_SIZE:
        raise ValueError(f"stack_size must be a multiple of {PAGE_SIZE} and >= 64 KiB, not {stack_size}")
    strings = sum(len(s) + 1 for s in (*argv, *envp, execfn))
    pointers = 8 * (len(argv) + len(envp) + 3)
    if strings + pointers > stack_size // 4:  # the kernel's limit: a quarter of the stack rlimit
        raise ELFLoadError(
            f"argument list too long: {strings} bytes of strings and {len(argv) + len(envp)} pointers "
            f"for a {stack_size:#x}-byte stack"
        )

    host = host_auxv()
    prot = PROT_READ | PROT_WRITE | (PROT_EXEC if image.exec_stack else 0)
    stack = _map(0, stack_size, prot, MAP_STACK | MAP_NORESERVE, "the program's stack")
    try:
        top = stack + stack_size
        p = top - 8  # a NULL word at the very top, as the kernel leaves
        ctypes.memset(p, 0, 8)

        def push_bytes(b: bytes) -> int:
            nonlocal p
            p -= len(b)
            ctypes.memmove(p, b, len(b))
            return p

        execfn_addr = push_bytes(execfn + b"\0")
        # copy_strings walks each array from its last element down, so element 0 ends lowest.
        env_addrs = [push_bytes(s + b"\0") for s in reversed(envp)][::-1]
        arg_addrs = [push_bytes(s + b"\0") for s in reversed(argv)][::-1]
        p &= ~15  # arch_align_stack, without the random offset
        platform_addr = push_bytes(PLATFORM + b"\0")
        random_addr = push_bytes(os.urandom(16))

        auxv: list[tuple[int, int]] = []
        if vdso_base is not None:
            auxv.append((AT_SYSINFO_EHDR, vdso_base))
        if AT_MINSIGSTKSZ in host:
            auxv.append((AT_MINSIGSTKSZ, host[AT_MINSIGSTKSZ]))
        auxv += [
            (AT_HWCAP, host.get(AT_HWCAP, 0)),
            (AT_PAGESZ, PAGE_SIZE),
            (AT_CLKTCK, os.sysconf("SC_CLK_TCK")),
            (AT_PHDR, image.phdr),
            (AT_PHENT, image.phent),
            (AT_PHNUM, image.phnum),
            (AT_BASE, interp.base if interp is not None else 0),
            (AT_FLAGS, 0),
            (AT_ENTRY, image.entry),
            (AT_UID, os.getuid()),
            (AT_EUID, os.geteuid()),
            (AT_GID, os.getgid()),
            (AT_EGID, os.getegid()),
            (AT_SECURE, 0),
            (AT_RANDOM, random_addr),
            (AT_HWCAP2, host.get(AT_HWCAP2, 0)),
            (AT_EXECFN, execfn_addr),
            (AT_PLATFORM, platform_addr),
            (AT_NULL, 0),
        ]
        words = [len(argv), *arg_addrs, 0, *env_addrs, 0]
        for key, value in auxv:
            words += [key, value]
        rsp = (p - 8 * len(words)) & ~15
        if rsp < stack + PAGE_SIZE:
            raise ELFLoadError(f"argument list too long for a {stack_size:#x}-byte stack")
        table = struct.pack(f"<{len(words)}Q", *(w & 0xFFFF_FFFF_FFFF_FFFF for w in words))
        ctypes.memmove(rsp, table, len(table))
        ctypes.memset(rsp + len(table), 0, p - (rsp + len(table)))
    except BaseException:
        unmap_region(stack, stack_size)
        raise
    return stack, stack_size, rsp
