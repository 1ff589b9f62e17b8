"""Leak tests, as psutil keeps them: repeat an operation many times and check that what the
process holds (mappings in /proc/self/maps, resident memory, live objects) stops growing.

Each scenario runs in a fresh interpreter so earlier tests' allocations do not blur it.  The
first few repetitions warm up caches (imports, the ELF parser, frame objects); growth is
measured over the repetitions after them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asm import assemble
from conftest import requires_sud
from pysud._linux import _Regions

HERE = Path(__file__).parent
#: mappings the host itself may add meanwhile (Python's allocator, the ELF parser's caches)
SLACK = 8

COMMON = """
import gc, json, os, sys, threading, time, weakref
import pysud
def maps():
    time.sleep(0.1)  # the host side of a program thread that just left may still be ending
    with open("/proc/self/maps") as f:
        return len(f.readlines())
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def count(kind):
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))
out = sys.argv[1]
"""


def run(code: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out.json"
    # one malloc arena: the host's own per-thread arenas (64 MB reservations, created as the
    # program's threads come and go) would look like growth of the mapping count
    env = dict(os.environ, MALLOC_ARENA_MAX="1")
    r = subprocess.run(
        [sys.executable, "-c", COMMON + code, str(out), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def threads_program(tmp_path_factory):
    """programs/threads.c built once: 8 pthreads each making N getppid, write and clock calls."""
    exe = tmp_path_factory.mktemp("threads") / "threads"
    subprocess.run(
        ["gcc", "-O1", "-pthread", "-o", str(exe), str(HERE / "programs" / "threads.c")],
        check=True,
        timeout=120,
    )
    return exe


@requires_sud
def test_in_process_runs_leave_no_mappings_or_memory(tmp_path):
    """Each run of a dynamic program unmaps what it mapped (ld.so's libraries too)."""
    data = run(
        """
for i in range(30):
    assert pysud.run("/bin/true") == 0
    if i == 4:
        m0, r0 = maps(), rss()
json.dump({"maps": maps() - m0, "rss": rss() - r0}, open(out, "w"))
""",
        tmp_path,
    )
    assert data["maps"] <= SLACK, data  # the issue measured ~6 more per run
    assert data["rss"] < 4 << 20, data  # was ~0.95 MB per run: 24 MB here


@requires_sud
def test_exec_drops_the_old_images_mappings(tmp_path):
    """An in-process execve leaves nothing of the image it replaced (a chain of 20 execs)."""
    data = run(
        """
script = 'n=${1:-0}; [ "$n" -lt 20 ] && exec /bin/sh -c "$0" "$0" $((n+1)); exit 0'
pysud.run("/bin/true")
pysud.run("/bin/sh", ["-c", "exit 0"])  # a cold cache: the first parse of /bin/sh loads modules
m0 = maps()
assert pysud.run("/bin/sh", ["-c", script, script]) == 0
json.dump({"maps": maps() - m0}, open(out, "w"))
""",
        tmp_path,
    )
    assert data["maps"] <= SLACK, data


@requires_sud
def test_dispatchers_and_their_policies_are_freed(tmp_path):
    data = run(
        """
import ctypes
libc = ctypes.CDLL(None)
refs = []
for i in range(200):
    d = pysud.Dispatcher()
    d.on("getppid", lambda call: 7)
    assert d.wrap(libc.getppid)() == 7
    refs.append(weakref.ref(d))
    del d
    if i == 19:
        r0 = rss()
gc.collect()
json.dump({"alive": sum(r() is not None for r in refs), "dispatchers": count(pysud.Dispatcher),
           "rss": rss() - r0}, open(out, "w"))
""",
        tmp_path,
    )
    assert data["alive"] == 0 and data["dispatchers"] == 0, data
    assert data["rss"] < 4 << 20, data


@requires_sud
def test_code_blobs_are_unmapped_by_the_collector(tmp_path):
    data = run(
        """
code = bytes.fromhex(sys.argv[2])
d = pysud.Dispatcher()
for i in range(300):
    blob = pysud.CodeBlob(code)
    assert blob.run(d) == os.getpid()
    del blob
    if i == 9:
        gc.collect()
        m0 = maps()
gc.collect()
json.dump({"maps": maps() - m0, "blobs": count(pysud.CodeBlob)}, open(out, "w"))
""",
        tmp_path,
        assemble("mov eax, 39\nsyscall\nret").hex(),
    )
    assert data["blobs"] == 0 and data["maps"] <= SLACK, data


@requires_sud
def test_program_threads_leave_nothing_behind(tmp_path, threads_program):
    """A program that starts 8 threads, run 15 times: no Syscall objects, mappings or RSS kept."""
    data = run(
        """
import capstone  # the rewrite planner's lazy import: its first use may come in any run (a site's
                 # 8th trap depends on the threads' timing), a one-time cost, not a leak
d = pysud.Dispatcher()
d.on("getppid", lambda call: pysud.NATIVE)
for i in range(15):
    assert pysud.run(sys.argv[2], ["200"], dispatcher=d) == 0
    if i == 4:
        s0, m0, r0 = count(pysud.Syscall), maps(), rss()
json.dump({"syscalls": count(pysud.Syscall) - s0, "maps": maps() - m0, "rss": rss() - r0}, open(out, "w"))
""",
        tmp_path,
        str(threads_program),
    )
    assert data["syscalls"] <= 2 and data["maps"] <= SLACK, data  # (a host thread may keep one spare)
    assert data["rss"] < 8 << 20, data


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40), st.integers(1, 8)), max_size=40))
@settings(max_examples=300, deadline=None)
def test_regions_track_mapped_pages_like_a_set(ops):
    """The record of a program's mappings behaves as the set of pages it maps and unmaps."""
    regions, pages = _Regions(), set()
    for add, start, n in ops:
        lo, hi = start * 4096, (start + n) * 4096
        if add:
            regions.add(lo, hi)
            pages |= set(range(start, start + n))
        else:
            regions.remove(lo, hi)
            pages -= set(range(start, start + n))
        got = {
            p for s, e in zip(regions.starts, regions.ends, strict=True) for p in range(s // 4096, e // 4096)
        }
        assert got == pages
        assert all(s < e for s, e in zip(regions.starts, regions.ends, strict=True))
        assert regions.starts == sorted(regions.starts)


@requires_sud
def test_a_blobs_function_keeps_its_code_mapped():
    """Only the blob's last user unmaps it: a function taken from a temporary blob still runs."""
    import gc
    import os

    import pysud

    f = pysud.CodeBlob(assemble("mov eax, 39\nsyscall\nret"), nargs=0).function(pysud.Dispatcher())
    gc.collect()
    assert f() == os.getpid()


@requires_sud
def test_call_thread_of_program_threads_ends_with_them(tmp_path, threads_program):
    """call.thread on a program thread: alive while it runs, forgotten by threading after."""
    data = run(
        """
d = pysud.Dispatcher()
seen = {}
@d.on("getppid")
def who(call):
    th = call.thread
    seen.setdefault(call.tid, (th, th.is_alive()))
    return pysud.NATIVE
before = threading.active_count()
for i in range(3):
    assert pysud.run(sys.argv[2], ["50"], dispatcher=d) == 0
time.sleep(0.2)
others = [v for tid, v in seen.items() if tid != threading.get_native_id()]
json.dump({"threads": len(others), "alive_then": sum(a for _, a in others),
           "count": threading.active_count() - before}, open(out, "w"))
""",
        tmp_path,
        str(threads_program),
    )
    assert data == {"threads": 24, "alive_then": 24, "count": 0}, data
