"""NT context and exception calls: NtContinue (the end of LdrInitializeThunk, of every handler)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ... import _memory as memory
from .. import status as st
from ..wine import CONTEXT_SIZE, CTX_EFLAGS, CTX_FLAGS, CTX_FLTSAVE, CTX_RAX, CTX_REGS, CTX_RIP

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

CONTEXT_CONTROL = 0x1
CONTEXT_INTEGER = 0x2
CONTEXT_FLOATING_POINT = 0x8
#: MXCSR bits a CONTEXT may set (the rest are reserved: XRSTOR would fault)
MXCSR_VALID = 0xFFFF
#: the CONTEXT_INTEGER registers: every general register of the CONTEXT but RSP (CONTEXT_CONTROL)
_INTEGER_REGS = tuple(name for name in CTX_REGS if name != "rsp")


def vector_state_of(ctx: bytes) -> bytes:
    """The FXSAVE image a CONTEXT's floating-point part stands for: its FltSave, MXCSR included
    (Wine loads FltSave.MxCsr and ignores the CONTEXT's own MxCsr field), reserved bits cleared."""
    fx = bytearray(ctx[CTX_FLTSAVE : CTX_FLTSAVE + 512])
    (mxcsr,) = struct.unpack_from("<I", fx, 24)
    struct.pack_into("<I", fx, 24, mxcsr & MXCSR_VALID)
    return bytes(fx)


def NtContinue(nt: NtPersonality, call: NtSyscall) -> Any:
    """Resume at the CONTEXT: every general register, RIP, RSP and the flags (integer + control),
    x87, MXCSR and XMM0-15 (floating point).  With TestAlert (KiUserApcDispatcher's, the end of
    LdrInitializeThunk's) a user APC queued for the thread runs first, to resume there after."""
    ctx, test_alert = call.args[:2]
    if not ctx:
        return st.STATUS_ACCESS_VIOLATION
    if test_alert & 0xFF and nt.wine is not None:
        from .thread import deliver_apc

        if deliver_apc(nt, call, lambda: call.read(ctx, CONTEXT_SIZE)):
            return None
    restore_context(call, call.read(ctx, CTX_FLTSAVE + 512))
    return None


def restore_context(call: NtSyscall, data: bytes) -> None:
    """The thread resumes from the parts of the CONTEXT ``data`` its ContextFlags name."""
    (flags,) = struct.unpack_from("<I", data, CTX_FLAGS)
    values = struct.unpack_from("<16Q", data, CTX_RAX)
    regs = dict(zip(CTX_REGS, values, strict=True))
    if flags & CONTEXT_INTEGER:
        for name in _INTEGER_REGS:
            setattr(call, name, regs[name])
    if flags & CONTEXT_CONTROL:
        call.rsp = regs["rsp"]
        (call.rip,) = struct.unpack_from("<Q", data, CTX_RIP)
        (eflags,) = struct.unpack_from("<I", data, CTX_EFLAGS)
        call.rflags = (eflags & 0x0CD5) | 0x202
    if flags & CONTEXT_FLOATING_POINT:
        call.set_vector_state(vector_state_of(data))


HANDLERS = {"NtContinue": NtContinue}
SIGNATURES: dict[str, tuple[str, ...]] = {"NtContinue": ("Context", "TestAlert")}


# ---- hardware faults become Windows exceptions (KiUserExceptionDispatcher)

SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV = 4, 5, 7, 8, 11
#: sent to the process's other threads when one ends the process (their code may never call again)
KICK_SIGNAL = 12  # SIGUSR2
FAULT_SIGNALS = (SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV)
SYS_RT_SIGACTION = 13
SA_SIGINFO = 0x4
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SYS_SIGALTSTACK = 131
ALT_STACK_SIZE = 0x10000
SA_NODEFER = 0x40000000
FPE_INTDIV, FPE_INTOVF = 1, 2
STATUS_BREAKPOINT = 0x80000003
STATUS_SINGLE_STEP = 0x80000004
STATUS_ACCESS_VIOLATION = 0xC0000005
STATUS_ILLEGAL_INSTRUCTION = 0xC000001D
STATUS_INTEGER_DIVIDE_BY_ZERO = 0xC0000094
STATUS_INTEGER_OVERFLOW = 0xC0000095
STATUS_FLOAT_DIVIDE_BY_ZERO = 0xC000008E
EXCEPTION_RECORD_OFFSET = 0x4F0  # from the CONTEXT KiUserExceptionDispatcher finds at RSP
EXCEPTION_FRAME = 0x4F0 + 0x98 + 0x28
CONTEXT_FULL_SEGMENTS = 0x10000F  # CONTROL | INTEGER | SEGMENTS | FLOATING_POINT
# ucontext_t (x86-64 Linux): uc_mcontext.gregs at 40, fpregs pointer after the 23 gregs
UC_GREGS = 40
UC_FPREGS = 40 + 23 * 8
_GREG_ORDER = (
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
    "rdi",
    "rsi",
    "rbp",
    "rbx",
    "rdx",
    "rax",
    "rcx",
    "rsp",
)


def PysudStart(nt: NtPersonality, call: NtSyscall) -> int:
    """The start of a thread: the program's dispositions for hardware faults point at pysud's stub,
    and the thread gets an alternate signal stack for the kick signal's frame (Wine's signals run
    on one too): a thread is suspended wherever it is, on a Go goroutine's stack of a few KiB
    among others, and Windows writes nothing on a suspended thread's stack."""
    helpers = nt._helpers
    if helpers is None:
        return st.STATUS_SUCCESS
    alt = memory.map_anywhere(ALT_STACK_SIZE, memory.PROT_READ | memory.PROT_WRITE, "NT signal stack")
    th = getattr(nt.tls, "thread", None)
    (th.mappings if th is not None else nt.alt_stacks).append((alt, ALT_STACK_SIZE))
    ss = nt._arena.alloc(24)
    call.write(ss, struct.pack("<QI4xQ", alt, 0, ALT_STACK_SIZE))  # stack_t: ss_sp, ss_flags, ss_size
    r = call.native(ss, 0, nr=SYS_SIGALTSTACK)
    if r != 0:
        raise OSError(-r, "sigaltstack for the program's thread failed")
    if nt.fault_action:
        return st.STATUS_SUCCESS
    act = nt._arena.alloc(32)
    call.write(
        act,
        struct.pack(
            "<QQQQ",
            helpers.fault_handler,
            SA_SIGINFO | SA_NODEFER | SA_RESTORER,
            helpers.fault_handler + 0x10,
            0,
        ),
    )
    for sig in FAULT_SIGNALS:
        r = call.native(sig, act, 0, 8, nr=SYS_RT_SIGACTION)
        if r != 0:
            raise OSError(-r, f"rt_sigaction({sig}) for the program failed")
    kick = nt._arena.alloc(32)
    call.write(
        kick,
        struct.pack(
            "<QQQQ", helpers.kick, SA_SIGINFO | SA_NODEFER | SA_RESTORER | SA_ONSTACK, helpers.kick + 0x10, 0
        ),
    )
    r = call.native(KICK_SIGNAL, kick, 0, 8, nr=SYS_RT_SIGACTION)
    if r != 0:
        raise OSError(-r, "rt_sigaction of the kick signal for the program failed")
    nt.fault_action = act
    return st.STATUS_SUCCESS


def _exception(sig: int, code: int, addr: int, err: int, rip: int) -> tuple[int, int, list[int]]:
    """(ExceptionCode, ExceptionAddress, parameters) of a hardware fault, as Windows reports it."""
    if sig in (SIGSEGV, SIGBUS):
        kind = 8 if err & 0x10 else (1 if err & 0x2 else 0)  # execute, write, read
        return STATUS_ACCESS_VIOLATION, rip, [kind, addr]
    if sig == SIGILL:
        return STATUS_ILLEGAL_INSTRUCTION, rip, []
    if sig == SIGFPE:
        status = {FPE_INTDIV: STATUS_INTEGER_DIVIDE_BY_ZERO, FPE_INTOVF: STATUS_INTEGER_OVERFLOW}
        return status.get(code, STATUS_FLOAT_DIVIDE_BY_ZERO), rip, []
    if code == 0x80:  # SI_KERNEL: int3; the address is the breakpoint's own
        return STATUS_BREAKPOINT, rip - 1, [0]
    return STATUS_SINGLE_STEP, rip, []


def PysudFault(nt: NtPersonality, call: NtSyscall) -> Any:
    """A fault in the program: CONTEXT + EXCEPTION_RECORD on its stack, on to KiUserExceptionDispatcher."""
    uc, info = call.args[:2]
    assert nt.wine is not None
    sig, _errno, code = struct.unpack("<iii", call.read(info, 12))
    (addr,) = struct.unpack("<Q", call.read(info + 16, 8))
    gregs = struct.unpack("<23Q", call.read(uc + UC_GREGS, 23 * 8))
    regs = dict(zip(_GREG_ORDER, gregs[:16], strict=True))
    rip, eflags, err = gregs[16], gregs[17], gregs[19]
    (fpregs,) = struct.unpack("<Q", call.read(uc + UC_FPREGS, 8))
    status, where, params = _exception(sig, code, addr, err, rip)
    if status == STATUS_BREAKPOINT:
        rip = where
    ctx = bytearray(0x4D0)
    struct.pack_into("<I", ctx, CTX_FLAGS, CONTEXT_FULL_SEGMENTS)
    struct.pack_into("<HHHHHH", ctx, 0x38, 0x33, 0x2B, 0x2B, 0x53, 0x2B, 0x2B)
    struct.pack_into("<I", ctx, CTX_EFLAGS, eflags & 0xFFFFFFFF)
    struct.pack_into("<16Q", ctx, CTX_RAX, *(regs[r] for r in CTX_REGS))
    struct.pack_into("<Q", ctx, CTX_RIP, rip)
    if fpregs:
        fx = call.read(fpregs, 512)
        ctx[0x100:0x300] = fx
        ctx[0x34:0x38] = fx[24:28]  # MxCsr
    rec = struct.pack("<IIQQI4x", status, 0, 0, where, len(params)) + b"".join(
        struct.pack("<Q", p) for p in params
    )
    rec = rec.ljust(0x98, b"\0")
    frame = (regs["rsp"] - 0x80 - EXCEPTION_FRAME) & ~0xF  # below the red zone
    call.write(frame, bytes(ctx) + bytes(EXCEPTION_RECORD_OFFSET - 0x4D0) + rec)
    call.rsp = frame
    call.rip = nt.wine.exports["KiUserExceptionDispatcher"]
    call.rflags = 0x202
    return None


def PysudKick(nt: NtPersonality, call: NtSyscall) -> Any:
    """Another thread ended the process: this one leaves the program too.  Or the thread is being
    suspended (NtSuspendThread): it stays here until resumed (kernel/context.py)."""
    if nt.leaving:
        call.exit_guest(nt.exit_status)
        return None
    from .context import park

    return park(nt, call)


HANDLERS.update({"PysudStart": PysudStart, "PysudFault": PysudFault, "PysudKick": PysudKick})
