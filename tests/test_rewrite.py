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
import subprocess
import sys
import threading

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


def loop(mov: str, nr: int = 39) -> bytes:
    """Code: call `nr` rdi times from one site (`mov` puts nr in eax/rax); returns the sum of results."""
    return assemble(
        f"""
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
    code = assemble(
        READ_LIKE.replace("        .p2align 4              # alignment padding", "        # no padding")
    )
    blob = CodeBlob(code)
    d = Dispatcher(rewrite=True)
    d.on("read", lambda call: 1)
    caller = code.index(b"\x53\x41\x54")
    assert blob.run(d, [10], offset=caller) == 10
    s = examined(blob)
    assert s is not None and not s.patched and s.reason == "pattern"
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
    "mov",
    [
        "mov eax, {nr}\n nop",  # not right before the syscall
        "mov ecx, {nr}\n mov eax, ecx",  # the number from a register
        "xor eax, eax\n add eax, {nr}",
    ],
)
def test_other_sites_keep_trapping(mov):
    blob = CodeBlob(loop(mov))
    d = Dispatcher(rewrite=True)
    d.on("getpid", lambda call: 1)
    assert blob.run(d, [20]) == 20
    assert d.direct_calls() == 0
    s = examined(blob)
    assert s is not None and not s.patched and s.reason == "pattern"
    assert pysud._core.read_memory(blob.address, len(blob.code)) == blob.code  # untouched
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


def test_eight_threads_hammer_one_site_while_it_is_patched():
    """Exact per-thread counts: no call lost or doubled while the jmp lands under running threads
    (a thread between the mov and the syscall, or in the call, finds the syscall where it was)."""
    nthreads, n = 8, 3000
    blob = CodeBlob(loop("mov eax, {nr}"))
    d = Dispatcher(rewrite=True)
    counts: dict[int, int] = {}
    lock = threading.Lock()

    def handler(call):
        with lock:
            counts[call.tid] = counts.get(call.tid, 0) + 1
        return 1

    d.on("getpid", handler)
    barrier = threading.Barrier(nthreads)
    results: dict[int, int] = {}

    def worker():
        d.arm_thread()
        barrier.wait()
        results[threading.get_native_id()] = blob.run(d, [n])

    threads = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == nthreads
    assert all(v == n for v in results.values()), results  # each thread got all its results
    assert counts == {tid: n for tid in results}  # and its handler saw exactly its calls
    assert d.counts()["getpid"] == nthreads * n
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
