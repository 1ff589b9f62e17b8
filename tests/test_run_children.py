"""Every process a program creates stays under pysud: forks, exec'd children and grandchildren.

The oracle is ``strace -f`` on the same command run natively: the execve calls it shows after
the first (which pysud makes itself, loading the first image) must each reach the handler, in
a process that is not the host, and the writes of the exec'd images must reach it too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_sud

pytestmark = requires_sud

HERE = Path(__file__).parent
STRACE = shutil.which("strace")

# Handlers log (pid, call, detail) lines to a file opened O_APPEND: children are other processes.
WATCH = """
import json, os, sys
import pysud
log, out, prog, *args = sys.argv[1:]
d = pysud.Dispatcher()
def note(*parts):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (json.dumps([os.getpid(), *parts]) + "\\n").encode())
    os.close(fd)
@d.on("execve")
def on_execve(call):
    note("execve", call.read_cstring(call.args[0]).decode())
    return pysud.NATIVE
@d.on("write")
def on_write(call):
    if call.args[0] == 1:
        note("write", call.read(call.args[1], call.args[2]).decode())
    return pysud.NATIVE
status = pysud.run(prog, args, dispatcher=d)
json.dump({"status": status, "host": os.getpid()}, open(out, "w"))
"""


def watch(tmp_path: Path, argv: list[str]) -> tuple[subprocess.CompletedProcess[str], dict, list[list]]:
    log, out = tmp_path / "log", tmp_path / "out.json"
    r = subprocess.run(
        [sys.executable, "-c", WATCH, str(log), str(out), *argv],
        capture_output=True,
        text=True,
        env=dict(os.environ, LC_ALL="C"),
        timeout=60,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return r, data, lines


def strace_execs(argv: list[str], tmp_path: Path) -> list[str]:
    """Paths of the successful execve calls of argv and all its descendants, natively."""
    if STRACE is None:
        pytest.skip("strace not installed")
    out = tmp_path / "strace.txt"
    subprocess.run(
        [STRACE, "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", str(out), *argv],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return re.findall(r'execve\("([^"]*)".*= 0$', out.read_text(), re.M)


SHELL = "/bin/echo one; /bin/sh -c '/bin/echo two; /bin/echo three; true'; /bin/echo four"


def test_exec_in_children_and_grandchildren_is_intercepted(tmp_path):
    argv = ["/bin/sh", "-c", SHELL]
    native = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    execs = strace_execs(argv, tmp_path)
    r, data, lines = watch(tmp_path, argv)
    assert r.stdout == native.stdout == "one\ntwo\nthree\nfour\n", r.stderr
    assert data["status"] == 0
    host = data["host"]
    seen = [(pid, path) for pid, call, path in lines if call == "execve"]
    # every execve strace saw but the first (pysud loads the first image itself)
    assert sorted(p for _, p in seen) == sorted(execs[1:])
    assert all(pid != host for pid, _ in seen), "each exec happens in a forked child"
    # what the exec'd images write reaches the handler, in the process that exec'd them
    writes = {text: pid for pid, call, text in lines if call == "write"}
    for word in ("one", "two", "three", "four"):
        assert f"{word}\n" in writes, f"write of {word!r} not intercepted"
        assert (writes[f"{word}\n"], "/bin/echo") in seen
    # one process per exec: the inner sh's echos are grandchildren of the host
    assert len({pid for pid, _ in seen}) == len(execs) - 1 == 5


def build_c(name: str, tmp_path: Path, *flags: str) -> str:
    exe = tmp_path / name
    subprocess.run(
        ["gcc", "-O1", "-pthread", *flags, "-o", str(exe), str(HERE / "programs" / f"{name}.c")],
        check=True,
        timeout=120,
    )
    return str(exe)


@pytest.mark.parametrize("pie", ["-pie", "-no-pie"])
def test_exec_in_child_of_a_non_first_thread_is_intercepted(tmp_path, pie):
    """A child forked by a program thread other than the first execs in-process too, and the
    exec drops the old program's memory there as everywhere: the program exec'd again (-no-pie:
    at the old image's fixed address) loads and finds a page the old one mapped gone."""
    exe = build_c("thread_fork", tmp_path, pie)
    native = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert "page: gone\n" in native.stdout and "self child: 4" in native.stdout
    execs = strace_execs([exe], tmp_path)
    r, data, lines = watch(tmp_path, [exe])
    assert r.stdout == native.stdout, r.stderr
    assert data["status"] == native.returncode == 0
    seen = [(pid, path) for pid, call, path in lines if call == "execve"]
    assert sorted(p for _, p in seen) == sorted(execs[1:])
    assert all(pid != data["host"] for pid, _ in seen)
    writes = [(pid, text) for pid, call, text in lines if call == "write"]
    sh = next(pid for pid, path in seen if path == "/bin/sh")
    again = next(pid for pid, path in seen if path == "/proc/self/exe")
    assert (sh, "child of a thread runs sh\n") in writes
    assert (again, "the image again; the old program's page: gone\n") in writes


def test_trace_follows_exec_in_children_as_strace_does(tmp_path):
    """`pysud trace -f` shows each child's execve and what the new image does, under the child's pid."""
    argv = ["/bin/sh", "-c", SHELL]
    execs = strace_execs(argv, tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "trace", "-f", "-o", str(tmp_path / "t.txt"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "t.txt").read_text()
    ours = re.findall(r'^(\d+) +execve\("([^"]*)".*= 0$', text, re.M)  # -o: "PID call" as strace
    assert sorted(p for _, p in ours) == sorted(execs)  # the first image's line included
    for pid, path in ours:  # the exec'd echo's own write, in the same process
        if path == "/bin/echo":
            assert re.search(rf'^{pid} +write\(1, "\w+\\n", \d+\) += \d+$', text, re.M), pid


BUSY = """
import json, os, sys, time
import pysud
out, exe = sys.argv[1:3]
d = pysud.Dispatcher()
@d.on("getppid")
def spin(call):
    end = time.monotonic() + 0.02
    while time.monotonic() < end:  # holds the GIL (but for the switch interval)
        pass
    return pysud.NATIVE
@d.on("exit_group")
def on_exit(call):
    if os.getpid() != HOST:
        os.write(1, b"child %d exits in a handler\\n" % os.getpid())
    return pysud.NATIVE
HOST = os.getpid()
status = pysud.run(exe, [], dispatcher=d)
json.dump({"status": status}, open(out, "w"))
"""


def test_fork_while_another_thread_is_in_a_handler(tmp_path):
    """The child of a fork finds the GIL usable: its handlers run (no wait for ever)."""
    exe = build_c("fork_busy", tmp_path)
    native = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert native.stdout == "children ok: 10\n"
    out = tmp_path / "out.json"
    r = subprocess.run(
        [sys.executable, "-c", BUSY, str(out), exe], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text()) == {"status": 0}
    lines = r.stdout.splitlines()
    assert lines[-1] == "children ok: 10"
    assert len([x for x in lines if x.endswith("exits in a handler")]) == 10


def test_posix_spawn_child_is_intercepted(tmp_path):
    """posix_spawn's vfork-like clone on its own stack becomes a fork that execs in-process."""
    exe = build_c("spawn", tmp_path)
    native = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert native.stdout == "spawned\nposix_spawn 0, child status 0\n"
    r, data, lines = watch(tmp_path, [exe])
    assert r.stdout == native.stdout, r.stderr
    seen = [(pid, path) for pid, call, path in lines if call == "execve"]
    assert [p for _, p in seen] == ["/bin/echo"] and seen[0][0] != data["host"]
    assert [seen[0][0], "write", "spawned\n"] in lines


def test_exec_from_a_later_thread_of_the_program(tmp_path):
    """execve from a second thread while the first waits in pause(): the new image runs, intercepted."""
    exe = build_c("thread_exec", tmp_path)
    native = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert (native.stdout, native.returncode) == ("exec from a second thread\n", 0)
    r, data, lines = watch(tmp_path, [exe])
    assert r.stdout == native.stdout, r.stderr
    assert data["status"] == 0
    assert [line[1:] for line in lines] == [["execve", "/bin/echo"], ["write", "exec from a second thread\n"]]
    assert {line[0] for line in lines} == {data["host"]}  # the same process: no fork here
