"""Wine's PE DLLs on pysud's NT kernel: ntdll.dll's numbering, the process start, the Unix-call stub.

Wine 8+ installs PE builds of its user-space DLLs (ntdll.dll, kernel32.dll, kernelbase.dll,
msvcrt.dll, ...).  Their ntdll makes real system calls through Windows-style stubs
(``mov r10, rcx; mov eax, NN; test byte [0x7ffe0308], 1; jne ...; syscall; ret``), numbered by
the ASCII order of Wine's syscall list; the numbers are read here from the loaded image, never
from a table.  Wine's own kernel (ntdll.so, wineserver) is not used: pysud is the kernel.

A process starts as on Windows: pysud maps ntdll.dll and the program (SEC_IMAGE views), builds
PEB/TEB/process parameters, and calls ``LdrInitializeThunk(&context)`` with a CONTEXT whose Rip
is RtlUserThreadStart, Rcx the entry point and Rdx the PEB.  ntdll loads kernel32 and the
imports through NtOpenFile/NtCreateSection/NtMapViewOfSection, runs the DLL initialisers and
ends with ``NtContinue(context)``, which starts the program.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .. import _memory as memory
from . import image
from .ntdll import TEB_THREAD_BLOCK
from .pe import PELoadError

#: pysud's own calls in Wine mode (above Wine's numbers, which end near 0xf0)
PYSUD_RETURN = 0x1F0
UNIX_CALL = 0x1F1
PYSUD_START = 0x1F2
PYSUD_FAULT = 0x1F3
PYSUD_KICK = 0x1F4
PRIVATE: dict[int, str] = {
    PYSUD_RETURN: "PysudReturn",
    UNIX_CALL: "__wine_unix_call",
    PYSUD_START: "PysudStart",
    PYSUD_FAULT: "PysudFault",
    PYSUD_KICK: "PysudKick",
}
#: Wine's own entries in its syscall list (numbered with the NT calls; not Windows calls)
WINE_ONLY_CALLS = (
    "__wine_dbg_write",
    "__wine_unix_spawnvp",
    "wine_nt_to_unix_file_name",
    "wine_server_call",
    "wine_server_fd_to_handle",
    "wine_server_handle_to_fd",
    "wine_unix_to_nt_file_name",
)
#: what Wine 8 reports by default ("win10")
WINDOWS_VERSION = (10, 0, 19043)
#: the Unix-call handle ntdll gets from NtQueryVirtualMemory(MemoryWineUnixFuncs)
NTDLL_UNIX_HANDLE = 0x5059_5355_4400_0001

_STUB = b"\x4c\x8b\xd1\xb8"  # mov r10, rcx; mov eax, imm32

# CONTEXT (x64), offsets
CONTEXT_SIZE = 0x4D0
CTX_FLAGS = 0x30
CTX_MXCSR = 0x34
CTX_SEGCS = 0x38
CTX_EFLAGS = 0x44
CTX_RAX = 0x78  # then rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15
CTX_RIP = 0xF8
CTX_FLTSAVE = 0x100
CONTEXT_AMD64 = 0x100000
CONTEXT_FULL = CONTEXT_AMD64 | 0x1 | 0x2 | 0x8
CTX_REGS = (
    "rax",
    "rcx",
    "rdx",
    "rbx",
    "rsp",
    "rbp",
    "rsi",
    "rdi",
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
)


@dataclass
class WineNtdll:
    """Wine's ntdll.dll, mapped, with its exports and its syscall numbering."""

    view: image.ImageView
    exports: dict[str, int]  # name -> absolute address
    table: dict[int, str]  # syscall number -> Nt name
    path: str = ""

    @property
    def base(self) -> int:
        return self.view.base

    def release(self) -> None:
        self.view.release()


#: a DLL's export directory (ordinal base, function RVAs, names), cached with the image headers
ExportTable = image.ExportTable
export_table = image.export_table


def exports_of(path: str) -> dict[str, int]:
    """Name -> RVA of a DLL's exports (cached per file, in the process and in the prefix)."""
    table = export_table(path)
    return {name: table.functions[i] for name, i in table.names.items()}


def numbering(exports: dict[str, int], base: int) -> dict[int, str]:
    """Syscall number -> Nt name, read from the stubs of the mapped ntdll (Hell's Gate, by the kernel)."""
    table: dict[int, str] = {}
    for name, rva in exports.items():
        code = memory.peek(base + rva, 8)
        if code[:4] != _STUB:
            continue
        (nr,) = struct.unpack_from("<I", code, 4)
        if name.startswith("Zw") and nr in table:
            continue
        table[nr] = name if not name.startswith("Zw") else "Nt" + name[2:]
    return table


#: the bytes a Wine-style stub's `syscall` ends with, 0x14 bytes from its start: ``jne +3; syscall``
_STUB_SYSCALL = b"\x75\x03\x0f\x05"


def stub_sites(stubs: Iterable[int]) -> frozenset[int]:
    """Where the `syscall` of each Wine-style stub at these addresses ends (a site's address for
    the rewrite): the instruction before it is the stub's ``jne``, which no trampoline can run
    elsewhere, so a rewrite planner need not decode them."""
    ends = set()
    for at in stubs:
        code = memory.peek(at, 0x14)
        if code[:4] == _STUB and code[0x10:] == _STUB_SYSCALL:
            ends.add(at + 0x14)
    return frozenset(ends)


def load_ntdll(dll_dir: str) -> WineNtdll:
    path = os.path.join(dll_dir, "ntdll.dll")
    info = image.read_info(path)
    view = image.map_view(info)
    try:
        if view.moved:
            image.relocate(view)
        rvas = exports_of(path)
        table = numbering(rvas, view.base)
        if not table:
            raise PELoadError(f"{path}: no system call stubs found; not an ntdll.dll pysud can use")
        for needed in ("LdrInitializeThunk", "RtlUserThreadStart", "__wine_unix_call_dispatcher"):
            if needed not in rvas:
                raise PELoadError(f"{path}: does not export {needed}; not Wine's PE ntdll (8.0 or later)")
        exports = {n: view.base + r for n, r in rvas.items()}
        return WineNtdll(view=view, exports=exports, table=table, path=path)
    except BaseException:
        view.release()
        raise


#: A Windows-numbered stub in Wine's own layout: `syscall` with SystemCall bit 0 clear, else
#: `call [0x7ffe1000]` (the flip-switch entry), as Wine 8's ntdll stubs do.
STUB_SIZE = 0x20
FLIP_SWITCH_SLOT = 0x7FFE1000


def windows_stub(nr: int) -> bytes:
    stub = (
        _STUB
        + struct.pack("<I", nr)
        + b"\xf6\x04\x25\x08\x03\xfe\x7f\x01"  # test byte [0x7ffe0308], 1
        + b"\x75\x03\x0f\x05\xc3"  # jne +3; syscall; ret
        + b"\xeb\x01\xc3"  # jmp +1; ret
        + b"\xff\x14\x25"
        + struct.pack("<I", FLIP_SWITCH_SLOT)  # call [0x7ffe1000]
        + b"\xc3"
    )
    assert len(stub) == STUB_SIZE
    return stub


def windows_numbering(
    wine_table: dict[int, str], private: dict[int, str], build: dict[int, str], limit: int
) -> tuple[dict[int, str], list[int]]:
    """One numbering for a process that sees two: Wine's (its ntdll's own calls) and a Windows
    build's (pysud's block, program code).  Returns the personality's table (Wine's numbers,
    then the build's calls Wine lacks in free numbers below ``limit``) and, per build number,
    the personality's number for that call (the core's renumber table)."""
    table = dict(wine_table)
    number = {name: nr for nr, name in wine_table.items()}
    free = (nr for nr in range(limit) if nr not in wine_table and nr not in private)
    renumber = []
    for nr in range(max(build) + 1):
        name = build.get(nr, f"NtUnknown{nr:#x}")
        if name not in number:
            spare = next(free, None)
            if spare is None:
                raise PELoadError(f"too many NT calls for one numbering: no number below {limit} for {name}")
            number[name] = spare
            table[spare] = name
        renumber.append(number[name])
    return table, renumber


@dataclass
class WindowsBlock:
    """pysud's stubs with a Windows build's numbers, one per number in number order, beside
    Wine's ntdll, and the export directory that makes ntdll's Nt*/Zw* exports point at them."""

    base: int
    size: int
    stubs: int  # address of the stub of number 0

    def release(self) -> None:
        memory.unmap(self.base, self.size)


def install_windows_block(ntdll: WineNtdll, build: dict[int, str]) -> WindowsBlock:
    """Map the block after ntdll's image (export RVAs are 32-bit) and point ntdll's export
    directory at a new one: the build's calls (exported as ``NtX`` and ``ZwX``, the Zw names
    being exactly the build's calls, as in Windows) at their stubs, Wine's other exports as
    they were.  ntdll's own code calls its own stubs and keeps Wine's numbers."""
    old = export_table(ntdll.path)
    n = max(build) + 1
    code_size = n * STUB_SIZE
    # ---- the export directory: Wine's functions (ordinals kept), then the new ones
    functions = list(old.functions)
    index = dict(old.names)
    for name in [k for k in index if k.startswith("Zw") and "Nt" + k[2:] not in build.values()]:
        del index[name]  # e.g. Wine's ZwGetTickCount: no call of the build, no Zw name (Windows)
    for nr in range(n):
        name = build[nr]
        for alias in (name, "Zw" + name[2:]) if name.startswith("Nt") else (name,):
            if alias not in index:
                index[alias] = len(functions)
                functions.append(0)
            functions[index[alias]] = -(nr + 1)  # patched below, once the block's RVA is known
    names = sorted(index, key=lambda k: k.encode())
    dll_name = b"ntdll.dll\0"
    header = 40
    funcs_off = header
    names_off = funcs_off + 4 * len(functions)
    ords_off = names_off + 4 * len(names)
    strings_off = ords_off + 2 * len(names)
    strings = bytearray(dll_name)
    name_at: list[int] = []
    for name in names:
        name_at.append(strings_off + len(strings))
        strings += name.encode() + b"\0"
    dir_size = strings_off + len(strings)
    size = (code_size + dir_size + 0xFFFF) & ~0xFFFF
    base = _map_after(ntdll.base + ntdll.view.size, size)
    rva = base - ntdll.base
    dir_rva = rva + code_size
    exp = bytearray(dir_size)
    struct.pack_into(
        "<IIHHIIIIIII",
        exp,
        0,
        0,
        0,
        0,
        0,
        dir_rva + strings_off,
        old.ordinal_base,
        len(functions),
        len(names),
        dir_rva + funcs_off,
        dir_rva + names_off,
        dir_rva + ords_off,
    )
    struct.pack_into(
        f"<{len(functions)}I",
        exp,
        funcs_off,
        *(rva + (-f - 1) * STUB_SIZE if f < 0 else f for f in functions),
    )
    struct.pack_into(f"<{len(names)}I", exp, names_off, *(dir_rva + at for at in name_at))
    struct.pack_into(f"<{len(names)}H", exp, ords_off, *(index[k] for k in names))
    exp[strings_off:] = strings
    memory.poke(base, b"".join(windows_stub(nr) for nr in range(n)) + bytes(exp))
    memory.protect(base, size, memory.PROT_READ | memory.PROT_EXEC, "pysud's Windows-numbered ntdll stubs")
    # the data directory of the mapped image (IMAGE_DIRECTORY_ENTRY_EXPORT) now names the new one
    (e_lfanew,) = struct.unpack("<I", memory.peek(ntdll.base + 0x3C, 4))
    entry = ntdll.base + e_lfanew + 0x88
    page = entry & ~0xFFF
    memory.protect(page, 0x1000, memory.PROT_READ | memory.PROT_WRITE, "ntdll.dll headers")
    memory.poke(entry, struct.pack("<II", dir_rva, dir_size))
    memory.protect(page, 0x1000, memory.PROT_READ, "ntdll.dll headers")
    return WindowsBlock(base=base, size=size, stubs=base)


def _map_after(addr: int, size: int) -> int:
    """Free memory at the first 64 KiB boundary from ``addr`` on, within 4 GiB."""
    at = (addr + 0xFFFF) & ~0xFFFF
    rw = memory.PROT_READ | memory.PROT_WRITE
    for _ in range(64):
        try:
            return memory.map_at(at, size, rw, "pysud's Windows-numbered ntdll stubs")
        except memory.MappingError as e:
            if e.errno != errno.EEXIST:
                raise
            at += 16 << 20  # taken: try the next 16 MiB
    raise PELoadError("no room for pysud's ntdll stubs within 4 GiB of ntdll.dll")


@dataclass
class Helpers:
    """pysud's own code page: the call thunk and the Unix-call stub."""

    base: int
    size: int
    call_thunk: int
    unix_call: int
    fault_handler: int
    kick: int
    flip_switch: int  # 0 unless built with the direct entry

    def release(self) -> None:
        memory.unmap(self.base, self.size)


def build_helpers(direct_entry: int = 0) -> Helpers:
    """The page of pysud's code beside Wine's DLLs; with ``direct_entry`` (the core's flip-switch
    entry) also the code [0x7ffe1000] points at (see map_flip_switch_slot)."""
    thunk = (
        b"\xb8"
        + struct.pack("<I", PYSUD_START)
        + b"\x0f\x05"  # syscall: PysudStart (the thread's fault dispositions)
        + b"\x58\x59\x5a\x41\x58\x41\x59"  # pop rax, rcx, rdx, r8, r9
        + b"\x48\x83\xec\x28"  # sub rsp, 0x28
        + b"\xff\xd0"  # call rax
        + b"\x48\x89\xc1\x4c\x8b\xd1"  # mov rcx, rax; mov r10, rcx
        + b"\xb8"
        + struct.pack("<I", PYSUD_RETURN)
        + b"\x0f\x05\x0f\x0b"  # syscall; ud2
    ).ljust(0x40, b"\xcc")
    unix = (_STUB + struct.pack("<I", UNIX_CALL) + b"\x0f\x05\xc3").ljust(0x40, b"\xcc")
    # the program's SIGSEGV/SIGILL/SIGFPE/SIGTRAP/SIGBUS handler (rdi sig, rsi siginfo, rdx ucontext)
    fault = (
        b"\x4c\x8b\xd2"  # mov r10, rdx
        + b"\x48\x89\xf2"  # mov rdx, rsi
        + b"\xb8"
        + struct.pack("<I", PYSUD_FAULT)
        + b"\x0f\x05\x0f\x0b"  # syscall; ud2
    ).ljust(0x40, b"\xcc")
    # the handler of the signal that makes a thread leave when another one ended the process
    kick = (b"\xb8" + struct.pack("<I", PYSUD_KICK) + b"\x0f\x05\x0f\x0b").ljust(0x40, b"\xcc")
    # The flip-switch entry, called by a stub's `call [0x7ffe1000]` with the registers of its
    # `syscall` (eax number, r10 rdx r8 r9, stack arguments at [rsp+0x30]): pop the return
    # address (the stub's `ret`: where to resume, and the call address the core reports), which
    # leaves RSP as at the stub's `syscall`; then the core's direct entry with the thread block
    # from the TEB in RCX and the resume address in R11, as pysud's ntdll's trampoline does.
    flip = b""
    if direct_entry:
        flip = (
            b"\x41\x5b"  # pop r11
            + b"\x65\x48\x8b\x0c\x25"
            + struct.pack("<I", TEB_THREAD_BLOCK)  # mov rcx, gs:[TEB_THREAD_BLOCK]
            + b"\xff\x25\x00\x00\x00\x00"  # jmp [rip]
            + struct.pack("<Q", direct_entry)
        ).ljust(0x40, b"\xcc")
    base = memory.map_anywhere(0x1000, memory.PROT_READ | memory.PROT_WRITE, "pysud helpers")
    memory.poke(base, thunk + unix + fault + kick + flip)
    memory.protect(base, 0x1000, memory.PROT_READ | memory.PROT_EXEC, "pysud helpers")
    return Helpers(
        base=base,
        size=0x1000,
        call_thunk=base,
        unix_call=base + 0x40,
        fault_handler=base + 0x80,
        kick=base + 0xC0,
        flip_switch=base + 0x100 if direct_entry else 0,
    )


def map_flip_switch_slot(entry: int) -> int:
    """The page at 0x7ffe1000 whose first qword the stubs call through when SystemCall bit 0 is set."""
    at = memory.map_at(FLIP_SWITCH_SLOT, 0x1000, memory.PROT_READ | memory.PROT_WRITE, "flip-switch slot")
    memory.poke(at, struct.pack("<Q", entry))
    memory.protect(at, 0x1000, memory.PROT_READ, "flip-switch slot")
    return at


def initial_context(entry: int, peb: int, start: int, stack_top: int) -> bytes:
    """The CONTEXT a new thread starts from: RtlUserThreadStart(entry, arg) on its stack."""
    ctx = bytearray(CONTEXT_SIZE)
    struct.pack_into("<II", ctx, CTX_FLAGS, CONTEXT_FULL, 0x1F80)
    struct.pack_into("<HHHHHH", ctx, CTX_SEGCS, 0x33, 0x2B, 0x2B, 0x53, 0x2B, 0x2B)
    struct.pack_into("<I", ctx, CTX_EFLAGS, 0x200)
    regs = dict.fromkeys(CTX_REGS, 0)
    regs["rcx"], regs["rdx"], regs["rsp"] = entry, peb, stack_top - 0x28
    struct.pack_into("<16Q", ctx, CTX_RAX, *(regs[r] for r in CTX_REGS))
    struct.pack_into("<Q", ctx, CTX_RIP, start)
    struct.pack_into("<H", ctx, CTX_FLTSAVE, 0x27F)  # FltSave.ControlWord
    struct.pack_into("<I", ctx, CTX_FLTSAVE + 0x18, 0x1F80)  # FltSave.MxCsr
    return bytes(ctx)


def apiset_map(dll_dir: str) -> bytes | None:
    """The `.apiset` section of apisetschema.dll: what PEB.ApiSetMap points at."""
    path = os.path.join(dll_dir, "apisetschema.dll")
    if not os.path.isfile(path):
        return None
    try:
        return image.section_data(image.read_info(path), ".apiset")
    except (PELoadError, OSError):
        return None
