"""NT context and exception calls: NtContinue (the end of LdrInitializeThunk, of every handler)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .. import status as st
from ..wine import CTX_EFLAGS, CTX_FLAGS, CTX_RAX, CTX_REGS, CTX_RIP

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

CONTEXT_CONTROL = 0x1
CONTEXT_INTEGER = 0x2


def NtContinue(nt: NtPersonality, call: NtSyscall) -> Any:
    """Resume at the CONTEXT: every general register, RIP, RSP and the flags (integer + control)."""
    ctx = call.args[0]
    if not ctx:
        return st.STATUS_ACCESS_VIOLATION
    data = call.read(ctx, 0x100)
    (flags,) = struct.unpack_from("<I", data, CTX_FLAGS)
    values = struct.unpack_from("<16Q", data, CTX_RAX)
    regs = dict(zip(CTX_REGS, values, strict=True))
    if flags & CONTEXT_INTEGER:
        for name in (
            "rax",
            "rcx",
            "rdx",
            "rbx",
            "rbp",
            "rsi",
            "rdi",
            "r8",
            "r9",
            "r10",
            "r11",
            "r12",
            "r13",
            "r14",
            "r15",
        ):
            setattr(call, name, regs[name])
    if flags & CONTEXT_CONTROL:
        call.rsp = regs["rsp"]
        (call.rip,) = struct.unpack_from("<Q", data, CTX_RIP)
        (eflags,) = struct.unpack_from("<I", data, CTX_EFLAGS)
        call.rflags = (eflags & 0x0CD5) | 0x202
    return None


HANDLERS = {"NtContinue": NtContinue}
