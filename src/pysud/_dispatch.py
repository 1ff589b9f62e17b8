"""The Dispatcher: handlers in Python for the system calls of native code.

A Dispatcher holds a policy (one fast-path action per syscall number, kept in C)
and the Python handlers.  Threads are armed for it on first use; wrapped
functions and code blobs flip the selector to BLOCK around the native call only.
"""

from __future__ import annotations

import _thread
import errno as _errno
import struct
from collections.abc import Callable, Sequence
from enum import IntEnum

from . import _core, _rewrite
from ._abi import BY_AUDIT_ARCH, X86_64, SyscallABI
from ._errors import (
    CallsLost,
    GuestMemoryError,
    HandlerError,
    SUDUnavailable,
    UnhandledSyscall,
    UnknownSyscall,
)

#: ``typing`` only for the type checker: its import is a visible part of every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Any, Final


class Mode(IntEnum):
    """The prctl operation a dispatcher arms threads with."""

    EXCLUSIVE = 1  # PR_SYS_DISPATCH_EXCLUSIVE_ON: the region always runs directly
    INCLUSIVE = 2  # PR_SYS_DISPATCH_INCLUSIVE_ON (6.17+): only the region is dispatched


class Selector(IntEnum):
    """Values of the per-thread selector byte; any other value makes the kernel kill the process."""

    ALLOW = 0  # SYSCALL_DISPATCH_FILTER_ALLOW
    BLOCK = 1  # SYSCALL_DISPATCH_FILTER_BLOCK


# ---------------------------------------------------------------- actions


class _Native:
    """Run the call natively.  As a handler result, as a default, as a fast-path action."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NATIVE"


class _Raise:
    """Default for unhandled calls: fail them with ENOSYS and raise UnhandledSyscall afterwards."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RAISE"


NATIVE: Final = _Native()
RAISE: Final = _Raise()


def chain(first: Callable[[Any], Any], then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A handler that asks ``first``; when it answers NATIVE, ``then`` decides (hooks, personalities)."""

    def chained(call: Any) -> Any:
        result = first(call)
        return then(call) if result is NATIVE else result

    chained.__name__ = getattr(first, "__name__", "handler")
    return chained


class _Answer:
    """A frozen value with one field, compared and hashed by it (a dataclass without the import:
    dataclasses brings inspect, a visible part of `import pysud`)."""

    __slots__ = ("_v",)
    _v: int

    def __init__(self, v: int) -> None:
        object.__setattr__(self, "_v", v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")  # as a frozen dataclass

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(self._v == other._v)

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self._v))

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self._v,))


class Errno(_Answer):
    """Fail the call with this errno (the foreign code sees -errno in RAX)."""

    __slots__ = ()

    def __init__(self, errno: int) -> None:
        if not 0 < errno < 4096:
            raise ValueError(f"errno must be in 1..4095, not {errno}")
        super().__init__(errno)

    @property
    def errno(self) -> int:
        return int(self._v)

    def __repr__(self) -> str:
        return f"Errno({_errno.errorcode.get(self.errno, self.errno)})"


class Return(_Answer):
    """Answer the call with this value without running it."""

    __slots__ = ()

    def __init__(self, value: int) -> None:
        super().__init__(value)

    @property
    def value(self) -> int:
        return int(self._v)

    def __repr__(self) -> str:
        return f"Return(value={self._v!r})"


_ENOSYS = Errno(_errno.ENOSYS)  # the default answer of a call whose handler raised

FastAction = _Native | Errno | Return
Default = _Native | _Raise | Errno | Return
if TYPE_CHECKING:
    Handler = Callable[[Any], Any]  # receives a Syscall, or a DeferredCall for lock-hazard calls

# Calls the host's libc makes while holding locks a Python handler would need
# (malloc's arena lock around mmap/brk/madvise, the GIL's mutex around futex,
# fork's locks around clone).  From inside libc/ld.so they run in C and are
# reported to their handlers afterwards (see docs/architecture.md).
LOCK_HAZARD_CALLS: Final = frozenset(
    {"mmap", "munmap", "mremap", "brk", "madvise", "mprotect", "futex", "clone", "clone3", "fork", "vfork"}
)
#: One number's action as the core keeps it (struct sud_action): kind, hazard (int32), value (int64).
_ACTION = struct.Struct("=iiq")


# -------------------------------------------------------------- the call


class CallRecord:
    """A plain description of an intercepted call, safe to keep after it returned."""

    __slots__ = ("arch", "args", "call_addr", "name", "nr", "result", "tid")

    def __init__(
        self,
        nr: int,
        name: str,
        args: tuple[int, ...],
        call_addr: int,
        tid: int,
        arch: str,
        result: int | None,
    ) -> None:
        self.nr, self.name, self.args, self.call_addr = nr, name, args, call_addr
        self.tid, self.arch, self.result = tid, arch, result

    def __repr__(self) -> str:
        args = ", ".join(hex(a) for a in self.args)
        return f"{self.name}({args}) [nr {self.nr}, {self.arch}, from {self.call_addr:#x}, tid {self.tid}]"

    __str__ = __repr__


# A bad address in the foreign code's memory raises GuestMemoryError (an OSError, EFAULT) from
# the core's checked copy itself: no Python frame around the copy.
_core.set_memory_error(GuestMemoryError)


class _Memory:
    """Reading and writing the process's memory for handlers: bad pointers raise, never crash.

    ``read(addr, size)`` (bytes), ``write(addr, data)``, ``write_u64(addr, value)`` and
    ``write_u32(addr, value)`` (an int's low 64 or 32 bits, little-endian), ``read_u64s(addr, n)``
    (a tuple of n u64s): a bad address raises GuestMemoryError (EFAULT).  While a program runs
    (its fault handler installed) the copy is a plain one the fault handler recovers; otherwise
    the kernel checks the address (process_vm_readv/writev).
    """

    __slots__ = ()

    read = staticmethod(_core.read_memory)
    write = staticmethod(_core.write_memory)
    write_u64 = staticmethod(_core.write_u64)
    write_u32 = staticmethod(_core.write_u32)
    read_u64s = staticmethod(_core.read_u64s)

    @classmethod
    def read_cstring(cls, addr: int, limit: int = 4096) -> bytes:
        """The NUL-terminated string at ``addr`` (without the NUL), at most ``limit`` bytes."""
        out = bytearray()
        while len(out) < limit:
            # Read up to the end of the page, so a string near unmapped memory still reads.
            chunk = min(4096 - ((addr + len(out)) & 4095), limit - len(out))
            data = cls.read(addr + len(out), chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                out += data[:nul]
                return bytes(out)
            out += data
        return bytes(out)

    @classmethod
    def read_struct(cls, addr: int, ctype: type[Any]) -> Any:
        """A copy of the ctypes structure (or array, or scalar type) stored at ``addr``."""
        import ctypes

        return ctype.from_buffer_copy(cls.read(addr, ctypes.sizeof(ctype)))

    @classmethod
    def write_struct(cls, addr: int, value: Any) -> None:
        """Store a ctypes object at ``addr``."""
        cls.write(addr, bytes(value))


class Syscall(_core.Frame):
    """One intercepted system call, as a handler receives it.

    Registers are attributes (``rax`` ... ``r15``, ``rip``, ``rsp``, ``rflags``,
    ``fs_base``); writing one changes what the foreign code sees when the call
    returns.  ``nr``, ``name``, ``args`` and ``abi`` follow the ABI the call was
    made with (``syscall`` or ``int $0x80``).  ``call_addr`` is the address
    after the trapping instruction, ``tid`` the kernel thread id.
    """

    __slots__ = ()
    deferred: Final = False  # see DeferredCall

    read = staticmethod(_core.read_memory)
    write = staticmethod(_core.write_memory)
    write_u64 = staticmethod(_core.write_u64)
    write_u32 = staticmethod(_core.write_u32)
    read_u64s = staticmethod(_core.read_u64s)
    read_cstring = _Memory.read_cstring
    read_struct = _Memory.read_struct
    write_struct = _Memory.write_struct

    @property
    def abi(self) -> SyscallABI:
        return BY_AUDIT_ARCH.get(self.arch, X86_64)

    @property
    def name(self) -> str:
        return self.abi.name_of(self.nr)

    @property
    def thread(self) -> threading.Thread:
        import threading  # (here: its import is a visible part of every start-up)

        return threading.current_thread()

    @staticmethod
    def fail(err: int) -> int:
        """The result that fails a call with ``err``: ``return call.fail(errno.EPERM)``."""
        return -abs(err)

    def record(self, result: int | None = None) -> CallRecord:
        # a copy: a personality's args may be read when asked for (nt.NtSyscall's)
        return CallRecord(
            self.nr, self.name, tuple(self.args), self.call_addr, self.tid, self.abi.name, result
        )

    def __repr__(self) -> str:
        return f"<Syscall {self.record()!r}>"


class DeferredCall:
    """A call that ran in C because Python could not safely run then (see LOCK_HAZARD_CALLS).

    Handlers for those calls receive this instead of a Syscall, after the fact:
    ``result`` is what the kernel returned; ``native()`` returns it; the return
    value of the handler is ignored.  Memory can still be read.
    """

    __slots__ = ("args", "call_addr", "nr", "result", "tid")
    deferred: Final = True
    abi: Final = X86_64
    read = staticmethod(_core.read_memory)
    read_u64s = staticmethod(_core.read_u64s)
    read_cstring = _Memory.read_cstring
    read_struct = _Memory.read_struct

    def __init__(self, nr: int, args: tuple[int, ...], result: int, call_addr: int, tid: int) -> None:
        self.nr, self.args, self.result, self.call_addr, self.tid = nr, args, result, call_addr, tid

    @property
    def name(self) -> str:
        return X86_64.name_of(self.nr)

    def native(self, *args: int, nr: int | None = None) -> int:
        return self.result

    def record(self, result: int | None = None) -> CallRecord:
        return CallRecord(self.nr, self.name, self.args, self.call_addr, self.tid, "x86_64", self.result)

    def __repr__(self) -> str:
        return f"<DeferredCall {self.record()!r} = {self.result}>"


# ------------------------------------------------------------ dispatcher


class _SelectorBlock:
    """``with d.blocked():`` / ``with d.allowed():``: on entry the thread is armed and the selector
    set, on exit the old selector is back (and, for blocked(), the calls run in C are delivered
    and handler errors raised: :meth:`Dispatcher.check`).  A class rather than
    ``contextlib.contextmanager``: contextlib's import is a visible part of ``import pysud``."""

    __slots__ = ("_check", "_d", "_old", "_selector")

    def __init__(self, d: Dispatcher, selector: Selector, *, check: bool) -> None:
        self._d, self._selector, self._check = d, selector, check
        self._old = 0

    def __enter__(self) -> None:
        self._d.arm_thread()
        self._old = _core.set_selector(self._selector)

    def __exit__(self, *exc: object) -> None:
        _core.set_selector(self._old)
        if self._check:
            self._d.check()


class Dispatcher:
    """Handlers for the system calls of native code, and the switches that route them here.

    ``default`` says what happens to calls without a handler: NATIVE (run them),
    ``Errno(e)`` (fail them), ``Return(v)``, or RAISE (fail with ENOSYS and raise
    UnhandledSyscall when control returns to Python).  ``mode`` and ``region``
    choose how threads are armed: EXCLUSIVE with ``region=None`` makes only
    pysud's own gate run directly, so every call made while the selector is
    BLOCK is dispatched; INCLUSIVE with a region dispatches only calls made
    from that region (the selector must still be BLOCK).  ``handler_error`` is
    the result foreign code gets when a handler raises.  ``lock_safe`` routes
    the LOCK_HAZARD_CALLS that come from the host's libc through C (off only
    if you know no handler can deadlock).  ``abi`` names the calls (a foreign
    personality's table); ``frame_type``, a Syscall subclass, decodes them
    (``args`` and ``name`` for that ABI).  ``rewrite`` (default: on unless
    ``PYSUD_REWRITE=0``) lets the core patch a trapped ``mov $nr,%eax; syscall``
    site of the foreign code so that its later calls reach the same handlers
    without a kernel trap (docs/architecture.md, "Rewritten sites").
    """

    def __init__(
        self,
        default: Default = NATIVE,
        *,
        mode: Mode = Mode.EXCLUSIVE,
        region: tuple[int, int] | None = None,
        handler_error: Errno = _ENOSYS,
        lock_safe: bool = True,
        abi: SyscallABI = X86_64,
        frame_type: type[Syscall] | None = None,
        rewrite: bool | None = None,
    ) -> None:
        self.abi = abi
        self.mode = Mode(mode)
        if region is None:
            if self.mode is Mode.INCLUSIVE:
                raise ValueError(
                    "inclusive mode needs a region: the (start, length) whose calls are dispatched"
                )
            start, end = _core.gate_range()
            region = (start, end - start)
        start, length = region
        if start < 0 or length < 0:
            raise ValueError("region is (start, length) with non-negative values")
        self.region = (start, length)
        if not isinstance(handler_error, Errno):
            raise TypeError("handler_error must be an Errno")
        self.handler_error = handler_error
        self.lock_safe = lock_safe
        self._handlers: dict[int, Handler] = {}
        self._other_handlers: dict[tuple[int, int], Handler] = {}
        self._fast: dict[int, FastAction] = {}
        self._recorded: set[int] = set()
        #: ``(call, exc) -> result or None``: answers a handler's exception with a result (a
        #: personality's translation, e.g. the NT kernel's STATUS_ACCESS_VIOLATION for a bad
        #: pointer) instead of failing the call with ``handler_error``; None: it is an error.
        #: Taken only when a handler raises, so handlers need no try of their own.
        self.error_result: Callable[[Any, BaseException], Any] | None = None
        # handler errors by the native id of the thread they happened on, until check()
        self._errors: dict[int, list[tuple[CallRecord, BaseException]]] = {}
        self._policy = _core.Policy(
            self._on_call, self._on_deferred, self._on_result, self._on_error, frame_type or Syscall, NATIVE
        )
        self._default: Default = NATIVE
        self.default = default
        self._closed = False
        self.rewrite = False
        self.set_rewrite(_rewrite.default() if rewrite is None else rewrite)

    def set_rewrite(self, on: bool, locator: int | None = None) -> bool:
        """Patch trapped sites of foreign code from now on (or stop); returns whether it is on.

        ``locator`` is where a rewritten site finds the thread block: its offset from the GS
        base (None: the core makes the GS base the thread block, the Linux way; the NT
        personality passes its TEB slot).  Off when the CPU lacks FSGSBASE.
        """
        self.rewrite = _core.rewrite_config(self._policy, bool(on), locator)
        if self.rewrite:
            _rewrite.install_planner()
        return self.rewrite

    def direct_calls(self) -> int:
        """Calls so far that reached this dispatcher without a kernel trap (rewritten sites,
        the flip switch); the rest of ``counts()`` came through SIGSYS."""
        return _core.rewrite_direct_count(self._policy)

    # ---- configuration

    @property
    def default(self) -> Default:
        return self._default

    @default.setter
    def default(self, value: Default) -> None:
        if not isinstance(value, _Native | _Raise | Errno | Return):
            raise TypeError(f"default must be NATIVE, RAISE, Errno(e) or Return(v), not {value!r}")
        self._default = value
        # every number's action in one call (one _sync per number was ~2 ms of each start-up)
        kind, code = self._encode(value)
        table = bytearray(_ACTION.pack(kind, 0, code) * _core.NSYSCALLS)
        if self.lock_safe:
            for nr, name in self.abi.table.items():
                if name in LOCK_HAZARD_CALLS and 0 <= nr < _core.NSYSCALLS:
                    _ACTION.pack_into(table, nr * _ACTION.size, kind, 1, code)
        for nr in self._fast.keys() | self._recorded | self._handlers.keys():
            _ACTION.pack_into(table, nr * _ACTION.size, *self._action(nr))
        self._policy.set_actions(table)
        self._policy.set_action(-1, kind, code, 0)

    def _nr(self, call: str | int) -> int:
        if isinstance(call, bool) or not isinstance(call, int | str):
            raise TypeError(f"a syscall is named by its name or number, not {call!r}")
        if isinstance(call, int):
            if not 0 <= call < _core.NSYSCALLS:
                raise UnknownSyscall(f"syscall number {call} is out of range 0..{_core.NSYSCALLS - 1}")
            return call
        try:
            return self.abi.number_of(call)
        except KeyError:
            raise UnknownSyscall(f"unknown {self.abi.name} syscall {call!r}") from None

    @staticmethod
    def _encode(action: Default) -> tuple[int, int]:
        if isinstance(action, _Native):
            return _core.ACT_NATIVE, 0
        if isinstance(action, Errno):
            return _core.ACT_ERRNO, action.errno
        if isinstance(action, Return):
            return _core.ACT_RETURN, action.value
        return _core.ACT_PYTHON, 0  # RAISE is decided in Python

    def _action(self, nr: int) -> tuple[int, int, int]:
        """The effective action for one number: kind, hazard, value (the core's layout)."""
        hazard = int(self.lock_safe and self.abi.name_of(nr) in LOCK_HAZARD_CALLS)
        if nr in self._fast:
            kind, value = self._encode(self._fast[nr])
        elif nr in self._recorded:
            kind, value = _core.ACT_TRACE, 0
        elif nr in self._handlers:
            kind, value = _core.ACT_PYTHON, 0
        else:
            kind, value = self._encode(self._default)
        return kind, hazard, value

    def _sync(self, nr: int) -> None:
        """Push the effective action and handler for one number into the C policy."""
        self._policy.set_handler(nr, self._handlers.get(nr))
        kind, hazard, value = self._action(nr)
        self._policy.set_action(nr, kind, value, hazard)

    def on(self, call: str | int, handler: Handler | None = None) -> Any:
        """Register ``handler`` for a syscall (name or number); usable as a decorator.

        The handler gets a :class:`Syscall` and answers by returning an int (the
        result; negative values are -errno), NATIVE (run it natively), or None
        after setting registers itself.  Raising fails the call with
        ``handler_error`` and raises HandlerError when control returns to Python.
        """
        nr = self._nr(call)

        def register(h: Handler) -> Handler:
            if not callable(h):
                raise TypeError(f"handler must be callable, not {h!r}")
            self._handlers[nr] = h
            _core.path_filter(self._policy, nr, 0, None)  # a new handler sees every call
            self._sync(nr)
            return h

        return register(handler) if handler is not None else register

    def on_i386(self, call: str | int, handler: Handler) -> Handler:
        """Register a handler for an ``int $0x80`` call of the i386 ABI."""
        from ._abi import I386

        nr = I386.number_of(call) if isinstance(call, str) else call
        self._other_handlers[(I386.audit_arch, nr)] = handler
        self._policy.set_action(-1, _core.ACT_PYTHON, 0, 0)
        return handler

    def remove(self, call: str | int) -> None:
        """Forget the handler (and any fast-path action) for a syscall."""
        nr = self._nr(call)
        self._handlers.pop(nr, None)
        self._fast.pop(nr, None)
        self._sync(nr)

    def set_fast(self, call: str | int, action: FastAction | None) -> None:
        """A fast-path action for a syscall that never enters Python: NATIVE, Errno(e) or Return(v).

        It takes precedence over a Python handler; None removes it.  Every call
        is counted either way (see counts()).
        """
        nr = self._nr(call)
        if action is None:
            self._fast.pop(nr, None)
        elif not isinstance(action, _Native | Errno | Return):
            raise TypeError(f"a fast-path action is NATIVE, Errno(e) or Return(v), not {action!r}")
        else:
            self._fast[nr] = action
        self._sync(nr)

    def only_paths(self, call: str | int, arg: int, prefixes: Sequence[bytes]) -> None:
        """Send ``call`` to its handler only when argument ``arg`` is a path that starts with one
        of ``prefixes`` (1 to 4, each under 32 bytes); the core runs every other such call
        natively, in C, as the handler would have answered NATIVE.  A path that cannot be read
        still reaches the handler.  Registering a handler with :meth:`on` again clears this.
        """
        nr = self._nr(call)
        if nr not in self._handlers:
            raise ValueError(f"{call!r} has no handler to filter for")
        _core.path_filter(self._policy, nr, arg, [bytes(p) for p in prefixes])

    def only_args(self, call: str | int, arg: int, lo: int, hi: int) -> None:
        """Send ``call`` to its handler only when the low 32 bits of argument ``arg`` (a
        descriptor, say) lie in ``[lo, hi]``; the core runs every other such call natively, in C.
        Registering a handler with :meth:`on` again clears this.
        """
        nr = self._nr(call)
        if nr not in self._handlers:
            raise ValueError(f"{call!r} has no handler to filter for")
        _core.range_filter(self._policy, nr, arg, lo, hi)

    def renumber(self, table: Sequence[int], keep: tuple[int, int]) -> None:
        """Two numberings in one process, told apart by call site: a call made from outside the
        address range ``keep`` (start, end) with a number ``nr < len(table)`` is dispatched (and
        counted, and seen by its handler) as ``table[nr]``; calls from inside the range, and
        larger numbers, keep theirs.  The core does it before anything else looks at the number.
        Set it before threads make calls; an empty table turns it off.
        """
        if len(table) > _core.NSYSCALLS or any(not 0 <= n < _core.NSYSCALLS for n in table):
            raise ValueError(f"a renumber table has up to {_core.NSYSCALLS} entries, each below that")
        lo, hi = keep
        self._policy.set_renumber(lo, max(hi - lo, 0), struct.pack(f"={len(table)}H", *table))

    def handler_of(self, call: str | int) -> Handler | None:
        """The Python handler registered for a syscall, or None."""
        return self._handlers.get(self._nr(call))

    # ---- the recorder: calls recorded in C and run natively, decoded later in batches

    def start_recording(self, ring_bytes: int = 1 << 20, timing: bool = False, cputime: bool = False) -> None:
        """Give this dispatcher a ring for records of calls (see :meth:`record`); ``timing``:
        records carry entry and exit times, the clock's or (``cputime``) the thread's CPU time."""
        flags = (_core.TRACE_TIMING if timing else 0) | (_core.TRACE_CPUTIME if timing and cputime else 0)
        self._policy.trace_start(ring_bytes, flags)

    def record(self, call: str | int, captures: Sequence[tuple[int, ...]], room: int) -> None:
        """Record a syscall in C (registers, result, the memory ``captures`` name) and run it natively.

        A registered handler still sees the call when the ring lacks ``room`` bytes: it is the
        handler's turn to empty it with :meth:`take_records`.  A fast-path action wins over this.
        """
        nr = self._nr(call)
        self._policy.trace_capture(nr, room, captures)
        self._recorded.add(nr)
        self._sync(nr)

    def take_records(self) -> bytes:
        """The records so far, in the core's layout (pysud.trace reads it); empties the ring."""
        return self._policy.trace_take()

    def forget_records(self) -> None:
        """Drop records copied from the parent (call first thing in a forked child)."""
        self._policy.trace_forget()

    def records_lost(self) -> int:
        return self._policy.trace_lost()

    def counts(self) -> dict[str, int]:
        """How many calls of each syscall this dispatcher has seen, by name."""
        raw = self._policy.counts()
        return {(k if isinstance(k, str) else self.abi.name_of(k)): v for k, v in raw.items()}

    def reset_counts(self) -> None:
        self._policy.reset_counts()

    # ---- the hook (runs on the dispatch stack, GIL held, selector ALLOW)

    # The core calls a registered x86-64 handler directly and puts an int
    # result in RAX itself; these three methods decide everything else.

    def _on_call(self, call: Syscall) -> None:
        """A call without a direct handler: i386 calls, and the RAISE default."""
        try:
            handler = None
            if call.arch == self.abi.audit_arch:
                handler = self._handlers.get(call.nr)
            else:
                handler = self._other_handlers.get((call.arch, call.nr))
            if handler is None:
                if isinstance(self._default, _Raise):
                    raise UnhandledSyscall(f"no handler for {call.record()}")
                result: Any = self._default
            else:
                result = handler(call)
        except BaseException as exc:  # noqa: BLE001 - every error must reach the user, none the kernel
            self._on_error(call, exc)
            return
        self._on_result(call, result, handler)

    def _on_result(self, call: Syscall, result: Any, handler: Any = None) -> None:
        try:
            if result is None:
                if not call.dirty:
                    raise TypeError(
                        f"handler {handler or self._handlers.get(call.nr)!r} for {call.name} returned None "
                        "without setting any register; return an int, NATIVE, or set call.rax"
                    )
            elif result is NATIVE:
                call.rax = call.native()
            elif isinstance(result, Errno):
                call.rax = -result.errno
            elif isinstance(result, Return):
                call.rax = result.value
            elif isinstance(result, int) and not isinstance(result, bool):
                call.rax = result  # an int subclass, or one that needs all 64 bits
            else:
                raise TypeError(
                    f"handler {handler or self._handlers.get(call.nr)!r} for {call.name} "
                    f"returned {result!r}; expected an int, NATIVE, Errno(e), Return(v) or None"
                )
        except BaseException as exc:  # noqa: BLE001
            self._on_error(call, exc)

    def _on_error(self, call: Syscall, exc: BaseException) -> None:
        if self.error_result is not None and isinstance(exc, Exception):
            result = self.error_result(call, exc)
            if result is not None:
                call.rax = result
                return
        self._errors.setdefault(_thread.get_native_id(), []).append((call.record(), exc))
        call.rax = -self.handler_error.errno

    def _on_deferred(self, records: list[tuple[int, tuple[int, ...], int, int]]) -> None:
        tid = _thread.get_native_id()
        for nr, args, result, call_addr in records:
            handler = self._handlers.get(nr)
            if handler is None:
                continue
            call = DeferredCall(nr, args, result, call_addr, tid)
            try:
                handler(call)
            except BaseException as exc:  # noqa: BLE001
                self._errors.setdefault(tid, []).append((call.record(), exc))

    # ---- arming and the selector

    def arm_thread(self) -> None:
        """Arm the calling thread for this dispatcher (done on first use; idempotent)."""
        if self._closed:
            raise RuntimeError("this dispatcher is closed")
        start, length = self.region
        if _core.armed_as(self._policy, int(self.mode), start, length):
            return
        try:
            _core.arm(self._policy, int(self.mode), start, length)
        except OSError as e:
            raise SUDUnavailable(
                e.errno or 0, f"arming this thread ({self.mode.name.lower()} mode)"
            ) from None

    def disarm_thread(self) -> None:
        """Disarm the calling thread (the kernel stops checking its calls entirely)."""
        _core.disarm()

    def blocked(self) -> _SelectorBlock:
        """Selector BLOCK for the block: every call this thread makes is dispatched,
        the Python interpreter's own included.  Nests with allowed()."""
        return _SelectorBlock(self, Selector.BLOCK, check=True)

    def allowed(self) -> _SelectorBlock:
        """Selector ALLOW for the block (inside blocked(): let Python run directly)."""
        return _SelectorBlock(self, Selector.ALLOW, check=False)

    def check(self, *, all_threads: bool = False) -> None:
        """Deliver calls run in C to their handlers; raise HandlerError for handler errors on this thread.

        With ``all_threads``, errors on every thread count (a program's threads, for
        :func:`pysud.run`).  Raises CallsLost if calls run in C on this thread could not be
        kept for their handlers.
        """
        deferred = _core.take_deferred()
        if deferred:
            self._on_deferred(deferred)
        lost = _core.deferred_lost()
        tid = _thread.get_native_id()
        for nr, args, call_addr, exc in _core.take_unreported():  # the error path itself failed
            record = CallRecord(nr, self.abi.name_of(nr), args, call_addr, tid, self.abi.name, None)
            self._errors.setdefault(tid, []).append((record, exc))
        if all_threads:
            errors = [e for tid in list(self._errors) for e in self._errors.pop(tid, [])]
        else:
            errors = self._errors.pop(_thread.get_native_id(), [])
        if lost:
            raise CallsLost(lost, errors)
        if errors:
            first_call, first_exc = errors[0]
            raise HandlerError(first_call, errors) from first_exc

    # ---- running native code

    def wrap(self, func: Any, *, ffi: Any = None) -> Callable[..., Any]:
        """A callable that runs ``func`` (a ctypes function, or a cffi one with ``ffi``)
        with its system calls dispatched here, and the host's own calls untouched."""
        from ._native import wrap

        return wrap(self, func, ffi)

    def call(self, func: Any, *args: Any) -> Any:
        """``wrap(func)(*args)`` for one call."""
        return self.wrap(func)(*args)

    def close(self) -> None:
        """Disarm the calling thread; threads still armed run their calls natively from now on."""
        st = _core.thread_state(self._policy)
        if st is not None and st[5]:
            _core.disarm()
        self._closed = True

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def policy(self) -> Any:
        """The C policy (for pysud's own modules)."""
        return self._policy
