"""pysud: Syscall User Dispatch for Python.

Run native code at full speed and handle its system calls in Python.  Not a
security boundary: code under dispatch can flip its own selector.
"""

from __future__ import annotations

from . import _core
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

TYPE_CHECKING = False  # (no `typing` import: it is a visible part of every start-up)
if TYPE_CHECKING:
    from typing import Any

    from . import lowlevel
    from ._kernel import Support, support
    from ._linux import ProgramError, run
    from ._native import CodeBlob, InterceptedFunction
del TYPE_CHECKING

# Imported on first use (PEP 562): `import pysud` stays cheap for what needs only the dispatcher,
# and the command line's start-up pays only for what its subcommand uses.
_LAZY = {
    "lowlevel": "",
    "Support": "_kernel",
    "support": "_kernel",
    "ProgramError": "_linux",
    "run": "_linux",
    "CodeBlob": "_native",
    "InterceptedFunction": "_native",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pysud' has no attribute {name!r}")
    import importlib

    if not module:  # a submodule
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
