"""The process a Windows program expects: KUSER_SHARED_DATA, PEB (+Ldr, ProcessParameters), TEBs.

Offsets are the x64 layouts of Windows 10/11 (as documented by the Windows headers, phnt and
Wine's winternl.h).  Everything is built in memory the personality maps itself.
"""

from __future__ import annotations

import os
import struct
import threading
import time

from .. import _memory as memory
from .ntdll import TEB_THREAD_BLOCK, NtdllImage
from .pe import LoadedPE

KUSER_SHARED_DATA = 0x7FFE0000
#: 100 ns intervals between 1601-01-01 and 1970-01-01
EPOCH_DELTA = 116444736000000000
QPC_FREQUENCY = 10_000_000
#: what one thread's TEB block spans: the x64 TEB (two pages), then the page Wine keeps for
#: a WoW64 process's 32-bit TEB, then Wine's per-thread debug buffer (struct debug_info:
#: str_pos, out_pos, strings[1020], output[1020]) that Wine 8's PE ntdll reaches at
#: gs:[0x30] + 0x3000 in __wine_dbg_strdup / __wine_dbg_output.  A block cut at 0x2000 let a
#: thread's debug strings land in the next thread's TEB (its ActivationContextStack, its TLS
#: slots), which RtlFreeThreadActivationContextStack then followed at thread exit.
TEB_SIZE = 0x4000
TEB_WINE_DEBUG_INFO = 0x3000
TEB_WINE_DEBUG_INFO_SIZE = 0x800
PEB_SIZE = 0x1000

# TEB
TEB_EXCEPTION_LIST = 0x0
TEB_STACK_BASE = 0x8
TEB_STACK_LIMIT = 0x10
TEB_SELF = 0x30
TEB_CLIENT_ID = 0x40
TEB_TLS_POINTER = 0x58
TEB_PEB = 0x60
TEB_LAST_ERROR = 0x68
TEB_ACTIVATION_CONTEXT_STACK = 0x290
TEB_ACTIVATION_CONTEXT_STACK_POINTER = 0x2C8
TEB_STATIC_UNICODE_STRING = 0x1258
TEB_STATIC_UNICODE_BUFFER = 0x1268
TEB_DEALLOCATION_STACK = 0x1478
TEB_TLS_SLOTS = 0x1480
TEB_TLS_EXPANSION_SLOTS = 0x1780
# PEB
PEB_IMAGE_BASE = 0x10
PEB_LDR = 0x18
PEB_PARAMETERS = 0x20
PEB_PROCESS_HEAP = 0x30
PEB_API_SET_MAP = 0x68
PEB_NUMBER_OF_PROCESSORS = 0xB8
PEB_OS_MAJOR = 0x118
PEB_OS_MINOR = 0x11C
PEB_OS_BUILD = 0x120
PEB_OS_PLATFORM = 0x124
PEB_IMAGE_SUBSYSTEM = 0x128
PEB_SESSION_ID = 0x2C0
# RTL_USER_PROCESS_PARAMETERS
PP_STDIN = 0x20
PP_STDOUT = 0x28
PP_STDERR = 0x30
PP_CURDIR = 0x38
PP_DLLPATH = 0x50
PP_IMAGE = 0x60
PP_CMDLINE = 0x70
PP_ENVIRONMENT = 0x80
PP_WINDOW_TITLE = 0xB0
PP_DESKTOP = 0xC0
PP_SHELL_INFO = 0xD0
PP_RUNTIME_INFO = 0xE0
PP_ENVIRONMENT_SIZE = 0x3F0
PP_SIZE = 0x440
# KUSER_SHARED_DATA
KU_INTERRUPT_TIME = 0x08
KU_SYSTEM_TIME = 0x14
KU_NT_SYSTEM_ROOT = 0x30
KU_BUILD_NUMBER = 0x260
KU_PRODUCT_TYPE = 0x264
KU_MAJOR = 0x26C
KU_MINOR = 0x270
KU_QPC_FREQUENCY = 0x300
KU_TICK_COUNT = 0x320
KU_ACTIVE_PROCESSORS = 0x3C0


def system_time() -> int:
    """Now, in 100 ns units since 1601 (FILETIME)."""
    return time.time_ns() // 100 + EPOCH_DELTA


def interrupt_time() -> int:
    """Time since boot in 100 ns units."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 100


class Arena:
    """A bump allocator for the process structures the personality builds (strings, Ldr entries)."""

    def __init__(self, size: int = 1 << 20) -> None:
        self.size = size
        self.base = memory.map_anywhere(size, memory.PROT_READ | memory.PROT_WRITE, "NT process data")
        self.cur = self.base
        self._lock = threading.Lock()

    def alloc(self, n: int, align: int = 16) -> int:
        with self._lock:  # threads build their TEBs at the same time
            at = (self.cur + align - 1) & ~(align - 1)
            if at + n > self.base + self.size:
                raise MemoryError("NT process arena is full")
            self.cur = at + n
            return at

    def put(self, data: bytes, align: int = 16) -> int:
        at = self.alloc(len(data), align)
        memory.poke(at, data)
        return at

    def unicode_string(self, at: int, text: str) -> None:
        """Fill the UNICODE_STRING at ``at`` with a NUL-terminated copy of ``text``."""
        raw = text.encode("utf-16-le")
        buf = self.put(raw + b"\0\0")
        memory.poke(at, struct.pack("<HHIQ", len(raw), len(raw) + 2, 0, buf))

    def release(self) -> None:
        memory.unmap(self.base, self.size)


class KUserSharedData:
    """The page at 0x7FFE0000, with its time fields kept live by a background thread."""

    def __init__(self, version: tuple[int, int, int], flip_switch: bool) -> None:
        self.addr = memory.map_at(
            KUSER_SHARED_DATA, 0x1000, memory.PROT_READ | memory.PROT_WRITE, "KUSER_SHARED_DATA"
        )
        major, minor, build = version
        root = "C:\\Windows".encode("utf-16-le")
        memory.poke(self.addr + KU_NT_SYSTEM_ROOT, root)
        memory.poke(self.addr + KU_BUILD_NUMBER, struct.pack("<II", build, 1))  # NtProductWinNt
        memory.poke(self.addr + KU_MAJOR, struct.pack("<II", major, minor))
        memory.poke(self.addr + KU_QPC_FREQUENCY, struct.pack("<q", QPC_FREQUENCY))
        memory.poke(self.addr + KU_ACTIVE_PROCESSORS, struct.pack("<I", os.cpu_count() or 1))
        self.set_flip_switch(flip_switch)
        self.update()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pysud-kuser-time", daemon=True)
        self._thread.start()

    def set_flip_switch(self, on: bool) -> None:
        """SystemCall bit 0: Windows' own switch between `syscall` and `int 2e` in the stubs."""
        memory.poke(self.addr + 0x308, struct.pack("<I", int(on)))

    @staticmethod
    def _ksystem_time(value: int) -> bytes:
        low, high = value & 0xFFFFFFFF, value >> 32
        return struct.pack("<IiI", low, high, high)

    def update(self) -> None:
        it = interrupt_time()
        memory.poke(self.addr + KU_INTERRUPT_TIME, self._ksystem_time(it))
        memory.poke(self.addr + KU_SYSTEM_TIME, self._ksystem_time(system_time()))
        memory.poke(self.addr + KU_TICK_COUNT, self._ksystem_time(it // 10000))

    def _run(self) -> None:
        while not self._stop.wait(0.0156):  # the Windows clock tick
            self.update()

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        memory.unmap(self.addr, 0x1000)


def _ldr_entry(arena: Arena, base: int, entry: int, size: int, full: str, short: str) -> int:
    e = arena.alloc(0x120)
    memory.poke(e + 0x30, struct.pack("<QQI", base, entry, size))
    arena.unicode_string(e + 0x48, full)
    arena.unicode_string(e + 0x58, short)
    memory.poke(e + 0x68, struct.pack("<IH", 0x4, 0xFFFF))  # Flags: image dll-ish; LoadCount
    return e


def _link(head: int, entries: list[int], offset: int) -> None:
    """A circular doubly linked LIST_ENTRY list through ``entry + offset``."""
    nodes = [head] + [e + offset for e in entries]
    for i, node in enumerate(nodes):
        nxt, prev = nodes[(i + 1) % len(nodes)], nodes[i - 1]
        memory.poke(node, struct.pack("<QQ", nxt, prev))


def build_peb(
    arena: Arena,
    image: LoadedPE,
    ntdll: NtdllImage,
    version: tuple[int, int, int],
    *,
    image_path: str,
    command_line: str,
    current_dir: str,
    environment: dict[str, str],
    std_handles: tuple[int, int, int],
    heap: int,
) -> int:
    """The PEB of a program on pysud's own ntdll: Ldr lists the program and ntdll, the heap is
    ``heap`` (RtlAllocateHeap answers in Python)."""
    peb = _peb(arena, image.base, version, image.subsystem)
    ldr = arena.alloc(0x58)
    memory.poke(peb + PEB_LDR, struct.pack("<Q", ldr))
    memory.poke(peb + PEB_PROCESS_HEAP, struct.pack("<Q", heap))

    # Ldr: the program first, then ntdll.dll, in all three orders (no init routine runs)
    exe_name = image_path.rsplit("\\", 1)[-1]
    exe = _ldr_entry(arena, image.base, image.entry, image.size, image_path, exe_name)
    dll = _ldr_entry(arena, ntdll.base, 0, ntdll.size, "C:\\Windows\\System32\\ntdll.dll", "ntdll.dll")
    memory.poke(ldr, struct.pack("<IB", 0x58, 1))
    _link(ldr + 0x10, [exe, dll], 0x00)
    _link(ldr + 0x20, [exe, dll], 0x10)
    _link(ldr + 0x30, [dll], 0x20)

    pp = _process_parameters(
        arena,
        image_path=image_path,
        command_line=command_line,
        current_dir=current_dir,
        environment=environment,
        std_handles=std_handles,
        dll_path="C:\\Windows\\System32",
    )
    memory.poke(peb + PEB_PARAMETERS, struct.pack("<Q", pp))
    return peb


def _peb(arena: Arena, image_base: int, version: tuple[int, int, int], subsystem: int) -> int:
    """A PEB with what both ntdlls read first: image base, processors, OS version, subsystem, session."""
    peb = arena.alloc(PEB_SIZE, 0x1000)
    major, minor, build = version
    memory.poke(peb + PEB_IMAGE_BASE, struct.pack("<Q", image_base))
    memory.poke(peb + PEB_NUMBER_OF_PROCESSORS, struct.pack("<I", os.cpu_count() or 1))
    memory.poke(peb + PEB_OS_MAJOR, struct.pack("<IIHHI", major, minor, build, 0, 2))  # VER_PLATFORM_WIN32_NT
    memory.poke(peb + PEB_IMAGE_SUBSYSTEM, struct.pack("<III", subsystem, 6, 0))
    memory.poke(peb + PEB_SESSION_ID, struct.pack("<I", 1))
    return peb


def _process_parameters(
    arena: Arena,
    *,
    image_path: str,
    command_line: str,
    current_dir: str,
    environment: dict[str, str],
    std_handles: tuple[int, int, int],
    dll_path: str,
) -> int:
    pp = arena.alloc(PP_SIZE)
    memory.poke(pp, struct.pack("<IIII", PP_SIZE, PP_SIZE, 1, 0))  # RTL_USER_PROC_PARAMS_NORMALIZED
    memory.poke(pp + PP_STDIN, struct.pack("<QQQ", *std_handles))
    arena.unicode_string(pp + PP_CURDIR, current_dir if current_dir.endswith("\\") else current_dir + "\\")
    arena.unicode_string(pp + PP_DLLPATH, dll_path)
    arena.unicode_string(pp + PP_IMAGE, image_path)
    arena.unicode_string(pp + PP_CMDLINE, command_line)
    arena.unicode_string(pp + PP_WINDOW_TITLE, image_path)
    for off in (PP_DESKTOP, PP_SHELL_INFO):
        arena.unicode_string(pp + off, "")
    # RuntimeInfo stays empty (no buffer): it is the C runtime's handle block (lpReserved2)
    env = "".join(f"{k}={v}\0" for k, v in environment.items()) + "\0"
    raw = env.encode("utf-16-le")
    memory.poke(pp + PP_ENVIRONMENT, struct.pack("<Q", arena.put(raw)))
    memory.poke(pp + PP_ENVIRONMENT_SIZE, struct.pack("<Q", len(raw)))
    return pp


def build_wine_peb(
    arena: Arena,
    image_base: int,
    version: tuple[int, int, int],
    *,
    image_path: str,
    command_line: str,
    current_dir: str,
    environment: dict[str, str],
    std_handles: tuple[int, int, int],
    dll_path: str,
    apiset: bytes | None,
    subsystem: int,
) -> int:
    """The PEB as Wine's ntdll expects it before LdrInitializeThunk (it fills Ldr and the heap itself)."""
    peb = _peb(arena, image_base, version, subsystem)
    if apiset is not None:
        memory.poke(peb + PEB_API_SET_MAP, struct.pack("<Q", arena.put(apiset, 0x1000)))
    pp = _process_parameters(
        arena,
        image_path=image_path,
        command_line=command_line,
        current_dir=current_dir,
        environment=environment,
        std_handles=std_handles,
        dll_path=dll_path,
    )
    memory.poke(peb + PEB_PARAMETERS, struct.pack("<Q", pp))
    return peb


def build_teb(
    arena: Arena,
    peb: int,
    stack: tuple[int, int],
    pid: int,
    tid: int,
    image: LoadedPE | None,
    thread_block: int,
) -> int:
    """A TEB for one thread; ``stack`` is (base = highest address, limit = lowest).

    ``image`` is the program when pysud's own ntdll runs it (pysud sets up its one TLS block);
    None when Wine's ntdll does its own loader work.
    """
    teb = arena.alloc(TEB_SIZE, 0x1000)
    stack_base, stack_limit = stack
    memory.poke(teb + TEB_EXCEPTION_LIST, struct.pack("<QQQ", 0xFFFFFFFFFFFFFFFF, stack_base, stack_limit))
    memory.poke(teb + TEB_SELF, struct.pack("<Q", teb))
    memory.poke(teb + TEB_CLIENT_ID, struct.pack("<QQ", pid, tid))
    memory.poke(teb + TEB_PEB, struct.pack("<Q", peb))
    memory.poke(teb + TEB_THREAD_BLOCK, struct.pack("<Q", thread_block))
    # the activation context stack lives in the TEB, its list head pointing at itself
    acs = teb + TEB_ACTIVATION_CONTEXT_STACK
    memory.poke(acs + 8, struct.pack("<QQ", acs + 8, acs + 8))
    memory.poke(teb + TEB_ACTIVATION_CONTEXT_STACK_POINTER, struct.pack("<Q", acs))
    memory.poke(
        teb + TEB_STATIC_UNICODE_STRING, struct.pack("<HHIQ", 0, 261 * 2, 0, teb + TEB_STATIC_UNICODE_BUFFER)
    )
    memory.poke(teb + TEB_DEALLOCATION_STACK, struct.pack("<Q", stack_limit))
    if image is not None and image.tls:
        start, end, zero_fill, _index = image.tls
        size = max(0, end - start)
        block = arena.alloc(size + zero_fill + 16)
        if size:
            memory.poke(block, memory.peek(start, size))
        vector = arena.put(struct.pack("<Q", block))
        memory.poke(teb + TEB_TLS_POINTER, struct.pack("<Q", vector))
    return teb
