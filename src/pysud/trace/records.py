"""The recorder's ring as Python reads it: one definition of the record and capture layouts
(sud.h: struct sud_rec, struct sud_cap) and of their kinds, and a reader for captures.

The core exports the sizes and constants it was built with where it can (``_core.TRACE_*``);
``check_layout()`` holds these definitions to them.
"""

from __future__ import annotations

import struct

from .. import _core

# struct sud_rec: size, kind, nr, tid, ncap, t_entry, t_exit, args[6], ret
REC = struct.Struct("<IHHiIQQ6Qq")
# struct sud_cap: arg, phase, status, pad, len, addr (then len bytes, padded to 8)
CAP = struct.Struct("<BBBxIQ")
SIGINFO_SIZE = 128

REC_CALL, REC_EXIT, REC_FULL, REC_SIGNAL = 1, 2, 3, 4
CAP_OK, CAP_FAULT, CAP_NULL, CAP_TRUNC = 0, 1, 2, 3
CAP_OPS = 4  # captures per syscall at most (SUD_CAP_OPS)
TIMING = int(getattr(_core, "TRACE_TIMING", 1))
CPUTIME = int(getattr(_core, "TRACE_CPUTIME", 2))  # times are the thread's CPU time


def check_layout() -> list[str]:
    """Where these definitions differ from what the core says it was built with (empty: none)."""
    want = {
        "TRACE_REC_SIZE": REC.size,
        "TRACE_CAP_SIZE": CAP.size,
        "TRACE_CAP_OPS": CAP_OPS,
        "TRACE_REC_FULL": REC_FULL,
        "TRACE_REC_SIGNAL": REC_SIGNAL,
    }
    return [
        f"{name}: core {getattr(_core, name)}, pysud.trace.records {value}"
        for name, value in want.items()
        if hasattr(_core, name) and getattr(_core, name) != value
    ]


def captures(
    data: bytes, off: int, ncap: int
) -> tuple[dict[int, bytes | bool], dict[int, bytes | bool], list[bytes | bool | None]]:
    """The captures of the record at ``off`` (its header read): entry and exit snapshots
    (address -> bytes, False where the read failed) and the list in record order (None: NULL)."""
    entry: dict[int, bytes | bool] = {}
    exit_: dict[int, bytes | bool] = {}
    order: list[bytes | bool | None] = []
    p = off + REC.size
    for _ in range(ncap):
        _arg, phase, status, ln, addr = CAP.unpack_from(data, p)
        p += CAP.size
        if status == CAP_NULL:
            order.append(None)
        else:
            v: bytes | bool = False if status == CAP_FAULT else data[p : p + ln]
            (entry if phase == 1 else exit_)[addr] = v
            order.append(v)
        p += (ln + 7) & ~7
    return entry, exit_, order
