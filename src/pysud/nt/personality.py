"""The NT personality: a Windows x64 program in this process, its NT system calls emulated in Python.

Handlers are ordinary pysud handlers on a Dispatcher whose ABI is the NT x64 convention of one
Windows build (a profile); ``call.args`` decodes r10, rdx, r8, r9 and the stack arguments.
A handler returns the NTSTATUS.  Users override or add handlers with ``personality.on(name, fn)``.

The handlers are the tables of nt/kernel/ (one module per subsystem); this class holds the state
they share (handles, memory regions, threads, the loaded images), the helpers they share
(read_unicode, put_iosb, put_u32/put_u64, resolve_nt_path, exit_process), and how the program is
entered and left (run).
"""

from __future__ import annotations

import functools
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _core, _rewrite
from .. import _memory as memory
from .._abi import SyscallABI, nt_x64
from .._dispatch import Dispatcher, Return, Syscall
from . import _profiles, kernel, objects, process, wine
from . import image as image_mod
from . import ntdll as ntdll_mod
from . import status as st
from .image import ImageView
from .image import map_view as map_image
from .image import read_info as read_image_info
from .image import relocate as relocate_image
from .kernel.exception import KICK_SIGNAL
from .pe import LoadedPE, PELoadError
from .pe import load as load_pe
from .prefix import Prefix, find_wine_dlls, windows_environment
from .registry import Registry

if TYPE_CHECKING:
    import tempfile  # imported only for a scratch C: drive

ARCH_SET_GS = 0x1001
SYS_ARCH_PRCTL = 158
SYS_TGKILL = 234
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE
HEAP_HANDLE = 0x000001A0_0000_0000 >> 16  # an opaque, recognisable value for PEB.ProcessHeap
DEFAULT_STACK = 1 << 20
#: how long the end of a process waits for its other threads to leave the program (kicked)
THREAD_LEAVE_TIMEOUT = 2.0


#: the NT x64 convention as data: r10 (rcx's copy), rdx, r8, r9, then twelve stack arguments
#: from [rsp+0x28] (the stub's return address and the 32-byte home area below them)
NT_ARGS = _core.ArgLayout(("r10", "rdx", "r8", "r9"), 0x28, 16)


class NtSyscall(Syscall):
    """A trapped NT call: ``args`` are r10, rdx, r8, r9, then 12 stack arguments, a sequence that
    reads an argument only when it is asked for (``call.args[:3]`` reads three registers; a
    slice's stack arguments in one checked copy, zeros if the stack cannot be read there);
    ``arg0``..``arg3`` are the first four alone."""

    __slots__ = ()
    nt_abi: SyscallABI
    arg0 = _core.Frame.r10
    arg1 = _core.Frame.rdx
    arg2 = _core.Frame.r8
    arg3 = _core.Frame.r9
    if TYPE_CHECKING:

        @property
        def args(self) -> _core.ArgView: ...  # type: ignore[override]

    else:
        args = property(NT_ARGS)  # no Python frame: the layout reads them

    @property
    def abi(self) -> SyscallABI:
        return type(self).nt_abi


class NtPersonality:
    """Handlers, handle table and process state of one Windows program run in-process."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        drives: dict[str, str] | None = None,
        trace: bool = False,
        trace_file: Any = None,
        flip_switch: bool | None = None,
        ntdll: str = "builtin",
        dlls: str | None = None,
        prefix: str | None = None,
    ) -> None:
        if profile is not None and profile not in _profiles.TABLES:
            raise ValueError(f"unknown NT profile {profile!r}; known: {', '.join(sorted(_profiles.TABLES))}")
        if ntdll not in ("builtin", "wine", "auto"):
            raise ValueError(f"unknown ntdll {ntdll!r}: 'builtin', 'wine' or 'auto'")
        #: the Windows build whose numbers programs see; on Wine's DLLs, None keeps Wine's own
        self.windows_build = profile
        profile = profile or _profiles.DEFAULT
        self.profile = profile
        self.version = _profiles.VERSIONS[profile]
        #: pysud's Windows-numbered stubs beside Wine's ntdll (Wine's DLLs with a profile)
        self.block: wine.WindowsBlock | None = None
        renumber: list[int] = []
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
            else:
                self.prefix = Prefix(prefix, dlls)
                image_mod.use_disk_cache(os.path.join(self.prefix.path, ".pysud-image-cache.json"))
                self.wine = wine.load_ntdll(dlls)
                self.views[self.wine.base] = self.wine.view
                self.version = wine.WINDOWS_VERSION
        if self.wine is not None:
            table = dict(self.wine.table)
            self.private = dict(wine.PRIVATE)
            if self.windows_build is not None:
                # the build's numbers for every call site but Wine ntdll's own stubs (renumbered
                # by the core, by call address); the PEB and KUSER_SHARED_DATA say that build
                build = _profiles.TABLES[self.windows_build]
                table, renumber = wine.windows_numbering(table, self.private, build, _core.NSYSCALLS)
                self.block = wine.install_windows_block(self.wine, build)
                self.version = _profiles.VERSIONS[self.windows_build]
            table.update(wine.PRIVATE)
            self.abi = nt_x64(table, "wine" if self.windows_build is None else f"wine-{self.windows_build}")
            profile = self.abi.name[len("nt-x64-") :]
        else:
            table = dict(_profiles.TABLES[profile])
            table.update(ntdll_mod.PRIVATE)
            self.private = dict(ntdll_mod.PRIVATE)
            self.abi = nt_x64(table, profile)
        frame = type(
            f"NtSyscall_{profile.replace('-', '_')}", (NtSyscall,), {"__slots__": (), "nt_abi": self.abi}
        )
        self.d = Dispatcher(Return(st.STATUS_NOT_IMPLEMENTED), abi=self.abi, frame_type=frame)
        if self.d.rewrite:  # a rewritten site finds the thread block where the stubs do: in the TEB
            self.d.set_rewrite(True, locator=ntdll_mod.TEB_THREAD_BLOCK)
            if self.wine is not None:  # ~30 stubs trap in a start: known shapes, no decoding for them
                stubs = [
                    self.wine.exports[name] for name in self.wine.table.values() if name in self.wine.exports
                ]
                if self.block is not None:
                    stubs += [self.block.stubs + nr * wine.STUB_SIZE for nr in range(max(build) + 1)]
                _rewrite.install_planner(wine.stub_sites(stubs))
        if renumber and self.wine is not None:
            self.d.renumber(renumber, (self.wine.base, self.wine.base + self.wine.view.size))
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if drives is None and self.prefix is not None:
            drives = self.prefix.drives
        if drives is None:
            import tempfile

            self._scratch = tempfile.TemporaryDirectory(prefix="pysud-nt-c-")
            drives = {"C": self._scratch.name}
        self.drives = {k.upper().rstrip(":"): os.path.abspath(v) for k, v in drives.items()}
        self.trace = trace
        self.trace_file = trace_file or sys.stderr
        # the flip switch: on Wine's DLLs by default (the same handlers, no kernel trap per call)
        self.flip_switch = flip_switch if flip_switch is not None else self.wine is not None
        self.handles = objects.HandleTable()
        self.exiting = threading.Event()
        #: the other threads are to leave the program (set before they are kicked)
        self.leaving = False
        #: native thread id -> the call it is blocked in (kernel/context.py: suspended in the kernel)
        self.blocked: dict[int, NtSyscall] = {}
        #: handle -> (inherit, protect from close), as SetHandleInformation set them
        self.handle_flags: dict[int, tuple[bool, bool]] = {}
        #: ProcessDefaultHardErrorMode (SetErrorMode/GetErrorMode); 1 as a new process has it
        self.hard_error_mode = 1
        #: the first thread's alternate signal stack (kernel/exception.py PysudStart); other
        #: threads keep theirs with their mappings
        self.alt_stacks: list[tuple[int, int]] = []
        self.exit_status = 0
        self._reported: set[str] = set()
        self.heap_sizes: dict[int, int] = {}  # the builtin ntdll's RtlAllocateHeap: pointer -> size
        self.regions: dict[int, list[int]] = {}  # NtAllocateVirtualMemory: base -> [size, alloc_prot]
        self.pages: dict[int, tuple[int, int]] = {}  # page -> (state, protect) inside those regions
        self.vm_lock = threading.Lock()  # guards regions and pages
        #: per thread: ``mode`` how PysudReturn ends the guest call, ``thread`` the Thread object
        self.tls = threading.local()
        self.threads: list[objects.Thread] = []
        self.image: LoadedPE | None = None
        self.ntdll: ntdll_mod.NtdllImage | None = None
        self.peb = 0
        self.image_base = 0
        self.main_teb = 0
        self.main_tid = 0
        self._helpers: wine.Helpers | None = None
        self._kuser: process.KUserSharedData | None = None  # a run's, released by _teardown
        self._main_stack = (0, 0)  # (base, size) of a run's main stack
        self._flip_slot = 0  # Wine's DLLs with the flip switch: the page at 0x7ffe1000
        self.fault_action = 0  # the program's sigaction for hardware faults, once installed
        self.registry: Registry | None = None  # opened on first use by nt/kernel/registry.py
        self._register()

    # ------------------------------------------------------------------ registration

    def on(self, name: str, handler: Callable[[Any], Any]) -> None:
        """Add or replace the handler of an NT call (by name, e.g. ``"NtWriteFile"``)."""
        if name in kernel.context.BLOCKING:  # a suspended thread inside it is stopped in the kernel
            handler = kernel.context.blocking(self, handler)
        self.d.on(name, self._traced(name, handler) if self.trace else handler)

    def _register(self) -> None:
        # a handler's bad pointer or NtStatusError is the call's status: the dispatcher's error
        # path answers it (no wrapper per handler), but for the library functions (rtl)
        self._library = {self.abi.number_of(n) for n in kernel.library_names() if n in self.abi.numbers}
        self.d.error_result = self._error_status
        for nr in self.abi.table:
            if nr not in self.private:
                self.d.on(nr, self._unimplemented)
        # the subsystem tables of nt/kernel/ (names are the key, whatever the numbering)
        for call_name, fn in kernel.handlers().items():
            if call_name in self.abi.numbers:
                self.on(call_name, functools.partial(fn, self))

    def _unimplemented(self, call: NtSyscall) -> int:
        name = call.name
        if name not in self._reported:
            self._reported.add(name)
            print(f"pysud: {name} is not implemented (STATUS_NOT_IMPLEMENTED)", file=sys.stderr, flush=True)
        if self.trace:
            self._trace_line(call, st.STATUS_NOT_IMPLEMENTED)
        return st.STATUS_NOT_IMPLEMENTED

    def _error_status(self, call: NtSyscall, exc: BaseException) -> int | None:
        """What a call answers when its handler raised ``exc`` (see kernel.error_status); None
        (a handler error) for the library functions and for pysud's own errors."""
        return None if call.nr in self._library else kernel.error_status(exc)

    def _traced(self, name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def traced(call: NtSyscall) -> Any:
            # as called: a handler may move the registers (NtContinue, an APC); call.args is a
            # view that reads them when asked
            args = tuple(call.args)
            try:
                result = fn(call)
            except Exception as exc:
                result = self._error_status(call, exc)  # the line shows what the program gets
                if result is None:
                    raise
            self._trace_line(call, result, args)
            return result

        traced.__name__ = f"traced_{name}"
        traced.__wrapped__ = fn  # type: ignore[attr-defined]  # (--hooks chains the handler inside)
        return traced

    def _trace_line(self, call: NtSyscall, result: Any, args: tuple[int, ...] | None = None) -> None:
        from .trace import describe

        text = describe(self, call, result, args)
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
        """``value``'s low 64 bits at ``ptr``, unless it is NULL (an optional output)."""
        if ptr:
            call.write_u64(ptr, value)

    @staticmethod
    def put_u32(call: NtSyscall, ptr: int, value: int) -> None:
        """``value``'s low 32 bits at ``ptr``, unless it is NULL (an optional output)."""
        if ptr:
            call.write_u32(ptr, value)

    def put_handle(self, call: NtSyscall, out: int, obj: objects.NtObject) -> int:
        """A new handle to ``obj``, written to ``*out``; none is left behind if ``out`` is a bad
        pointer (the GuestMemoryError goes on to the dispatcher's error path)."""
        h = self.handles.add(obj)
        try:
            self.put_u64(call, out, h)
        except Exception:
            self.handles.remove(h)
            raise
        return h

    def put_info(
        self,
        call: NtSyscall,
        buf: int,
        length: int,
        ret: int,
        data: bytes,
        *,
        exact: bool = False,
        ret64: bool = False,
    ) -> int:
        """Answer an NtQuery*Information class: ``data`` into ``buf`` and its size to ``*ret`` (a
        ULONG, or a SIZE_T with ``ret64``) when ``length`` holds it (is its size, for ``exact``
        classes); STATUS_INFO_LENGTH_MISMATCH otherwise (telling an exact class's size in ``*ret``)."""
        length &= 0xFFFFFFFF
        put = self.put_u64 if ret64 else self.put_u32
        if length != len(data) if exact else length < len(data):
            if exact:
                put(call, ret, len(data))
            return st.STATUS_INFO_LENGTH_MISMATCH
        call.write(buf, data)
        put(call, ret, len(data))
        return st.STATUS_SUCCESS

    def resolve_nt_path(self, name: str, root: int = 0) -> tuple[str | None, int]:
        """The host path of an NT name (relative to the directory handle ``root`` if given), or
        (None, NTSTATUS); see nt/kernel/file.py."""
        return kernel.file.resolve_nt_path(self, name, root)

    def host_path(self, call: NtSyscall, oa: int) -> tuple[str | None, int]:
        """The host path an OBJECT_ATTRIBUTES names, or (None, NTSTATUS)."""
        return kernel.file.host_path(self, call, oa)

    def _unimplemented_class(self, call: NtSyscall, cls: int, what: str = "") -> int:
        key = f"{what or call.name} class {cls}"
        if key not in self._reported:
            self._reported.add(key)
            print(f"pysud: {key} is not implemented (STATUS_NOT_IMPLEMENTED)", file=sys.stderr, flush=True)
        return st.STATUS_NOT_IMPLEMENTED

    # ------------------------------------------------------------------ the process's end

    def exit_process(self, call: NtSyscall, code: int) -> None:
        self.exit_status = code
        # the others are kicked before their waits end: a thread inside a wait holds the signal
        # until the call ends and leaves then, never seeing the wait's end
        self._kick_others()
        self.exiting.set()
        objects.notify()
        call.exit_guest(code)
        return None

    def _kick_others(self) -> None:
        """Make every other thread of the program leave it, even one that never calls again
        (Wine's DLLs: a signal whose handler is PysudKick; waits also end on ``exiting``)."""
        if self.wine is None or not self.fault_action:
            return
        self.leaving = True
        me = threading.get_native_id()
        tids = [self.main_tid] + [t.tid for t in self.threads if t.tid and not t.done]
        for tid in tids:
            if tid and tid != me:
                _core.syscall(SYS_TGKILL, os.getpid(), tid, KICK_SIGNAL)

    def _await_threads(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the program's other threads to leave it; whether some
        are still in it (their memory must then stay mapped)."""
        deadline = time.monotonic() + timeout
        with objects.CHANGED:
            while not all(th.done for th in self.threads):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                objects.CHANGED.wait(remaining)
        return False

    # ------------------------------------------------------------------ threads

    def thread_main(self, th: objects.Thread, start: int, arg: int, stack_size: int) -> None:
        """A thread of the program (NtCreateThreadEx): once resumed, on a stack and TEB of its own,
        armed, it runs start(arg) as the ntdll in use starts threads."""
        th.resume.wait()
        self.tls.thread = th
        th.tid = threading.get_native_id()
        status = 0
        try:
            stack = memory.map_anywhere(stack_size, memory.PROT_READ | memory.PROT_WRITE, "NT thread stack")
            th.mappings.append((stack, stack_size))
            self.d.arm_thread()
            th.teb = process.build_teb(
                self._arena,
                self.peb,
                (stack + stack_size, stack),
                os.getpid(),
                th.tid,
                self.image,
                _core.thread_block(),
            )
            self._set_gs(th.teb)
            if self.wine is not None:  # ntdll attaches the DLLs to the thread, then starts it
                status = self._start_wine_thread(start, arg, stack + stack_size, "thread")
                return
            assert self.image is not None
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
        return self._enter(self.ntdll.call_thunk, fn, args, stack_top, mode)

    def _enter(self, thunk: int, fn: int, args: tuple[int, int, int, int], below: int, mode: str) -> int:
        """The one way into the program's code, for both ntdlls: ``thunk`` (the ntdll's call thunk)
        calls fn(args) on a frame below ``below``; ``mode`` says what its PysudReturn ends (a
        "call", the "thread", the "process").  Handler errors surface here (``d.check``)."""
        sp = (below - 0x100) & ~0xF
        memory.poke(sp, struct.pack("<5Q", fn, *args))
        self.tls.mode = mode
        value = _core.run_guest(thunk, sp)
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
        self._begin(process.Arena())
        # Rewriting on: the stubs enter the core directly (their `syscall` cannot be rewritten:
        # a `jne` stands before it), as with the flip switch but without changing SystemCall.
        direct = self.flip_switch or self.d.rewrite
        self.ntdll = ntdll_mod.build(_profiles.TABLES[self.profile], self.version, direct=self.d.rewrite)
        try:
            self.image = load_pe(path, self.ntdll)
            if direct:
                memory.poke(self.ntdll.direct_slot, struct.pack("<Q", _core.direct_entry_address()))
            # KUSER_SHARED_DATA.SystemCall picks the path in every stub, as on Windows: clear, the
            # stub's own `syscall` traps (SUD); set, the stub jumps to the trampoline, which enters
            # the core's direct entry without a kernel trap (the flip switch).
            self._kuser = process.KUserSharedData(self.version, self.flip_switch)
            std = self._std_handles()
            win_path = self.windows_path(os.path.abspath(path))
            cmdline = " ".join(_quote(a) for a in [win_path, *(args or [])])
            environ = dict(os.environ if env is None else env)
            stack_top = self._map_main_stack(path, self.image.stack_reserve)
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
            self._enter_main_thread(stack_top)
            for cb in self.image.tls_callbacks:  # DLL_PROCESS_ATTACH, as the Windows loader does
                self._call_guest(cb, (self.image.base, 1, 0, 0), stack_top, "call")
                if self.exiting.is_set():
                    return self.exit_status
            return self._ended(self._call_guest(self.image.entry, (self.peb, 0, 0, 0), stack_top, "process"))
        finally:
            self._teardown()

    # ------------------------------------------------------------------ one run's set-up and teardown

    def _begin(self, arena: process.Arena) -> None:
        """Arm this thread; what the run maps is noted here for :meth:`_teardown`."""
        self.d.arm_thread()
        self._arena = arena
        self._kuser = None
        self._main_stack = (0, 0)

    def _std_handles(self) -> list[int]:
        """Handles for the program's standard input, output and error: the host's fds 0-2, dup'ed
        (0 for one that is closed)."""
        std = []
        for fd in (0, 1, 2):
            try:
                dup = os.dup(fd)
            except OSError:
                std.append(0)
                continue
            std.append(self.handles.add(objects.File(fd=dup, path="", access=0x120196, console=True)))
        return std

    def _map_main_stack(self, path: str, reserve: int) -> int:
        """Map the main thread's stack (``reserve`` bytes, the program's SizeOfStackReserve, in
        64 KiB units); its top.  PELoadError if it cannot be mapped."""
        size = (reserve + 0xFFFF) & ~0xFFFF
        try:
            stack = memory.map_anywhere(
                size, memory.PROT_READ | memory.PROT_WRITE, f"{path}: its main stack", align=0x10000
            )
        except memory.MappingError as e:
            raise PELoadError(str(e)) from e
        self._main_stack = (stack, size)
        return stack + size

    def _enter_main_thread(self, stack_top: int) -> None:
        """Give this thread its TEB (on the main stack) and point GS at it, before the program runs."""
        stack = self._main_stack[0]
        self.main_tid = threading.get_native_id()
        self.main_teb = process.build_teb(
            self._arena,
            self.peb,
            (stack_top, stack),
            os.getpid(),
            self.main_tid,
            self.image,
            _core.thread_block(),
        )
        self._set_gs(self.main_teb)
        sys.stdout.flush()
        sys.stderr.flush()

    def _ended(self, value: int) -> int:
        """The run's exit status once the program's entry returned ``value``."""
        if not self.exiting.is_set():  # the program died of a signal (128 + sig), not by NtTerminateProcess
            self.exit_status = value
        return self.exit_status

    def _teardown(self) -> None:
        """The end of a run, however it ended: every thread told to leave, GS cleared, handles closed,
        what the run mapped released (the TEB/PEB arena only when no thread still runs)."""
        self.exiting.set()
        objects.notify()
        self._kick_others()
        for th in self.threads:
            if not th.done:
                th.resume.set()
        # a kicked thread runs on in the program's code (its images, the helpers' kick stub,
        # KUSER_SHARED_DATA) until its signal lands: none of that goes while it may
        left = self._await_threads(THREAD_LEAVE_TIMEOUT) if self.wine is not None else False
        try:
            _core.syscall(SYS_ARCH_PRCTL, ARCH_SET_GS, 0)
        except OSError:
            pass
        self.handles.close_all()
        if self._kuser is not None and not left:
            self._kuser.release()
            self._kuser = None
        if self.image is not None:
            self.image.release()
        for base, view in list(self.views.items()):
            if (self.wine is None or base != self.wine.base) and not left:
                view.release()
                del self.views[base]
        stack, size = self._main_stack
        if stack:
            memory.unmap(stack, size)
            self._main_stack = (0, 0)
        self.nls_views.clear()
        if self.ntdll is not None:
            self.ntdll.release()
        if self._helpers is not None and not left:
            self._helpers.release()
        if self._flip_slot and not left:
            memory.unmap(self._flip_slot, 0x1000)
            self._flip_slot = 0
        if self.wine is not None:
            image_mod.save_disk_cache()
        if all(th.done for th in self.threads):
            self._arena.release()  # running threads may still read their TEB

    def _run_wine(
        self, path: str, args: list[str], env: dict[str, str] | None, command_line: str | None = None
    ) -> int:
        """Start the program as Windows does: LdrInitializeThunk(context) in Wine's ntdll."""
        assert self.wine is not None and self.prefix is not None
        self._begin(process.Arena(4 << 20))
        exports = self.wine.exports
        direct = _core.direct_entry_address() if self.flip_switch else 0
        helpers = self._helpers = wine.build_helpers(direct)
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
            # SystemCall bit 0 set: the stubs `call [0x7ffe1000]`, which holds pysud's flip-switch
            # entry (wine.build_helpers): the core's direct entry, no kernel trap
            self._kuser = process.KUserSharedData(self.version, self.flip_switch)
            if self.flip_switch:
                self._flip_slot = wine.map_flip_switch_slot(helpers.flip_switch)
            std = self._std_handles()
            win_path = self.windows_path(host)
            cmdline = (
                command_line if command_line is not None else " ".join(_quote(a) for a in [win_path, *args])
            )
            environ = windows_environment(dict(os.environ)) if env is None else dict(env)
            user_temp = os.path.join(self.prefix.drive_c, "users", environ.get("USERNAME", "user"), "Temp")
            os.makedirs(user_temp, exist_ok=True)
            stack_top = self._map_main_stack(path, max(info.stack_reserve, 1 << 20))
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
            self._enter_main_thread(stack_top)
            _ignore_kick_in_host()
            return self._ended(
                self._start_wine_thread(exe.base + info.entry_rva, self.peb, stack_top, "process")
            )
        finally:
            self._teardown()

    def _start_wine_thread(self, entry: int, arg: int, stack_top: int, mode: str) -> int:
        """LdrInitializeThunk(context) on this thread: ntdll attaches the DLLs, then NtContinue
        starts RtlUserThreadStart(entry, arg); returns when the thread (or process) ends."""
        assert self.wine is not None and self._helpers is not None
        exports = self.wine.exports
        ctx_at = (stack_top - 0x40 - wine.CONTEXT_SIZE) & ~0xF
        memory.poke(ctx_at, wine.initial_context(entry, arg, exports["RtlUserThreadStart"], stack_top))
        return self._enter(
            self._helpers.call_thunk, exports["LdrInitializeThunk"], (ctx_at, 0, 0, 0), ctx_at, mode
        )

    def windows_path(self, host: str) -> str:
        """A host path as the program sees it: under a mapped drive, else on Z: (as Wine does)."""
        for letter, root in sorted(self.drives.items(), key=lambda kv: -len(kv[1])):
            if host == root or host.startswith(root.rstrip("/") + "/"):
                rest = host[len(root) :].strip("/").replace("/", "\\")
                return f"{letter}:\\{rest}"
        return "Z:" + host.replace("/", "\\")

    def close(self) -> None:
        if self.wine is not None and self.d.rewrite:
            _rewrite.install_planner()  # its stubs' addresses mean nothing once they are unmapped
        if self.wine is not None:
            self.views.pop(self.wine.base, None)
            self.wine.release()
            self.wine = None
        if self.block is not None:
            self.block.release()
            self.block = None
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


def _quote(arg: str) -> str:
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def run(
    program: str,
    args: list[str] | None = None,
    *,
    profile: str | None = None,
    drives: dict[str, str] | None = None,
    trace: bool = False,
    flip_switch: bool | None = None,
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
