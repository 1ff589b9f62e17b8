"""The NT kernel's calls by subsystem: each module's ``HANDLERS`` table maps a call name to its function.

A handler is ``def NtOpenKey(nt: NtPersonality, call: NtSyscall) -> int`` and returns the NTSTATUS.
The personality registers every table of :data:`MODULES` (``NtPersonality._register``) and no other
handler; a call name is the key, whatever numbering the loaded ntdll uses (a name the numbering
lacks is not registered).  To add a subsystem: write ``nt/kernel/<topic>.py`` with its
``HANDLERS``, list it in ``MODULES``.

A handler that meets a bad pointer of the program's (GuestMemoryError) answers
STATUS_ACCESS_VIOLATION, one that raises ``status.NtStatusError`` (a RegistryError...) answers that
error's status (:func:`error_status`): the dispatcher's error path does it (the personality's
``error_result``), so the registered function is the module's own, bound to the personality, with
no wrapper of its own; a module of library functions (``PROBE = False``: rtl, see
:func:`library_names`) is left out: there such an error is pysud's handler error.

A name that only pysud's own ntdll exports (numbered by ``ntdll.PRIVATE``, not a call of any
Windows build nor of Wine) is listed in its module's ``BUILTIN_ONLY`` (see :func:`builtin_only`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..._errors import GuestMemoryError
from ..status import STATUS_ACCESS_VIOLATION, NtStatusError
from . import (
    context,
    exception,
    file,
    handles,
    iocompletion,
    job,
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
    job,
    handles,
    exception,
    context,
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
        for name, fn in table.items():
            if name in merged:
                raise ValueError(f"NT call {name} is handled by both {owner[name]} and {module.__name__}")
            merged[name] = fn
            owner[name] = module.__name__
    return merged


def library_names() -> frozenset[str]:
    """The names of the modules of library functions (``PROBE = False``): not kernel calls, so
    a bad pointer there is the program's crash, not STATUS_ACCESS_VIOLATION."""
    names: set[str] = set()
    for module in MODULES:
        if not getattr(module, "PROBE", True):
            names |= set(module.HANDLERS)
    return frozenset(names)


def error_status(exc: BaseException) -> int | None:
    """The NTSTATUS a kernel call answers when its handler raised ``exc``, as Windows' probing of
    user buffers does: STATUS_ACCESS_VIOLATION for a bad pointer (GuestMemoryError), an
    NtStatusError's status; None for any other error (pysud's own: a handler error)."""
    if isinstance(exc, GuestMemoryError):
        return STATUS_ACCESS_VIOLATION
    if isinstance(exc, NtStatusError):
        return exc.status
    return None


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
