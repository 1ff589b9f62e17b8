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

import os
import struct
from dataclasses import dataclass

from . import image, memory
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

    @property
    def base(self) -> int:
        return self.view.base

    def release(self) -> None:
        self.view.release()


def exports_of(path: str) -> dict[str, int]:
    """Name -> RVA of a DLL's exports (cached per file, in the process and in the prefix)."""
    return image.exports(path)


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
        return WineNtdll(view=view, exports={n: view.base + r for n, r in rvas.items()}, table=table)
    except BaseException:
        view.release()
        raise


@dataclass
class Helpers:
    """pysud's own code page: the call thunk and the Unix-call stub."""

    base: int
    size: int
    call_thunk: int
    unix_call: int
    fault_handler: int
    kick: int

    def release(self) -> None:
        memory.unmap(self.base, self.size)


def build_helpers() -> Helpers:
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
    base = memory.map_anywhere(0x1000, memory.PROT_READ | memory.PROT_WRITE, "pysud helpers")
    memory.poke(base, thunk + unix + fault + kick)
    memory.protect(base, 0x1000, memory.PROT_READ | memory.PROT_EXEC, "pysud helpers")
    return Helpers(
        base=base,
        size=0x1000,
        call_thunk=base,
        unix_call=base + 0x40,
        fault_handler=base + 0x80,
        kick=base + 0xC0,
    )


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
