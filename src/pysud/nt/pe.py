"""Loading a PE32+ (x64 Windows) program with pefile: sections, protections, relocations, imports, TLS."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import _memory as memory
from . import image as image_mod
from .image import PELoadError as PELoadError
from .ntdll import NtdllImage

if TYPE_CHECKING:
    import pefile  # imported where a file is parsed: a warm start on Wine's DLLs needs none

IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_FILE_MACHINE_I386 = 0x014C
IMAGE_FILE_DLL = 0x2000
PE32_PLUS = 0x20B
MAX_IMAGE = 1 << 30
MAX_TLS_BLOCK = 1 << 19  # the TLS block comes from the process arena


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
    #: the mapped image (headers and sections, as an image section's view maps them)
    view: image_mod.ImageView | None = None

    def release(self) -> None:
        if self.view is not None:
            self.view.release()


def parse(path: str) -> tuple[pefile.PE, bytes]:
    """Parse and validate; PELoadError for anything pysud cannot run.  The parsed file and its bytes."""
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
    return pe, data


def load(path: str | os.PathLike[str], ntdll: NtdllImage) -> LoadedPE:
    """Map a program at its preferred base (or elsewhere, relocated) with its imports resolved.

    The mapping is an image section's (nt/image.py: headers and sections at their RVAs, their
    protections); what a loader adds is here: relocations, imports from pysud's ntdll, TLS."""
    path = os.fspath(path)
    pe, data = parse(path)
    info = image_mod.info_of(path, data, len(data), pe=pe)
    if info.size > MAX_IMAGE:
        raise PELoadError(f"{path}: image size {pe.OPTIONAL_HEADER.SizeOfImage:#x} is not plausible")
    view = image_mod.map_view(info, final=False)
    image = LoadedPE(
        path=path,
        base=view.base,
        size=view.size,
        entry=view.base + info.entry_rva,
        stack_reserve=info.stack_reserve or 0x100000,
        subsystem=info.subsystem,
        view=view,
    )
    try:
        image_mod.apply_relocations(view, pe)
        _fill(pe, image, ntdll)
        image_mod.protect_view(view)
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
    path, base = image.path, image.base
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
