"""Loading a PE32+ (x64 Windows) program with pefile: sections, protections, relocations, imports, TLS."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import _elf
from .._errors import PysudError
from . import memory
from .ntdll import NtdllImage

if TYPE_CHECKING:
    import pefile  # imported where a file is parsed: a warm start on Wine's DLLs needs none

IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_FILE_MACHINE_I386 = 0x014C
IMAGE_FILE_RELOCS_STRIPPED = 0x0001
IMAGE_FILE_DLL = 0x2000
PE32_PLUS = 0x20B
SCN_EXECUTE = 0x20000000
SCN_READ = 0x40000000
SCN_WRITE = 0x80000000
ALLOCATION_GRANULARITY = 0x10000
MAX_IMAGE = 1 << 30
MAX_TLS_BLOCK = 1 << 19  # the TLS block comes from the process arena


class PELoadError(PysudError):
    """A Windows program cannot be loaded; the message names the file and the reason."""


@dataclass
class LoadedPE:
    path: str
    base: int
    size: int
    entry: int
    stack_reserve: int
    subsystem: int
    tls_callbacks: list[int] = field(default_factory=list)
    #: (template start, template end, zero fill, address of the TLS index) or None
    tls: tuple[int, int, int, int] | None = None
    #: (rva, size, protection) of every section, for NtQueryVirtualMemory
    sections: list[tuple[int, int, int]] = field(default_factory=list)
    mappings: list[tuple[int, int]] = field(default_factory=list)

    def release(self) -> None:
        for addr, size in self.mappings:
            memory.unmap(addr, size)
        self.mappings.clear()


def _page_up(x: int) -> int:
    return (x + 0xFFF) & ~0xFFF


def _prot(characteristics: int) -> int:
    prot = 0
    if characteristics & SCN_READ:
        prot |= memory.PROT_READ
    if characteristics & SCN_WRITE:
        prot |= memory.PROT_READ | memory.PROT_WRITE
    if characteristics & SCN_EXECUTE:
        prot |= memory.PROT_READ | memory.PROT_EXEC
    return prot


def parse(path: str) -> pefile.PE:
    """Parse and validate; PELoadError for anything pysud cannot run."""
    import pefile

    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise PELoadError(f"{path}: is a directory, not a Windows program") from None
    except OSError as e:
        raise PELoadError(f"{path}: cannot read: {e.strerror}") from None
    if data[:2] != b"MZ":
        raise PELoadError(f"{path}: not a PE file (no MZ header)")
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError as e:
        raise PELoadError(f"{path}: malformed PE file: {e.value}") from None
    machine = pe.FILE_HEADER.Machine
    if machine == IMAGE_FILE_MACHINE_I386 or pe.OPTIONAL_HEADER.Magic != PE32_PLUS:
        raise PELoadError(f"{path}: a 32-bit (PE32) program; pysud runs x64 (PE32+) programs only")
    if machine != IMAGE_FILE_MACHINE_AMD64:
        raise PELoadError(f"{path}: machine type {machine:#x} is not x64")
    if pe.FILE_HEADER.Characteristics & IMAGE_FILE_DLL:
        raise PELoadError(f"{path}: a DLL, not a program")
    if not pe.OPTIONAL_HEADER.AddressOfEntryPoint:
        raise PELoadError(f"{path}: no entry point")
    try:
        pe.parse_data_directories(
            directories=[
                pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"],
                pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_BASERELOC"],
                pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_TLS"],
            ]
        )
    except pefile.PEFormatError as e:
        raise PELoadError(f"{path}: malformed PE file: {e.value}") from None
    return pe


def load(path: str | os.PathLike[str], ntdll: NtdllImage) -> LoadedPE:
    """Map a program at its preferred base (or elsewhere, relocated) with its imports resolved."""
    path = os.fspath(path)
    pe = parse(path)
    opt = pe.OPTIONAL_HEADER
    size = _page_up(opt.SizeOfImage)
    if not 0 < size <= MAX_IMAGE:
        raise PELoadError(f"{path}: image size {opt.SizeOfImage:#x} is not plausible")
    rw = memory.PROT_READ | memory.PROT_WRITE
    try:
        base = memory.map_at(opt.ImageBase, size, rw, path)
    except _elf.ELFLoadError:
        relocatable = not (pe.FILE_HEADER.Characteristics & IMAGE_FILE_RELOCS_STRIPPED) and hasattr(
            pe, "DIRECTORY_ENTRY_BASERELOC"
        )
        if not relocatable:
            raise PELoadError(
                f"{path}: its base {opt.ImageBase:#x} is taken and it has no relocations"
            ) from None
        base = memory.map_anywhere(size, rw, path, align=ALLOCATION_GRANULARITY)
    image = LoadedPE(
        path=path,
        base=base,
        size=size,
        entry=base + opt.AddressOfEntryPoint,
        stack_reserve=opt.SizeOfStackReserve or 0x100000,
        subsystem=opt.Subsystem,
        mappings=[(base, size)],
    )
    try:
        _fill(pe, image, ntdll)
    except _elf.ELFLoadError as e:  # a mapping the file's values make impossible: the file's fault
        image.release()
        raise PELoadError(f"{path}: {e}") from None
    except BaseException:
        image.release()
        raise
    return image


def _check(image: LoadedPE, addr: int, size: int, what: str) -> int:
    """``addr`` if [addr, addr + size) lies inside the mapped image, else PELoadError: every address
    taken from the file is checked before pysud reads or writes there."""
    if not (image.base <= addr and size >= 0 and addr + size <= image.base + image.size):
        raise PELoadError(f"{image.path}: {what} at {addr:#x} lies outside the image")
    return addr


def _fill(pe: pefile.PE, image: LoadedPE, ntdll: NtdllImage) -> None:
    import pefile

    path, base = image.path, image.base
    try:
        mapped = pe.get_memory_mapped_image(ImageBase=base)  # relocated when base differs
    except pefile.PEFormatError as e:
        raise PELoadError(f"{path}: cannot apply relocations: {e.value}") from None
    except (TypeError, ValueError, IndexError, struct.error) as e:  # pefile tripping over what it parsed
        raise PELoadError(f"{path}: malformed relocations ({e})") from None
    memory.poke(base, mapped[: image.size])
    delta = base - pe.OPTIONAL_HEADER.ImageBase

    missing = []
    for entry in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        dll = entry.dll.decode(errors="replace")
        if dll.lower() != "ntdll.dll":
            raise PELoadError(f"{path}: imports {dll}; pysud provides ntdll.dll only")
        for imp in entry.imports:
            if imp.name is None:
                raise PELoadError(
                    f"{path}: imports ntdll.dll ordinal {imp.ordinal}; only names are supported"
                )
            name = imp.name.decode(errors="replace")
            addr = ntdll.exports.get(name)
            if addr is None:
                missing.append(name)
                continue
            memory.poke(
                _check(image, imp.address + delta, 8, f"the import of {name}"), struct.pack("<Q", addr)
            )
    if missing:
        raise PELoadError(f"{path}: pysud's ntdll.dll does not export {', '.join(sorted(missing))}")

    tls = getattr(pe, "DIRECTORY_ENTRY_TLS", None)
    if tls is not None:
        t = tls.struct
        if t.AddressOfCallBacks:
            at = t.AddressOfCallBacks + delta
            while True:
                (cb,) = struct.unpack("<Q", memory.peek(_check(image, at, 8, "the TLS callback list"), 8))
                if not cb:
                    break
                image.tls_callbacks.append(cb)
                at += 8
        if t.AddressOfIndex:
            start = t.StartAddressOfRawData + delta if t.StartAddressOfRawData else 0
            end = t.EndAddressOfRawData + delta if t.EndAddressOfRawData else 0
            if start or end:
                _check(image, start, max(0, end - start), "the TLS template")
                if end < start:
                    raise PELoadError(f"{path}: the TLS template ends before it starts")
            if max(0, end - start) + t.SizeOfZeroFill > MAX_TLS_BLOCK:
                raise PELoadError(
                    f"{path}: a TLS block of more than {MAX_TLS_BLOCK:#x} bytes is not supported"
                )
            image.tls = (
                start,
                end,
                t.SizeOfZeroFill,
                _check(image, t.AddressOfIndex + delta, 4, "the TLS index"),
            )
            memory.poke(image.tls[3], b"\0\0\0\0")  # the program's only TLS index is 0

    headers = min(_page_up(pe.OPTIONAL_HEADER.SizeOfHeaders or 0x1000), image.size)
    memory.protect(base, headers, memory.PROT_READ, path)
    for s in pe.sections:
        vsize = _page_up(max(s.Misc_VirtualSize, s.SizeOfRawData))
        if not vsize:
            continue
        if s.VirtualAddress >= image.size or s.VirtualAddress & 0xFFF:
            raise PELoadError(f"{path}: a section at RVA {s.VirtualAddress:#x} lies outside the image")
        prot = _prot(s.Characteristics)
        memory.protect(base + s.VirtualAddress, min(vsize, image.size - s.VirtualAddress), prot, path)
        image.sections.append((s.VirtualAddress, vsize, prot))
