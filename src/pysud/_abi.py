"""Syscall calling conventions as data: one object per ABI, no `if arch` chains elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _syscall_table

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003


@dataclass(frozen=True)
class SyscallABI:
    """How one ABI passes a system call: number, arguments, result, clobbers."""

    name: str
    audit_arch: int  # si_arch / AUDIT_ARCH_* as the kernel reports it
    instruction: str  # what traps: "syscall" or "int $0x80"
    number_register: str
    argument_registers: tuple[str, ...]
    result_register: str
    clobbered: tuple[str, ...]  # what the instruction itself overwrites
    argument_bits: int
    table: dict[int, str] = field(repr=False, compare=False)
    # (type, name) per argument, from the kernel's prototypes (generated); empty where unknown
    prototypes: dict[int, tuple[tuple[str, str], ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    numbers: dict[str, int] = field(init=False, repr=False, compare=False)
    #: Further arguments on the caller's stack at rsp + this offset (NT x64: 0x28), or None.
    stack_arguments_at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", {name: nr for nr, name in self.table.items()})

    def name_of(self, nr: int) -> str:
        """The syscall's name, or ``syscall_<nr>`` when the table does not know it."""
        return self.table.get(nr) or f"syscall_{nr}"

    def number_of(self, name: str) -> int:
        """The number of a syscall name (``syscall_<nr>`` is accepted too); KeyError if unknown."""
        nr = self.numbers.get(name)
        if nr is not None:
            return nr
        if name.startswith("syscall_") and name[8:].isdigit():
            return int(name[8:])
        raise KeyError(name)


X86_64 = SyscallABI(
    name="x86_64",
    audit_arch=AUDIT_ARCH_X86_64,
    instruction="syscall",
    number_register="rax",
    argument_registers=("rdi", "rsi", "rdx", "r10", "r8", "r9"),
    result_register="rax",
    clobbered=("rcx", "r11"),
    argument_bits=64,
    table=_syscall_table.X86_64,
    prototypes=_syscall_table.X86_64_ARGS,
)

I386 = SyscallABI(
    name="i386",
    audit_arch=AUDIT_ARCH_I386,
    instruction="int $0x80",
    number_register="rax",
    argument_registers=("rbx", "rcx", "rdx", "rsi", "rdi", "rbp"),
    result_register="rax",
    clobbered=(),
    argument_bits=32,
    table=_syscall_table.I386,
)


def nt_x64(table: dict[int, str], build: str) -> SyscallABI:
    """The Windows x64 NT convention (one per Windows build: the numbers differ).

    ``syscall`` with the number in eax, arguments in r10, rdx, r8, r9, then on the stack at
    [rsp+0x28], [rsp+0x30], ... (rsp as at the instruction: the stub's return address at [rsp],
    then 32 bytes of shadow space); the NTSTATUS comes back in rax.
    """
    return SyscallABI(
        name=f"nt-x64-{build}",
        audit_arch=AUDIT_ARCH_X86_64,
        instruction="syscall",
        number_register="rax",
        argument_registers=("r10", "rdx", "r8", "r9"),
        result_register="rax",
        clobbered=("rcx", "r11"),
        argument_bits=64,
        table=table,
        stack_arguments_at=0x28,
    )


BY_AUDIT_ARCH: dict[int, SyscallABI] = {abi.audit_arch: abi for abi in (X86_64, I386)}
