"""Stress: thread churn, fork storms, exec storms and handler faults under `pysud.run`.

Each run is bounded (a subprocess with a timeout: a hang fails the test) and checks that
nothing is lost: every call of every thread and every process reaches its handler, every
child's status reaches its parent as natively, every handler error reaches the caller.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import requires_sud

pytestmark = [requires_sud, pytest.mark.slow]

PROGRAMS = Path(__file__).parent.parent / "programs"

# Handlers count getppid per process and log (pid, event, value) lines to a file opened with
# O_APPEND: forked children are other processes.
COUNTING = """
import json, os, sys, threading
import pysud
out, log, exe, *args = sys.argv[1:]
d = pysud.Dispatcher()
counts = {"getppid": 0}
lock = threading.Lock()
fail_every = int(os.environ.get("FAIL_EVERY", "0"))
def note(*parts):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (json.dumps([os.getpid(), *parts]) + "\\n").encode())
    os.close(fd)
@d.on("getppid")
def getppid(call):
    with lock:
        counts["getppid"] += 1
        n = counts["getppid"]
    if fail_every and n % fail_every == 0:
        raise RuntimeError("injected handler fault")
    return pysud.NATIVE
@d.on("execve")
def execve(call):
    note("execve", call.read_cstring(call.args[0]).decode())
    return pysud.NATIVE
@d.on("exit_group")
def exit_group(call):
    note("exit", counts["getppid"])
    return pysud.NATIVE
result = {"host": os.getpid()}
try:
    result["status"] = pysud.run(exe, args, dispatcher=d)
except pysud.HandlerError as e:
    result["errors"] = len(e.errors)
result["getppid"] = counts["getppid"]
json.dump(result, open(out, "w"))
"""


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> str:
    exe = tmp_path_factory.mktemp("churn") / "churn"
    subprocess.run(
        ["gcc", "-O1", "-pthread", "-o", str(exe), str(PROGRAMS / "churn.c")], check=True, timeout=120
    )
    return str(exe)


def under_pysud(
    tmp_path: Path, argv: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict, list[list]]:
    out, log = tmp_path / "out.json", tmp_path / "log"
    r = subprocess.run(
        [sys.executable, "-c", COUNTING, str(out), str(log), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, **(env or {})),
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return r, data, lines


def native(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def test_thread_churn_loses_no_call(tmp_path, churn):
    """400 threads, 8 at a time, 50 getppid each: 20,000 calls, each heard once."""
    r, data, _ = under_pysud(tmp_path, [churn, "threads", "400"])
    assert r.stdout == native([churn, "threads", "400"]) == "threads 400 calls 20000\n", r.stderr
    assert data["status"] == 0 and data["getppid"] == 20000


def test_fork_storm_every_child_status_and_call(tmp_path, churn):
    """300 children, 8 at a time: statuses as natively; each child's 10 calls heard in that child."""
    r, data, lines = under_pysud(tmp_path, [churn, "forks", "300"])
    assert r.stdout == native([churn, "forks", "300"]), r.stderr
    assert data["status"] == 0
    children = {pid: n for pid, what, n in lines if what == "exit" and pid != data["host"]}
    assert len(children) == 300
    assert set(children.values()) == {10}  # each child heard its own 10, none of the parent's


def test_exec_storm_every_child_execs_in_process(tmp_path, churn):
    r, data, lines = under_pysud(tmp_path, [churn, "execs", "80"])
    assert r.stdout == native([churn, "execs", "80"]) == "execs 80 true 40 false 40\n", r.stderr
    execs = Counter(path for pid, what, path in lines if what == "execve")
    assert execs == {"/bin/true": 40, "/bin/false": 40}
    pids = [pid for pid, what, _ in lines if what == "execve"]
    assert len(set(pids)) == 80 and data["host"] not in pids


def test_fork_and_exec_from_later_threads(tmp_path, churn):
    """40 rounds of a new thread that forks a child that execs: each exec is heard in the child."""
    r, data, lines = under_pysud(tmp_path, [churn, "mixed", "40"])
    assert r.stdout == "mixed 40 ok 40\n", r.stderr
    assert data["status"] == 0
    assert [path for _, what, path in lines if what == "execve"] == ["/bin/true"] * 40


def test_handler_faults_on_many_threads_all_reach_the_caller(tmp_path, churn):
    """Every 7th getppid handler raises: the program sees ENOSYS for exactly those, run() raises with all."""
    r, data, _ = under_pysud(tmp_path, [churn, "threads", "200"], env={"FAIL_EVERY": "7"})
    assert r.returncode == 0, r.stderr
    failed = 10000 // 7
    assert data["getppid"] == 10000
    assert data["errors"] == failed
    assert r.stdout == f"threads 200 calls {10000 - failed}\n"
