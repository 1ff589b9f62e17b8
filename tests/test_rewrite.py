"""Rewritten syscall sites: after a site traps once, its later calls reach the same handlers
without the kernel's SIGSYS, with the same results, registers and per-thread counts.

Oracles: the handler's own record of each call (call_addr, thread), the dispatcher's count of
calls that came in without a trap (``direct_calls``), the bytes at the site, the register dump
of the same code run natively, and programs run natively.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import pysud
from asm import assemble
from conftest import requires_sud, run_in_child
from pysud import NATIVE, CodeBlob, Dispatcher, _rewrite

pytestmark = [
    requires_sud,
    pytest.mark.skipif(
        not pysud._core.features()["fsgsbase"], reason="no FSGSBASE: the trampolines need rdgsbase"
    ),
]


@pytest.fixture(autouse=True)
def _fresh_site_table():
    """A blob may be mapped where an earlier test's was: the site table starts empty per test."""
    _rewrite.forget()


def loop(mov: str, nr: int = 39, lead: str = "") -> bytes:
    """Code: call `nr` rdi times from one site (`mov` puts nr in eax/rax); returns the sum of results.
    ``lead``: code before it (the blob is then run at the offset of its `push rbx; push r12`)."""
    return assemble(
        f"""
        {lead}
        push rbx
        push r12
        mov r12, rdi
        xor ebx, ebx
    1:  {mov.format(nr=nr)}
        syscall
        add rbx, rax
        dec r12
        jnz 1b
        mov rax, rbx
        pop r12
        pop rbx
        ret
        """
    )


#: Ordinary code to put before a site: the planner decodes the bytes before a syscall.
LEAD = "\n".join(f"lead{i}: lea rax, [rbx + {i}]\n imul rax, rcx\n ret" for i in range(6))


def site_of(blob: CodeBlob) -> int:
    """Address after the blob's syscall instruction (what SIGSYS reports as call_addr)."""
    return blob.address + blob.code.index(b"\x0f\x05") + 2


def examined(blob: CodeBlob) -> _rewrite.Site | None:
    end = site_of(blob)
    return next((s for s in _rewrite.sites() if s.end == end), None)


@pytest.mark.parametrize("mov", ["mov eax, {nr}", "mov rax, {nr}"])
def test_site_is_patched_after_its_first_trap(mov):
    blob = CodeBlob(loop(mov))
    d = Dispatcher(rewrite=True)
    seen: list[int] = []
    d.on("getpid", lambda call: seen.append(call.call_addr) or 7)
    before = blob.code[: blob.code.index(b"\x0f\x05")]
    assert blob.run(d, [100]) == 700
    assert seen == [site_of(blob)] * 100  # every call reached the handler, from the site
    assert d.counts()["getpid"] == 100
    assert d.direct_calls() == 99  # the first trapped, the rest came in without a trap
    s = examined(blob)
    assert s is not None and s.patched and s.nr == 39
    now = pysud._core.read_memory(blob.address, len(blob.code))
    mov_at = len(before) - (5 if mov.startswith("mov eax") else 7)
    assert now[mov_at] == 0xE9  # a jmp rel32 where the mov was
    assert now[len(before) : len(before) + 2] == b"\x0f\x05"  # the syscall stays in place
    d.close()


READ_LIKE = """
    read_like:                  # glibc's read, single-threaded path
        endbr64
        xor eax, eax
        syscall
        cmp rax, -4096
        ja 2f
        ret
        .p2align 4              # alignment padding after the ret: dead code
    2:  mov rax, -1
        ret
        .p2align 4
    caller:
        push rbx
        push r12
        mov r12, rdi
        xor ebx, ebx
    1:  call read_like
        add rbx, rax
        dec r12
        jnz 1b
        mov rax, rbx
        pop r12
        pop rbx
        ret
"""


def test_glibc_read_site_hops_through_its_padding():
    """`xor eax,eax; syscall` is too short for a jmp rel32: the xor becomes a jmp rel8 into the
    dead padding after the function's ret, which holds the jmp to the trampoline."""
    code = assemble(READ_LIKE)
    blob = CodeBlob(code)
    caller = code.index(b"\x53\x41\x54")  # push rbx; push r12
    d = Dispatcher(rewrite=True)
    seen: list[int] = []
    d.on("read", lambda call: seen.append(call.call_addr) or 3)
    assert blob.run(d, [40], offset=caller) == 120
    end = site_of(blob)
    assert seen == [end] * 40
    assert d.direct_calls() == 39
    s = examined(blob)
    assert s is not None and s.patched
    now = pysud._core.read_memory(blob.address, len(code))
    xor_at = code.index(b"\x31\xc0\x0f\x05")
    assert now[xor_at] == 0xEB and now[xor_at + 2 : xor_at + 4] == b"\x0f\x05"  # hop; syscall kept
    pad = xor_at + 2 + now[xor_at + 1]
    assert now[pad] == 0xE9 and code.index(b"\xc3") < pad < caller  # in the padding after the ret
    d.close()


def test_read_site_without_padding_keeps_trapping():
    code = assemble(READ_LIKE.replace(".p2align 4", ""))  # no padding anywhere
    blob = CodeBlob(code)
    d = Dispatcher(rewrite=True)
    d.on("read", lambda call: 1)
    caller = code.index(b"\x53\x41\x54")
    assert blob.run(d, [10], offset=caller) == 10
    s = examined(blob)
    assert s is not None and not s.patched and s.reason in ("pattern", "no padding")
    assert d.direct_calls() == 0
    d.close()


def test_rewritten_site_runs_the_fast_path_and_native():
    blob = CodeBlob(loop("mov eax, {nr}"))
    d = Dispatcher(rewrite=True)
    d.set_fast("getpid", NATIVE)
    assert blob.run(d, [50]) == 50 * os.getpid()
    assert d.direct_calls() == 49
    d.close()


@pytest.mark.parametrize(
    ("mov", "reason"),
    [
        ("mov eax, {nr}\n nop", "relocation"),  # a 1-byte instruction before the syscall
        ("mov eax, {nr}\n jmp 2f\n 2:", "relocation"),  # a branch
        ("mov ecx, {nr}\n mov eax, ecx", "no padding"),  # 2 bytes, and no dead padding after
        ("xor eax, eax\n add eax, {nr}", "no padding"),
    ],
)
def test_other_sites_keep_trapping(mov, reason):
    blob = CodeBlob(loop(mov, lead=LEAD))  # decoded code before the site, no padding in it
    d = Dispatcher(rewrite=True)
    d.on("getpid", lambda call: 1)
    assert blob.run(d, [20], offset=blob.code.index(b"\x53\x41\x54")) == 20
    assert d.direct_calls() == 0
    s = examined(blob)
    assert s is not None and not s.patched and s.reason == reason
    assert pysud._core.read_memory(blob.address, len(blob.code)) == blob.code  # untouched
    d.close()


# ---- sites whose number comes from a register (musl's __syscall_cp, Go's Syscall6, ...): the
# instruction right before the syscall runs in the trampoline instead


SITE_LOOP = """
    {lead}
        .p2align 4
    caller:                     # rdi = n: calls site() n times with the number in rsi
        push rbx
        push r12
        mov r12, rdi
        xor ebx, ebx
    1:  mov esi, {nr}
        call site
        add rbx, rax
        dec r12
        jnz 1b
        mov rax, rbx
        pop r12
        pop rbx
        ret
        .p2align 4
    site:
        mov rax, rsi            # the number from a register
        {last}
        syscall
        ret
        .p2align 4, {fill}
    after:
        ret
"""

#: (instruction before the syscall, padding byte, how the site is entered)
SHAPES = {
    "go": ("mov rdi, rbx", "0xcc", "hop"),  # Go's Syscall6 ends `MOVQ BX, DI; SYSCALL`; int3 padding
    "musl_c": ("mov rdx, rcx", "0x90", "hop"),  # musl's __syscall_cp_c: `mov %rcx,%rdx; syscall; ret`
    "musl_cp": ("mov [rsp - 8], r11", "0x90", "jmp"),  # __syscall_cp_asm: `mov %r11,8(%rsp); syscall`
    "xor": ("xor edx, edx", "0x90", "hop"),  # two bytes
    "rip": ("lea rdx, [rip + after]", "0x90", "jmp"),  # rip-relative: adjusted in the trampoline
}


def site_loop(shape: str, nr: int = 110) -> tuple[CodeBlob, int, int]:
    """A blob calling a register-loaded site; (blob, caller offset, offset of the instruction
    before the syscall)."""
    last, fill, _how = SHAPES[shape]
    code = assemble(SITE_LOOP.format(lead=LEAD, nr=nr, last=last, fill=fill))
    blob = CodeBlob(code, nargs=1)
    caller = code.index(b"\x53\x41\x54")  # push rbx; push r12
    sys_at = code.index(b"\x0f\x05\xc3")
    return blob, caller, sys_at - len(assemble(last.replace("after", "0")))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_register_loaded_site_is_patched(shape):
    blob, caller, insn = site_loop(shape)
    _last, _fill, how = SHAPES[shape]
    d = Dispatcher(rewrite=True)
    seen: list[tuple[int, int]] = []
    d.on("getppid", lambda call: seen.append((call.call_addr, call.args[2])) or 3)
    n = 60
    assert blob.run(d, [n], offset=caller) == 3 * n
    end = site_of(blob)
    assert [a for a, _ in seen] == [end] * n  # every call reached the handler, from the site
    assert d.direct_calls() == n - _rewrite.PLAN_AFTER  # trapped until the planner's turn
    if shape == "rip":  # the trampoline's copy of the lea computed the same address
        assert {rdx for _, rdx in seen} == {blob.address + blob.code.rindex(b"\xc3")}
    s = examined(blob)
    assert s is not None and s.patched, s
    now = pysud._core.read_memory(blob.address, len(blob.code))
    assert now[end - blob.address - 2 : end - blob.address] == b"\x0f\x05"  # the syscall stays
    assert now[insn] == (0xEB if how == "hop" else 0xE9)
    if how == "hop":
        pad = insn + 2 + now[insn + 1]
        assert now[pad] == 0xE9 and end - blob.address < pad < len(blob.code)  # in the padding
        assert now[insn + 2 : end - blob.address - 2] == blob.code[insn + 2 : end - blob.address - 2]
    d.close()


def test_a_short_instruction_hops_back_into_padding_before_the_site():
    """No padding after the site, but alignment padding after a `ret` before it (within a jmp
    rel8's reach): the hop goes back there."""
    code = loop("mov ecx, {nr}\n mov eax, ecx", lead=LEAD + "\n.p2align 5")
    blob = CodeBlob(code)
    d = Dispatcher(rewrite=True)
    d.on("getpid", lambda call: 2)
    assert blob.run(d, [20], offset=code.index(b"\x53\x41\x54")) == 40
    assert d.direct_calls() == 20 - _rewrite.PLAN_AFTER
    s = examined(blob)
    assert s is not None and s.patched
    now = pysud._core.read_memory(blob.address, len(code))
    hop = code.index(b"\x89\xc8\x0f\x05")  # mov eax, ecx; syscall
    pad = hop + 2 + int.from_bytes(now[hop + 1 : hop + 2], "little", signed=True)
    assert now[hop] == 0xEB and pad < hop and now[pad] == 0xE9
    assert code[pad - 1] == 0xC3 or code[pad] == 0x90  # in the padding after the lead's ret
    d.close()


def test_two_sites_never_share_padding():
    """Two short sites whose only padding is the same run before them: the first takes its first
    five bytes; the second sees the first's jmp there and takes what follows it, or keeps
    trapping; each site's calls reach their own handler with their own call_addr."""
    code = assemble(
        LEAD
        + """
        ret
        .p2align 5
    caller:
        push rbx
        push r12
        mov r12, rdi
        xor ebx, ebx
    1:  mov ecx, 39
        mov eax, ecx
        syscall                 # getpid
        add rbx, rax
        mov ecx, 110
        mov eax, ecx
        syscall                 # getppid
        add rbx, rax
        dec r12
        jnz 1b
        mov rax, rbx
        pop r12
        pop rbx
        ret
        """
    )
    blob = CodeBlob(code)
    d = Dispatcher(rewrite=True)
    got: dict[str, list[int]] = {"getpid": [], "getppid": []}
    d.on("getpid", lambda call: got["getpid"].append(call.call_addr) or 1)
    d.on("getppid", lambda call: got["getppid"].append(call.call_addr) or 100)
    assert blob.run(d, [25], offset=code.index(b"\x53\x41\x54")) == 25 * 101
    first = blob.address + code.index(b"\x89\xc8\x0f\x05") + 4
    second = blob.address + code.rindex(b"\x89\xc8\x0f\x05") + 4
    assert got == {"getpid": [first] * 25, "getppid": [second] * 25}
    now = pysud._core.read_memory(blob.address, len(code))
    pads = []
    for end in (first, second):
        hop = end - blob.address - 4
        if now[hop] == 0xEB:
            pads.append(hop + 2 + int.from_bytes(now[hop + 1 : hop + 2], "little", signed=True))
    assert pads and len(set(pads)) == len(pads)  # at least one hop; no two into the same bytes
    assert all(abs(a - b) >= 5 for a in pads for b in pads if a != b)
    d.close()


def test_a_jmp_across_a_cache_line_becomes_a_hop():
    """`mov eax, nr; syscall` whose jmp rel32 would cross a cache line (no single atomic store):
    with dead padding after the site, a 2-byte hop that stays inside the line goes there."""
    src = SITE_LOOP.format(lead=LEAD, nr=110, last="", fill="0x90")
    src = src.replace(
        "        .p2align 4\n    site:\n        mov rax, rsi", "        .p2align 6\n    site:\n"
    )
    src = src.replace("    site:\n", "    site:\n" + "        nop\n" * 60 + "        mov eax, 110\n", 1)
    code = assemble(src)
    mov_at = code.index(b"\xb8\x6e\x00\x00\x00\x0f\x05")
    assert mov_at % 64 == 60  # the five bytes of a jmp would end in the next line
    blob = CodeBlob(code, nargs=1)
    d = Dispatcher(rewrite=True)
    d.on("getppid", lambda call: 2)
    assert blob.run(d, [30], offset=code.index(b"\x53\x41\x54")) == 60
    assert d.direct_calls() == 30 - _rewrite.PLAN_AFTER
    now = pysud._core.read_memory(blob.address, len(code))
    assert now[mov_at] == 0xEB and now[mov_at + 2 + now[mov_at + 1]] == 0xE9
    d.close()


def test_signal_in_a_trampoline_is_seen_at_the_site():
    """A signal that interrupts a trampoline is delivered as if at the site (the program's
    handler, musl's cancellation check, Go's preemption look at the interrupted address): its
    first byte before the relocated instruction ran, the syscall after; on the hop: the syscall."""
    for shape in ("go", "musl_cp"):
        blob, caller, insn = site_loop(shape)
        d = Dispatcher(rewrite=True)
        d.on("getppid", lambda call: 1)
        blob.run(d, [_rewrite.PLAN_AFTER + 1], offset=caller)
        s = examined(blob)
        assert s is not None and s.patched
        site, sys_at = blob.address + insn, s.end - 2
        where = pysud._core.rewrite_signal_rip
        assert where(s.trampoline) == site
        size = sys_at - site
        assert {where(s.trampoline + k) for k in range(size, size + 40)} == {sys_at}
        now = pysud._core.read_memory(blob.address, len(blob.code))
        if now[insn] == 0xEB:
            assert where(site + 2 + now[insn + 1]) == sys_at  # the padding's jmp
        assert where(site) == site and where(s.end) == s.end  # the program's own code: as it is
        entry = pysud._core.rewrite_entry()  # jumped to, its first instruction not run: R11 = site_end
        assert where(entry, s.end) == sys_at
        d.close()


def test_rewrite_off_leaves_sites_alone():
    blob = CodeBlob(loop("mov eax, {nr}"))
    d = Dispatcher(rewrite=False)
    d.on("getpid", lambda call: 1)
    assert blob.run(d, [20]) == 20
    assert d.direct_calls() == 0 and examined(blob) is None
    assert pysud._core.read_memory(blob.address, len(blob.code)) == blob.code
    d.close()


def test_environment_switch():
    env = dict(os.environ, PYSUD_REWRITE="0")
    code = "import pysud; print(pysud.Dispatcher().rewrite, pysud.Dispatcher(rewrite=True).rewrite)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_rt_sigreturn_sites_are_never_patched():
    """Call 15 without a signal frame is an ordinary dispatched call (NtClose on Windows), but a
    `mov eax, 15; syscall` site is glibc's signal restorer: it must keep running where it is."""
    blob = CodeBlob(loop("mov eax, {nr}", nr=15))
    d = Dispatcher(rewrite=True)
    d.on(15, lambda call: 2)
    assert blob.run(d, [10]) == 20
    s = examined(blob)
    assert s is not None and not s.patched and s.reason == "rt_sigreturn"
    assert d.direct_calls() == 0
    d.close()


def test_host_libraries_are_never_patched(libc):
    """A wrapped libc function runs at BLOCK and traps, but the host's libc stays as it is."""
    d = Dispatcher(rewrite=True)
    d.on("getpid", lambda call: 4321)
    getpid = d.wrap(libc.getpid)
    assert [getpid() for _ in range(3)] == [4321] * 3
    assert d.direct_calls() == 0
    ours = [s for s in _rewrite.sites() if s.nr == 39 and s.reason == "host"]
    assert ours, _rewrite.sites()
    assert os.getpid() != 4321 and libc.getpid() == os.getpid()  # host calls: native
    d.close()


def test_writable_code_keeps_trapping():
    """JIT-style code (a writable mapping) is never patched: the program may rewrite it, and every
    call it makes is still dispatched by SUD."""
    code = loop("mov eax, {nr}")
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    d = Dispatcher(rewrite=True)
    d.on("getpid", lambda call: 3)
    fn = d.wrap(ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64)(addr))
    assert fn(10) == 30
    # the program changes its code: the new number reaches its handler too
    m.seek(code.index(b"\xb8") + 1)
    m.write((102).to_bytes(4, "little"))  # getuid
    d.on("getuid", lambda call: 5)
    assert fn(10) == 50
    assert d.direct_calls() == 0
    end = addr + code.index(b"\x0f\x05") + 2
    assert any(s.end == end and s.reason == "mapping" for s in _rewrite.sites())
    d.close()
    del fn
    m.close()


def test_registers_identical_to_native_through_a_rewritten_site():
    from test_registers import _describe, _dump_dispatched, _dump_native

    native = _dump_native()
    d = Dispatcher(rewrite=True)
    d.on(500, lambda call: -38)  # ENOSYS, as the kernel answers
    first = _dump_dispatched(d)  # traps, and patches the site
    second = _dump_dispatched(d)  # through the trampoline
    assert d.direct_calls() >= 1
    assert first == native, _describe(first, native)
    assert second == native, _describe(second, native)
    d.close()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_registers_identical_to_native_through_a_register_loaded_site(shape):
    """Every register (general, flags as SYSCALL leaves them in R11, vector, x87/SSE control) after
    a call through the trampoline that runs the site's last instruction equals the same code run
    natively (call 500: ENOSYS, as the handler answers)."""
    from test_registers import DUMP_SIZE, _describe, _source

    last, fill, _how = SHAPES[shape]
    # (rcx set: musl_c's `mov rdx, rcx` would copy whatever the caller left there)
    src = _source(500).replace("mov eax, 500\nsyscall", "mov eax, 500\nmov ecx, 0x1234\ncall site")
    assert "call site" in src
    src += f"\n.p2align 4\nsite:\n{last}\nsyscall\nret\n.p2align 4, {fill}\nafter:\nret\n"
    blob = CodeBlob(assemble(src), nargs=1)

    def dump(d: Dispatcher | None) -> bytes:
        buf = (ctypes.c_uint8 * DUMP_SIZE)()
        if d is None:
            ctypes.CFUNCTYPE(None, ctypes.c_void_p)(blob.address)(ctypes.addressof(buf))
        else:
            blob.run(d, [ctypes.addressof(buf)])
        return bytes(buf)

    native = dump(None)
    d = Dispatcher(rewrite=True)
    d.on(500, lambda call: -38)
    dumps = [dump(d) for _ in range(_rewrite.PLAN_AFTER + 2)]  # traps, patched; the trampoline
    s = examined(blob)
    assert s is not None and s.patched and d.direct_calls() == 2
    for got in dumps:
        assert got == native, _describe(got, native)
    d.close()


def test_fork_after_patching_a_register_loaded_site():
    blob, caller, _insn = site_loop("musl_c")
    d = Dispatcher(rewrite=True)
    d.on("getppid", lambda call: 2)
    assert blob.run(d, [_rewrite.PLAN_AFTER], offset=caller) == 2 * _rewrite.PLAN_AFTER
    s = examined(blob)
    assert s is not None and s.patched

    def child() -> int:
        before = d.direct_calls()
        ok = blob.run(d, [7], offset=caller) == 14 and d.direct_calls() == before + 7
        return 0 if ok else 1

    assert run_in_child(child) == 0
    d.close()


def test_the_planner_is_asked_at_the_sites_plan_after_th_trap_once():
    """A site called fewer than PLAN_AFTER times stays "waiting" without costing a plan (start-up
    calls never import capstone); at that trap the planner is asked once, and the site patched."""
    blob, caller, _insn = site_loop("go")
    asked: list[int] = []

    def spy(end: int, before: bytes, after: bytes) -> tuple[int, int, int] | int:
        asked.append(end)
        return _rewrite.plan(end, before, after)

    d = Dispatcher(rewrite=True)
    pysud._core.rewrite_planner(spy)
    try:
        d.on("getppid", lambda call: 1)
        k = _rewrite.PLAN_AFTER
        assert blob.run(d, [k - 1], offset=caller) == k - 1
        s = examined(blob)
        assert s is not None and s.reason == "waiting" and not asked
        assert blob.run(d, [k + 5], offset=caller) == k + 5
        s = examined(blob)
        assert s is not None and s.patched and asked == [s.end]
        assert d.direct_calls() == k + 4 and d.counts()["getppid"] == 2 * k + 4  # one more trap
    finally:
        _rewrite.install_planner()
        d.close()


TWO_SITES = """
    {lead}
    ret
caller_a:
    push rbx
    push r12
    mov r12, rdi
    xor ebx, ebx
1:  mov esi, 39
    call site_a
    add rbx, rax
    dec r12
    jnz 1b
    jmp 2f
caller_b:
    push rbx
    push r12
    mov r12, rdi
    xor ebx, ebx
1:  mov esi, 110
    call site_b
    add rbx, rax
    dec r12
    jnz 1b
2:  mov rax, rbx
    pop r12
    pop rbx
    ret
    .p2align 4
site_a:
    mov rax, rsi
    lea rdx, [rip + after]
    syscall
    ret
    .p2align 4, 0x90
site_b:
    mov rax, rsi
    lea rdx, [rip + after]
    syscall
    ret
    .p2align 4, 0x90
after:
    ret
"""


@pytest.mark.parametrize("first", ["a", "b"])
def test_the_planner_sees_the_code_as_loaded_not_its_neighbours_patches(first):
    """Two register-loaded sites 16 bytes apart, planned in either order: the planner is shown
    the blob's own bytes both times, the neighbour's jmp undone in its view (so its answer, and
    the persistent cache's key, do not depend on which site a run patched first)."""
    code = assemble(TWO_SITES.format(lead=LEAD))
    blob = CodeBlob(code, nargs=1)
    views: list[tuple[int, bytes, bytes]] = []

    def spy(end: int, before: bytes, after: bytes) -> tuple[int, int, int] | int:
        views.append((end, bytes(before), bytes(after)))
        return _rewrite.plan(end, before, after)

    d = Dispatcher(rewrite=True)
    pysud._core.rewrite_planner(spy)
    try:
        d.on("getpid", lambda call: 1)
        d.on("getppid", lambda call: 2)
        n = _rewrite.PLAN_AFTER + 4
        callers = {"a": (code.index(b"\x53\x41\x54"), 1), "b": (code.rindex(b"\x53\x41\x54"), 2)}
        order = [first, "b" if first == "a" else "a"]
        for which in order:
            offset, result = callers[which]
            assert blob.run(d, [n], offset=offset) == result * n
        ends = [blob.address + code.index(b"\x0f\x05") + 2, blob.address + code.rindex(b"\x0f\x05") + 2]
        assert sorted(end for end, _b, _a in views) == ends  # each site planned once
        assert all(s.patched for s in _rewrite.sites() if s.end in ends)
        now = pysud._core.read_memory(blob.address, len(code))
        assert now != code  # both patched: the second one's window held the first's jmp
        for end, before, after in views:
            at = end - blob.address  # the oracle: the blob's bytes as it was loaded
            lo = max(0, at - len(before))
            assert before[len(before) - (at - lo) :] == code[lo:at]
            assert after[: len(code) - at] == code[at : at + len(after)]
    finally:
        _rewrite.install_planner()
        d.close()
        blob.close()


def test_a_broken_planner_leaves_the_site_trapping(monkeypatch):
    """The planner's exception is reported (sys.unraisablehook) and the site keeps trapping."""
    blob, caller, _insn = site_loop("go")
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))

    def broken(end: int, before: bytes, after: bytes) -> tuple[int, int, int]:
        raise RuntimeError("planner failed")

    pysud._core.rewrite_planner(broken)
    try:
        d = Dispatcher(rewrite=False)
        d.set_rewrite(True)
        pysud._core.rewrite_planner(broken)  # (set_rewrite installs the real one)
        d.on("getppid", lambda call: 1)
        assert blob.run(d, [10], offset=caller) == 10
        s = examined(blob)
        assert s is not None and not s.patched and s.reason == "pattern"
        assert d.direct_calls() == 0
        assert [str(e) for e in reported] == ["planner failed"]
        d.close()
    finally:
        _rewrite.install_planner()


def _hammer_site(kind: str) -> tuple[CodeBlob, str, int, int]:
    """(blob, call, offset, calls per thread): a `mov $nr` site (the 5-byte jmp) or a register-
    loaded one (Go's shape: a two-byte hop, planned at the site's PLAN_AFTER-th trap)."""
    if kind == "mov":
        return CodeBlob(loop("mov eax, {nr}")), "getpid", 0, 3000
    blob, caller, _insn = site_loop("go")
    return blob, "getppid", caller, 2000


@pytest.mark.parametrize("kind", ["mov", "register_loaded"])
def test_eight_threads_hammer_one_site_while_it_is_patched(kind):
    """Exact per-thread counts: no call lost or doubled while the jmp (or the hop) lands under
    running threads (a thread between the instruction before the syscall and the syscall,
    preempted or in the call, finds the syscall where it was)."""
    nthreads = 8
    blob, call, offset, n = _hammer_site(kind)
    d = Dispatcher(rewrite=True)
    counts: dict[int, int] = {}
    lock = threading.Lock()

    def handler(call):
        with lock:
            counts[call.tid] = counts.get(call.tid, 0) + 1
        return 1

    d.on(call, handler)
    barrier = threading.Barrier(nthreads)
    results: dict[int, int] = {}

    def worker():
        d.arm_thread()
        barrier.wait()
        results[threading.get_native_id()] = blob.run(d, [n], offset=offset)

    threads = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == nthreads
    assert all(v == n for v in results.values()), results  # each thread got all its results
    assert counts == {tid: n for tid in results}  # and its handler saw exactly its calls
    assert d.counts()[call] == nthreads * n
    s = examined(blob)
    assert s is not None and s.patched
    assert 0 < d.direct_calls() < nthreads * n  # some trapped before the patch, most did not
    d.close()


def test_fork_after_patching_keeps_the_site_working():
    blob = CodeBlob(loop("mov eax, {nr}"))
    d = Dispatcher(rewrite=True)
    d.on("getpid", lambda call: 2)
    assert blob.run(d, [5]) == 10

    def child() -> int:
        before = d.direct_calls()
        ok = blob.run(d, [7]) == 14 and d.direct_calls() == before + 7
        return 0 if ok else 1

    assert run_in_child(child) == 0
    d.close()


# ---- whole programs


C_PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    char c = 'x';
    long n = 0;
    for (int i = 0; i < 2000; i++) n += write(1, &c, 1);  /* glibc: mov $1,%eax; syscall */
    printf("\n%ld %d\n", n, getppid() > 0);
    return 7;
}
"""


@pytest.fixture(scope="module")
def c_program(tmp_path_factory):
    d = tmp_path_factory.mktemp("rewrite")
    src = d / "w.c"
    src.write_text(C_PROGRAM)
    exe = d / "w"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    return str(exe)


RUN_AND_REPORT = """
import json, sys
import pysud
from pysud import _rewrite
d = pysud.Dispatcher(rewrite=sys.argv[3] == "1")
seen = []
d.on("write", lambda call: seen.append(call.call_addr) or pysud.NATIVE)
status = pysud.run(sys.argv[1], [], dispatcher=d)
sys.stdout.flush()
sites = [s._asdict() for s in _rewrite.sites()]
json.dump({"status": status, "direct": d.direct_calls(), "writes": len(seen),
           "write_sites": sorted(set(seen)), "sites": sites}, open(sys.argv[2], "w"))
"""


@pytest.mark.parametrize("rewrite", [True, False])
def test_program_output_status_and_handler_calls_match(c_program, tmp_path, rewrite):
    import json

    native = subprocess.run([c_program], capture_output=True)
    out = tmp_path / "out.json"
    ours = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, c_program, str(out), "1" if rewrite else "0"],
        capture_output=True,
        timeout=60,
    )
    assert ours.stdout == native.stdout and ours.returncode == 0, ours.stderr
    data = json.loads(out.read_text())
    assert data["status"] == native.returncode == 7
    assert data["writes"] == 2001  # every write reached the handler either way
    if rewrite:
        patched = {s["end"] for s in data["sites"] if s["patched"]}
        assert set(data["write_sites"]) & patched  # the loop's write site was rewritten
        assert data["direct"] >= 1999
    else:
        assert data["direct"] == 0 and data["sites"] == []


def test_cli_no_rewrite(c_program):
    native = subprocess.run([c_program], capture_output=True)
    for flags in ([], ["--no-rewrite"]):
        ours = subprocess.run([sys.executable, "-m", "pysud", "run", *flags, c_program], capture_output=True)
        assert (ours.stdout, ours.returncode) == (native.stdout, native.returncode)


# ---- argument filters: calls a handler would only pass through stay in C


OPEN_CLOSE = """
    # rdi: path; opens it read-only and closes it; returns the fd openat gave
    push rbx
    mov rsi, rdi
    mov edi, -100           # AT_FDCWD
    xor edx, edx
    mov eax, 257            # openat
    syscall
    mov rbx, rax
    mov edi, eax
    mov eax, 3              # close
    syscall
    mov rax, rbx
    pop rbx
    ret
"""


def test_only_paths_and_only_args_keep_other_calls_out_of_python():
    blob = CodeBlob(assemble(OPEN_CLOSE), nargs=1)
    d = Dispatcher()
    opened: list[bytes] = []
    closed: list[int] = []
    d.on("openat", lambda call: opened.append(call.read_cstring(call.args[1])) or NATIVE)
    d.on("close", lambda call: closed.append(call.args[0]) or NATIVE)
    d.only_paths("openat", 1, [b"/proc/"])
    d.only_args("close", 0, 900, 0xFFFFFFFF)
    results = []
    for path in (b"/etc/hostname", b"/proc/self/status", b"/etc/passwd", b"/pro"):
        buf = ctypes.create_string_buffer(path)
        results.append(blob.run(d, [ctypes.addressof(buf)]))
    assert [r >= 0 for r in results[:3]] == [True] * 3 and results[3] == -errno.ENOENT  # as natively
    assert opened == [b"/proc/self/status"]  # only the /proc path reached Python
    assert closed == [2**32 - errno.ENOENT]  # only the failed open's "fd" is in [900, 2**32)
    assert d.counts()["openat"] == 4 and d.counts()["close"] == 4  # all were dispatched
    # an unreadable path still reaches the handler, which answers as the kernel does
    d.on("openat", lambda call: -errno.EFAULT)
    d.only_paths("openat", 1, [b"/proc/"])
    assert blob.run(d, [8]) == -errno.EFAULT
    # registering the handler again clears the filter
    seen: list[bytes] = []
    d.on("openat", lambda call: seen.append(call.read_cstring(call.args[1])) or NATIVE)
    buf = ctypes.create_string_buffer(b"/etc/hostname")
    blob.run(d, [ctypes.addressof(buf)])
    assert seen == [b"/etc/hostname"]
    d.close()


def test_only_paths_needs_a_handler():
    d = Dispatcher()
    with pytest.raises(ValueError):
        d.only_paths("openat", 1, [b"/proc/"])
    d.close()


def test_signals_in_rewritten_calls_match_native(tmp_path):
    """SIGALRM every 200 us while a rewritten getppid site runs in a loop, then a blocking read
    through the rewritten glibc read site interrupted by a SA_RESTART handler: as natively."""
    import json

    src = os.path.join(os.path.dirname(__file__), "programs", "rewrite_signals.c")
    exe = str(tmp_path / "sigs")
    subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
    native = subprocess.run([exe], capture_output=True, timeout=60)
    assert native.returncode == 0 and b"signals in loop yes" in native.stdout
    out = tmp_path / "out.json"
    script = RUN_AND_REPORT.replace('d.on("write"', 'd.on("getppid"')
    ours = subprocess.run([sys.executable, "-c", script, exe, str(out), "1"], capture_output=True, timeout=60)
    assert ours.stdout == native.stdout and ours.returncode == 0, ours.stderr
    data = json.loads(out.read_text())
    patched = {(s["nr"], s["patched"]) for s in data["sites"]}
    assert (0, True) in patched and (110, True) in patched  # read and getppid sites rewritten
    # every getppid reached the handler; a call a signal cancelled before it ran is seen again
    # when it is re-run (the core's rule for trapped calls, rewritten or not)
    assert data["writes"] >= 200000
    assert data["direct"] >= 200000


# ---- a program with a GS base of its own


@pytest.fixture(scope="module")
def gs_program(tmp_path_factory):
    src = os.path.join(os.path.dirname(__file__), "programs", "rewrite_gs.c")
    exe = str(tmp_path_factory.mktemp("rewrite_gs") / "gs")
    subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
    return exe


@pytest.mark.parametrize("how", ["prctl", "wrgsbase", "aligned"])
def test_program_setting_its_own_gs_base_stays_intercepted(gs_program, tmp_path, how):
    """arch_prctl(ARCH_SET_GS), or wrgsbase that nobody hears of, then calls from rewritten sites:
    the trampoline sees a GS base that is not pysud's thread block (not 64 KiB aligned, or its
    self pointer does not point back; "aligned": a 64 KiB aligned address with nothing mapped, so
    the check's load faults and resumes at the trap) and takes the trap: every call still reaches
    the handler, the program's own %gs accesses work, output and status as natively."""
    import json

    native = subprocess.run([gs_program, how], capture_output=True, timeout=60)
    assert native.returncode == 9 and b"calls 4000 gs kept data 1122334455667788" in native.stdout
    out = tmp_path / "out.json"
    script = RUN_AND_REPORT.replace('d.on("write"', 'd.on("getppid"').replace("], [],", "], [sys.argv[4]],")
    ours = subprocess.run(
        [sys.executable, "-c", script, gs_program, str(out), "1", how], capture_output=True, timeout=60
    )
    assert (ours.stdout, ours.returncode) == (native.stdout, 0), ours.stderr
    data = json.loads(out.read_text())
    assert data["status"] == 9
    assert data["writes"] == 4000  # every getppid reached the handler
    ends = set(data["write_sites"])
    assert len(ends) == 3 and all(s["patched"] for s in data["sites"] if s["end"] in ends)
    # the first loop ran through its trampoline (999 direct calls); after the program set its
    # GS base, its calls trap: few direct calls beyond those (the C library's own sites)
    assert 999 <= data["direct"] < 999 + 100


MUSL_READS = r"""
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    char c;
    long n = 0;
    int fd = open("/dev/zero", O_RDONLY);
    for (int i = 0; i < 3000; i++) n += read(fd, &c, 1);  /* musl: __syscall_cp_c, rdx from rcx */
    printf("%ld %d\n", n, c);
    return 6;
}
"""


@pytest.mark.skipif(not shutil.which("musl-gcc"), reason="needs musl-gcc (musl-tools)")
def test_static_musl_read_site_is_rewritten(tmp_path):
    """musl's read loads its number from a register (`mov %rdi,%rax ... mov %rcx,%rdx; syscall`):
    the planner's site. Every read reaches the handler, nearly all without a trap; output and
    status as natively."""
    import json

    src = tmp_path / "r.c"
    src.write_text(MUSL_READS)
    exe = str(tmp_path / "r")
    subprocess.run(["musl-gcc", "-O2", "-static", "-o", exe, str(src)], check=True)
    native = subprocess.run([exe], capture_output=True, timeout=60)
    assert native.returncode == 6 and native.stdout == b"3000 0\n"
    out = tmp_path / "out.json"
    script = RUN_AND_REPORT.replace('d.on("write"', 'd.on("read"')
    ours = subprocess.run([sys.executable, "-c", script, exe, str(out), "1"], capture_output=True, timeout=60)
    assert (ours.stdout, ours.returncode) == (native.stdout, 0), ours.stderr
    data = json.loads(out.read_text())
    assert data["status"] == 6 and data["writes"] == 3000  # every read reached the handler
    (end,) = data["write_sites"]
    site = next(s for s in data["sites"] if s["end"] == end)
    # examined at its first trap: open's (2) here, a cancellation point too; one site, any number
    assert site["patched"] and site["nr"] in (0, 2)
    code = Path(exe).read_bytes()
    assert b"\x48\x89\xca\x0f\x05" in code  # (musl as built here: `mov %rcx,%rdx; syscall`)
    assert data["direct"] >= 3000 - _rewrite.PLAN_AFTER


def test_signals_interrupting_trampolines_are_delivered_at_the_site(tmp_path):
    """A SIGALRM every 100 us while a register-loaded site (a hop) and a `mov $nr` site run in a
    loop, with no Python handler (so the time goes to the trampolines and the C fast path): the
    program's handler checks that every interrupted RIP lies in its own text, as natively. (Some
    signals land in a trampoline, or on the first instruction of the entry, and must be shown at
    the site: without that, dozens of 3000 land outside.)"""
    import json

    src = os.path.join(os.path.dirname(__file__), "programs", "rewrite_sigrip.c")
    exe = str(tmp_path / "sigrip")
    subprocess.run(["cc", "-O2", "-static", "-o", exe, src], check=True)
    native = subprocess.run([exe], capture_output=True, timeout=120)
    assert native.returncode == 0 and native.stdout == b"signals enough, all in the program's text: yes\n"
    out = tmp_path / "out.json"
    script = RUN_AND_REPORT.replace('d.on("write"', 'd.on("no_such_call_here"').replace(
        'd.on("no_such_call_here", lambda call: seen.append(call.call_addr) or pysud.NATIVE)\n', ""
    )
    ours = subprocess.run(
        [sys.executable, "-c", script, exe, str(out), "1"], capture_output=True, timeout=120
    )
    assert (ours.stdout, ours.returncode) == (native.stdout, 0), ours.stderr
    data = json.loads(out.read_text())
    assert data["status"] == 0
    assert sum(1 for s in data["sites"] if s["nr"] == 110 and s["patched"]) == 2  # both sites
    assert data["direct"] > 10000  # the loop ran through the trampolines
