"""pysud's exceptions: one hierarchy, rooted at PysudError."""

from __future__ import annotations

import errno as _errno

#: ``typing`` only for the type checker: its import is a visible part of every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class PysudError(Exception):
    """Base of every error pysud raises."""


class SUDUnavailable(PysudError, OSError):
    """Syscall User Dispatch cannot be used here; the message says why."""

    def __init__(self, err: int, what: str) -> None:
        reason = explain_errno(err)
        super().__init__(err, f"{what} failed: {_errno.errorcode.get(err, str(err))}: {reason}")


class UnknownSyscall(PysudError, KeyError):
    """A syscall name or number that the ABI's table does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown syscall"


class UnhandledSyscall(PysudError):
    """A call reached a dispatcher whose default is RAISE and that has no handler for it."""


class HandlerError(PysudError):
    """A handler raised; the foreign code got a defined result and this surfaces afterwards.

    ``call`` describes the syscall that was being handled (a :class:`CallRecord`),
    ``__cause__`` is the handler's exception, ``errors`` every (call, exception) pair
    collected on this thread since the last check, oldest first.
    """

    def __init__(self, call: Any, errors: list[tuple[Any, BaseException]]) -> None:
        first = errors[0][1]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"handler for {call} raised {type(first).__name__}: {first}{more}")
        self.call = call
        self.errors = errors


class CallsLost(PysudError):
    """Calls run in C (see LOCK_HAZARD_CALLS) came faster than a thread's ring could keep them.

    They ran, but ``lost`` of them never reached their handlers.  ``errors`` holds any handler
    errors collected at the same check, as in :class:`HandlerError`.
    """

    def __init__(self, lost: int, errors: list[tuple[Any, BaseException]]) -> None:
        super().__init__(f"{lost} calls run in C on this thread never reached their handlers (ring full)")
        self.lost = lost
        self.errors = errors


class GuestMemoryError(PysudError, OSError):
    """Reading or writing foreign memory failed (a bad pointer from the foreign code)."""


def explain_errno(err: int) -> str:
    """What an errno from arming dispatch means, in words a user can act on."""
    return {
        _errno.EINVAL: (
            "the kernel refused PR_SET_SYSCALL_USER_DISPATCH: it is older than 5.11 (6.17 for "
            "inclusive mode), not x86-64, built without syscall user dispatch, or this process "
            "runs under rr; or the range/selector arguments are invalid"
        ),
        _errno.EPERM: "syscall user dispatch is disabled by the sysctl kernel.syscall_user_dispatch=0",
        _errno.EFAULT: "the selector address is not a user-space address",
        _errno.ENOTSUP: "this CPU has no XSAVE, which pysud needs to preserve vector state",
    }.get(err, _errno.errorcode.get(err, "unexpected error"))
