"""Image sections: a PE file mapped as the NT kernel maps a SEC_IMAGE view (no imports, no fix-ups).

The kernel's part of loading a DLL is small: headers and sections at their RVAs with their
protections, at the preferred base when it is free (else elsewhere, and the caller hears
STATUS_IMAGE_NOT_AT_BASE: ntdll relocates the image itself).  :class:`ImageInfo` is what
NtQuerySection(SectionImageInformation) reports.  Headers are read with pefile's fast load only
(no directory is parsed), so a 6.5 MB kernelbase costs a few milliseconds; parsed headers (and
the export table of the DLLs pysud reads it from, ntdll) are cached per file (path, size, mtime),
in the process and in a file in the prefix, so a warm start does not import pefile at all.
Sections whose file offset and address are page-aligned (Wine's DLLs: FileAlignment 0x1000) are
mapped from the file, copy-on-write, as the NT kernel and Wine map images; others are copied.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import _memory as memory
from .._errors import PysudError

if TYPE_CHECKING:
    import pefile  # imported where a file is parsed: a warm start on Wine's DLLs needs none

IMAGE_FILE_MACHINE_AMD64 = 0x8664
PE32_PLUS = 0x20B
SCN_EXECUTE = 0x20000000
SCN_READ = 0x40000000
SCN_WRITE = 0x80000000
SCN_UNINITIALIZED = 0x80
ALLOCATION_GRANULARITY = 0x10000
#: SECTION_IMAGE_INFORMATION.ImageFlags bits
IMAGE_FLAGS_DYNAMICALLY_RELOCATED = 0x04
IMAGE_FLAGS_WINE_BUILTIN = 0x40
WINE_BUILTIN_SIGNATURE = b"Wine builtin DLL"
#: PAGE_* protection of a section from its characteristics (the NT values)
_PAGE = {0: 0x01, 1: 0x02, 3: 0x04, 4: 0x10, 5: 0x20, 7: 0x40, 6: 0x40, 2: 0x04}


class PELoadError(PysudError):
    """A Windows program or image cannot be loaded; the message names the file and the reason.

    A mapping that fails while loading (``_memory.MappingError``) is reported as this error, the
    MappingError its ``__cause__``."""


_page_up = memory.page_up


@dataclass(frozen=True)
class Section:
    rva: int
    vsize: int  # page-rounded virtual size
    raw_offset: int
    raw_size: int
    prot: int  # Linux PROT_*
    page_prot: int  # NT PAGE_*
    name: str = ""


@dataclass(frozen=True)
class ImageInfo:
    """The headers of one PE32+ image file, as the kernel needs them."""

    path: str
    image_base: int
    size: int  # SizeOfImage, page-rounded
    headers_size: int
    entry_rva: int
    stack_reserve: int
    stack_commit: int
    subsystem: int
    subsystem_version: tuple[int, int]
    os_version: tuple[int, int]
    characteristics: int
    dll_characteristics: int
    loader_flags: int
    checksum: int
    file_size: int
    builtin: bool
    has_code: bool
    relocatable: bool
    sections: tuple[Section, ...]

    @property
    def is_dll(self) -> bool:
        return bool(self.characteristics & 0x2000)

    def section_image_information(self, flags: int = 0) -> bytes:
        """SECTION_IMAGE_INFORMATION (x64, 0x40 bytes)."""
        if self.builtin:
            flags |= IMAGE_FLAGS_WINE_BUILTIN
        return struct.pack(
            "<QI4xQQIHHHHHHHBBIII",
            self.image_base + self.entry_rva,
            0,
            self.stack_reserve,
            self.stack_commit,
            self.subsystem,
            self.subsystem_version[1],
            self.subsystem_version[0],
            self.os_version[0],
            self.os_version[1],
            self.characteristics,
            self.dll_characteristics,
            IMAGE_FILE_MACHINE_AMD64,
            int(self.has_code),
            flags,
            self.loader_flags,
            self.file_size,
            self.checksum,
        )


_Key = tuple[str, int, int]  # (path, size, mtime_ns)
_CACHE: dict[_Key, ImageInfo] = {}
_EXPORTS: dict[_Key, ExportTable] = {}
#: a file of parsed headers that outlives the process (set by the personality: in the prefix)
DISK_CACHE: str | None = None
#: the disk cache's layout; a file of another version is ignored (and rewritten)
DISK_CACHE_VERSION = 3
_disk_loaded = False
_disk_dirty = False


def use_disk_cache(path: str) -> None:
    """Keep parsed headers in ``path`` too (read now, written by save_disk_cache)."""
    global DISK_CACHE, _disk_loaded
    if path != DISK_CACHE:
        DISK_CACHE = path
        _disk_loaded = False


def _key(path: str) -> _Key:
    try:
        st = os.stat(path)
    except OSError as e:
        raise PELoadError(f"{path}: cannot read: {e.strerror}") from None
    return (path, st.st_size, st.st_mtime_ns)


def _load_disk_cache() -> None:
    global _disk_loaded
    _disk_loaded = True
    if DISK_CACHE is None:
        return
    try:
        with open(DISK_CACHE) as f:
            cache = json.load(f)
        if cache.get("version") != DISK_CACHE_VERSION:
            return
        images, exports = {}, {}
        for e in cache["images"]:
            e["sections"] = tuple(Section(**sec) for sec in e["sections"])
            e["subsystem_version"] = tuple(e["subsystem_version"])
            e["os_version"] = tuple(e["os_version"])
            key = (e["path"], e["file_size"], e.pop("mtime_ns"))
            images[key] = ImageInfo(**e)
        for path, size, mtime, base, functions, names in cache["exports"]:
            exports[(path, size, mtime)] = ExportTable(
                int(base), [int(f) for f in functions], {str(k): int(v) for k, v in names.items()}
            )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return  # no cache, or one from another version: headers are parsed again
    for key, info in images.items():
        _CACHE.setdefault(key, info)
    for key, names in exports.items():
        _EXPORTS.setdefault(key, names)


def _current(key: _Key) -> bool:
    """Is the file of a cache entry still the one parsed (same path, size and mtime)?"""
    try:
        return _key(key[0]) == key
    except PELoadError:
        return False


def save_disk_cache() -> None:
    """Write the parsed headers of every image seen to DISK_CACHE (atomically), if any are new;
    entries of files since removed or changed are left out (programs built and deleted, as tests
    do, would otherwise grow the file without end)."""
    global _disk_dirty
    if DISK_CACHE is None or not _disk_dirty:
        return
    images = []
    for key, info in _CACHE.items():
        if _current(key):
            e = dataclasses.asdict(info)
            e["mtime_ns"] = key[2]
            images.append(e)
    exports = [[*key, t.ordinal_base, t.functions, t.names] for key, t in _EXPORTS.items() if _current(key)]
    tmp = f"{DISK_CACHE}.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump({"version": DISK_CACHE_VERSION, "images": images, "exports": exports}, f)
        os.replace(tmp, DISK_CACHE)
        _disk_dirty = False
    except OSError:
        pass


@dataclass(frozen=True)
class ExportTable:
    """A DLL's export directory as pefile reads it: ordinal base, function RVAs, names."""

    ordinal_base: int
    functions: list[int]  # RVA per ordinal - ordinal_base (0: unused)
    names: dict[str, int]  # name -> index into functions


def export_table(path: str) -> ExportTable:
    """The export directory of a DLL (pefile; cached per file, in the process and on disk)."""
    global _disk_dirty
    key = _key(path)
    if not _disk_loaded:
        _load_disk_cache()
    got = _EXPORTS.get(key)
    if got is not None:
        return got
    import pefile

    try:
        pe = pefile.PE(path, fast_load=True)
        pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]])
    except pefile.PEFormatError as e:
        raise PELoadError(f"{path}: malformed PE file: {e.value}") from None
    directory = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    base = directory.struct.Base if directory is not None else 1
    functions = [0] * (directory.struct.NumberOfFunctions if directory is not None else 0)
    names: dict[str, int] = {}
    for sym in getattr(directory, "symbols", []):
        index = sym.ordinal - base
        if 0 <= index < len(functions):
            functions[index] = sym.address or 0
            if sym.name:
                names[sym.name.decode(errors="replace")] = index
    got = _EXPORTS[key] = ExportTable(base, functions, names)
    _disk_dirty = True
    return got


def section_data(info: ImageInfo, name: str) -> bytes | None:
    """The raw bytes of the image's section ``name`` as stored in the file, or None if it has none."""
    for s in info.sections:
        if s.name == name:
            with open(info.path, "rb") as f:
                f.seek(s.raw_offset)
                return f.read(s.raw_size)
    return None


def _prot(characteristics: int) -> int:
    prot = 0
    if characteristics & SCN_READ:
        prot |= memory.PROT_READ
    if characteristics & SCN_WRITE:
        prot |= memory.PROT_READ | memory.PROT_WRITE
    if characteristics & SCN_EXECUTE:
        prot |= memory.PROT_READ | memory.PROT_EXEC
    return prot


def read_info(path: str) -> ImageInfo:
    """Parse (or take from the cache) the headers of a PE32+ image; PELoadError if it is not one."""
    key = _key(path)
    file_size = key[1]
    if not _disk_loaded:
        _load_disk_cache()
    info = _CACHE.get(key)
    if info is not None:
        return info
    try:
        with open(path, "rb") as f:
            head = f.read(0x1000)
            if head[:2] != b"MZ":
                raise PELoadError(f"{path}: not a PE file (no MZ header)")
            (nt_off,) = struct.unpack_from("<I", head, 0x3C) if len(head) >= 0x40 else (0,)
            # The section table may run past the first page: read what the headers claim.
            want = min(max(0x1000, nt_off + 0x400), file_size, 1 << 20)
            if want > len(head):
                f.seek(0)
                head = f.read(want)
    except OSError as e:
        raise PELoadError(f"{path}: cannot read: {e.strerror}") from None
    info = info_of(path, head, file_size)
    _CACHE[key] = info
    global _disk_dirty
    _disk_dirty = True
    return info


def info_of(path: str, head: bytes, file_size: int, pe: pefile.PE | None = None) -> ImageInfo:
    """The ImageInfo of an image whose file starts with ``head`` (its headers, at least); no cache.
    ``pe``: the file already parsed by pefile, if the caller has it."""
    if pe is None:
        import pefile

        try:
            pe = pefile.PE(data=head, fast_load=True)
        except pefile.PEFormatError as e:
            raise PELoadError(f"{path}: malformed PE file: {e.value}") from None
    opt = pe.OPTIONAL_HEADER
    machine = pe.FILE_HEADER.Machine
    if machine == 0x014C or opt.Magic != PE32_PLUS:
        raise PELoadError(f"{path}: a 32-bit (PE32) program; pysud runs x64 (PE32+) programs only")
    if machine != IMAGE_FILE_MACHINE_AMD64:
        raise PELoadError(f"{path}: machine type {machine:#x} is not x64")
    size = _page_up(opt.SizeOfImage)
    if not 0 < size <= 1 << 31:
        raise PELoadError(f"{path}: image size {opt.SizeOfImage:#x} is not plausible")
    sections = []
    for s in pe.sections:
        vsize = _page_up(max(s.Misc_VirtualSize, 0) or s.SizeOfRawData)
        if not vsize:
            continue
        if s.VirtualAddress >= size or s.VirtualAddress & 0xFFF:
            name = s.Name.rstrip(b"\0").decode(errors="replace")
            raise PELoadError(f"{path}: section {name!r} lies outside the image")
        prot = _prot(s.Characteristics)
        raw = 0 if s.Characteristics & SCN_UNINITIALIZED and not s.PointerToRawData else s.SizeOfRawData
        sections.append(
            Section(
                rva=s.VirtualAddress,
                vsize=min(vsize, size - s.VirtualAddress),
                raw_offset=s.PointerToRawData,
                raw_size=min(raw, vsize, max(0, file_size - s.PointerToRawData)),
                prot=prot,
                page_prot=_PAGE[prot & 7],
                name=s.Name.rstrip(b"\0").decode(errors="replace"),
            )
        )
    reloc_dir = opt.DATA_DIRECTORY[5] if len(opt.DATA_DIRECTORY) > 5 else None
    return ImageInfo(
        path=path,
        image_base=opt.ImageBase,
        size=size,
        headers_size=min(_page_up(opt.SizeOfHeaders or 0x1000), size),
        entry_rva=opt.AddressOfEntryPoint,
        stack_reserve=opt.SizeOfStackReserve,
        stack_commit=opt.SizeOfStackCommit,
        subsystem=opt.Subsystem,
        subsystem_version=(opt.MajorSubsystemVersion, opt.MinorSubsystemVersion),
        os_version=(opt.MajorOperatingSystemVersion, opt.MinorOperatingSystemVersion),
        characteristics=pe.FILE_HEADER.Characteristics,
        dll_characteristics=opt.DllCharacteristics,
        loader_flags=opt.LoaderFlags,
        checksum=opt.CheckSum,
        file_size=file_size,
        builtin=head[0x40 : 0x40 + len(WINE_BUILTIN_SIGNATURE)] == WINE_BUILTIN_SIGNATURE,
        has_code=any(s.prot & memory.PROT_EXEC for s in sections),
        relocatable=bool(reloc_dir and reloc_dir.Size) and not pe.FILE_HEADER.Characteristics & 1,
        sections=tuple(sections),
    )


@dataclass
class ImageView:
    """One mapped view of an image section."""

    info: ImageInfo | None  # None for a data view (a file or NLS mapping)
    base: int
    size: int
    #: (rva, size, PAGE_* protection) for NtQueryVirtualMemory
    regions: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return self.info is not None and self.base != self.info.image_base

    def release(self) -> None:
        if self.size:
            memory.unmap(self.base, self.size)
            self.size = 0


def map_view(info: ImageInfo, fd: int | None = None, at: int = 0, *, final: bool = True) -> ImageView:
    """Map the image: at ``at`` if given, else its preferred base if free, else anywhere (64K aligned).

    Headers are copied from the file, sections mapped from it or copied (:func:`_fill_section`);
    ``final``: with the sections' protections (else everything stays writable until
    :func:`protect_view`, for a loader that fills the image in)."""
    rw = memory.PROT_READ | memory.PROT_WRITE
    size = info.size
    want = at or info.image_base
    try:
        base = memory.map_at(want, size, rw, info.path)
    except memory.MappingError as e:
        if e.errno != errno.EEXIST:  # not taken: no memory for it at all
            raise PELoadError(str(e)) from e
        if at:
            raise PELoadError(f"{info.path}: {at:#x} is in use") from e
        if not info.relocatable:
            raise PELoadError(
                f"{info.path}: its base {info.image_base:#x} is taken and it has no relocations"
            ) from e
        try:
            base = memory.map_anywhere(size, rw, info.path, align=ALLOCATION_GRANULARITY)
        except memory.MappingError as e2:
            raise PELoadError(str(e2)) from e2
    view = ImageView(info=info, base=base, size=size)
    try:
        own = fd is None
        if own:
            fd = os.open(info.path, os.O_RDONLY | os.O_CLOEXEC)
        assert fd is not None
        try:
            memory.poke(base, os.pread(fd, info.headers_size, 0))
            # file pages can be mapped where the file system lets them be executable
            mappable = not os.fstatvfs(fd).f_flag & os.ST_NOEXEC
            for s in info.sections:
                if s.raw_size:
                    _fill_section(info, fd, base + s.rva, s, mappable)
        finally:
            if own:
                os.close(fd)
        if final:
            protect_view(view)
    except BaseException:
        view.release()
        raise
    return view


def _fill_section(info: ImageInfo, fd: int, at: int, s: Section, mappable: bool) -> None:
    """A section's raw bytes at ``at``: the file's pages mapped copy-on-write when the file offset is
    page-aligned (the kernel reads only the pages the program touches), else copied."""
    if mappable and not s.raw_offset & 0xFFF:
        length = _page_up(s.raw_size)  # <= s.vsize; the bytes past raw_size are zeroed below
        rw = memory.PROT_READ | memory.PROT_WRITE
        try:
            memory.map_fd(at, length, rw, memory.MAP_PRIVATE | memory.MAP_FIXED, fd, s.raw_offset, info.path)
        except memory.MappingError:
            pass  # not a file the kernel maps (e.g. a pipe): copy
        else:
            if length > s.raw_size:
                memory.poke(at + s.raw_size, bytes(length - s.raw_size))
            return
    memory.poke(at, os.pread(fd, s.raw_size, s.raw_offset))


def protect_view(view: ImageView) -> None:
    """Give the headers and every section of an image view their protections (PELoadError if the
    kernel refuses one); ``view.regions`` says what they are."""
    info = view.info
    assert info is not None
    view.regions.clear()
    try:
        memory.protect(view.base, info.headers_size, memory.PROT_READ, info.path)
        view.regions.append((0, info.headers_size, 0x02))
        for s in info.sections:
            memory.protect(view.base + s.rva, s.vsize, s.prot, info.path)
            view.regions.append((s.rva, s.vsize, s.page_prot))
    except memory.MappingError as e:
        raise PELoadError(f"{info.path}: {e}") from e


def relocate(view: ImageView) -> None:
    """Apply the image's base relocations for where it was mapped (for images pysud starts itself)."""
    info = view.info
    if info is None or view.base == info.image_base:
        return
    memory.protect(view.base, view.size, memory.PROT_READ | memory.PROT_WRITE, info.path)
    try:
        apply_relocations(view)
    finally:
        protect_view(view)


def apply_relocations(view: ImageView, pe: pefile.PE | None = None) -> None:
    """Add the distance from the preferred base to every DIR64 relocation of a writable view
    (``pe``: the file parsed with its relocation directory, else it is read again)."""
    info = view.info
    if info is None:
        return
    delta = view.base - info.image_base
    if not delta:
        return
    if pe is None:
        import pefile

        try:
            pe = pefile.PE(info.path, fast_load=True)
            pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_BASERELOC"]])
        except pefile.PEFormatError as e:
            raise PELoadError(f"{info.path}: malformed relocations: {e.value}") from None
    for block in getattr(pe, "DIRECTORY_ENTRY_BASERELOC", []):
        for entry in block.entries:
            if entry.type == 0:  # IMAGE_REL_BASED_ABSOLUTE: padding
                continue
            if entry.type != 10 or not 0 <= entry.rva <= view.size - 8:  # IMAGE_REL_BASED_DIR64
                raise PELoadError(
                    f"{info.path}: relocation type {entry.type} at {entry.rva:#x} is not supported"
                )
            (value,) = struct.unpack("<Q", memory.peek(view.base + entry.rva, 8))
            memory.poke(view.base + entry.rva, struct.pack("<Q", (value + delta) & 0xFFFFFFFFFFFFFFFF))
