"""The raw mechanism, for tests, tools and people who know the kernel interface.

Everyday code uses :class:`pysud.Dispatcher`; this module exposes the kernel's
knobs one to one: prctl as given (the kernel validates), the selector of the
calling thread, and the ptrace configuration requests of Linux 6.4.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _core
from ._dispatch import Mode, Selector

__all__ = [
    "PR_SET_SYSCALL_USER_DISPATCH",
    "PR_SYS_DISPATCH_EXCLUSIVE_ON",
    "PR_SYS_DISPATCH_INCLUSIVE_ON",
    "PR_SYS_DISPATCH_OFF",
    "PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG",
    "PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG",
    "SYSCALL_DISPATCH_FILTER_ALLOW",
    "SYSCALL_DISPATCH_FILTER_BLOCK",
    "SYS_USER_DISPATCH",
    "DispatchConfig",
    "gate_range",
    "get_selector",
    "hazard_ranges",
    "prctl",
    "ptrace_get_config",
    "ptrace_set_config",
    "raw_syscall",
    "selector_address",
    "set_selector",
]

PR_SET_SYSCALL_USER_DISPATCH = 59
PR_SYS_DISPATCH_OFF = 0
PR_SYS_DISPATCH_EXCLUSIVE_ON = int(Mode.EXCLUSIVE)
PR_SYS_DISPATCH_INCLUSIVE_ON = int(Mode.INCLUSIVE)
SYSCALL_DISPATCH_FILTER_ALLOW = int(Selector.ALLOW)
SYSCALL_DISPATCH_FILTER_BLOCK = int(Selector.BLOCK)
SYS_USER_DISPATCH = 2
PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG = 0x4210
PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG = 0x4211


def prctl(op: int, offset: int, length: int, selector: int) -> int:
    """prctl(PR_SET_SYSCALL_USER_DISPATCH, op, offset, length, selector) exactly as given.

    Returns 0 or -errno; nothing is checked before the kernel sees it.  Arming
    this way bypasses pysud's thread state: a trapped call on such a thread
    gets SIGSYS's default action (the process dies) unless the thread was
    armed through a Dispatcher first.
    """
    return int(_core.prctl_raw(op, offset & (2**64 - 1), length & (2**64 - 1), selector))


def selector_address() -> int | None:
    """Address of the calling thread's selector byte (None before the thread is armed)."""
    return _core.selector_address()


def get_selector() -> int | None:
    return _core.get_selector()


def set_selector(value: int) -> int:
    """Set the calling thread's selector; values other than ALLOW/BLOCK are refused (ValueError)."""
    return _core.set_selector(value)


def gate_range() -> tuple[int, int]:
    """(start, end) of pysud's gate: the code whose syscalls the exclusive default region allows."""
    return _core.gate_range()


def hazard_ranges() -> list[tuple[int, int]]:
    """Text ranges of the host's libc and ld.so (where lock-hazard calls are run in C)."""
    return _core.hazard_ranges()


def raw_syscall(nr: int, *args: int) -> int:
    """A system call from pysud's gate (never dispatched); returns -errno on failure."""
    return _core.syscall(nr, *args)


@dataclass(frozen=True)
class DispatchConfig:
    """struct ptrace_sud_config."""

    mode: int
    selector: int
    offset: int
    len: int


def ptrace_get_config(pid: int) -> DispatchConfig:
    """PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG of a ptrace-stopped tracee (OSError on failure)."""
    return DispatchConfig(*_core.ptrace_get_config(pid))


def ptrace_set_config(pid: int, config: DispatchConfig) -> None:
    """PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG of a ptrace-stopped tracee (OSError on failure)."""
    _core.ptrace_set_config(pid, config.mode, config.selector, config.offset, config.len)
