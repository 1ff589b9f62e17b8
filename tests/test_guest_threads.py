"""Threads that a guest program starts: armed before their first instruction, and ended with the program."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import threading

import pytest

import pysud
from conftest import requires_sud

pytestmark = requires_sud

LOAD = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#define N 2000
static void *work(void *a) {
    long n = 0;
    for (int i = 0; i < N; i++)
        n += syscall(SYS_getppid) == getppid();  /* two calls each round */
    return (void *)n;
}
int main(void) {
    pthread_t th[8];
    long total = 0;
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], 0, work, 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (long)r;
    }
    printf("rounds %ld\n", total);
    return 3;
}
"""

GROUP_EXIT = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void *sleeper(void *a) { sleep(100); return 0; }
static void *spinner(void *a) { volatile long x = 0; for (;;) x++; return 0; }
static void *waiter(void *a) { pthread_mutex_lock(&m); pthread_mutex_lock(&m); return 0; }
static void *quitter(void *a) { usleep(50000); printf("bye\n"); fflush(stdout); exit(7); }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, sleeper, 0);
    pthread_create(&t, 0, spinner, 0);
    pthread_create(&t, 0, waiter, 0);
    pthread_create(&t, 0, quitter, 0);
    pthread_join(t, 0);
    return 1;
}
"""

COMPILERS = [
    ("glibc", "gcc", []),
    ("glibc-static", "gcc", ["-static"]),
    ("musl-static", "musl-gcc", ["-static"]),
]


def build(tmp: str, name: str, src: str, cc: str, flags: list[str]) -> str:
    if shutil.which(cc) is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"{cc} missing in CI (tools/run_tests.sh installs it)")
        pytest.skip(f"{cc} not installed (tools/run_tests.sh installs musl-tools)")
    c = os.path.join(tmp, name + ".c")
    with open(c, "w") as f:
        f.write(src)
    exe = os.path.join(tmp, f"{name}-{cc}{''.join(flags)}")
    subprocess.run([cc, "-O2", "-pthread", *flags, c, "-o", exe], check=True)
    return exe


def run_in_subprocess(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("libc", "cc", "flags"), COMPILERS, ids=[c[0] for c in COMPILERS])
def test_every_call_of_every_thread_reaches_the_handler(tmp_path, libc, cc, flags):
    exe = build(str(tmp_path), "load", LOAD, cc, flags)
    native = subprocess.run([exe], capture_output=True, timeout=60)
    d = pysud.Dispatcher()
    by_thread: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def count(call: pysud.Syscall) -> object:
        with lock:
            by_thread[call.tid] += 1
        return pysud.NATIVE

    d.on("getppid", count)
    r, w = os.pipe()
    saved = os.dup(1)
    os.dup2(w, 1)
    try:
        status = pysud.run(exe, dispatcher=d)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(w)
    out = os.read(r, 4096)
    os.close(r)
    d.check()
    assert (status, out) == (native.returncode, native.stdout) == (3, b"rounds 16000\n")
    # 8 threads x 2000 rounds x 2 getppid calls, each counted once, on 8 distinct threads
    # that are none of the host's.
    assert sum(by_thread.values()) == 8 * 2000 * 2
    assert len(by_thread) == 8
    assert all(n == 4000 for n in by_thread.values())
    assert threading.get_native_id() not in by_thread


@pytest.mark.parametrize(("libc", "cc", "flags"), COMPILERS, ids=[c[0] for c in COMPILERS])
def test_exit_from_a_thread_ends_every_thread_and_the_host_goes_on(tmp_path, libc, cc, flags):
    exe = build(str(tmp_path), "group_exit", GROUP_EXIT, cc, flags)
    native = subprocess.run([exe], capture_output=True, timeout=60)
    # Twice in one process: the first program's sleeping, spinning and blocked threads
    # must all be gone, and the host must be able to run another.
    p = run_in_subprocess(
        "import pysud, sys, threading\n"
        f"a = pysud.run({exe!r}); b = pysud.run({exe!r})\n"
        "print('statuses', a, b, file=sys.stderr)\n"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == native.stdout.decode() * 2
    assert f"statuses {native.returncode} {native.returncode}" in p.stderr
    assert native.returncode == 7


def test_python_threads_in_a_guest_interpreter_are_dispatched():
    code = (
        "import threading\n"
        "r = []\n"
        "ts = [threading.Thread(target=lambda i=i: r.append(sum(range(i * 1000)))) for i in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(sorted(r)[-1], threading.active_count())\n"
    )
    native = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    p = run_in_subprocess(
        "import collections, pysud, sys\n"
        "d = pysud.Dispatcher(); seen = set()\n"
        "def h(call):\n"
        "    seen.add(call.tid)\n"
        "    return pysud.NATIVE\n"
        "d.on('futex', h); d.on('mmap', h); d.on('write', h)\n"
        f"st = pysud.run({sys.executable!r}, ['-c', {code!r}], dispatcher=d)\n"
        "print('status', st, 'threads-seen', len(seen), file=sys.stderr)\n"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.encode() == native.stdout
    assert "status 0 " in p.stderr
    seen = int(p.stderr.split("threads-seen")[1].split()[0])
    assert seen >= 2, p.stderr  # calls from the program's own threads arrived, not only the main one
