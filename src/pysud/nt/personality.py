"""The NT personality: a Windows x64 program in this process, its NT system calls emulated in Python.

Handlers are ordinary pysud handlers on a Dispatcher whose ABI is the NT x64 convention of one
Windows build (a profile); ``call.args`` decodes r10, rdx, r8, r9 and the stack arguments.
A handler returns the NTSTATUS.  Users override or add handlers with ``personality.on(name, fn)``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import _core
from .._abi import SyscallABI, nt_x64
from .._dispatch import Dispatcher, Return, Syscall
from .._errors import GuestMemoryError
from . import _profiles, kernel, memory, objects, process, wine
from . import image as image_mod
from . import ntdll as ntdll_mod
from . import status as st
from .files import FileCalls
from .image import ImageView
from .image import map_view as map_image
from .image import read_info as read_image_info
from .image import relocate as relocate_image
from .kernel.exception import KICK_SIGNAL
from .pe import LoadedPE, PELoadError
from .pe import load as load_pe
from .prefix import Prefix, find_wine_dlls, windows_environment
from .registry import Registry

ARCH_SET_GS = 0x1001
SYS_ARCH_PRCTL = 158
SYS_TGKILL = 234
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE
HEAP_HANDLE = 0x000001A0_0000_0000 >> 16  # an opaque, recognisable value for PEB.ProcessHeap
HEAP_ZERO_MEMORY = 0x8
DEFAULT_STACK = 1 << 20

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

_libc = ctypes.CDLL(None, use_errno=True)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.calloc.restype = ctypes.c_void_p
_libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_libc.realloc.restype = ctypes.c_void_p
_libc.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]

_DOS_ERRORS = {
    st.STATUS_SUCCESS: 0,
    st.STATUS_NOT_IMPLEMENTED: 1,
    st.STATUS_OBJECT_NAME_NOT_FOUND: 2,
    st.STATUS_OBJECT_PATH_NOT_FOUND: 3,
    st.STATUS_ACCESS_DENIED: 5,
    st.STATUS_INVALID_HANDLE: 6,
    st.STATUS_NO_MEMORY: 8,
    st.STATUS_END_OF_FILE: 38,
    st.STATUS_INVALID_PARAMETER: 87,
    st.STATUS_OBJECT_NAME_COLLISION: 183,
    st.STATUS_DIRECTORY_NOT_EMPTY: 145,
    st.STATUS_TIMEOUT: 258,
}


class NtSyscall(Syscall):
    """A trapped NT call: ``args`` are r10, rdx, r8, r9, then 12 stack arguments."""

    __slots__ = ()
    nt_abi: SyscallABI
    #: (low, high) of the stacks the personality gave the program's threads: stack arguments
    #: inside them are read directly, anything else through the checked path.
    stacks: list[tuple[int, int]]

    @property
    def abi(self) -> SyscallABI:
        return type(self).nt_abi

    @property
    def args(self) -> tuple[int, ...]:  # type: ignore[override]
        regs = (self.r10, self.rdx, self.r8, self.r9)
        at = self.rsp + 0x28
        for lo, hi in type(self).stacks:
            if lo <= at and at + 96 <= hi:
                return regs + struct.unpack("<12Q", ctypes.string_at(at, 96))
        try:
            stack = struct.unpack("<12Q", self.read(at, 96))
        except GuestMemoryError:
            stack = (0,) * 12
        return regs + stack


class NtPersonality(FileCalls):
    """Handlers, handle table and process state of one Windows program run in-process."""

    def __init__(
        self,
        *,
        profile: str = _profiles.DEFAULT,
        drives: dict[str, str] | None = None,
        trace: bool = False,
        trace_file: Any = None,
        flip_switch: bool = False,
        ntdll: str = "builtin",
        dlls: str | None = None,
        prefix: str | None = None,
    ) -> None:
        if profile not in _profiles.TABLES:
            raise ValueError(f"unknown NT profile {profile!r}; known: {', '.join(sorted(_profiles.TABLES))}")
        if ntdll not in ("builtin", "wine", "auto"):
            raise ValueError(f"unknown ntdll {ntdll!r}: 'builtin', 'wine' or 'auto'")
        self.profile = profile
        self.version = _profiles.VERSIONS[profile]
        #: Wine's PE DLL set in use (None: pysud's own ntdll and nothing else)
        self.wine: wine.WineNtdll | None = None
        self.prefix: Prefix | None = None
        self.views: dict[int, ImageView] = {}  # base -> mapped image view (MEM_IMAGE)
        self.nls_views: dict[str, tuple[int, int]] = {}  # NLS file name -> (address, size)
        self.lcid = 0x409
        if ntdll != "builtin":
            dlls = dlls or find_wine_dlls()
            if dlls is None:
                if ntdll == "wine":
                    raise PELoadError("no Wine PE DLLs found (install wine64 8.0+, or give --dlls DIR)")
            elif flip_switch:
                # Wine's stubs `call [0x7ffe1000]` when SystemCall bit 0 is set; pysud's direct entry
                # takes its own register convention, so only pysud's ntdll has the flip switch.
                raise PELoadError(
                    "--flip-switch needs pysud's own ntdll (--ntdll builtin); Wine's DLLs take the trap path"
                )
            else:
                self.prefix = Prefix(prefix, dlls)
                image_mod.use_disk_cache(os.path.join(self.prefix.path, ".pysud-image-cache.json"))
                self.wine = wine.load_ntdll(dlls)
                self.views[self.wine.base] = self.wine.view
                self.version = wine.WINDOWS_VERSION
        if self.wine is not None:
            table = dict(self.wine.table)
            table.update(wine.PRIVATE)
            self.private = dict(wine.PRIVATE)
            self.abi = nt_x64(table, "wine")
            profile = "wine"
        else:
            table = dict(_profiles.TABLES[profile])
            table.update(ntdll_mod.PRIVATE)
            self.private = dict(ntdll_mod.PRIVATE)
            self.abi = nt_x64(table, profile)
        self.stacks: list[tuple[int, int]] = []
        frame = type(
            f"NtSyscall_{profile.replace('-', '_')}",
            (NtSyscall,),
            {"__slots__": (), "nt_abi": self.abi, "stacks": self.stacks},
        )
        self.d = Dispatcher(Return(st.STATUS_NOT_IMPLEMENTED), abi=self.abi, frame_type=frame)
        if self.d.rewrite:  # a rewritten site finds the thread block where the stubs do: in the TEB
            self.d.set_rewrite(True, locator=ntdll_mod.TEB_THREAD_BLOCK)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if drives is None and self.prefix is not None:
            drives = self.prefix.drives
        if drives is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="pysud-nt-c-")
            drives = {"C": self._scratch.name}
        self.drives = {k.upper().rstrip(":"): os.path.abspath(v) for k, v in drives.items()}
        self.trace = trace
        self.trace_file = trace_file or sys.stderr
        self.flip_switch = flip_switch
        self.handles = objects.HandleTable()
        self.exiting = threading.Event()
        self.exit_status = 0
        self._reported: set[str] = set()
        self._heap_sizes: dict[int, int] = {}
        self._regions: dict[int, list[int]] = {}  # NtAllocateVirtualMemory: base -> [size, alloc_prot]
        self._pages: dict[int, tuple[int, int]] = {}  # page -> (state, protect) inside those regions
        self._tls = threading.local()
        self._lock = threading.Lock()
        self.threads: list[objects.Thread] = []
        self.image: LoadedPE | None = None
        self.ntdll: ntdll_mod.NtdllImage | None = None
        self.peb = 0
        self.image_base = 0
        self.main_teb = 0
        self.main_tid = 0
        self._helpers: wine.Helpers | None = None
        self.fault_action = 0  # the program's sigaction for hardware faults, once installed
        self.registry: Registry | None = None  # opened on first use by nt/kernel/registry.py
        self._register()

    # ------------------------------------------------------------------ registration

    def on(self, name: str, handler: Callable[[Any], Any]) -> None:
        """Add or replace the handler of an NT call (by name, e.g. ``"NtWriteFile"``)."""
        self.d.on(name, self._traced(name, handler) if self.trace else handler)

    def _register(self) -> None:
        for nr in self.abi.table:
            if nr not in self.private:
                self.d.on(nr, self._unimplemented)
        for name in dir(self):
            if name.startswith(("_Nt", "_Rtl", "_mem", "_str", "_wcs", "_Pysud")):
                call_name = name[1:]
                if call_name in self.abi.numbers:
                    self.on(call_name, getattr(self, name))
        # the subsystem tables of nt/kernel/ (names are the key, whatever the numbering)
        for call_name, fn in kernel.handlers().items():
            if call_name in self.abi.numbers:
                self.on(call_name, functools.partial(fn, self))

    def _PysudNtClose(self, call: NtSyscall) -> int:
        return self._NtClose(call)

    def _unimplemented(self, call: NtSyscall) -> int:
        name = call.name
        if name not in self._reported:
            self._reported.add(name)
            print(f"pysud: {name} is not implemented (STATUS_NOT_IMPLEMENTED)", file=sys.stderr, flush=True)
        if self.trace:
            self._trace_line(call, st.STATUS_NOT_IMPLEMENTED)
        return st.STATUS_NOT_IMPLEMENTED

    def _traced(self, name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def traced(call: NtSyscall) -> Any:
            result = fn(call)
            self._trace_line(call, result)
            return result

        traced.__name__ = f"traced_{name}"
        traced.__wrapped__ = fn  # type: ignore[attr-defined]  # (--hooks chains the handler inside)
        return traced

    def _trace_line(self, call: NtSyscall, result: Any) -> None:
        from .trace import describe

        text = describe(self, call, result)
        if text:
            print(text, file=self.trace_file, flush=True)

    # ------------------------------------------------------------------ guest memory helpers

    @staticmethod
    def read_unicode(call: NtSyscall, ptr: int) -> str:
        """The text of the UNICODE_STRING at ``ptr``."""
        length, _max, _pad, buf = struct.unpack("<HHIQ", call.read(ptr, 16))
        if not length:
            return ""
        return call.read(buf, length).decode("utf-16-le", errors="surrogatepass")

    @staticmethod
    def put_iosb(call: NtSyscall, iosb: int, status: int, information: int) -> None:
        if iosb:
            call.write(iosb, struct.pack("<QQ", status & 0xFFFFFFFF, information))

    @staticmethod
    def put_u64(call: NtSyscall, ptr: int, value: int) -> None:
        if ptr:
            call.write(ptr, struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF))

    @staticmethod
    def put_u32(call: NtSyscall, ptr: int, value: int) -> None:
        if ptr:
            call.write(ptr, struct.pack("<I", value & 0xFFFFFFFF))

    # ------------------------------------------------------------------ process

    def _NtTerminateProcess(self, call: NtSyscall) -> Any:
        handle, code = call.args[0], call.args[1] & 0xFFFFFFFF
        if handle == 0:  # "every other thread": they stop at their next call
            return st.STATUS_SUCCESS
        if handle != CURRENT_PROCESS:
            return st.STATUS_ACCESS_DENIED  # other processes do not exist here
        return self._exit_process(call, code)

    def _RtlExitUserProcess(self, call: NtSyscall) -> Any:
        return self._exit_process(call, call.args[0] & 0xFFFFFFFF)

    def _exit_process(self, call: NtSyscall, code: int) -> None:
        self.exit_status = code
        self.exiting.set()
        objects.notify()
        self._kick_others()
        call.exit_guest(code)
        return None

    def _kick_others(self) -> None:
        """Make every other thread of the program leave it, even one that never calls again
        (Wine's DLLs: a signal whose handler is PysudKick; waits also end on ``exiting``)."""
        if self.wine is None or not self.fault_action:
            return
        me = threading.get_native_id()
        tids = [self.main_tid] + [t.tid for t in self.threads if t.tid and not t.done]
        for tid in tids:
            if tid and tid != me:
                _core.syscall(SYS_TGKILL, os.getpid(), tid, KICK_SIGNAL)

    def _PysudReturn(self, call: NtSyscall) -> None:
        value = call.args[0]
        mode = getattr(self._tls, "mode", "call")
        if mode == "process":
            return self._exit_process(call, value & 0xFFFFFFFF)
        call.exit_guest(value & 0xFFFFFFFF)
        return None

    def _NtQueryInformationProcess(self, call: NtSyscall) -> int:
        handle, cls, buf, length, ret = call.args[:5]
        cls &= 0xFFFFFFFF
        if handle != CURRENT_PROCESS:
            child = self.handles.get(handle)
            if not isinstance(child, kernel.process.Process):
                return st.STATUS_INVALID_HANDLE
            if cls != 0:
                return self._unimplemented_class(call, cls)
            data = struct.pack("<QQQQQQ", child.exit_code, 0, 1, 8, child.pid, os.getpid())
            if (length & 0xFFFFFFFF) < len(data):
                return st.STATUS_INFO_LENGTH_MISMATCH
            call.write(buf, data)
            self.put_u32(call, ret, len(data))
            return st.STATUS_SUCCESS
        if cls == 0:  # ProcessBasicInformation
            data = struct.pack(
                "<QQQQQQ", 0x103, self.peb, (1 << (os.cpu_count() or 1)) - 1, 8, os.getpid(), os.getppid()
            )
        elif cls == 7:  # ProcessDebugPort: no debugger
            data = struct.pack("<Q", 0)
        elif cls == 26:  # ProcessWow64Information: not a WoW64 process
            data = struct.pack("<Q", 0)
        elif cls == 37:  # ProcessImageInformation
            view = self._view_of(self.image_base)
            if view is None or view.info is None:
                return st.STATUS_INVALID_PARAMETER
            data = view.info.section_image_information()
        else:
            return self._unimplemented_class(call, cls)
        if (length & 0xFFFFFFFF) != len(data):
            self.put_u32(call, ret, len(data))
            return st.STATUS_INFO_LENGTH_MISMATCH
        call.write(buf, data)
        self.put_u32(call, ret, len(data))
        return st.STATUS_SUCCESS

    def _unimplemented_class(self, call: NtSyscall, cls: int) -> int:
        key = f"{call.name} class {cls}"
        if key not in self._reported:
            self._reported.add(key)
            print(f"pysud: {key} is not implemented (STATUS_NOT_IMPLEMENTED)", file=sys.stderr, flush=True)
        return st.STATUS_NOT_IMPLEMENTED

    def _RtlGetNativeSystemInformation(self, call: NtSyscall) -> int:
        return self._NtQuerySystemInformation(call)

    def _NtQueryDefaultLocale(self, call: NtSyscall) -> int:
        self.put_u32(call, call.args[1], self.lcid)
        return st.STATUS_SUCCESS

    def _NtQueryDefaultUILanguage(self, call: NtSyscall) -> int:
        self.put_u32(call, call.args[0], self.lcid & 0xFFFF)
        return st.STATUS_SUCCESS

    _NtQueryInstallUILanguage = _NtQueryDefaultUILanguage

    def _NtQuerySystemInformation(self, call: NtSyscall) -> int:
        cls, buf, length, ret = call.args[:4]
        cls &= 0xFFFFFFFF
        ncpu = os.cpu_count() or 1
        if cls == 0:  # SystemBasicInformation
            pages = os.sysconf("SC_PHYS_PAGES")
            data = struct.pack(
                "<IIIIIIIQQQB7x",
                0,
                156250,
                0x1000,
                pages,
                1,
                pages,
                0x10000,
                0x10000,
                0x7FFFFFFEFFFF,
                (1 << ncpu) - 1,
                ncpu,
            )
        elif cls == 1:  # SystemProcessorInformation
            data = struct.pack("<HHHHI", 9, 6, 0, ncpu, 0)
        elif cls in (44, 102):  # SystemCurrentTimeZoneInformation, SystemDynamicTimeZoneInformation
            data = _time_zone(dynamic=cls == 102)
        elif cls == 1000:  # SystemWineVersionInformation: pysud is not Wine's kernel; Windows' answer
            return st.STATUS_INVALID_INFO_CLASS
        elif cls == 3:  # SystemTimeOfDayInformation
            boot = process.system_time() - process.interrupt_time()
            data = struct.pack("<qqIIQQQ", boot, process.system_time(), 0, 0, 0, 0, 0)
        else:
            return self._unimplemented_class(call, cls)
        if (length & 0xFFFFFFFF) != len(data):
            self.put_u32(call, ret, len(data))
            return st.STATUS_INFO_LENGTH_MISMATCH
        call.write(buf, data)
        self.put_u32(call, ret, len(data))
        return st.STATUS_SUCCESS

    # ------------------------------------------------------------------ time

    def _NtQuerySystemTime(self, call: NtSyscall) -> int:
        self.put_u64(call, call.args[0], process.system_time())
        return st.STATUS_SUCCESS

    def _NtQueryPerformanceCounter(self, call: NtSyscall) -> int:
        counter, freq = call.args[:2]
        if not counter:
            return st.STATUS_ACCESS_VIOLATION
        self.put_u64(call, counter, time.monotonic_ns() // 100)
        self.put_u64(call, freq, process.QPC_FREQUENCY)
        return st.STATUS_SUCCESS

    def _NtDelayExecution(self, call: NtSyscall) -> int:
        deadline = objects.timeout_deadline(call, call.args[1])
        if deadline is None:
            self.exiting.wait()
        else:
            self.exiting.wait(max(0.0, deadline - time.monotonic()))
        return st.STATUS_SUCCESS

    def _NtYieldExecution(self, call: NtSyscall) -> int:
        os.sched_yield()
        return st.STATUS_SUCCESS

    # ------------------------------------------------------------------ heap and C helpers

    def _RtlAllocateHeap(self, call: NtSyscall) -> int:
        _heap, flags, size = call.args[:3]
        size = max(size, 1)
        ptr = _libc.calloc(1, size) if flags & HEAP_ZERO_MEMORY else _libc.malloc(size)
        if ptr:
            self._heap_sizes[ptr] = size
        return ptr or 0

    def _RtlFreeHeap(self, call: NtSyscall) -> int:
        ptr = call.args[2]
        if ptr and self._heap_sizes.pop(ptr, None) is not None:
            _libc.free(ptr)
            return 1
        return 1 if not ptr else 0

    def _RtlReAllocateHeap(self, call: NtSyscall) -> int:
        _heap, _flags, ptr, size = call.args[:4]
        if ptr not in self._heap_sizes:
            return 0
        new = _libc.realloc(ptr, max(size, 1))
        if new:
            self._heap_sizes.pop(ptr)
            self._heap_sizes[new] = size
        return new or 0

    def _RtlSizeHeap(self, call: NtSyscall) -> int:
        return self._heap_sizes.get(call.args[2], 0xFFFFFFFFFFFFFFFF)

    def _RtlNtStatusToDosError(self, call: NtSyscall) -> int:
        return _DOS_ERRORS.get(call.args[0] & 0xFFFFFFFF, 317)  # ERROR_MR_MID_NOT_FOUND

    def _RtlGetCurrentPeb(self, call: NtSyscall) -> int:
        return self.peb

    @staticmethod
    def _wcs_length(call: NtSyscall, ptr: int) -> int:
        n = 0
        while True:
            chunk = call.read(ptr + 2 * n, 256)
            for i in range(0, 256, 2):
                if chunk[i] == 0 and chunk[i + 1] == 0:
                    return n + i // 2
            n += 128

    def _RtlInitUnicodeString(self, call: NtSyscall) -> int:
        dst, src = call.args[:2]
        n = 2 * self._wcs_length(call, src) if src else 0
        call.write(dst, struct.pack("<HHIQ", min(n, 0xFFFC), min(n + 2, 0xFFFE) if src else 0, 0, src))
        return dst

    def _RtlInitAnsiString(self, call: NtSyscall) -> int:
        dst, src = call.args[:2]
        n = len(call.read_cstring(src, 0xFFFE)) if src else 0
        call.write(dst, struct.pack("<HHIQ", n, n + 1 if src else 0, 0, src))
        return dst

    def _memset(self, call: NtSyscall) -> int:
        dst, c, n = call.args[:3]
        if n:
            call.write(dst, bytes([c & 0xFF]) * n)
        return dst

    def _memcpy(self, call: NtSyscall) -> int:
        dst, src, n = call.args[:3]
        if n:
            call.write(dst, call.read(src, n))
        return dst

    _memmove = _memcpy

    def _strlen(self, call: NtSyscall) -> int:
        return len(call.read_cstring(call.args[0], 1 << 30))

    def _wcslen(self, call: NtSyscall) -> int:
        return self._wcs_length(call, call.args[0])

    # ------------------------------------------------------------------ virtual memory

    def _win_prot(self, prot: int) -> int | None:
        return PAGE_PROTECTIONS.get(prot & 0xFF & ~0x0) if not prot & ~0x7FF else None

    def _NtAllocateVirtualMemory(self, call: NtSyscall) -> int:
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
        with self._lock:
            if kind & MEM_RESERVE or not base:  # a commit without an address reserves too
                start = base & ~0xFFFF
                end = (base + size + 0xFFF) & ~0xFFF
                span = end - start if base else (size + 0xFFF) & ~0xFFF
                committed = bool(kind & MEM_COMMIT)
                try:
                    if base:
                        addr = memory.map_at(
                            start, span, lin if committed else memory.PROT_NONE, "NtAllocate"
                        )
                    else:
                        addr = memory.map_anywhere(
                            span, lin if committed else memory.PROT_NONE, "NtAllocate", align=0x10000
                        )
                except Exception:  # noqa: BLE001 - any mapping failure is an NTSTATUS for the program
                    return st.STATUS_CONFLICTING_ADDRESSES if base else st.STATUS_NO_MEMORY
                self._regions[addr] = [span, prot]
                state = MEM_COMMIT if committed else MEM_RESERVE
                for page in range(addr, addr + span, 0x1000):
                    self._pages[page] = (state, prot if committed else 0)
                base, size = addr, span
            else:  # commit inside a reservation
                start = base & ~0xFFF
                end = (base + size + 0xFFF) & ~0xFFF
                if any(p not in self._pages for p in range(start, end, 0x1000)):
                    return st.STATUS_CONFLICTING_ADDRESSES
                memory.protect(start, end - start, lin, "NtAllocate commit")
                for page in range(start, end, 0x1000):
                    self._pages[page] = (MEM_COMMIT, prot)
                base, size = start, end - start
        self.put_u64(call, base_ptr, base)
        self.put_u64(call, size_ptr, size)
        return st.STATUS_SUCCESS

    def _view_of(self, addr: int) -> ImageView | None:
        for base, view in self.views.items():
            if base <= addr < base + view.size:
                return view
        return None

    def _region_of(self, addr: int) -> int | None:
        for base, (span, _p) in self._regions.items():
            if base <= addr < base + span:
                return base
        return None

    def _NtFreeVirtualMemory(self, call: NtSyscall) -> int:
        proc, base_ptr, size_ptr, kind = call.args[:4]
        if proc != CURRENT_PROCESS:
            return st.STATUS_INVALID_HANDLE
        kind &= 0xFFFFFFFF
        (base,) = struct.unpack("<Q", call.read(base_ptr, 8))
        (size,) = struct.unpack("<Q", call.read(size_ptr, 8))
        with self._lock:
            region = self._region_of(base)
            if region is None:  # Wine's answer (Windows may say STATUS_MEMORY_NOT_ALLOCATED)
                return st.STATUS_INVALID_PARAMETER
            span = self._regions[region][0]
            if kind == MEM_RELEASE:
                if size or base != region:
                    return st.STATUS_FREE_VM_NOT_AT_BASE if base != region else st.STATUS_INVALID_PARAMETER
                memory.unmap(region, span)
                del self._regions[region]
                for page in range(region, region + span, 0x1000):
                    self._pages.pop(page, None)
                base, size = region, span
            elif kind == MEM_DECOMMIT:
                start = base & ~0xFFF
                end = region + span if not size else (base + size + 0xFFF) & ~0xFFF
                memory.unmap(start, end - start)
                memory.map_at(start, end - start, memory.PROT_NONE, "NtFree decommit")
                for page in range(start, end, 0x1000):
                    self._pages[page] = (MEM_RESERVE, 0)
                base, size = start, end - start
            else:
                return st.STATUS_INVALID_PARAMETER
        self.put_u64(call, base_ptr, base)
        self.put_u64(call, size_ptr, size)
        return st.STATUS_SUCCESS

    def _NtProtectVirtualMemory(self, call: NtSyscall) -> int:
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
        with self._lock:
            pages = range(start, end, 0x1000)
            if all(p in self._pages for p in pages):
                if any(self._pages[p][0] != MEM_COMMIT for p in pages):
                    return st.STATUS_NOT_COMMITTED
                old = self._pages[start][1]
                for p in pages:
                    self._pages[p] = (MEM_COMMIT, prot)
            else:
                host = self._host_protection(start)
                if host is None:
                    return st.STATUS_NOT_COMMITTED
                old = host
            try:
                memory.protect(start, end - start, lin, "NtProtectVirtualMemory")
            except Exception:  # noqa: BLE001
                return st.STATUS_INVALID_PARAMETER
        self.put_u32(call, old_ptr, old)
        self.put_u64(call, base_ptr, start)
        self.put_u64(call, size_ptr, end - start)
        return st.STATUS_SUCCESS

    @staticmethod
    def _host_mapping(addr: int) -> tuple[int, int, int] | None:
        """(start, end, PAGE_* protection) of the host mapping holding addr, from /proc/self/maps."""
        with open("/proc/self/maps") as f:
            for line in f:
                span, perms = line.split()[:2]
                lo, hi = (int(x, 16) for x in span.split("-"))
                if lo <= addr < hi:
                    bits = ("r" in perms) | ("w" in perms) << 1 | ("x" in perms) << 2
                    return lo, hi, _LINUX_TO_PAGE.get(bits, 0x04)
        return None

    def _host_protection(self, addr: int) -> int | None:
        m = self._host_mapping(addr)
        return m[2] if m else None

    def _NtQueryVirtualMemory(self, call: NtSyscall) -> int:
        proc, addr, cls, buf, length, ret = call.args[:6]
        if proc != CURRENT_PROCESS:
            return st.STATUS_INVALID_HANDLE
        cls &= 0xFFFFFFFF
        if cls == MEMORY_WINE_UNIX_FUNCS:
            if self.wine is None or not self.wine.base <= addr < self.wine.base + self.wine.view.size:
                return st.STATUS_DLL_NOT_FOUND
            self.put_u64(call, buf, wine.NTDLL_UNIX_HANDLE)
            return st.STATUS_SUCCESS
        if cls != 0:  # MemoryBasicInformation only
            return self._unimplemented_class(call, cls)
        if length < 0x30:
            return st.STATUS_INFO_LENGTH_MISMATCH
        page = addr & ~0xFFF
        view = self._view_of(page)
        with self._lock:
            region = self._region_of(page)
            if view is not None:
                rva = page - view.base
                kind = MEM_IMAGE if view.info is not None else MEM_MAPPED
                alloc_prot = 0x80 if view.info is not None else 0x02  # PAGE_EXECUTE_WRITECOPY for images
                end = view.base + view.size
                m = self._host_mapping(page)
                if m is not None:
                    end, prot = min(m[1], end), m[2]
                else:
                    prot = next((p for start, span, p in view.regions if start <= rva < start + span), 0x02)
                info = (page, view.base, alloc_prot, end - page, MEM_COMMIT, prot, kind)
            elif region is not None:
                state, prot = self._pages[page]
                end = page
                while self._pages.get(end) == (state, prot):
                    end += 0x1000
                info = (page, region, self._regions[region][1], end - page, state, prot, MEM_PRIVATE)
            else:
                m = self._host_mapping(page)
                image = self.image
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
        self.put_u64(call, ret, 0x30)
        return st.STATUS_SUCCESS

    # ------------------------------------------------------------------ handles, events, waits

    def _NtClose(self, call: NtSyscall) -> int:
        return st.STATUS_SUCCESS if self.handles.remove(call.args[0]) else st.STATUS_INVALID_HANDLE

    # ------------------------------------------------------------------ threads

    def _NtCreateThreadEx(self, call: NtSyscall) -> int:
        out, _access, _oa, proc, start, arg, flags, _zero, stack_size, max_stack = call.args[:10]
        if proc != CURRENT_PROCESS:
            return st.STATUS_INVALID_HANDLE
        reserve = self.image.stack_reserve if self.image is not None else 1 << 20
        size = max(stack_size, max_stack, reserve, 0x10000)
        size = (size + 0xFFFF) & ~0xFFFF
        th = objects.Thread()
        h = self.handles.add(th)
        if not flags & 1:  # THREAD_CREATE_FLAGS_CREATE_SUSPENDED
            th.resume.set()
        t = threading.Thread(
            target=self._thread_main, args=(th, start, arg, size), daemon=True, name="nt-thread"
        )
        self.threads.append(th)
        t.start()
        self.put_u64(call, out, h)
        return st.STATUS_SUCCESS

    def _NtResumeThread(self, call: NtSyscall) -> int:
        handle, prev = call.args[:2]
        th = self.handles.get(handle)
        if isinstance(th, kernel.process.ProcessThread):  # a child process starts when resumed
            self.put_u32(call, prev, 0 if th.process.popen is not None else 1)
            th.process.start()
            return st.STATUS_SUCCESS
        if not isinstance(th, objects.Thread):
            return st.STATUS_INVALID_HANDLE
        self.put_u32(call, prev, 0 if th.resume.is_set() else 1)
        th.resume.set()
        return st.STATUS_SUCCESS

    def _NtTerminateThread(self, call: NtSyscall) -> Any:
        handle, code = call.args[0], call.args[1] & 0xFFFFFFFF
        me = getattr(self._tls, "thread", None)
        if handle in (0, CURRENT_THREAD) or (me is not None and self.handles.get(handle) is me):
            if me is None:  # the main thread ends the process when it ends
                return self._exit_process(call, code)
            call.exit_guest(code)
            return None
        return self._unimplemented_class(call, 0)

    def _thread_of(self, handle: int) -> objects.Thread | int | None:
        """The Thread object of a handle; None for this process's main thread; 0 if no thread."""
        me = getattr(self._tls, "thread", None)
        if handle == CURRENT_THREAD:
            return me
        obj = self.handles.get(handle)
        return obj if isinstance(obj, objects.Thread) else 0

    def _NtQueryInformationThread(self, call: NtSyscall) -> int:
        handle, cls, buf, length, ret = call.args[:5]
        th = self._thread_of(handle)
        if th == 0:
            return st.STATUS_INVALID_HANDLE
        cls &= 0xFFFFFFFF
        if cls == 0:  # ThreadBasicInformation
            if isinstance(th, objects.Thread):
                status, teb, tid = (th.exit_status if th.done else 0x103), th.teb, th.tid
            else:
                status, teb, tid = 0x103, self.main_teb, os.getpid()
            ncpu = os.cpu_count() or 1
            data = struct.pack("<I4xQQQQii", status, teb, os.getpid(), tid, (1 << ncpu) - 1, 8, 8)
        elif cls == 12:  # ThreadAmILastThread
            # the main thread is last when no other thread runs; another thread never is, since
            # the main thread's end is the process's end here (Wine's RtlExitUserThread ends the
            # process when told its thread is the last)
            data = struct.pack("<I", int(th is None and all(t.done for t in self.threads)))
        else:
            return self._unimplemented_class(call, cls)
        if (length & 0xFFFFFFFF) < len(data):
            return st.STATUS_INFO_LENGTH_MISMATCH
        call.write(buf, data)
        self.put_u32(call, ret, len(data))
        return st.STATUS_SUCCESS

    def _NtSetInformationThread(self, call: NtSyscall) -> int:
        handle, cls, buf, _length = call.args[:4]
        if self._thread_of(handle) == 0:
            return st.STATUS_INVALID_HANDLE
        cls &= 0xFFFFFFFF
        if cls == 10:  # ThreadZeroTlsCell: TlsFree clears the slot in every thread
            (index,) = struct.unpack("<I", call.read(buf, 4))
            tebs = [self.main_teb] + [t.teb for t in self.threads if t.teb and not t.done]
            for teb in tebs:
                if index < 64:
                    memory.poke(teb + process.TEB_TLS_SLOTS + 8 * index, bytes(8))
                else:
                    (expansion,) = struct.unpack("<Q", memory.peek(teb + process.TEB_TLS_EXPANSION_SLOTS, 8))
                    if expansion:
                        call.write(expansion + 8 * (index - 64), bytes(8))
            return st.STATUS_SUCCESS
        if cls in (3, 4, 5, 9, 17, 38):  # priority, base priority, affinity, start address, hide, name
            return st.STATUS_SUCCESS
        return self._unimplemented_class(call, cls)

    def _thread_main(self, th: objects.Thread, start: int, arg: int, stack_size: int) -> None:
        th.resume.wait()
        self._tls.thread = th
        th.tid = threading.get_native_id()
        status = 0
        try:
            stack = memory.map_anywhere(stack_size, memory.PROT_READ | memory.PROT_WRITE, "NT thread stack")
            th.mappings.append((stack, stack_size))
            self.stacks.append((stack, stack + stack_size))
            self.d.arm_thread()
            block = _core.thread_block()
            if self.wine is not None:
                th.teb = process.build_teb(
                    self._arena, self.peb, (stack + stack_size, stack), os.getpid(), th.tid, None, block
                )
                self._set_gs(th.teb)
                status = self._start_wine_thread(start, arg, stack + stack_size, "thread")
                return
            assert self.image is not None
            th.teb = process.build_teb(
                self._arena, self.peb, (stack + stack_size, stack), os.getpid(), th.tid, self.image, block
            )
            self._set_gs(th.teb)
            for cb in self.image.tls_callbacks:
                self._call_guest(cb, (self.image.base, 2, 0, 0), stack + stack_size, "call")  # THREAD_ATTACH
            status = self._call_guest(start, (arg, 0, 0, 0), stack + stack_size, "thread")
        finally:
            th.exit_status = status & 0xFFFFFFFF
            with objects.CHANGED:
                th.done = True
                objects.CHANGED.notify_all()

    # ------------------------------------------------------------------ running

    @staticmethod
    def _set_gs(teb: int) -> None:
        r = _core.syscall(SYS_ARCH_PRCTL, ARCH_SET_GS, teb)
        if r != 0:
            raise OSError(-r, f"arch_prctl(ARCH_SET_GS) failed: {os.strerror(-r)}")

    def _call_guest(self, fn: int, args: tuple[int, int, int, int], stack_top: int, mode: str) -> int:
        """Run fn(args) on this thread (Win64 ABI) until it returns or ends the thread/process."""
        assert self.ntdll is not None
        sp = (stack_top - 0x100) & ~0xF
        memory.poke(sp, struct.pack("<5Q", fn, *args))
        self._tls.mode = mode
        value = _core.run_guest(self.ntdll.call_thunk, sp)
        self.d.check()
        return int(value)

    def run(
        self,
        path: str,
        args: list[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        command_line: str | None = None,
    ) -> int:
        """Load and run a Windows program on this thread; its exit status (a 32-bit NTSTATUS-like code)."""
        if self.wine is not None:
            return self._run_wine(path, args or [], env, command_line)
        self.d.arm_thread()
        # Rewriting on: the stubs enter the core directly (their `syscall` cannot be rewritten:
        # a `jne` stands before it), as with the flip switch but without changing SystemCall.
        direct = self.flip_switch or self.d.rewrite
        self.ntdll = ntdll_mod.build(_profiles.TABLES[self.profile], self.version, direct=self.d.rewrite)
        kuser: process.KUserSharedData | None = None
        self._arena = process.Arena()
        stack = 0
        std = []
        try:
            self.image = load_pe(path, self.ntdll)
            if direct:
                memory.poke(self.ntdll.direct_slot, struct.pack("<Q", _core.direct_entry_address()))
            # KUSER_SHARED_DATA.SystemCall picks the path in every stub, as on Windows: clear, the
            # stub's own `syscall` traps (SUD); set, the stub jumps to the trampoline, which enters
            # the core's direct entry without a kernel trap (the flip switch).
            kuser = process.KUserSharedData(self.version, self.flip_switch)
            for fd in (0, 1, 2):
                try:
                    dup = os.dup(fd)
                except OSError:
                    std.append(0)
                    continue
                std.append(self.handles.add(objects.File(fd=dup, path="", access=0x120196, console=True)))
            win_path = self.windows_path(os.path.abspath(path))
            cmdline = " ".join(_quote(a) for a in [win_path, *(args or [])])
            environ = dict(os.environ if env is None else env)
            size = (self.image.stack_reserve + 0xFFFF) & ~0xFFFF
            stack = memory.map_anywhere(
                size, memory.PROT_READ | memory.PROT_WRITE, "NT main stack", align=0x10000
            )
            self.stacks.append((stack, stack + size))
            self.peb = process.build_peb(
                self._arena,
                self.image,
                self.ntdll,
                self.version,
                image_path=win_path,
                command_line=cmdline,
                current_dir=self.windows_path(os.getcwd()),
                environment=environ,
                std_handles=(std[0], std[1], std[2]),
                heap=HEAP_HANDLE,
            )
            block = _core.thread_block()
            teb = process.build_teb(
                self._arena,
                self.peb,
                (stack + size, stack),
                os.getpid(),
                threading.get_native_id(),
                self.image,
                block,
            )
            self._set_gs(teb)
            sys.stdout.flush()
            sys.stderr.flush()
            for cb in self.image.tls_callbacks:  # DLL_PROCESS_ATTACH, as the Windows loader does
                self._call_guest(cb, (self.image.base, 1, 0, 0), stack + size, "call")
                if self.exiting.is_set():
                    return self.exit_status
            value = self._call_guest(self.image.entry, (self.peb, 0, 0, 0), stack + size, "process")
            if (
                not self.exiting.is_set()
            ):  # the program died of a signal (128 + sig), not by NtTerminateProcess
                self.exit_status = value
            return self.exit_status
        finally:
            self.exiting.set()
            objects.notify()
            for th in self.threads:
                if not th.done:
                    th.resume.set()
            try:
                _core.syscall(SYS_ARCH_PRCTL, ARCH_SET_GS, 0)
            except OSError:
                pass
            self.handles.close_all()
            if kuser is not None:
                kuser.release()
            if self.image is not None:
                self.image.release()
            if stack:
                memory.unmap(stack, (self.image.stack_reserve + 0xFFFF) & ~0xFFFF if self.image else 0)
            self.ntdll.release()
            if all(th.done for th in self.threads):
                self._arena.release()  # running threads may still read their TEB

    def _std_handles(self) -> list[int]:
        std = []
        for fd in (0, 1, 2):
            try:
                dup = os.dup(fd)
            except OSError:
                std.append(0)
                continue
            std.append(self.handles.add(objects.File(fd=dup, path="", access=0x120196, console=True)))
        return std

    def _run_wine(
        self, path: str, args: list[str], env: dict[str, str] | None, command_line: str | None = None
    ) -> int:
        """Start the program as Windows does: LdrInitializeThunk(context) in Wine's ntdll."""
        assert self.wine is not None and self.prefix is not None
        self.d.arm_thread()
        exports = self.wine.exports
        helpers = self._helpers = wine.build_helpers()
        kuser: process.KUserSharedData | None = None
        self._arena = process.Arena(4 << 20)
        stack = size = 0
        exe: ImageView | None = None
        try:
            host = os.path.abspath(path)
            info = read_image_info(host)
            if info.is_dll:
                raise PELoadError(f"{path}: a DLL, not a program")
            exe = map_image(info)
            if exe.moved:
                relocate_image(exe)
            self.views[exe.base] = exe
            self.image_base = exe.base
            # ntdll calls __wine_unix_call through this pointer: pysud's stub, not Wine's ntdll.so
            memory.poke(exports["__wine_unix_call_dispatcher"], struct.pack("<Q", helpers.unix_call))
            kuser = process.KUserSharedData(self.version, False)
            std = self._std_handles()
            win_path = self.windows_path(host)
            cmdline = (
                command_line if command_line is not None else " ".join(_quote(a) for a in [win_path, *args])
            )
            environ = windows_environment(dict(os.environ)) if env is None else dict(env)
            user_temp = os.path.join(self.prefix.drive_c, "users", environ.get("USERNAME", "user"), "Temp")
            os.makedirs(user_temp, exist_ok=True)
            size = (max(info.stack_reserve, 1 << 20) + 0xFFFF) & ~0xFFFF
            stack = memory.map_anywhere(
                size, memory.PROT_READ | memory.PROT_WRITE, "NT main stack", align=0x10000
            )
            self.stacks.append((stack, stack + size))
            apiset = wine.apiset_map(self.prefix.dlls or "")
            self.peb = process.build_wine_peb(
                self._arena,
                exe.base,
                self.version,
                image_path=win_path,
                command_line=cmdline,
                current_dir=self.windows_path(os.getcwd()),
                environment=environ,
                std_handles=(std[0], std[1], std[2]),
                dll_path=win_path.rsplit("\\", 1)[0]
                + ";C:\\windows\\system32;C:\\windows\\system;C:\\windows",
                apiset=apiset,
                subsystem=info.subsystem,
            )
            self.main_tid = threading.get_native_id()
            teb = self.main_teb = process.build_teb(
                self._arena,
                self.peb,
                (stack + size, stack),
                os.getpid(),
                threading.get_native_id(),
                None,
                _core.thread_block(),
            )
            self._set_gs(teb)
            sys.stdout.flush()
            sys.stderr.flush()
            _ignore_kick_in_host()
            value = self._start_wine_thread(exe.base + info.entry_rva, self.peb, stack + size, "process")
            if (
                not self.exiting.is_set()
            ):  # the program died of a signal (128 + sig), not by NtTerminateProcess
                self.exit_status = value
            return self.exit_status
        finally:
            self.exiting.set()
            objects.notify()
            self._kick_others()
            for th in self.threads:
                if not th.done:
                    th.resume.set()
            try:
                _core.syscall(SYS_ARCH_PRCTL, ARCH_SET_GS, 0)
            except OSError:
                pass
            self.handles.close_all()
            if kuser is not None:
                kuser.release()
            for base, view in list(self.views.items()):
                if self.wine is None or base != self.wine.base:
                    view.release()
                    del self.views[base]
            if stack:
                memory.unmap(stack, size)
            self.nls_views.clear()
            helpers.release()
            image_mod.save_disk_cache()
            if all(th.done for th in self.threads):
                self._arena.release()

    def _start_wine_thread(self, entry: int, arg: int, stack_top: int, mode: str) -> int:
        """LdrInitializeThunk(context) on this thread: ntdll attaches the DLLs, then NtContinue
        starts RtlUserThreadStart(entry, arg); returns when the thread (or process) ends."""
        assert self.wine is not None and self._helpers is not None
        exports = self.wine.exports
        ctx_at = (stack_top - 0x40 - wine.CONTEXT_SIZE) & ~0xF
        memory.poke(ctx_at, wine.initial_context(entry, arg, exports["RtlUserThreadStart"], stack_top))
        sp = (ctx_at - 0x100) & ~0xF
        memory.poke(sp, struct.pack("<5Q", exports["LdrInitializeThunk"], ctx_at, 0, 0, 0))
        self._tls.mode = mode
        value = _core.run_guest(self._helpers.call_thunk, sp)
        self.d.check()
        return int(value)

    def windows_path(self, host: str) -> str:
        """A host path as the program sees it: under a mapped drive, else on Z: (as Wine does)."""
        for letter, root in sorted(self.drives.items(), key=lambda kv: -len(kv[1])):
            if host == root or host.startswith(root.rstrip("/") + "/"):
                rest = host[len(root) :].strip("/").replace("/", "\\")
                return f"{letter}:\\{rest}"
        return "Z:" + host.replace("/", "\\")

    def close(self) -> None:
        if self.wine is not None:
            self.views.pop(self.wine.base, None)
            self.wine.release()
            self.wine = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def _ignore_kick_in_host() -> None:
    """A kick that reaches a thread after it left the program must not end the host (SIGUSR2's
    default): the host ignores it, unless it has a use for it already."""
    try:
        if signal.getsignal(KICK_SIGNAL) == signal.SIG_DFL:
            signal.signal(KICK_SIGNAL, signal.SIG_IGN)
    except ValueError:  # not the main thread: the host's disposition stays
        pass


def _time_zone(dynamic: bool) -> bytes:
    """RTL_(DYNAMIC_)TIME_ZONE_INFORMATION of the host's zone: the bias and names (no DST rules)."""

    def name(text: str) -> bytes:
        return text.encode("utf-16-le")[:62].ljust(64, b"\0")

    bias = time.timezone // 60
    if bias == 0 and not time.daylight:
        std = dst = "Coordinated Universal Time"
        key = "UTC"
    else:
        std, dst = time.tzname
        key = std
    daylight_bias = (time.altzone - time.timezone) // 60 if time.daylight else 0
    data = struct.pack("<i", bias) + name(std) + bytes(16) + struct.pack("<i", 0)
    data += name(dst) + bytes(16) + struct.pack("<i", daylight_bias)
    if dynamic:
        data += key.encode("utf-16-le")[:254].ljust(256, b"\0") + b"\0\0\0\0"
    return data


def _quote(arg: str) -> str:
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def run(
    program: str,
    args: list[str] | None = None,
    *,
    profile: str = _profiles.DEFAULT,
    drives: dict[str, str] | None = None,
    trace: bool = False,
    flip_switch: bool = False,
    env: dict[str, str] | None = None,
    ntdll: str = "auto",
    dlls: str | None = None,
    prefix: str | None = None,
    setup: Callable[[NtPersonality], object] | None = None,
    command_line: str | None = None,
) -> int:
    """Run an x64 Windows program (PE32+) in this process; its exit status.

    ``ntdll="auto"`` runs it on Wine's PE DLLs when an installed Wine provides them (or ``dlls``
    names a directory of PE DLLs), else on pysud's own ntdll (programs importing ntdll.dll only);
    ``"wine"`` insists on the DLL set, ``"builtin"`` takes pysud's ntdll.
    ``setup(personality)`` runs before the program is loaded (`pysud run --hooks`).
    """
    nt = NtPersonality(
        profile=profile,
        drives=drives,
        trace=trace,
        flip_switch=flip_switch,
        ntdll=ntdll,
        dlls=dlls,
        prefix=prefix,
    )
    try:
        if setup is not None:
            setup(nt)
        return nt.run(program, args, env=env, command_line=command_line)
    finally:
        nt.close()
