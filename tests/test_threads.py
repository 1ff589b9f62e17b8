"""Several threads under interception at once; fork of the host and of foreign code."""

from __future__ import annotations

import ctypes
import os
import threading

import pysud
from asm import assemble
from conftest import requires_sud, run_in_child
from pysud import CodeBlob, Dispatcher, Return

pytestmark = requires_sud

# rdi = n: make n getpid calls, return the sum of their results
LOOP_BLOB = assemble(
    """
    xor r8, r8
    mov r9, rdi
1:  test r9, r9
    jz 2f
    mov eax, 39
    syscall
    add r8, rax
    dec r9
    jmp 1b
2:  mov rax, r8
    ret
    """
)


def test_many_threads_exact_counts():
    d = Dispatcher()
    per_thread: dict[int, int] = {}
    lock = threading.Lock()

    @d.on("getpid")
    def h(call):
        assert call.tid == threading.get_native_id()
        with lock:
            per_thread[call.tid] = per_thread.get(call.tid, 0) + 1
        return 1

    blob = CodeBlob(LOOP_BLOB)
    n, nthreads = 500, 8
    results: list[int] = []
    errors: list[BaseException] = []

    def worker():
        try:
            results.append(blob.run(d, [n]))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [n] * nthreads
    assert sorted(per_thread.values()) == [n] * nthreads
    assert d.counts() == {"getpid": n * nthreads}


def test_threads_with_different_dispatchers():
    blob = CodeBlob(LOOP_BLOB)
    out: dict[str, int] = {}

    def worker(name: str, value: int):
        d = Dispatcher()
        d.on("getpid", lambda call: value)
        out[name] = blob.run(d, [100])

    ts = [threading.Thread(target=worker, args=(f"t{i}", i)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == {f"t{i}": 100 * i for i in range(4)}


def test_handler_errors_surface_on_their_own_thread():
    d = Dispatcher()
    d.on("getpid", lambda call: 1 / 0 if threading.current_thread().name == "bad" else 1)
    blob = CodeBlob(LOOP_BLOB)
    outcome: dict[str, object] = {}

    def worker():
        try:
            outcome[threading.current_thread().name] = blob.run(d, [3])
        except pysud.HandlerError as e:
            outcome[threading.current_thread().name] = type(e.__cause__)

    for name in ("good", "bad"):
        t = threading.Thread(target=worker, name=name)
        t.start()
        t.join()
    assert outcome == {"good": 3, "bad": ZeroDivisionError}


def test_host_fork_child_is_armed_like_the_parent():
    """os.fork() of an armed host: the child is armed the same way, not silently disarmed."""
    d = Dispatcher()
    d.on("getpid", lambda call: 4242)
    blob = CodeBlob(LOOP_BLOB)
    assert blob.run(d, [1]) == 4242
    op, off, length, sel, _tid, same = pysud._core.thread_state(d.policy)
    assert (op, same) == (1, True)

    def child():
        c_op, c_off, c_len, c_sel, c_tid, c_same = pysud._core.thread_state(d.policy)
        if (c_op, c_off, c_len, c_sel, c_same) != (op, off, length, sel, same):
            return 3
        if c_tid != threading.get_native_id():
            return 6
        return 0 if blob.run(d, [1]) == 4242 else 4

    assert run_in_child(child) == 0


def test_fork_from_foreign_code_keeps_interception():
    """A blob forks with a raw syscall; the child continues under dispatch (its getpid is faked)."""
    code = assemble(
        """
        mov eax, 57          # fork
        syscall
        test rax, rax
        jnz 1f
        mov eax, 39          # child: getpid -> faked by the fast path
        syscall
        mov edi, eax
        mov eax, 231         # exit_group(getpid())
        syscall
    1:  ret
        """
    )
    d = Dispatcher()
    d.set_fast("getpid", Return(42))
    pid = CodeBlob(code).run(d)
    assert pid > 0
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 42


def test_libc_fork_from_wrapped_call(libc):
    """glibc's fork() called under dispatch: the child returns to Python armed."""
    d = Dispatcher()
    d.on("getppid", lambda call: 7)
    libc.fork.restype = ctypes.c_int
    libc.getppid.restype = ctypes.c_int
    fork = d.wrap(libc.fork)
    getppid = d.wrap(libc.getppid)
    pid = fork()
    if pid == 0:
        os._exit(0 if getppid() == 7 else 5)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert d.counts().get("clone", 0) + d.counts().get("fork", 0) >= 1


def test_posix_spawn_under_dispatch(libc):
    """posix_spawn clones onto a new stack (CLONE_VM|CLONE_VFORK): the child must start there."""
    d = Dispatcher()
    seen = []
    d.on("clone", lambda call: seen.append(call) or pysud.NATIVE)
    d.on("clone3", lambda call: seen.append(call) or pysud.NATIVE)
    pid = ctypes.c_int()
    argv = (ctypes.c_char_p * 3)(b"sh", b"-c", None)
    argv[1] = b"-c"
    argv = (ctypes.c_char_p * 4)(b"sh", b"-c", b"exit 3", None)
    envp = (ctypes.c_char_p * 1)(None)
    libc.posix_spawnp.restype = ctypes.c_int
    spawn = d.wrap(libc.posix_spawnp)
    r = spawn(ctypes.byref(pid), b"sh", None, None, argv, envp)
    assert r == 0
    _, status = os.waitpid(pid.value, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    assert seen and all(c.deferred for c in seen)  # from libc: run in C, reported afterwards


def test_pthread_create_under_dispatch(libc):
    """A wrapped library starts a thread (clone3/clone on a new stack): it runs and is joined."""
    d = Dispatcher()
    tid = ctypes.c_ulong()
    start = ctypes.cast(libc.getpid, ctypes.c_void_p)  # void *(*)(void *): returns the pid
    libc.pthread_create.argtypes = [
        ctypes.POINTER(ctypes.c_ulong),
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    create = d.wrap(libc.pthread_create)
    assert create(ctypes.byref(tid), None, start, None) == 0
    ret = ctypes.c_void_p()
    libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.POINTER(ctypes.c_void_p)]
    assert libc.pthread_join(tid, ctypes.byref(ret)) == 0
    assert ret.value == os.getpid()
    names = d.counts()
    assert names.get("clone3", 0) + names.get("clone", 0) >= 1
