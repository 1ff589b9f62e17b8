"""pysud: Syscall User Dispatch for Python.

Run native code at full speed and handle its system calls in Python.  Not a
security boundary: code under dispatch can flip its own selector.
"""

from __future__ import annotations

from . import _core, lowlevel
from ._abi import I386, X86_64, SyscallABI
from ._dispatch import (
    LOCK_HAZARD_CALLS,
    NATIVE,
    RAISE,
    CallRecord,
    DeferredCall,
    Dispatcher,
    Errno,
    Mode,
    Return,
    Selector,
    Syscall,
)
from ._errors import (
    CallsLost,
    GuestMemoryError,
    HandlerError,
    PysudError,
    SUDUnavailable,
    UnhandledSyscall,
    UnknownSyscall,
)
from ._kernel import Support, support
from ._linux import ProgramError, run
from ._native import CodeBlob, InterceptedFunction

__version__ = "0.1.0"
_CORE_API = 1
if _core.CORE_API != _CORE_API:  # pragma: no cover - a stale build
    raise ImportError(f"pysud._core has API {_core.CORE_API}, this package needs {_CORE_API}: rebuild it")

__all__ = [
    "I386",
    "LOCK_HAZARD_CALLS",
    "NATIVE",
    "RAISE",
    "X86_64",
    "CallRecord",
    "CallsLost",
    "CodeBlob",
    "DeferredCall",
    "Dispatcher",
    "Errno",
    "GuestMemoryError",
    "HandlerError",
    "InterceptedFunction",
    "Mode",
    "ProgramError",
    "PysudError",
    "Return",
    "SUDUnavailable",
    "Selector",
    "Support",
    "Syscall",
    "SyscallABI",
    "UnhandledSyscall",
    "UnknownSyscall",
    "lowlevel",
    "run",
    "support",
]
