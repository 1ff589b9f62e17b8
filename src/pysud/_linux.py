"""The default Linux personality: a whole program run in-process, native unless a call touches the host."""

from __future__ import annotations

import _thread
import bisect
import ctypes
import errno as _errno
import fcntl
import functools
import os
import signal
import sys
from collections.abc import Callable

from . import _core, _rewrite
from ._dispatch import NATIVE, Dispatcher, Syscall, chain
from ._errors import GuestMemoryError, PysudError

#: ``typing`` only for the type checker: its import is a visible part of every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from ._elf import LoadedImage

ARCH_SET_FS = 0x1002
ARCH_GET_FS = 0x1003
PAGE = 4096
_ET_DYN_BASE = 0x555555554000  # x86-64 ELF_ET_DYN_BASE (2/3 of the user address space), page-aligned
_EXEC = 1 << 40  # exit_guest value meaning "load the next image" (above any status)
_HIDDEN_FD_BASE = 900  # pysud's copies of the host's stdio live from here up
_PR_SET_NAME, _PR_GET_NAME = 15, 16
_CLOSE_RANGE_CLOEXEC = 4
_libc = ctypes.CDLL(None, use_errno=True)


def _page_up(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


def _get_comm() -> bytes:
    buf = ctypes.create_string_buffer(16)
    _libc.prctl(_PR_GET_NAME, buf, 0, 0, 0)
    return buf.value


def _set_comm(name: bytes) -> None:
    """This thread's name as execve sets it (/proc/self/comm, ps, PR_GET_NAME): 15 bytes at most."""
    _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


class ProgramError(PysudError):
    """A program could not be run (not found, not loadable)."""


_SYS_RT_SIGACTION, _SYS_RT_SIGPROCMASK, _SYS_TGKILL = 13, 14, 234

#: Signals whose default action dumps core (signal(7)).
_CORE_SIGNALS = frozenset(
    {
        signal.SIGQUIT,
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGABRT,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGSEGV,
        signal.SIGXCPU,
        signal.SIGXFSZ,
        signal.SIGSYS,
    }
)
_PR_SET_DUMPABLE = 4


#: Signals held back while Python loads an image (not the synchronous faults, not SIGSYS and the
#: core's kick, which the mechanism needs).
_ASYNC_SIGNALS = frozenset(signal.valid_signals()) - {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGILL,
    signal.SIGFPE,
    signal.SIGTRAP,
    signal.SIGSYS,
    63,
}


def _mask_bits(mask: set[signal.Signals] | set[int]) -> int:
    return sum(1 << (int(s) - 1) for s in mask)


def inherited_ignored() -> int:
    """The signals this process ignores, as a mask (bit S-1): what a program it runs inherits.

    SIGPIPE and SIGXFSZ are left out: Python ignores them itself at start-up (whatever its parent
    did), and gives its own children the default for them (subprocess's restore_signals).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("SigIgn:"):
                mask = int(line.split()[1], 16)
                break
        else:
            return 0
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        mask &= ~(1 << (sig - 1))
    return mask


def _flush_cache() -> None:
    """Write the persistent cache's new entries now: the ways out below skip atexit."""
    if "pysud._cache" in sys.modules:
        from . import _cache

        _cache.flush()


def die_of_signal(sig: int) -> NoReturn:
    """End this process by signal ``sig``, as the program it ran ended: a parent's wait() sees WIFSIGNALED.

    The signal's disposition goes back to the default and it is unblocked, then raised. For a
    signal that dumps core the process is first made non-dumpable: the core would be the Python
    host's, not the program's, so none is written and the status has no core-dump flag.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _flush_cache()
    libc = ctypes.CDLL(None)
    if sig in _CORE_SIGNALS:
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if 32 <= sig < signal.SIGRTMIN:
        # glibc's own SIGCANCEL/SIGSETXID (a musl program's SIGTIMER/SIGCANCEL): glibc's
        # sigaction, sigprocmask and raise refuse or skip them; the kernel's calls do not.
        dfl = (ctypes.c_uint64 * 4)()
        unblock = ctypes.c_uint64(1 << (sig - 1))
        libc.syscall(ctypes.c_long(_SYS_RT_SIGACTION), ctypes.c_long(sig), dfl, None, ctypes.c_long(8))
        libc.syscall(
            ctypes.c_long(_SYS_RT_SIGPROCMASK),
            ctypes.c_long(signal.SIG_UNBLOCK),
            ctypes.byref(unblock),
            None,
            ctypes.c_long(8),
        )
        libc.syscall(
            ctypes.c_long(_SYS_TGKILL),
            ctypes.c_long(os.getpid()),
            ctypes.c_long(_thread.get_native_id()),
            ctypes.c_long(sig),
        )
        os._exit(128 + sig)
    try:
        signal.signal(sig, signal.SIG_DFL)
    except ValueError:  # not Python's main thread: set the kernel's default directly
        libc.signal(sig, ctypes.c_void_p(0))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    signal.raise_signal(sig)
    os._exit(128 + sig)  # only if the default action did not end the process


class _Brk:
    """The program's own heap: brk emulated in a region of its own, never the host's.

    (A plain class: ``dataclasses`` imports ``inspect``, a visible part of start-up.)"""

    def __init__(self, start: int) -> None:
        self.start = start
        self.cur = self.mapped_end = start
        self.mappings: list[tuple[int, int]] = []

    def set(self, want: int) -> int:
        if want < self.start:
            return self.cur
        from . import _memory

        end = (want + PAGE - 1) & ~(PAGE - 1)
        if end > self.mapped_end:
            size = end - self.mapped_end
            try:
                _memory.map_at(self.mapped_end, size, _memory.PROT_READ | _memory.PROT_WRITE, "brk")
            except _memory.MappingError:
                return self.cur  # as the kernel does: the old break means failure
            self.mappings.append((self.mapped_end, size))
            self.mapped_end = end
        self.cur = want
        return want

    def release(self) -> None:
        from . import _elf

        for addr, size in self.mappings:
            _elf.unmap_region(addr, size)
        self.mappings.clear()


class _Regions:
    """The address ranges a program mapped itself (mmap, mremap), less what it unmapped.

    When its image goes (exit, or execve), so do they: the kernel would drop them with the
    address space, and in-process they would stay in the host for good.
    """

    def __init__(self) -> None:
        self.starts: list[int] = []  # disjoint, sorted; ends[i] belongs to starts[i]
        self.ends: list[int] = []
        self.lock = _thread.allocate_lock()  # the program's threads map concurrently

    def remove(self, lo: int, hi: int) -> None:
        with self.lock:
            self._remove(lo, hi)

    def _remove(self, lo: int, hi: int) -> None:
        i = bisect.bisect_right(self.ends, lo)  # the first range ending after lo
        keep_s, keep_e = self.starts[:i], self.ends[:i]
        while i < len(self.starts) and self.starts[i] < hi:
            if self.starts[i] < lo:
                keep_s.append(self.starts[i])
                keep_e.append(lo)
            if self.ends[i] > hi:
                keep_s.append(hi)
                keep_e.append(self.ends[i])
            i += 1
        self.starts, self.ends = keep_s + self.starts[i:], keep_e + self.ends[i:]

    def add(self, lo: int, hi: int) -> None:
        with self.lock:
            self._remove(lo, hi)
            i = bisect.bisect_left(self.starts, lo)
            self.starts.insert(i, lo)
            self.ends.insert(i, hi)

    def release(self) -> None:
        from . import _elf

        for lo, hi in zip(self.starts, self.ends, strict=True):
            _elf.unmap_region(lo, hi - lo)
        self.starts, self.ends = [], []


def find_program(name: str) -> str:
    """A program path as a shell finds it: with a slash as given, else on PATH."""
    if "/" in name:
        if not os.path.exists(name):
            raise ProgramError(f"{name}: no such file")
        return name
    import shutil  # (here: its import is a visible part of every start-up)

    found = shutil.which(name)
    if not found:
        raise ProgramError(f"{name}: not found on PATH")
    return found


#: binfmt_script reads this much of a file for its ``#!`` line (BINPRM_BUF_SIZE).
_BINPRM_BUF = 256
#: Interpreters in a chain (a script whose interpreter is a script...): the kernel stops after 4 with ELOOP.
_MAX_INTERP_DEPTH = 4


def resolve_interpreter(path: str, argv: list[bytes]) -> tuple[str, list[bytes]]:
    """What execve(path, argv) runs, as the kernel decides: an ELF file, or a ``#!`` script's interpreter.

    For a script the interpreter gets ``[interpreter, optional-argument, path, argv[1:]...]``
    (binfmt_script; nested up to four levels).  Raises OSError with the errno execve would
    give: ENOEXEC for a file that is neither ELF nor script, ELOOP, EACCES, ENOENT.
    """
    for _ in range(_MAX_INTERP_DEPTH + 1):
        if not os.path.exists(path):
            raise OSError(_errno.ENOENT, f"{path}: no such file")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise OSError(_errno.EACCES, f"{path}: permission denied")
        try:
            with open(path, "rb") as f:
                head = f.read(_BINPRM_BUF)
        except OSError as exc:
            raise OSError(exc.errno, f"{path}: {exc.strerror}") from exc
        if head[:4] == b"\x7fELF":
            return path, argv
        if head[:2] != b"#!":
            raise OSError(_errno.ENOEXEC, f"{path}: not an ELF file or a #! script")
        line, newline, _ = head[2:].partition(b"\n")
        line = line.strip(b" \t")
        name = line.replace(b"\t", b" ").split(b" ", 1)[0]
        arg = line[len(name) :].strip(b" \t")
        if not name or (not newline and len(head) == _BINPRM_BUF and not arg):
            # no interpreter, or its name cut off by the end of the buffer
            raise OSError(_errno.ENOEXEC, f"{path}: bad or too long #! line")
        argv = [name, *([arg] if arg else []), os.fsencode(path), *argv[1:]]
        path = os.fsdecode(name)
    raise OSError(_errno.ELOOP, f"{path}: too many levels of #! interpreters")


class LinuxPersonality:
    """Handlers that keep a program's per-process state apart from the host's.

    What is virtualised: exit/exit_group (return to Python), arch_prctl FS
    (the program's TLS), brk (its own heap), set_tid_address and
    set_robust_list (never replace the host thread's), rseq (refused so libc
    does not register one), readlink of /proc/self/exe (the program's path),
    /proc/self/cmdline and environ (its argv and environment), execve (the
    new image is loaded in-process, from any thread and in any process the
    program forks).  The core virtualises the program's signals
    (rt_sigaction, delivery, sigaltstack) and its threads.  A handler the
    dispatcher already had for one of these calls is asked first; when it
    returns NATIVE the personality's handling follows.  Everything else runs
    natively.  After a run, ``fault`` holds (signal,
    si_code, address, registers) if the program died of a signal.
    """

    def __init__(self, dispatcher: Dispatcher, *, native_exec: bool = False) -> None:
        self.d = dispatcher
        # execve loads the new image in-process (interception survives) unless native_exec: then
        # the kernel's execve replaces this whole process, Python included, as it would natively.
        self.native_exec = native_exec
        self._start_pid = 0
        self._vdso = True
        self.exe = b""
        self.execfn = b""  # the path execve was given (a script's, when an interpreter runs)
        self.first_argv: list[bytes] = []  # the first program's argv as given (tracing shows its execve)
        self.argv: list[bytes] = []  # the running image's, for /proc/self/cmdline and environ
        self.envp: list[bytes] = []
        self.brk: _Brk | None = None
        self._images_held: list[LoadedImage] = []  # the running image and its interpreter
        self._stack_held: tuple[int, int] | None = None  # its stack (address, size)
        self.regions = _Regions()  # what the running image mapped itself
        self.fault: tuple[int, int, int, dict[str, int]] | None = None
        # the signal the program died of (its status is then 128 + it), None if it exited
        self.killed_by: int | None = None
        self._mask = 0  # the program's signal mask, between two of its images
        # after run(), asynchronous signals go back to the host (its mask restored); `pysud run`
        # keeps them held until it exits: natively they would find the program gone
        self.restore_signals = True
        # on_end(status, fault): the program (or a forked child of it, which ends inside run())
        # is over; a tracer prints its last lines here
        self.on_end: Callable[[int, tuple[int, int, int, dict[str, int]] | None], None] | None = None
        # on_start(execfn, argv, envp_count, envp_address): the first program is about to run
        # (its stack built); the tracer prints the execve the kernel would have run for it
        self.on_start: Callable[[str, list[bytes], int, int], None] | None = None
        self.next_exec: tuple[str, list[bytes], list[bytes]] | None = None
        # pysud's own descriptors (copies of the host's stdio, a tracer's output, see keep_fd):
        # fd -> what to tell when it moves; the program cannot see, close or replace them (close,
        # dup and fcntl say EBADF, dup2 onto one moves ours away, close_range and execve's
        # close-on-exec skip them)
        self.own: dict[int, Callable[[int], None]] = {}
        self.hidden: dict[int, int] = {}  # std fd -> its copy among them, while a program runs
        self._host_cloexec: set[int] = set()  # the host's close-on-exec fds: never the program's
        on = self._install
        on("exit", self._exit)
        on("exit_group", self._exit)
        on("arch_prctl", self._arch_prctl)
        on("brk", self._brk)
        on("set_tid_address", lambda call: call.tid)
        on("set_robust_list", lambda call: 0)
        on("rseq", lambda call: -_errno.ENOSYS)
        on("readlink", self._readlink)
        on("readlinkat", self._readlink)
        on("execve", self._execve)
        on("open", self._open_proc_self)
        on("openat", self._open_proc_self)
        on("close", self._close)
        on("dup", self._close)  # (the same answer: EBADF for ours)
        on("fcntl", self._close)
        on("dup2", self._dup2)
        on("dup3", self._dup2)
        on("close_range", self._close_range)
        on("mmap", self._mmap)
        on("munmap", self._munmap)
        on("mremap", self._mremap)
        # Where only our handler decides, only the calls it answers reach Python; the core runs
        # the rest natively, in C: paths under /proc, and pysud's own (high) descriptors.
        for name, arg in (("readlink", 0), ("readlinkat", 1), ("open", 0), ("openat", 1)):
            if self.d.handler_of(name) == self._readlink or self.d.handler_of(name) == self._open_proc_self:
                self.d.only_paths(name, arg, [b"/proc/"])
        for name in ("close", "dup", "fcntl"):
            if self.d.handler_of(name) == self._close:
                self.d.only_args(name, 0, _HIDDEN_FD_BASE, 0xFFFFFFFF)

    def _install(self, name: str, handler: Callable[[Syscall], Any]) -> None:
        """Handle ``name``; a handler the dispatcher already has runs first (NATIVE: ours follows).

        A personality's handler left from an earlier run on the same dispatcher is replaced,
        not chained (the user's handler it chained to, if any, is kept).
        """
        ours: dict[str, tuple[Any, Any]] = self.d.__dict__.setdefault("_personality_handlers", {})
        current = self.d.handler_of(name)
        installed, user = ours.get(name, (None, None))
        if current is not installed:
            user = current  # the user's own (or None)
        final: Callable[[Syscall], Any] = handler if user is None else chain(user, handler)
        ours[name] = (final, user)
        self.d.on(name, final)

    # ---- handlers

    def _exit(self, call: Syscall) -> Any:
        # The core ends the guest on this thread (exit) or on all of the
        # program's threads (exit_group); run_guest returns the status.
        return NATIVE

    def _arch_prctl(self, call: Syscall) -> Any:
        code, addr = call.args[:2]
        if code == ARCH_SET_FS:
            call.fs_base = addr
            return 0
        if code == ARCH_GET_FS:
            try:
                call.write(addr, call.fs_base.to_bytes(8, "little"))
            except GuestMemoryError:
                return -_errno.EFAULT
            return 0
        return NATIVE

    def _brk(self, call: Syscall) -> int:
        assert self.brk is not None
        want = call.args[0]
        return self.brk.cur if want == 0 else self.brk.set(want)

    def _readlink(self, call: Syscall) -> Any:
        if call.name == "readlinkat":
            _dirfd, path_at, buf, size = call.args[:4]
        else:
            path_at, buf, size = call.args[:3]
        try:
            if call.read_cstring(path_at) != b"/proc/self/exe":
                return NATIVE
        except GuestMemoryError:
            return NATIVE  # the kernel says EFAULT
        data = self.exe[:size]
        try:
            call.write(buf, data)
        except GuestMemoryError:
            return -_errno.EFAULT
        return len(data)

    def _open_proc_self(self, call: Syscall) -> Any:
        """/proc/self/cmdline and environ describe the program, not the Python host: a memfd with its own."""
        path_at, flags = (call.args[1], call.args[2]) if call.name == "openat" else call.args[:2]
        try:
            path = call.read_cstring(path_at)
        except GuestMemoryError:
            return NATIVE  # the kernel says EFAULT
        if not path.startswith(b"/proc/") or flags & os.O_ACCMODE != os.O_RDONLY:
            return NATIVE
        what = path.rsplit(b"/", 1)[-1]
        if what not in (b"cmdline", b"environ") or path[6 : -len(what)] not in (
            b"self/",
            b"thread-self/",
            b"%d/" % os.getpid(),
        ):
            return NATIVE
        strings = self.argv if what == b"cmdline" else self.envp
        fd = os.memfd_create(what.decode(), os.MFD_CLOEXEC if flags & os.O_CLOEXEC else 0)
        os.write(fd, b"".join(s + b"\0" for s in strings))
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    # ---- the program's own mappings, released with its image

    def _mmap(self, call: Syscall) -> Any:
        r = call.native()
        if r >= 0:
            self.regions.add(r, r + _page_up(call.args[1]))
        return r

    def _munmap(self, call: Syscall) -> Any:
        r = call.native()
        if r == 0:
            self.regions.remove(call.args[0], call.args[0] + _page_up(call.args[1]))
        return r

    def _mremap(self, call: Syscall) -> Any:
        old, old_size, new_size = call.args[:3]
        r = call.native()
        if r >= 0:
            if not call.args[3] & 4:  # MREMAP_DONTUNMAP keeps the old range mapped
                self.regions.remove(old, old + _page_up(old_size))
            self.regions.add(r, r + _page_up(new_size))
        return r

    # ---- pysud's own descriptors, out of the program's reach

    def keep_fd(self, fd: int, moved: Callable[[int], None]) -> None:
        """Keep descriptor ``fd`` (pysud's, e.g. a trace file) out of the program's reach, in the
        program and in every process it forks: ``moved(new)`` is called when the program's dup2
        wants its number and it moves to another.  One below pysud's range (900 and up) moves
        there first: only those numbers reach the close/dup/fcntl handler when no other
        handler (a tracer's) sees every call."""
        if fd < _HIDDEN_FD_BASE:
            high = fcntl.fcntl(
                fd,
                fcntl.F_DUPFD_CLOEXEC if fcntl.fcntl(fd, fcntl.F_GETFD) else fcntl.F_DUPFD,
                _HIDDEN_FD_BASE,
            )
            os.close(fd)
            moved(high)
            fd = high
        self.own[fd] = moved

    def _own_fds(self) -> set[int]:
        """pysud's descriptors: the copies of the host's stdio, a tracer's output (keep_fd), and
        a vfork child's channel."""
        own = set(self.own)
        vfork = _core.vfork_fd()
        if vfork >= 0:
            own.add(vfork)
        return own

    def _close(self, call: Syscall) -> Any:
        """close, dup, fcntl: one of pysud's descriptors is a free number to the program."""
        return -_errno.EBADF if call.args[0] & 0xFFFFFFFF in self._own_fds() else NATIVE

    def _dup2(self, call: Syscall) -> Any:
        old, new = call.args[0] & 0xFFFFFFFF, call.args[1] & 0xFFFFFFFF
        if old in self._own_fds():
            return -_errno.EBADF
        if new in self.own:  # the program wants this number: ours moves up, out of the way
            moved = self.own.pop(new)
            fd = fcntl.fcntl(new, fcntl.F_DUPFD_CLOEXEC, _HIDDEN_FD_BASE)
            os.close(new)
            self.own[fd] = moved
            moved(fd)
        return NATIVE

    def _close_range(self, call: Syscall) -> Any:
        first, last, flags = call.args[0] & 0xFFFFFFFF, call.args[1] & 0xFFFFFFFF, call.args[2]
        mine = sorted(fd for fd in self._own_fds() if first <= fd <= last)
        if not mine or first > last:
            return NATIVE
        lo = first
        for fd in [*mine, last + 1]:  # the range less our descriptors, natively, piece by piece
            if lo <= fd - 1:
                r = call.native(lo, fd - 1, flags)
                if r < 0:
                    return r
            lo = fd + 1
        return 0

    def _close_on_exec(self) -> None:
        """What execve does to the program's descriptors: those marked FD_CLOEXEC close."""
        keep = self._host_cloexec | set(self.own)
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd in keep:
                continue
            try:
                if fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                    os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, already gone

    def _execve(self, call: Syscall) -> Any:
        from . import _elf

        if self.native_exec:
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                self_exe = call.read_cstring(call.args[0]) == b"/proc/self/exe"
            except GuestMemoryError:
                return NATIVE  # the kernel says EFAULT
            if self_exe:  # the program, not Python
                exe = ctypes.create_string_buffer(self.exe)
                return call.native(ctypes.addressof(exe))
            return NATIVE
        try:  # as the kernel copies them in: the path, then argv and envp (EFAULT if unreadable)
            path = call.read_cstring(call.args[0]).decode(errors="surrogateescape")
            argv = self._strings(call, call.args[1])
            envp = self._strings(call, call.args[2])
        except GuestMemoryError:
            return -_errno.EFAULT
        if path == "/proc/self/exe":  # the program re-executing itself, not the Python host
            path = os.fsdecode(self.exe)
        try:
            target, argv = resolve_interpreter(path, argv)
            _elf.check_image(target)  # what the kernel checks before its point of no return
        except OSError as exc:
            return -(exc.errno or _errno.ENOEXEC)
        except _elf.ELFLoadError as exc:
            return -exc.errno
        self.execfn, path = path.encode(), target
        self.next_exec = (path, argv, envp)
        _core.vfork_release()  # past the point of no return: a vfork parent goes on
        # From any thread: the program's other threads end (as the kernel kills them), and the
        # loop of its first thread (or, in a child forked by another thread, _orphan) loads it.
        call.exit_program(_EXEC)
        return None

    @staticmethod
    def _strings(call: Syscall, vec: int) -> list[bytes]:
        out: list[bytes] = []
        while vec:
            ptr = int.from_bytes(call.read(vec, 8), "little")
            if not ptr:
                break
            out.append(call.read_cstring(ptr, 1 << 20))
            vec += 8
        return out

    # ---- running

    def run(self, path: str, argv: list[bytes], envp: list[bytes], *, vdso: bool = True) -> int:

        start_pid = self._start_pid = os.getpid()
        self._vdso = vdso
        self.d.arm_thread()
        self.d.policy.set_on_orphan(self._orphan)
        sys.stdout.flush()
        sys.stderr.flush()
        # The program shares the host's descriptors; many programs close their stdio at exit
        # (coreutils' close_stdout). Keep copies far above the usual numbers and put them back.
        self._host_cloexec = set()
        for name in os.listdir("/proc/self/fd"):
            try:
                if fcntl.fcntl(int(name), fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                    self._host_cloexec.add(int(name))
            except OSError:
                pass
        saved = self.hidden = {}
        for fd in (0, 1, 2):
            try:
                saved[fd] = copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIDDEN_FD_BASE)
            except OSError:
                continue
            self.keep_fd(copy, functools.partial(saved.__setitem__, fd))
        comm = _get_comm()
        # From here to the program's end, asynchronous signals are the program's: held in the
        # kernel while Python loads an image (its dispositions decide once it runs, Python's
        # handlers never see them), and the program starts with the mask this thread has now.
        host_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
        self._mask = _mask_bits(host_mask)
        try:
            return self._run(path, argv, envp, vdso, start_pid)
        finally:
            if self.restore_signals:
                # what the program left blocked and pending ended with it; the host's mask is back
                for sig in signal.sigpending() - host_mask:
                    signal.sigtimedwait([sig], 0)
                signal.pthread_sigmask(signal.SIG_SETMASK, host_mask)
            self.d.policy.set_on_orphan(None)
            _set_comm(comm)
            self.hidden = {}
            for fd, copy in saved.items():
                del self.own[copy]
                os.dup2(copy, fd, inheritable=True)
                os.close(copy)

    def _run(self, path: str, argv: list[bytes], envp: list[bytes], vdso: bool, start_pid: int) -> int:

        self.execfn = path.encode()
        self.first_argv = argv  # as given, before a #! interpreter is put in front
        try:
            path, argv = resolve_interpreter(path, argv)
        except OSError as exc:
            raise ProgramError(exc.strerror) from exc
        return self._loop(path, argv, envp, vdso, start_pid, after_exec=False)

    def _release_image(self) -> None:
        """What the running image holds goes, as the kernel drops the address space at exit and
        execve: its brk, what it mapped, its stack, its images."""
        from . import _elf

        if self.brk is not None:
            self.brk.release()
        self.regions.release()
        if self._stack_held is not None:
            _elf.unmap_region(*self._stack_held)
        for im in self._images_held:
            _elf.unload(im)
        self._stack_held, self._images_held = None, []

    def _orphan(self, value: int) -> int:
        """In a process forked by a program thread other than the first: that thread left the program.

        It is the process's only thread and no loop of ``run()`` is on its stack: an execve
        loads the next image here, on it; otherwise the process ends with the program's status.
        """
        if value == _EXEC and self.next_exec is not None:
            path, argv, envp = self.next_exec
            # the old program's memory, copied into this process by the fork: the frame of
            # run()'s loop that would release it is in the parent
            self._release_image()
            self._mask = _mask_bits(signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS))
            return self._loop(path, argv, envp, self._vdso, self._start_pid, after_exec=True)
        self.fault = _core.last_fault()
        self._child_exit(value)

    def _child_exit(self, value: int) -> NoReturn:
        """A forked child of the program ends here, never back in the caller of run()."""
        if self.on_end is not None:
            self.on_end(value, self.fault)
        _flush_cache()  # what it learned (a program it exec'd: its headers), before os._exit
        # one that died of a signal dies of it for real, so its parent sees that
        if self.fault is not None and value == 128 + self.fault[0]:
            die_of_signal(self.fault[0])
        os._exit(value & 0xFF)

    def _loop(
        self, path: str, argv: list[bytes], envp: list[bytes], vdso: bool, start_pid: int, after_exec: bool
    ) -> int:
        """Load and run images until the program ends (an execve loops with the next one)."""
        try:
            return self._images(path, argv, envp, vdso, start_pid, after_exec)
        except BaseException:
            if os.getpid() == start_pid:
                raise
            # A forked child of the program: never back into the caller's code (the rest of
            # the host's script would run twice); report and end as the program would not.
            sys.stderr.write("pysud: in a process the program forked:\n")
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(2)

    def _images(
        self, path: str, argv: list[bytes], envp: list[bytes], vdso: bool, start_pid: int, after_exec: bool
    ) -> int:
        from . import _elf

        while True:
            if after_exec:
                self._close_on_exec()
            _set_comm(os.path.basename(self.execfn))  # as execve names the process
            images = []
            _rewrite.forget()  # sites of an earlier image: this one's code may live at their addresses
            try:
                # where the kernel puts a PIE program (ELF_ET_DYN_BASE): room above it for brk
                image = _elf.load_image(path, base_hint=_ET_DYN_BASE)
                images.append(image)
                interp = _elf.load_image(image.interp) if image.interp else None
                if interp:
                    images.append(interp)
            except BaseException:
                for im in images:
                    _elf.unload(im)
                raise
            self.exe = os.path.realpath(path).encode()  # as the kernel shows it: symlinks resolved
            self.argv, self.envp = argv, envp
            self.brk = _Brk(image.brk_start)
            self._images_held = images
            vdso_base = _elf.host_auxv().get(33) if vdso else None  # AT_SYSINFO_EHDR
            try:
                stack, stack_size, sp = _elf.build_stack(
                    image, interp, argv, envp, execfn=self.execfn, vdso_base=vdso_base
                )
            except BaseException:
                self._release_image()
                raise
            self._stack_held = (stack, stack_size)
            entry = interp.entry if interp else image.entry
            if self.on_start is not None and not after_exec:
                # argc at sp, then argv[] and its NULL, then envp[]
                self.on_start(
                    self.execfn.decode(errors="surrogateescape"),
                    self.first_argv,
                    len(envp),
                    sp + 8 * (len(argv) + 2),
                )
            self.next_exec = None
            value = 127
            # A new program starts with default signal dispositions but for the ones its parent
            # left ignored; execve keeps the ignored ones ignored, as POSIX says.
            _core.reset_signals(after_exec, 0 if after_exec else inherited_ignored())
            try:
                # the program's mask while it runs; asynchronous signals held again after it
                value = _core.run_guest(entry, sp, self._mask, after_exec)  # (execve keeps pending signals)
                self._mask = _core.guest_mask()
                self.fault = _core.last_fault()
                self.d.check(all_threads=True)  # handler errors on any of the program's threads
            finally:
                self._release_image()
            if value == _EXEC and self.next_exec is not None:
                path, argv, envp = self.next_exec
                after_exec = True
                continue
            if self.fault is not None and value == 128 + self.fault[0]:
                self.killed_by = self.fault[0]
            if os.getpid() != start_pid:
                self._child_exit(value)
            if self.on_end is not None:
                self.on_end(value, self.fault)
            return value & 0xFF


def run(
    program: str,
    args: list[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    dispatcher: Dispatcher | None = None,
    vdso: bool = True,
    native_exec: bool = False,
    setup: Callable[[Dispatcher], object] | None = None,
    rewrite: bool | None = None,
) -> int:
    """Run a Linux x86-64 program in this process with its system calls dispatched; its exit status.

    ``args`` is argv[1:] (argv[0] is ``program`` as given). Calls without a
    handler in ``dispatcher`` run natively; the personality's handlers keep
    the program's TLS, heap, signal dispositions and exit apart from the host.
    ``setup(dispatcher)`` runs once the personality's handlers are on it, before
    the program starts (`pysud run --hooks` registers its handlers there).
    ``rewrite`` (default: on unless ``PYSUD_REWRITE=0``) lets the core patch the program's
    trapped syscall sites so that their later calls skip the kernel's trap.
    """
    personality = _personality(dispatcher, native_exec, setup, rewrite)
    return personality.run(*_command(program, args, env), vdso=vdso)


def _personality(
    dispatcher: Dispatcher | None,
    native_exec: bool,
    setup: Callable[[Dispatcher], object] | None,
    rewrite: bool | None = None,
) -> LinuxPersonality:
    d = dispatcher or Dispatcher(rewrite=rewrite)
    if dispatcher is not None and rewrite is not None:
        d.set_rewrite(rewrite)
    personality = LinuxPersonality(d, native_exec=native_exec)
    if setup is not None:
        setup(d)
    return personality


def _command(
    program: str, args: list[str] | None, env: dict[str, str] | None
) -> tuple[str, list[bytes], list[bytes]]:
    path = find_program(program)
    argv = [os.fsencode(program)] + [os.fsencode(a) for a in (args or [])]
    environ = os.environ if env is None else env
    envp = [os.fsencode(f"{k}={v}") for k, v in environ.items()]
    return path, argv, envp


def run_command(
    program: str,
    args: list[str],
    *,
    vdso: bool = True,
    native_exec: bool = False,
    setup: Callable[[Dispatcher], object] | None = None,
    rewrite: bool | None = None,
) -> int:
    """``pysud run``: as run(), but a program that dies of a signal takes this process with it.

    A shell or any parent then sees what it would see natively: WIFSIGNALED with the signal
    (Python's returncode -S), not an exit status of 128 + S.
    """
    personality = _personality(None, native_exec, setup, rewrite)
    personality.restore_signals = False
    status = personality.run(*_command(program, args, None), vdso=vdso)
    if personality.killed_by is not None:
        die_of_signal(personality.killed_by)
    return status
