"""Rewriting syscall sites: the switch (``PYSUD_REWRITE``), the planner for sites the core's
patterns do not cover, and what the core did at each site.

The core (``_core/sud_rewrite.c``) patches a trapped ``mov $nr,%eax; syscall`` site of the
program so its later calls enter the dispatcher without a kernel trap.  Other sites (the number
comes from a register: musl's ``__syscall_cp``, Go's ``Syscall6``; or the ``mov`` is not right
before the ``syscall``) are decided here, once, at their ``PLAN_AFTER``-th trap: :func:`plan` decodes the
code around the site with capstone and names the one instruction before the ``syscall`` that the
trampoline can run in its place, and, when that instruction is shorter than a ``jmp rel32``, dead
padding after the site for a two-byte hop.  The patching itself stays in C.
"""

from __future__ import annotations

import os

from . import _core

#: ``typing`` only for the type checker: its import is a visible part of every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    from capstone import Cs

#: Environment variable: ``0`` turns rewriting off by default (CI runs the suite both ways).
ENV = "PYSUD_REWRITE"

#: Why a site was left trapping (the core's reason codes; 8 and 9 come from :func:`plan`).
REASONS = {
    0: "patched",
    1: "pattern",  # no instruction before the syscall could be told apart (no decode agreed)
    2: "mapping",  # not a private, non-writable executable mapping
    3: "host",  # the host's own code
    4: "cache line",  # the five bytes cross a cache line: no single atomic store
    5: "rt_sigreturn",  # must run where it is
    6: "no room",  # no trampoline memory within reach
    7: "mprotect",  # the page could not be made writable
    8: "relocation",  # the instruction before the syscall cannot run elsewhere (branch, rip-relative...)
    9: "no padding",  # shorter than a jmp rel32, and no dead padding within a jmp rel8's reach
    10: "waiting",  # trapped fewer than PLAN_AFTER times: the planner decides at that trap
}

#: A site none of the core's patterns matches goes to :func:`plan` at this trap, not its first:
#: the calls a program makes only once or twice (its start-up) never cost a plan (capstone's
#: import alone is tens of ms).
PLAN_AFTER = _core.REWRITE_PLAN_AFTER
_PATTERN, _RELOCATION, _NO_PADDING = 1, 8, 9

#: Instructions that compute the same anywhere (given no rip-relative operand): the ones
#: compilers put before a ``syscall`` to load its number and arguments.
RELOCATABLE = frozenset("mov movabs movzx movsx movsxd lea xor add sub and or".split())


if TYPE_CHECKING:

    class Site(NamedTuple):
        """One syscall site the core examined after its first trap."""

        end: int  #: the address after the syscall instruction (``Syscall.call_addr``)
        nr: int  #: the number it was called with when examined
        patched: bool
        reason: str  #: "patched", or why it keeps trapping
        trampoline: int  #: the trampoline's address when patched, else 0

else:  # the same tuple, without importing typing
    from collections import namedtuple

    Site = namedtuple("Site", "end nr patched reason trampoline")
    Site.__doc__ = "One syscall site the core examined after its first trap."


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


_decoder: list[Cs] = []


def _cs() -> Cs:
    if not _decoder:
        import capstone

        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.detail = True
        _decoder.append(md)
    return _decoder[0]


def _decode_before(before: bytes, target: int) -> list[tuple[int, int, str]] | None:
    """The instructions before ``before[target]`` (where the syscall starts) as (offset, length,
    mnemonic), in order, the last one ending at ``target``: linear decodes start at every offset
    16 to 64 bytes earlier; those that land exactly on ``target`` count, and an instruction is
    kept when every such decode that started 16 bytes or more before it has it, and at least
    three do.  None unless all landing decodes agree on the last instruction.  (x86 decoding
    falls into step within a few instructions; a decode that started inside an instruction, or
    at a prefix that could be read as an instruction of its own, has not yet.)"""
    md = _cs()
    landed: list[tuple[int, set[tuple[int, int, str]]]] = []
    for start in range(max(0, target - 64), target - 15):
        insns = [(int(a), int(n), str(m)) for a, n, m, _o in md.disasm_lite(before[start:target], start)]
        if insns and insns[-1][0] + insns[-1][1] == target:
            landed.append((start, set(insns)))
    if len(landed) < 3:
        return None
    agreed = []
    for insn in sorted(set().union(*(found for _start, found in landed))):
        covering = [found for start, found in landed if start <= insn[0] - 16]
        if len(covering) >= 3 and all(insn in found for found in covering):
            agreed.append(insn)
    if not agreed or agreed[-1][0] + agreed[-1][1] != target:
        return None
    last = agreed[-1]
    return agreed if all(last in found for _start, found in landed) else None


def _relocatable(code: bytes) -> int | None:
    """Can the one instruction ``code`` run at another address?  None if not; else 0, or the
    offset in it of a rip-relative disp32 that the core adjusts for the trampoline's address."""
    from capstone import x86

    insns = list(_cs().disasm(code, 0))
    if len(insns) != 1 or insns[0].size != len(code) or insns[0].mnemonic not in RELOCATABLE:
        return None
    insn = insns[0]
    for op in insn.operands:
        if op.type == x86.X86_OP_MEM and x86.X86_REG_RIP in (op.mem.base, op.mem.index):
            if op.mem.index != x86.X86_REG_INVALID or not 0 < insn.disp_offset <= len(code) - 4:
                return None
            return int(insn.disp_offset)
    return 0


_UNCONDITIONAL = frozenset(("jmp", "ret", "ud2"))
_PADDING = frozenset(("nop", "int3"))


def _padding_after(after: bytes, end: int, reach: int) -> int:
    """Offset from ``end`` of five bytes of dead padding, or 0: decoding forward from ``end`` (an
    instruction boundary: the syscall's end), the first run of nop/int3 that follows an
    unconditional jmp/ret/ud2 and ends where code starts on a 16-byte boundary (the padding an
    assembler puts before an aligned function or loop head: no code jumps into it), starting
    within ``reach`` bytes of ``end``."""
    prev_unconditional = False
    run: int | None = None  # offset where the current run of padding started
    for off, _size, mnemonic, _o in _cs().disasm_lite(after, 0):
        off = int(off)
        if mnemonic in _PADDING:
            if run is None and prev_unconditional:
                run = off
        else:
            if run is not None:
                if (end + off) % 16 == 0 and off - run >= 5:
                    return run
                run = None
            prev_unconditional = mnemonic in _UNCONDITIONAL
        if off > reach:
            break
    return 0


def _padding_before(insns: list[tuple[int, int, str]], base: int, lowest: int) -> int | None:
    """Offset in ``before`` (whose byte 0 is at address ``base``) of five bytes of dead padding
    among the agreed instructions ``insns``: a run of nop/int3 right after an unconditional
    jmp/ret/ud2 that ends where an instruction starts on a 16-byte boundary, at ``lowest`` or
    later; None if there is none."""
    for i, (off, size, mnemonic) in enumerate(insns):
        if mnemonic not in _UNCONDITIONAL:
            continue
        run = j = off + size
        k = i + 1
        while k < len(insns) and insns[k][0] == j and insns[k][2] in _PADDING:
            j += insns[k][1]
            k += 1
        if k < len(insns) and insns[k][0] == j and (base + j) % 16 == 0 and j - run >= 5:
            start = max(run, lowest)
            if j - start >= 5:
                return start
    return None


def plan(end: int, before: bytes, after: bytes) -> tuple[int, int, int] | int:
    """The core's planner: for the site whose syscall ends at ``end`` (``before``: the bytes up
    to ``end``, the syscall last; ``after``: the bytes from ``end``), the instruction before the
    syscall that its trampoline runs in its place: (its length, the offset from ``end`` of dead
    padding for a two-byte hop or 0 (needed when the instruction is shorter than a ``jmp rel32``;
    the core takes the ``jmp rel32`` in place when it can; negative: padding before the site),
    the offset in it of a rip-relative disp32 or 0); or minus the reason the site keeps
    trapping."""
    target = len(before) - 2
    insns = _decode_before(before, target)
    if insns is None:
        return -_PATTERN
    off, size, _m = insns[-1]
    disp = _relocatable(before[off:target]) if size >= 2 else None
    if disp is None:
        return -_RELOCATION
    # the hop (jmp rel8 at the instruction) ends at end - size: the padding within -128..127 of it.
    # (Also for a longer instruction: where its jmp rel32 would cross a cache line, the core
    # takes the hop instead.)
    pad = _padding_after(after, end, 127 - size)
    if not pad or pad + size > 127:
        pad = 0
        lowest = max(0, len(before) - size - 128)  # before[i] is at end - len(before) + i
        back = _padding_before(insns[:-1], end - len(before), lowest)
        if back is not None:
            pad = back - len(before)
    if size < 5 and not pad:
        return -_NO_PADDING
    return size, pad, disp


def cached_plan(end: int, before: bytes, after: bytes) -> tuple[int, int, int] | int:
    """:func:`plan` through the persistent cache (:mod:`pysud._cache`): its answer depends only
    on the bytes and on ``end``'s place in a 16-byte line, so one decision serves every site of
    that shape, in this run and later ones, without importing capstone."""
    from . import _cache

    key = f"{end % 16}:{bytes(before).hex()}:{bytes(after).hex()}"
    hit = _cache.PLAN.get(key)
    if isinstance(hit, int) and not isinstance(hit, bool) and -len(REASONS) < hit < 0:
        return hit
    if isinstance(hit, list) and len(hit) == 3 and all(type(v) is int for v in hit):
        return hit[0], hit[1], hit[2]
    result = plan(end, before, after)
    _cache.PLAN.put(key, result if isinstance(result, int) else list(result))
    return result


def install_planner(unrelocatable: frozenset[int] = frozenset()) -> None:
    """Let the core ask :func:`cached_plan` about sites its patterns do not cover.

    ``unrelocatable``: ends of sites a personality knows the shape of, whose instruction before the
    syscall cannot run elsewhere (Wine's ntdll stubs: ``jne +3; syscall``); they keep trapping with
    the reason :func:`plan` gives them, without decoding anything (capstone is not even imported).
    """
    if not unrelocatable:
        _core.rewrite_planner(cached_plan)
        return

    def planner(end: int, before: bytes, after: bytes) -> tuple[int, int, int] | int:
        return -_RELOCATION if end in unrelocatable else cached_plan(end, before, after)

    _core.rewrite_planner(planner)
