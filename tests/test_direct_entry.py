"""The flip-switch way in: foreign code enters dispatch without a kernel trap (sud_direct_entry)."""

from __future__ import annotations

import pytest

from asm import assemble
from conftest import requires_sud
from pysud import CodeBlob, Dispatcher, _core

pytestmark = requires_sud

# f(thread, entry, a0, a1, how): make call 500 with (a0, a1) through the direct entry when how != 0,
# else with a syscall instruction; returns the result, or -1 if a register the call must keep changed.
BOTH_WAYS = assemble(
    """
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov r14, rsi
    mov r12, rdi
    mov rdi, rdx
    mov rsi, rcx
    mov rbx, 0x1111111111111111
    mov rbp, 0x2222222222222222
    mov r13, 0x4444444444444444
    mov r15, 0x6666666666666666
    mov r9, 0x7777777777777777
    mov eax, 500
    test r8, r8
    jz 1f
    mov rcx, r12
    lea r11, [rip + 2f]
    jmp r14
1:  syscall
2:  mov rcx, 0x1111111111111111
    cmp rbx, rcx
    jne 3f
    mov rcx, 0x2222222222222222
    cmp rbp, rcx
    jne 3f
    mov rcx, 0x4444444444444444
    cmp r13, rcx
    jne 3f
    mov rcx, 0x6666666666666666
    cmp r15, rcx
    jne 3f
    mov rcx, 0x7777777777777777
    cmp r9, rcx
    jne 3f
    cmp rdi, rdx
    jne 3f
    jmp 4f
3:  mov rax, -1
4:  pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    """
)


@pytest.mark.parametrize("direct", [False, True], ids=["trap", "direct"])
def test_both_ways_reach_the_same_handler_with_the_same_registers(direct):
    d = Dispatcher()
    seen = []

    def h(call):
        seen.append((call.nr, call.args[:2], call.rsp))
        call.rbx = call.rbx  # reading and writing registers works the same way
        return call.args[0] * 1000 + call.args[1]

    d.on(500, h)
    blob = CodeBlob(BOTH_WAYS, nargs=5)
    f = blob.function(d)
    d.arm_thread()
    thread, entry = _core.thread_block(), _core.direct_entry_address()
    counts_before = d.counts().get("syscall_500", 0)
    assert f(thread, entry, 7, 9, int(direct)) == 7009
    assert f(thread, entry, 3, 4, int(direct)) == 3004
    d.check()
    assert [s[:2] for s in seen] == [(500, (7, 9)), (500, (3, 4))]
    assert d.counts().get("syscall_500", 0) - counts_before == 2


def test_the_direct_entry_needs_no_kernel_trap():
    # With the kernel's dispatch switched off for the thread, a syscall instruction runs natively
    # (500 is no call: ENOSYS), while the direct entry still reaches the handler.
    d = Dispatcher()
    d.on(500, lambda call: 42)
    f = CodeBlob(BOTH_WAYS, nargs=5).function(d)
    d.arm_thread()
    thread, entry = _core.thread_block(), _core.direct_entry_address()
    state = _core.thread_state(d._policy)
    assert state is not None
    op, offset, length = state[:3]
    assert _core.prctl_raw(0, 0, 0, 0) == 0
    try:
        assert f(thread, entry, 1, 2, 0) == -38
        assert f(thread, entry, 1, 2, 1) == 42
    finally:
        assert _core.prctl_raw(op, offset, length, _core.selector_address()) == 0
    d.check()


def test_direct_entry_needs_an_armed_thread():
    import threading

    out = []

    def probe():
        try:
            _core.thread_block()
        except RuntimeError as e:
            out.append(str(e))

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert out == ["this thread is not armed"]
