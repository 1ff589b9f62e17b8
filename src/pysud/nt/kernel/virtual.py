"""NT virtual memory: NtAllocate/Free/Protect/QueryVirtualMemory.

The personality keeps the state: ``regions`` (base -> [size, allocation protection]) of what
NtAllocateVirtualMemory reserved, ``pages`` (page -> (state, protection)) inside them, under
``vm_lock``; image and section views are ``nt.views``; anything else is read from the host's
/proc/self/maps.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ... import _memory as memory
from .. import status as st
from . import unixcall

if TYPE_CHECKING:
    from ..image import ImageView
    from ..personality import NtPersonality, NtSyscall

CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
MEM_COMMIT = 0x1000
MEM_RESERVE = 0x2000
MEM_DECOMMIT = 0x4000
MEM_RELEASE = 0x8000
MEM_FREE = 0x10000
MEM_PRIVATE = 0x20000
MEM_IMAGE = 0x1000000
MEM_MAPPED = 0x40000
MEMORY_WINE_UNIX_FUNCS = 1000
PAGE_PROTECTIONS = {
    0x01: memory.PROT_NONE,
    0x02: memory.PROT_READ,
    0x04: memory.PROT_READ | memory.PROT_WRITE,
    0x08: memory.PROT_READ | memory.PROT_WRITE,
    0x10: memory.PROT_READ | memory.PROT_EXEC,
    0x20: memory.PROT_READ | memory.PROT_EXEC,
    0x40: memory.PROT_READ | memory.PROT_WRITE | memory.PROT_EXEC,
    0x80: memory.PROT_READ | memory.PROT_WRITE | memory.PROT_EXEC,
}
_LINUX_TO_PAGE = {0: 0x01, 1: 0x02, 3: 0x04, 5: 0x20, 7: 0x40, 4: 0x10}


def NtAllocateVirtualMemory(nt: NtPersonality, call: NtSyscall) -> int:
    proc, base_ptr, _zero, size_ptr, kind, prot = call.args[:6]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    kind &= 0xFFFFFFFF
    prot &= 0xFFFFFFFF
    lin = PAGE_PROTECTIONS.get(prot & ~0x700)
    if lin is None:
        return st.STATUS_INVALID_PAGE_PROTECTION
    if not kind & (MEM_COMMIT | MEM_RESERVE) or kind & ~(MEM_COMMIT | MEM_RESERVE | 0x20180000):
        return st.STATUS_INVALID_PARAMETER
    (base,) = struct.unpack("<Q", call.read(base_ptr, 8))
    (size,) = struct.unpack("<Q", call.read(size_ptr, 8))
    if not size:
        return st.STATUS_INVALID_PARAMETER
    with nt.vm_lock:
        if kind & MEM_RESERVE or not base:  # a commit without an address reserves too
            start = base & ~0xFFFF
            end = (base + size + 0xFFF) & ~0xFFF
            span = end - start if base else (size + 0xFFF) & ~0xFFF
            committed = bool(kind & MEM_COMMIT)
            try:
                if base:
                    addr = memory.map_at(start, span, lin if committed else memory.PROT_NONE, "NtAllocate")
                else:
                    addr = memory.map_anywhere(
                        span, lin if committed else memory.PROT_NONE, "NtAllocate", align=0x10000
                    )
            except Exception:  # noqa: BLE001 - any mapping failure is an NTSTATUS for the program
                return st.STATUS_CONFLICTING_ADDRESSES if base else st.STATUS_NO_MEMORY
            nt.regions[addr] = [span, prot]
            state = MEM_COMMIT if committed else MEM_RESERVE
            for page in range(addr, addr + span, 0x1000):
                nt.pages[page] = (state, prot if committed else 0)
            base, size = addr, span
        else:  # commit inside a reservation
            start = base & ~0xFFF
            end = (base + size + 0xFFF) & ~0xFFF
            if any(p not in nt.pages for p in range(start, end, 0x1000)):
                return st.STATUS_CONFLICTING_ADDRESSES
            try:
                memory.protect(start, end - start, lin, "NtAllocate commit")
            except memory.MappingError:  # the host will not commit that much
                return st.STATUS_NO_MEMORY
            for page in range(start, end, 0x1000):
                nt.pages[page] = (MEM_COMMIT, prot)
            base, size = start, end - start
    nt.put_u64(call, base_ptr, base)
    nt.put_u64(call, size_ptr, size)
    return st.STATUS_SUCCESS


def view_of(nt: NtPersonality, addr: int) -> ImageView | None:
    for base, view in nt.views.items():
        if base <= addr < base + view.size:
            return view
    return None


def region_of(nt: NtPersonality, addr: int) -> int | None:
    for base, (span, _p) in nt.regions.items():
        if base <= addr < base + span:
            return base
    return None


def NtFreeVirtualMemory(nt: NtPersonality, call: NtSyscall) -> int:
    proc, base_ptr, size_ptr, kind = call.args[:4]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    kind &= 0xFFFFFFFF
    (base,) = struct.unpack("<Q", call.read(base_ptr, 8))
    (size,) = struct.unpack("<Q", call.read(size_ptr, 8))
    with nt.vm_lock:
        region = region_of(nt, base)
        if region is None:  # Wine's answer (Windows may say STATUS_MEMORY_NOT_ALLOCATED)
            return st.STATUS_INVALID_PARAMETER
        span = nt.regions[region][0]
        if kind == MEM_RELEASE:
            if size or base != region:
                return st.STATUS_FREE_VM_NOT_AT_BASE if base != region else st.STATUS_INVALID_PARAMETER
            memory.unmap(region, span)
            del nt.regions[region]
            for page in range(region, region + span, 0x1000):
                nt.pages.pop(page, None)
            base, size = region, span
        elif kind == MEM_DECOMMIT:
            start = base & ~0xFFF
            end = region + span if not size else (base + size + 0xFFF) & ~0xFFF
            memory.unmap(start, end - start)
            memory.map_at(start, end - start, memory.PROT_NONE, "NtFree decommit")
            for page in range(start, end, 0x1000):
                nt.pages[page] = (MEM_RESERVE, 0)
            base, size = start, end - start
        else:
            return st.STATUS_INVALID_PARAMETER
    nt.put_u64(call, base_ptr, base)
    nt.put_u64(call, size_ptr, size)
    return st.STATUS_SUCCESS


def NtProtectVirtualMemory(nt: NtPersonality, call: NtSyscall) -> int:
    proc, base_ptr, size_ptr, prot, old_ptr = call.args[:5]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    prot &= 0xFFFFFFFF
    lin = PAGE_PROTECTIONS.get(prot & ~0x700)
    if lin is None:
        return st.STATUS_INVALID_PAGE_PROTECTION
    (base,) = struct.unpack("<Q", call.read(base_ptr, 8))
    (size,) = struct.unpack("<Q", call.read(size_ptr, 8))
    start = base & ~0xFFF
    end = (base + max(size, 1) + 0xFFF) & ~0xFFF
    with nt.vm_lock:
        pages = range(start, end, 0x1000)
        if all(p in nt.pages for p in pages):
            if any(nt.pages[p][0] != MEM_COMMIT for p in pages):
                return st.STATUS_NOT_COMMITTED
            old = nt.pages[start][1]
            for p in pages:
                nt.pages[p] = (MEM_COMMIT, prot)
        else:
            host = host_protection(start)
            if host is None:
                return st.STATUS_NOT_COMMITTED
            old = host
        try:
            memory.protect(start, end - start, lin, "NtProtectVirtualMemory")
        except Exception:  # noqa: BLE001
            return st.STATUS_INVALID_PARAMETER
    nt.put_u32(call, old_ptr, old)
    nt.put_u64(call, base_ptr, start)
    nt.put_u64(call, size_ptr, end - start)
    return st.STATUS_SUCCESS


def host_mapping(addr: int) -> tuple[int, int, int] | None:
    """(start, end, PAGE_* protection) of the host mapping holding addr, from /proc/self/maps."""
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= addr < hi:
                bits = ("r" in perms) | ("w" in perms) << 1 | ("x" in perms) << 2
                return lo, hi, _LINUX_TO_PAGE.get(bits, 0x04)
    return None


def host_protection(addr: int) -> int | None:
    m = host_mapping(addr)
    return m[2] if m else None


def NtQueryVirtualMemory(nt: NtPersonality, call: NtSyscall) -> int:
    proc, addr, cls, buf, length, ret = call.args[:6]
    if proc != CURRENT_PROCESS:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    if cls == MEMORY_WINE_UNIX_FUNCS:
        handle = unixcall.unix_funcs_handle(nt, addr, view_of(nt, addr))
        if handle is None:
            return st.STATUS_DLL_NOT_FOUND
        nt.put_u64(call, buf, handle)
        return st.STATUS_SUCCESS
    if cls != 0:  # MemoryBasicInformation only
        return nt._unimplemented_class(call, cls)
    if length < 0x30:
        return st.STATUS_INFO_LENGTH_MISMATCH
    page = addr & ~0xFFF
    view = view_of(nt, page)
    with nt.vm_lock:
        region = region_of(nt, page)
        if view is not None:
            rva = page - view.base
            kind = MEM_IMAGE if view.info is not None else MEM_MAPPED
            alloc_prot = 0x80 if view.info is not None else 0x02  # PAGE_EXECUTE_WRITECOPY for images
            end = view.base + view.size
            m = host_mapping(page)
            if m is not None:
                end, prot = min(m[1], end), m[2]
            else:
                prot = next((p for start, span, p in view.regions if start <= rva < start + span), 0x02)
            info = (page, view.base, alloc_prot, end - page, MEM_COMMIT, prot, kind)
        elif region is not None:
            state, prot = nt.pages[page]
            end = page
            while nt.pages.get(end) == (state, prot):
                end += 0x1000
            info = (page, region, nt.regions[region][1], end - page, state, prot, MEM_PRIVATE)
        else:
            m = host_mapping(page)
            image = nt.image
            if m is None:
                info = (page, 0, 0, 0x1000, MEM_FREE, 0x01, 0)
            else:
                lo, hi, prot = m
                in_image = image is not None and image.base <= page < image.base + image.size
                kind = MEM_IMAGE if in_image else MEM_PRIVATE
                alloc = image.base if in_image and image is not None else lo
                info = (page, alloc, prot, hi - page, MEM_COMMIT, prot, kind)
    base, alloc, alloc_prot, size, state, prot, kind = info
    call.write(buf, struct.pack("<QQIHxxQIII4x", base, alloc, alloc_prot, 0, size, state, prot, kind))
    nt.put_u64(call, ret, 0x30)
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (NtAllocateVirtualMemory, NtFreeVirtualMemory, NtProtectVirtualMemory, NtQueryVirtualMemory)
}
