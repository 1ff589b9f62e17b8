"""Rewriting syscall sites: the switch (``PYSUD_REWRITE``) and what the core did at each site.

The core (``_core/sud_rewrite.c``) patches a trapped ``mov $nr,%eax; syscall`` site of the
program so its later calls enter the dispatcher without a kernel trap; this module only holds
the default and reads the core's site table.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import _core

#: Environment variable: ``0`` turns rewriting off by default (CI runs the suite both ways).
ENV = "PYSUD_REWRITE"

#: Why a site was left trapping (the core's reason codes).
REASONS = {
    0: "patched",
    1: "pattern",  # not mov $nr,%eax/%rax right before the syscall
    2: "mapping",  # not a private, non-writable executable mapping
    3: "host",  # the host's own code
    4: "cache line",  # the five bytes cross a cache line: no single atomic store
    5: "rt_sigreturn",  # must run where it is
    6: "no room",  # no trampoline memory within reach
    7: "mprotect",  # the page could not be made writable
}


class Site(NamedTuple):
    """One syscall site the core examined after its first trap."""

    end: int  #: the address after the syscall instruction (``Syscall.call_addr``)
    nr: int  #: the number it was called with when examined
    patched: bool
    reason: str  #: "patched", or why it keeps trapping
    trampoline: int  #: the trampoline's address when patched, else 0


def default() -> bool:
    """Rewriting on unless ``PYSUD_REWRITE=0`` (the one place the variable is read)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "off", "false")


def sites() -> list[Site]:
    """Every site examined so far in this process."""
    return [
        Site(end, nr, state == 1, REASONS.get(reason, str(reason)), tramp)
        for end, nr, state, reason, tramp in _core.rewrite_sites()
    ]


def patched(end: int) -> bool:
    """Was the site whose syscall ends at ``end`` patched?"""
    return any(s.end == end and s.patched for s in sites())


def forget() -> None:
    """Examine every site afresh (a new image now lives at the old addresses)."""
    _core.rewrite_forget()
