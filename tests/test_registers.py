"""Every register the kernel preserves across a syscall is preserved across an emulated one.

The oracle is the kernel itself: the same code run natively (not dispatched)
dumps its registers after the syscall; run under dispatch, with the call
answered by the fast path, by a Python handler (which uses floating point and
vector registers freely), or run natively from a handler, the dump must be
byte-identical.
"""

from __future__ import annotations

import ctypes
import errno
import math

import pytest

import pysud
from asm import assemble
from conftest import requires_sud
from pysud import NATIVE, CodeBlob, Dispatcher, Errno

pytestmark = requires_sud

with open("/proc/cpuinfo") as _f:
    AVX512 = "avx512f" in _f.read()
NVEC = 32 if AVX512 else 16
VEC = "zmm" if AVX512 else "ymm"
VBYTES = 64 if AVX512 else 32
GPRS = ["rbx", "rbp", "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
FLAGS_AT = 8  # out[8]: rflags captured before the syscall
VEC_AT = 256
DUMP_SIZE = VEC_AT + NVEC * VBYTES + 64


def _source(nr: int) -> str:
    lines = [
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "push rdi",
        "sub rsp, 8",
        "stmxcsr [rsp]",
        # foreign FP environment: round toward zero in SSE and x87
        "mov dword ptr [rsp+4], 0x7f80",
        "ldmxcsr [rsp+4]",
        "mov word ptr [rsp+4], 0x0f7f",
        "fldcw [rsp+4]",
    ]
    for i in range(NVEC):
        lines.append(f"mov rax, {0xA5A5000000000000 + i * 0x0101010101 + 1}")
        if AVX512:  # the GPR-source form is EVEX (AVX-512F) only
            lines.append(f"vpbroadcastq {VEC}{i}, rax")
        else:
            lines += [f"vmovq xmm{i}, rax", f"vpbroadcastq {VEC}{i}, xmm{i}"]
    if AVX512:
        for k in range(1, 8):
            lines += [f"mov rax, {0x1111 * k}", f"kmovq k{k}, rax"]
    for i, reg in enumerate(GPRS):
        if reg in ("rdi", "rcx", "r11"):
            continue
        lines.append(f"mov {reg}, {0x1000000000000000 * ((i % 7) + 1) + i * 0x10101}")
    lines += [
        "xor eax, eax",  # deterministic arithmetic flags
        "pushfq",
        "pop rax",
        f"mov [rdi+{FLAGS_AT}], rax",  # flags, as SYSCALL will see them
        f"mov rdi, {0x7EADBEEF00000000}",
        f"mov eax, {nr}",
        "syscall",
        "push rax",
        "mov rax, [rsp+16]",  # out
    ]
    for i, reg in enumerate(GPRS):
        lines.append(f"mov [rax+{16 + 8 * i}], {reg}")
    lines += [
        "pop rcx",
        "mov [rax+0], rcx",  # result
        "stmxcsr [rax+160]",
        "fnstcw [rax+164]",
    ]
    for i in range(NVEC):
        lines.append(
            f"vmovdqu64 [rax+{VEC_AT + VBYTES * i}], {VEC}{i}"
            if AVX512
            else f"vmovdqu [rax+{VEC_AT + VBYTES * i}], {VEC}{i}"
        )
    if AVX512:
        for k in range(1, 8):
            lines += [f"kmovq rcx, k{k}", f"mov [rax+{168 + 8 * k}], rcx"]
    lines += [
        "ldmxcsr [rsp]",
        "mov word ptr [rsp+4], 0x037f",
        "fldcw [rsp+4]",
        "add rsp, 8",
        "pop rdi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "vzeroupper",
        "ret",
    ]
    return "\n".join(lines)


BLOB = CodeBlob(assemble(_source(500)), nargs=1)  # 500: no such syscall -> ENOSYS natively


def _dump_native() -> bytes:
    buf = (ctypes.c_uint8 * DUMP_SIZE)()
    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(BLOB.address)(ctypes.addressof(buf))
    return bytes(buf)


def _dump_dispatched(d: Dispatcher) -> bytes:
    buf = (ctypes.c_uint8 * DUMP_SIZE)()
    BLOB.run(d, [ctypes.addressof(buf)])
    return bytes(buf)


def _describe(a: bytes, b: bytes) -> str:
    diffs = []
    names = ["result", "flags_before", *GPRS]
    for i, name in enumerate(names):
        x, y = a[8 * i : 8 * i + 8], b[8 * i : 8 * i + 8]
        if x != y:
            diffs.append(f"{name}: {x[::-1].hex()} != {y[::-1].hex()}")
    if a[160:168] != b[160:168]:
        diffs.append(f"mxcsr/fcw: {a[160:168].hex()} != {b[160:168].hex()}")
    if a[168:256] != b[168:256]:
        diffs.append("k mask registers differ")
    for i in range(NVEC):
        s = slice(VEC_AT + VBYTES * i, VEC_AT + VBYTES * (i + 1))
        if a[s] != b[s]:
            diffs.append(f"{VEC}{i} differs")
    return "; ".join(diffs)


@pytest.fixture(scope="module")
def native_dump() -> bytes:
    dump = _dump_native()
    assert int.from_bytes(dump[:8], "little", signed=True) == -errno.ENOSYS
    return dump


def test_native_dump_is_meaningful(native_dump):
    """The oracle itself: RCX holds the address after the syscall, R11 the flags."""
    syscall_at = BLOB.code.index(b"\x0f\x05")
    rcx = int.from_bytes(native_dump[16 + 8 * GPRS.index("rcx") :][:8], "little")
    assert rcx == BLOB.address + syscall_at + 2
    r11 = int.from_bytes(native_dump[16 + 8 * GPRS.index("r11") :][:8], "little")
    flags = int.from_bytes(native_dump[FLAGS_AT : FLAGS_AT + 8], "little")
    assert r11 & 0xCD5 == flags & 0xCD5
    assert native_dump[160:164] == (0x7F80).to_bytes(4, "little")


def _python_handler_using_fp(call: pysud.Syscall) -> int:
    # Floating point and vector work in the handler; also proves the handler runs
    # with the host's FP environment (round-to-nearest), not the foreign one.
    a, b = 2.0, 3.0
    assert float.hex(a / b) == "0x1.5555555555555p-1", float.hex(a / b)
    s = sum(math.sqrt(i) for i in range(200))
    bytes(range(256)) * 100  # memcpy-heavy work clobbers vector registers
    assert s > 0
    return -errno.ENOSYS


@pytest.mark.parametrize("how", ["fast_native", "fast_errno", "python_value", "python_native"])
def test_registers_identical_to_native(native_dump, how):
    d = Dispatcher()
    if how == "fast_native":
        d.set_fast(500, NATIVE)
    elif how == "fast_errno":
        d.set_fast(500, Errno(errno.ENOSYS))
    elif how == "python_value":
        d.on(500, _python_handler_using_fp)
    else:
        d.on(500, lambda call: _python_handler_using_fp(call) and call.native())
    dump = _dump_dispatched(d)
    assert dump == native_dump, _describe(dump, native_dump)
    assert d.counts() == {"syscall_500": 1}


def test_handler_written_registers_reach_foreign_code(native_dump):
    """Registers a handler writes are the ones the foreign code sees; others stay."""
    d = Dispatcher()

    def h(call):
        call.rbx = 0x1234
        call.r15 = 0x5678
        return 0

    d.on(500, h)
    dump = _dump_dispatched(d)
    reg = {name: int.from_bytes(dump[16 + 8 * i : 24 + 8 * i], "little") for i, name in enumerate(GPRS)}
    nat = {
        name: int.from_bytes(native_dump[16 + 8 * i : 24 + 8 * i], "little") for i, name in enumerate(GPRS)
    }
    assert reg["rbx"] == 0x1234 and reg["r15"] == 0x5678
    assert {k: v for k, v in reg.items() if k not in ("rbx", "r15")} == {
        k: v for k, v in nat.items() if k not in ("rbx", "r15")
    }


def test_handler_reads_the_programs_vector_state(native_dump):
    """call.vector_state(): the program's MXCSR, x87 control word and XMM0-15 at the call (an
    FXSAVE image), not the handler's own (Python runs with the default MXCSR)."""
    seen: list[bytes] = []

    def h(call):
        _python_handler_using_fp(call)  # the handler's own vector work does not leak into it
        seen.append(call.vector_state())
        return -errno.ENOSYS

    d = Dispatcher()
    d.on(500, h)
    dump = _dump_dispatched(d)
    assert dump == native_dump, _describe(dump, native_dump)
    (fx,) = seen
    assert len(fx) == 512
    assert int.from_bytes(fx[24:28], "little") == 0x7F80  # MXCSR: round toward zero, as the program set
    assert int.from_bytes(fx[0:2], "little") == 0x0F7F  # FCW
    for i in range(16):  # XMM i: the low 128 bits of the program's vector register i
        want = native_dump[VEC_AT + VBYTES * i :][:16]
        assert fx[160 + 16 * i : 176 + 16 * i] == want, f"xmm{i}"


def test_handler_written_vector_state_reaches_foreign_code(native_dump):
    """call.set_vector_state(): XMM registers and MXCSR the handler writes are what the program sees
    after the call; the upper halves of the vector registers keep theirs."""

    def h(call):
        fx = bytearray(call.vector_state())
        fx[24:28] = (0x3F80).to_bytes(4, "little")  # round down (the program had toward zero)
        fx[160 + 16 * 3 : 176 + 16 * 3] = bytes(range(16))
        with pytest.raises(ValueError, match="512-byte"):
            call.set_vector_state(bytes(fx[:100]))
        bad = bytearray(fx)
        bad[24:28] = (0xFFFF0000).to_bytes(4, "little")
        with pytest.raises(ValueError, match="reserved"):
            call.set_vector_state(bytes(bad))
        call.set_vector_state(bytes(fx))
        return -errno.ENOSYS

    d = Dispatcher()
    d.on(500, h)
    dump = _dump_dispatched(d)
    assert int.from_bytes(dump[160:164], "little") == 0x3F80  # the program reads the new MXCSR
    x3 = VEC_AT + VBYTES * 3
    assert dump[x3 : x3 + 16] == bytes(range(16))
    assert dump[x3 + 16 : x3 + VBYTES] == native_dump[x3 + 16 : x3 + VBYTES]  # upper half kept
    for i in (0, 6, 15):
        s = slice(VEC_AT + VBYTES * i, VEC_AT + VBYTES * (i + 1))
        assert dump[s] == native_dump[s], f"xmm{i}"
