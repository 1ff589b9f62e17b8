"""NT section calls: image sections (SEC_IMAGE views DLLs load through), data sections, NLS files."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ... import _memory as memory
from .. import image, objects
from .. import status as st
from ..pe import PELoadError

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

SEC_IMAGE = 0x1000000
SEC_IMAGE_NO_EXECUTE = 0x11000000
SECTION_BASIC_INFORMATION = 0
SECTION_IMAGE_INFORMATION = 1
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF


@dataclass(eq=False)
class Section(objects.NtObject):
    """An image section (a PE file's headers) or a data section (a file or anonymous shared memory)."""

    size: int
    protect: int
    info: image.ImageInfo | None = None
    fd: int = -1  # data sections: the backing file (a memfd for pagefile-backed ones)
    type_name = "Section"

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def NtCreateSection(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, _oa, size_ptr, protect, attributes, file_handle = call.args[:7]
    attributes &= 0xFFFFFFFF
    protect &= 0xFFFFFFFF
    f = nt.handles.get(file_handle) if file_handle else None
    if file_handle and not isinstance(f, objects.File):
        return st.STATUS_INVALID_HANDLE
    if attributes & SEC_IMAGE == SEC_IMAGE:
        if not isinstance(f, objects.File) or not f.path or f.directory:
            return st.STATUS_INVALID_FILE_FOR_SECTION
        try:
            info = image.read_info(f.path)
        except PELoadError:
            return st.STATUS_INVALID_IMAGE_FORMAT
        sec = Section(size=info.size, protect=protect, info=info, fd=os.dup(f.fd))
    else:
        size = struct.unpack("<Q", call.read(size_ptr, 8))[0] if size_ptr else 0
        if isinstance(f, objects.File):
            length = os.fstat(f.fd).st_size
            if not size:
                size = length
            if not size:
                return st.STATUS_MAPPED_FILE_SIZE_ZERO
            if size > length and f.access & 0x2:  # grows a writable file, as Windows does
                os.ftruncate(f.fd, size)
            fd = os.dup(f.fd)
        else:
            if not size:
                return st.STATUS_INVALID_PARAMETER
            fd = os.memfd_create("pysud-section", os.MFD_CLOEXEC)
            os.ftruncate(fd, size)
        sec = Section(size=size, protect=protect, fd=fd)
    nt.put_handle(call, out, sec)
    return st.STATUS_SUCCESS


def NtOpenSection(nt: NtPersonality, call: NtSyscall) -> int:
    return st.STATUS_OBJECT_NAME_NOT_FOUND


def NtQuerySection(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, ret = call.args[:5]
    sec = nt.handles.get(handle)
    if not isinstance(sec, Section):
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    if cls == SECTION_BASIC_INFORMATION:
        attrs = SEC_IMAGE if sec.info else 0x8000000  # SEC_COMMIT
        data = struct.pack("<QIIQ", 0, attrs, 0, sec.size)
    elif cls == SECTION_IMAGE_INFORMATION:
        if sec.info is None:
            return st.STATUS_SECTION_NOT_IMAGE
        data = sec.info.section_image_information()
    else:
        return nt._unimplemented_class(call, cls)
    return nt.put_info(call, buf, length, ret, data, ret64=True)


def NtMapViewOfSection(nt: NtPersonality, call: NtSyscall) -> int:
    handle, proc, base_ptr, _zero_bits, _commit, offset_ptr, size_ptr, _inherit, _alloc, protect = call.args[
        :10
    ]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    sec = nt.handles.get(handle)
    if not isinstance(sec, Section):
        return st.STATUS_INVALID_HANDLE
    (want,) = struct.unpack("<Q", call.read(base_ptr, 8))
    if sec.info is not None:
        try:
            view = image.map_view(sec.info, sec.fd, at=want)
        except PELoadError:
            return st.STATUS_CONFLICTING_ADDRESSES
        except Exception:  # noqa: BLE001 - any mapping failure is an NTSTATUS for the program
            return st.STATUS_NO_MEMORY
        nt.views[view.base] = view
        nt.put_u64(call, base_ptr, view.base)
        nt.put_u64(call, size_ptr, view.size)
        return st.STATUS_IMAGE_NOT_AT_BASE if view.moved else st.STATUS_SUCCESS
    offset = struct.unpack("<q", call.read(offset_ptr, 8))[0] if offset_ptr else 0
    (size,) = struct.unpack("<Q", call.read(size_ptr, 8)) if size_ptr else (0,)
    if offset < 0 or offset & 0xFFFF:
        return st.STATUS_MAPPED_ALIGNMENT
    if not size:
        size = sec.size - offset
    if size <= 0 or offset + size > sec.size:
        return st.STATUS_INVALID_VIEW_SIZE
    protect &= 0xFFFFFFFF
    prot = {0x02: 1, 0x04: 3, 0x08: 3, 0x10: 5, 0x20: 5, 0x40: 7, 0x80: 7}.get(protect & 0xFF, 1)
    flags = memory.MAP_PRIVATE if protect & 0xFF in (0x08, 0x80) else memory.MAP_SHARED
    if want:
        flags |= memory.MAP_FIXED_NOREPLACE
    try:
        got = memory.map_fd(want, size, prot, flags, sec.fd, offset, "NtMapViewOfSection")
    except memory.MappingError:
        return st.STATUS_CONFLICTING_ADDRESSES if want else st.STATUS_NO_MEMORY
    view = image.ImageView(info=None, base=got, size=(size + 0xFFF) & ~0xFFF)
    view.regions.append((0, view.size, protect & 0xFF or 0x02))
    nt.views[view.base] = view
    nt.put_u64(call, base_ptr, view.base)
    nt.put_u64(call, size_ptr, size)
    return st.STATUS_SUCCESS


def NtUnmapViewOfSection(nt: NtPersonality, call: NtSyscall) -> int:
    proc, base = call.args[:2]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    for start, view in list(nt.views.items()):
        if start <= base < start + view.size:
            if nt.wine is not None and start == nt.wine.base:
                return st.STATUS_INVALID_PARAMETER
            view.release()
            del nt.views[start]
            return st.STATUS_SUCCESS
    return st.STATUS_NOT_MAPPED_VIEW


def NtUnmapViewOfSectionEx(nt: NtPersonality, call: NtSyscall) -> int:
    return NtUnmapViewOfSection(nt, call)


# ---- NLS data (Wine's nls directory): mapped read-only, once per file

NLS_SECTION_SORTKEYS = 9
NLS_SECTION_CASEMAP = 10
NLS_SECTION_CODEPAGE = 11
NLS_SECTION_NORMALIZE = 12
_NORMALIZATION = {
    1: "normnfc.nls",
    2: "normnfd.nls",
    5: "normnfkc.nls",
    6: "normnfkd.nls",
    13: "normidna.nls",
}


def _nls_file(kind: int, ident: int) -> str | None:
    if kind == NLS_SECTION_SORTKEYS:
        return "sortdefault.nls"
    if kind == NLS_SECTION_CASEMAP:
        return "l_intl.nls"
    if kind == NLS_SECTION_CODEPAGE:
        return f"c_{ident:03d}.nls"
    if kind == NLS_SECTION_NORMALIZE:
        return _NORMALIZATION.get(ident)
    return None


def _map_nls(nt: NtPersonality, name: str) -> tuple[int, int] | None:
    got = nt.nls_views.get(name)
    if got is not None:
        return got
    if nt.prefix is None or nt.prefix.nls is None:
        return None
    path = os.path.join(nt.prefix.nls, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        length = os.fstat(fd).st_size
        size = (length + 0xFFF) & ~0xFFF
        if not length:
            return None
        addr = memory.map_fd(0, size, memory.PROT_READ, memory.MAP_PRIVATE, fd, 0, path)  # the file's pages
    except (OSError, memory.MappingError):
        return None
    finally:
        os.close(fd)
    nt.nls_views[name] = (addr, length)
    view = image.ImageView(info=None, base=addr, size=size)
    view.regions.append((0, size, 0x02))
    nt.views[addr] = view
    return addr, length


def NtGetNlsSectionPtr(nt: NtPersonality, call: NtSyscall) -> int:
    kind, ident, _unknown, ptr, size_ptr = call.args[:5]
    name = _nls_file(kind & 0xFFFFFFFF, ident & 0xFFFFFFFF)
    got = _map_nls(nt, name) if name else None
    if got is None:
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    nt.put_u64(call, ptr, got[0])
    nt.put_u64(call, size_ptr, got[1])
    return st.STATUS_SUCCESS


def NtInitializeNlsFiles(nt: NtPersonality, call: NtSyscall) -> int:
    ptr, lcid_ptr, size_ptr = call.args[:3]
    got = _map_nls(nt, "locale.nls")
    if got is None:
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    nt.put_u64(call, ptr, got[0])
    nt.put_u32(call, lcid_ptr, nt.lcid)
    nt.put_u64(call, size_ptr, got[1])
    return st.STATUS_SUCCESS


HANDLERS = {
    "NtCreateSection": NtCreateSection,
    "NtOpenSection": NtOpenSection,
    "NtQuerySection": NtQuerySection,
    "NtMapViewOfSection": NtMapViewOfSection,
    "NtUnmapViewOfSection": NtUnmapViewOfSection,
    "NtUnmapViewOfSectionEx": NtUnmapViewOfSectionEx,
    "NtGetNlsSectionPtr": NtGetNlsSectionPtr,
    "NtInitializeNlsFiles": NtInitializeNlsFiles,
}
