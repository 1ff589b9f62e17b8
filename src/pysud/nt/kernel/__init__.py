"""The NT kernel's calls by subsystem: each module's ``HANDLERS`` table maps a call name to its function.

A handler is ``def NtOpenKey(nt: NtPersonality, call: NtSyscall) -> int`` and returns the NTSTATUS.
The personality registers every table of :data:`MODULES` (``NtPersonality._register``) and no other
handler; a call name is the key, whatever numbering the loaded ntdll uses (a name the numbering
lacks is not registered).  To add a subsystem: write ``nt/kernel/<topic>.py`` with its
``HANDLERS``, list it in ``MODULES``.

A handler that meets a bad pointer of the program's (GuestMemoryError) returns
STATUS_ACCESS_VIOLATION, one that raises ``status.NtStatusError`` (a RegistryError...) returns that
error's status: the registered function is the module's, wrapped once (``__wrapped__``);
a module of library functions (``PROBE = False``: rtl) is registered unwrapped.

A name that only pysud's own ntdll exports (numbered by ``ntdll.PRIVATE``, not a call of any
Windows build nor of Wine) is listed in its module's ``BUILTIN_ONLY`` (see :func:`builtin_only`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..._errors import GuestMemoryError
from ..status import STATUS_ACCESS_VIOLATION, NtStatusError
from . import (
    exception,
    file,
    iocompletion,
    namespace,
    process,
    registry,
    rtl,
    section,
    security,
    sync,
    system,
    thread,
    unixcall,
    virtual,
)

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

    Handler = Callable[[NtPersonality, NtSyscall], Any]
else:
    Handler = Callable[..., Any]

#: Every subsystem module with a HANDLERS table, in registration order.
MODULES: tuple[ModuleType, ...] = (
    namespace,
    file,
    virtual,
    section,
    thread,
    process,
    exception,
    sync,
    iocompletion,
    registry,
    security,
    system,
    rtl,
    unixcall,
)


def handlers() -> dict[str, Handler]:
    """All tables of :data:`MODULES` merged; a name claimed by two modules is a bug (ValueError)."""
    merged: dict[str, Handler] = {}
    owner: dict[str, str] = {}
    for module in MODULES:
        table: dict[str, Handler] = module.HANDLERS
        probe = getattr(module, "PROBE", True)
        for name, fn in table.items():
            if name in merged:
                raise ValueError(f"NT call {name} is handled by both {owner[name]} and {module.__name__}")
            merged[name] = _probed(fn) if probe else fn
            owner[name] = module.__name__
    return merged


@functools.cache
def _probed(fn: Handler) -> Handler:
    """``fn``, answering STATUS_ACCESS_VIOLATION when it touches memory the program cannot give
    (a bad pointer in the arguments), as Windows' probing of user buffers does."""

    @functools.wraps(fn)
    def probed(nt: Any, call: Any) -> Any:
        try:
            return fn(nt, call)
        except GuestMemoryError:
            return STATUS_ACCESS_VIOLATION
        except NtStatusError as e:
            return e.status

    return probed


def builtin_only() -> frozenset[str]:
    """The table names only pysud's own ntdll exports: every module's optional ``BUILTIN_ONLY``."""
    names: set[str] = set()
    for module in MODULES:
        names |= getattr(module, "BUILTIN_ONLY", frozenset())
    return frozenset(names)


def signatures() -> dict[str, tuple[str, ...]]:
    """Argument names for ``--trace`` from every module's optional ``SIGNATURES`` table (the
    conventions of nt/trace.py: ``oa:`` an OBJECT_ATTRIBUTES shown as its name, ``us:`` a
    UNICODE_STRING shown as its text, ``*`` an output pointer)."""
    merged: dict[str, tuple[str, ...]] = {}
    for module in MODULES:
        merged.update(getattr(module, "SIGNATURES", {}))
    return merged
