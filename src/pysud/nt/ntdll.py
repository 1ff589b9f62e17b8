"""pysud's ntdll.dll: a real PE image built in memory, with the stubs and exports Windows code expects.

Every NT call of the profile gets a 32-byte stub with the bytes Windows uses, laid out in
syscall-number order, exported as both ``NtX`` and ``ZwX`` (one address, as in Windows)::

    4c 8b d1              mov r10, rcx
    b8 NN NN 00 00        mov eax, NN
    f6 04 25 08 03 fe 7f  test byte [0x7ffe0308], 1     ; KUSER_SHARED_DATA.SystemCall
    01
    75 03                 jne +3
    0f 05                 syscall                       ; trap path: SUD sends it to Python
    c3                    ret
    e9 <rel32>            jmp trampoline                ; where Windows has int 2e; ret

The trampoline is the flip-switch path: it loads the thread block from the TEB and jumps to the
core's direct entry (no kernel trap) with r11 = a ``ret``.  With ``direct=True`` (the personality
asks for it when rewriting is on) the ``jne +3`` is a ``jmp +3``: every call through the stubs
takes that path whatever SystemCall says, and the ``syscall`` at +0x12 stays for code that jumps
to it (indirect syscalls), which traps.  (Windows' stub cannot be rewritten as a program's site
is: the instruction before its ``syscall`` is the ``jne``.)  The user-mode helpers that ntdll-only
programs import (RtlInitUnicodeString, RtlAllocateHeap, memset, ...) have the same kind of stub
with numbers of pysud's own, above every build's table, and run in Python too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .. import _memory as memory

#: Numbers of pysud's own calls (helpers); above the largest NT table (0x1e5 on Windows 11 23H2).
PRIVATE: dict[int, str] = {
    0x1F0: "PysudReturn",  # the end of a guest function called from Python (call thunk)
    0x1F1: "RtlInitUnicodeString",
    0x1F2: "RtlInitAnsiString",
    0x1F3: "RtlAllocateHeap",
    0x1F4: "RtlFreeHeap",
    0x1F5: "RtlReAllocateHeap",
    0x1F6: "RtlSizeHeap",
    0x1F7: "RtlNtStatusToDosError",
    0x1F8: "RtlGetCurrentPeb",
    0x1F9: "RtlExitUserProcess",
    0x1FA: "memset",
    0x1FB: "memcpy",
    0x1FC: "memmove",
    0x1FD: "strlen",
    0x1FE: "wcslen",
    0x1FF: "PysudNtClose",  # NtClose on the trap path (see NR_CLOSE_ALIAS)
}
#: NtClose is number 0xf on every Windows 10/11 build, which is Linux's rt_sigreturn: the core
#: runs a trapped rt_sigreturn itself, before any handler.  Until the core tells the two apart
#: (by call address), the trampoline's trap path renumbers 0xf to this private alias.
NR_CLOSE = 0x0F
NR_CLOSE_ALIAS = 0x1FF
PYSUD_RETURN = 0x1F0

STUB_SIZE = 0x20
#: TEB offset where the personality keeps the thread block for the direct entry (past the
#: real TEB's 0x1838 bytes, inside its two pages).
TEB_THREAD_BLOCK = 0x1FF8
KUSER_SYSTEM_CALL = 0x7FFE0308

IMAGE_BASE_HINT = 0x7FF700000000
_SECTION_ALIGN = 0x1000


def _stub(nr: int, at: int, trampoline: int, direct: bool = False) -> bytes:
    head = (
        b"\x4c\x8b\xd1\xb8"
        + struct.pack("<I", nr)
        + b"\xf6\x04\x25"
        + struct.pack("<I", KUSER_SYSTEM_CALL)
        + (b"\x01\xeb\x03" if direct else b"\x01\x75\x03")  # jmp +3 / jne +3
        + b"\x0f\x05\xc3"
    )
    assert len(head) == 0x15
    jmp = b"\xe9" + struct.pack("<i", trampoline - (at + 0x15 + 5))
    return (head + jmp).ljust(STUB_SIZE, b"\xcc")


@dataclass
class NtdllImage:
    """The mapped image and where things are in it."""

    base: int
    size: int
    exports: dict[str, int]  # name -> absolute address
    stubs: dict[int, int]  # syscall number -> stub address
    call_thunk: int  # enter with rsp at [fn, a1, a2, a3, a4]: calls fn(a1..a4), then PysudReturn(rax)
    direct_slot: int  # absolute address of the qword the trampoline jumps through
    text: tuple[int, int] = (0, 0)  # (start, size) of the code
    mappings: list[tuple[int, int]] = field(default_factory=list)

    def release(self) -> None:
        for addr, size in self.mappings:
            memory.unmap(addr, size)
        self.mappings.clear()


def _align(x: int, a: int = _SECTION_ALIGN) -> int:
    return (x + a - 1) & ~(a - 1)


def build(table: dict[int, str], os_version: tuple[int, int, int], direct: bool = False) -> NtdllImage:
    """Map a fresh ntdll.dll for one syscall table (a profile); ``direct``: the stubs always take
    the trampoline (the direct entry once the personality fills its slot), not SystemCall's pick."""
    calls = sorted(table.items())
    helpers = sorted(PRIVATE.items())
    text_rva = _SECTION_ALIGN
    n_stubs = len(calls) + len(helpers)
    tramp_off = n_stubs * STUB_SIZE
    thunk_off = tramp_off + 0x40
    text_size = thunk_off + 0x40
    rdata_rva = text_rva + _align(text_size)

    # ---- export directory (in .rdata)
    functions: list[int] = []  # RVAs, index = ordinal - 1
    names: list[tuple[str, int]] = []
    for i, (_nr, name) in enumerate(calls):
        functions.append(text_rva + i * STUB_SIZE)
        names.append((name, i))
        if name.startswith("Nt"):
            names.append(("Zw" + name[2:], i))
    for j, (nr, name) in enumerate(helpers):
        if nr == PYSUD_RETURN:
            continue
        functions.append(text_rva + (len(calls) + j) * STUB_SIZE)
        names.append((name, len(functions) - 1))
    # helper indices: recompute so that the function list matches what was appended
    names.sort(key=lambda t: t[0].encode())
    dll_name = b"ntdll.dll\0"
    exp = bytearray(40)
    funcs_off = len(exp)
    exp += b"".join(struct.pack("<I", f) for f in functions)
    names_off = len(exp)
    exp += bytes(4 * len(names))
    ords_off = len(exp)
    exp += b"".join(struct.pack("<H", idx) for _n, idx in names)
    dllname_off = len(exp)
    exp += dll_name
    name_rvas = []
    for name, _idx in names:
        name_rvas.append(rdata_rva + len(exp))
        exp += name.encode() + b"\0"
    struct.pack_into(f"<{len(names)}I", exp, names_off, *name_rvas)
    struct.pack_into(
        "<IIHHIIIIIII",
        exp,
        0,
        0,
        0,
        0,
        0,
        rdata_rva + dllname_off,
        1,
        len(functions),
        len(names),
        rdata_rva + funcs_off,
        rdata_rva + names_off,
        rdata_rva + ords_off,
    )
    data_rva = rdata_rva + _align(len(exp))
    size = data_rva + _SECTION_ALIGN

    base = memory.map_anywhere(size, memory.PROT_READ | memory.PROT_WRITE, "ntdll.dll", align=0x10000)
    image = bytearray(size)

    # ---- headers
    image[0:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, 0x40)
    image[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", image, 0x44, 0x8664, 3, 0, 0, 0, 240, 0x2022)
    major, minor, _build = os_version
    struct.pack_into(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        image,
        0x58,
        0x20B,
        14,
        0,
        _align(text_size),
        _align(len(exp)) + _SECTION_ALIGN,
        0,
        0,
        text_rva,
        base,
        _SECTION_ALIGN,
        _SECTION_ALIGN,
        major,
        minor,
        major,
        minor,
        major,
        minor,
        0,
        size,
        _SECTION_ALIGN,
        0,
        3,
        0x160,
        0x40000,
        0x1000,
        0x100000,
        0x1000,
        0,
        16,
    )
    struct.pack_into("<II", image, 0x58 + 112, rdata_rva, len(exp))  # export directory
    sections = [
        (b".text", text_size, text_rva, 0x60000020),
        (b".rdata", len(exp), rdata_rva, 0x40000040),
        (b".data", 8, data_rva, 0xC0000040),
    ]
    for k, (sname, vsize, rva, chars) in enumerate(sections):
        struct.pack_into(
            "<8sIIIIIIHHI", image, 0x148 + 40 * k, sname, vsize, rva, _align(vsize), rva, 0, 0, 0, 0, chars
        )

    # ---- code
    text = base + text_rva
    tramp = text + tramp_off
    stubs: dict[int, int] = {}
    for i, (nr, _name) in enumerate(calls + helpers):
        at = text + i * STUB_SIZE
        image[text_rva + i * STUB_SIZE : text_rva + (i + 1) * STUB_SIZE] = _stub(nr, at, tramp, direct)
        stubs[nr] = at
    slot = base + data_rva
    # With the slot set: the direct entry (flip-switch path).  Without: the trap path, with
    # NtClose renumbered (NR_CLOSE_ALIAS).  Offsets: cmp 0..8, je 8..10, mov rcx 10..19,
    # lea 19..26, jmp 26..32, trap: cmp 32..35, jne 35..37, mov eax 37..42, syscall 42..44, ret 44.
    ret_at = tramp + 44
    code = (
        b"\x48\x83\x3d"
        + struct.pack("<i", slot - (tramp + 8))
        + b"\x00"  # cmp qword [rip -> slot], 0
        + b"\x74\x16"  # je trap
        + b"\x65\x48\x8b\x0c\x25"
        + struct.pack("<I", TEB_THREAD_BLOCK)  # mov rcx, gs:[TEB_THREAD_BLOCK]
        + b"\x4c\x8d\x1d"
        + struct.pack("<i", ret_at - (tramp + 26))  # lea r11, [rip -> ret]
        + b"\xff\x25"
        + struct.pack("<i", slot - (tramp + 32))  # jmp [rip -> direct entry]
        + b"\x83\xf8"
        + bytes([NR_CLOSE])  # trap: cmp eax, 0xf
        + b"\x75\x05"  # jne +5
        + b"\xb8"
        + struct.pack("<I", NR_CLOSE_ALIAS)  # mov eax, alias
        + b"\x0f\x05"  # syscall
        + b"\xc3"  # ret: where the call "returns" to, on both paths
    )
    assert len(code) == 45
    image[text_rva + tramp_off : text_rva + tramp_off + len(code)] = code
    thunk = (
        b"\x58\x59\x5a\x41\x58\x41\x59"  # pop rax, rcx, rdx, r8, r9
        + b"\x48\x83\xec\x28"  # sub rsp, 0x28
        + b"\xff\xd0"  # call rax
        + b"\x48\x89\xc1\x4c\x8b\xd1"  # mov rcx, rax; mov r10, rcx
        + b"\xb8"
        + struct.pack("<I", PYSUD_RETURN)
        + b"\x0f\x05\x0f\x0b"  # syscall; ud2
    )
    image[text_rva + thunk_off : text_rva + thunk_off + len(thunk)] = thunk
    image[rdata_rva : rdata_rva + len(exp)] = exp

    memory.poke(base, bytes(image))
    memory.protect(base, _SECTION_ALIGN, memory.PROT_READ, "ntdll.dll headers")
    memory.protect(text, _align(text_size), memory.PROT_READ | memory.PROT_EXEC, "ntdll.dll .text")
    memory.protect(base + rdata_rva, _align(len(exp)), memory.PROT_READ, "ntdll.dll .rdata")
    exports = {name: base + functions[idx] for name, idx in names}
    return NtdllImage(
        base=base,
        size=size,
        exports=exports,
        stubs=stubs,
        call_thunk=text + thunk_off,
        direct_slot=slot,
        text=(text, _align(text_size)),
        mappings=[(base, size)],
    )
