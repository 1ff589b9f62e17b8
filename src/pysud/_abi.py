"""Syscall calling conventions as data: one object per ABI, no `if arch` chains elsewhere."""

from __future__ import annotations

from . import _syscall_table

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003


class SyscallABI:
    """How one ABI passes a system call: number, arguments, result, clobbers.

    Frozen, compared and hashed by what describes the convention (not by its tables), as a
    frozen dataclass would be; written out because dataclasses' import (it brings inspect) is a
    visible part of `import pysud`.
    """

    __slots__ = (
        "argument_bits",
        "argument_registers",
        "audit_arch",
        "clobbered",
        "instruction",
        "name",
        "number_register",
        "numbers",
        "prototypes",
        "result_register",
        "stack_arguments_at",
        "table",
    )
    name: str
    audit_arch: int  # si_arch / AUDIT_ARCH_* as the kernel reports it
    instruction: str  # what traps: "syscall" or "int $0x80"
    number_register: str
    argument_registers: tuple[str, ...]
    result_register: str
    clobbered: tuple[str, ...]  # what the instruction itself overwrites
    argument_bits: int
    table: dict[int, str]
    # (type, name) per argument, from the kernel's prototypes (generated); empty where unknown
    prototypes: dict[int, tuple[tuple[str, str], ...]]
    numbers: dict[str, int]
    #: Further arguments on the caller's stack at rsp + this offset (NT x64: 0x28), or None.
    stack_arguments_at: int | None

    def __init__(
        self,
        name: str,
        audit_arch: int,
        instruction: str,
        number_register: str,
        argument_registers: tuple[str, ...],
        result_register: str,
        clobbered: tuple[str, ...],
        argument_bits: int,
        table: dict[int, str],
        prototypes: dict[int, tuple[tuple[str, str], ...]] | None = None,
        stack_arguments_at: int | None = None,
    ) -> None:
        values = {
            "name": name,
            "audit_arch": audit_arch,
            "instruction": instruction,
            "number_register": number_register,
            "argument_registers": argument_registers,
            "result_register": result_register,
            "clobbered": clobbered,
            "argument_bits": argument_bits,
            "table": table,
            "prototypes": {} if prototypes is None else prototypes,
            "numbers": {n: nr for nr, n in table.items()},
            "stack_arguments_at": stack_arguments_at,
        }
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[object, ...]:
        return (
            self.name,
            self.audit_arch,
            self.instruction,
            self.number_register,
            self.argument_registers,
            self.result_register,
            self.clobbered,
            self.argument_bits,
            self.stack_arguments_at,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"SyscallABI(name={self.name!r}, audit_arch={self.audit_arch!r}, "
            f"instruction={self.instruction!r}, number_register={self.number_register!r}, "
            f"argument_registers={self.argument_registers!r}, result_register={self.result_register!r}, "
            f"clobbered={self.clobbered!r}, argument_bits={self.argument_bits!r}, "
            f"stack_arguments_at={self.stack_arguments_at!r})"
        )

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
