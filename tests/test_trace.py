"""`pysud trace` against strace as the oracle: same calls, same results, same injected behaviour.

Normalisation (documented in docs/trace.md): strace's first line is the kernel's execve, which
pysud's loader replaces, so both traces start at the program's first syscall after it;
addresses (0x...), pids and times are replaced by placeholders; `--- SIG...` lines and
rt_sigreturn are dropped (pysud run does not deliver signals to programs yet); strace's
unfinished/resumed pairs are joined; lines are grouped per process, in order.
The environment turns glibc's rseq registration off (GLIBC_TUNABLES) because the Linux
personality refuses rseq (the host thread owns it), and prctl(PR_GET_NAME) shows the process
name (the host's for pysud).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import requires_sud

pytestmark = requires_sud

STRACE = shutil.which("strace")
BUSYBOX = shutil.which("busybox")
needs_strace = pytest.mark.skipif(
    STRACE is None and not os.environ.get("CI"), reason="strace not installed (tools/run_tests.sh installs it)"
)
ENV = dict(os.environ, LC_ALL="C", GLIBC_TUNABLES="glibc.pthread.rseq=0")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")


def _strace_can_trace() -> bool:
    if STRACE is None:
        return False
    r = subprocess.run([STRACE, "-o", "/dev/null", "true"], capture_output=True)
    return r.returncode == 0


def normalise(text: str, pids: set[int]) -> dict[int, list[str]]:
    """Per-process lists of normalised lines from `-f -o` output (PID prefix on every line)."""
    per: dict[int, list[str]] = {}
    pending: dict[int, str] = {}
    for raw in text.splitlines():
        m = re.match(r"^(\d+)\s+(.*)$", raw)
        if not m:
            continue
        pid, line = int(m.group(1)), m.group(2)
        if line.endswith(" <unfinished ...>"):
            pending[pid] = line[: -len(" <unfinished ...>")]
            continue
        r = RESUMED.match(line)
        if r:
            line = pending.pop(pid, r.group(1) + "(") + r.group(2)
        if line.startswith(("---", "+++ killed")) or line.startswith("rt_sigreturn("):
            continue
        per.setdefault(pid, []).append(_scrub(line, pids))
    # the first process's list starts after the kernel's execve, as pysud's does
    return per


def _scrub(line: str, pids: set[int]) -> str:
    line = re.sub(r"\s+= ", " = ", line)
    line = re.sub(r"0x[0-9a-f]+", "ADDR", line)
    line = re.sub(r"^sysinfo\(\{uptime=.*\}\) = 0$", "sysinfo({LIVE}) = 0", line)  # machine state
    line = re.sub(r"^getppid\(\) = \d+$", "getppid() = PPID", line)
    line = re.sub(r'prctl\(PR_GET_NAME, "[^"]*"\)', 'prctl(PR_GET_NAME, "NAME")', line)
    line = re.sub(r'getrandom\("[^"]*"', 'getrandom("RANDOM"', line)
    line = re.sub(r"/\* \d+ vars \*/", "/* N vars */", line)
    for pid in pids:
        line = re.sub(rf"\b{pid}\b", "PID", line)
    return line


def _pids(text: str) -> set[int]:
    return {int(m) for m in re.findall(r"^(\d+)\s", text, re.M)}


def _fresh(tree: str) -> str:
    """The same directory, in its original state, for each of the two runs."""
    work = tree + "-work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(tree, work)
    return work


def run_both(argv: list[str], tree: str, extra: list[str] | None = None):
    extra = extra or []
    cwd = _fresh(tree)
    s_out = tree + "-strace.out"
    p_out = tree + "-pysud.out"
    native = subprocess.run(
        [STRACE, "-f", *extra, "-o", s_out, *argv], cwd=cwd, capture_output=True, env=ENV, timeout=60
    )
    cwd = _fresh(tree)
    ours = subprocess.run(
        [sys.executable, "-m", "pysud", "trace", "-f", *extra, "-o", p_out, *argv],
        cwd=cwd,
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    with open(s_out) as f:
        s_text = f.read()
    with open(p_out) as f:
        p_text = f.read()
    return native, ours, s_text, p_text


def compare(s_text: str, p_text: str) -> None:
    s = normalise(s_text, _pids(s_text))
    p = normalise(p_text, _pids(p_text))
    s_lists = list(s.values())
    p_lists = list(p.values())
    assert s_lists[0][0].startswith("execve("), s_lists[0][0]
    s_lists[0] = s_lists[0][1:]  # the kernel's execve: pysud's loader did that part
    # children in order of their first appearance
    assert len(p_lists) == len(s_lists), (len(p_lists), len(s_lists))
    for want, got in zip(s_lists, p_lists, strict=True):
        for i, (w, g) in enumerate(zip(want, got, strict=False)):
            assert g == w, f"line {i}:\nstrace: {w}\npysud:  {g}"
        assert len(got) == len(want), (want[len(got) :], got[len(want) :])


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("trace")
    (d / "a.txt").write_text("banana\napple\ncherry\napple\n")
    (d / "b.txt").write_text("one two three\nfour five\n")
    (d / "sub").mkdir()
    (d / "sub" / "c.txt").write_text("x" * 1000)
    return str(d)


BUSYBOX_APPLETS = [
    ["sort", "a.txt"],
    ["cat", "a.txt", "b.txt", "missing.txt"],
    ["wc", "a.txt", "b.txt"],
    ["head", "-n", "2", "a.txt"],
    ["grep", "-n", "apple", "a.txt"],
    ["md5sum", "a.txt"],
    ["ls", "-1", "sub"],
    ["stat", "-c", "%s %n", "a.txt"],
    ["mkdir", "-p", "new/dir"],
    ["sh", "-c", "echo a; (echo b > out.txt); read x < out.txt; echo $x $(echo c)"],
]
DYNAMIC = [
    ["/bin/cat", "a.txt"],
    ["/usr/bin/sort", "a.txt"],
    ["/usr/bin/wc", "-l", "a.txt"],
    ["/bin/ls", "-1", "sub"],
    ["/usr/bin/head", "-c", "5", "b.txt"],
]


@needs_strace
@pytest.mark.skipif(BUSYBOX is None and not os.environ.get("CI"), reason="busybox-static not installed")
@pytest.mark.parametrize("applet", BUSYBOX_APPLETS, ids=[" ".join(a) for a in BUSYBOX_APPLETS])
def test_busybox_trace_matches_strace(applet, tree):
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    native, ours, s_text, p_text = run_both(["busybox", *applet], tree)
    assert ours.stdout == native.stdout
    assert ours.returncode == native.returncode
    compare(s_text, p_text)


@needs_strace
@pytest.mark.parametrize("argv", DYNAMIC, ids=[" ".join(a) for a in DYNAMIC])
def test_dynamic_trace_matches_strace(argv, tree):
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    native, ours, s_text, p_text = run_both(argv, tree)
    assert ours.stdout == native.stdout
    assert ours.returncode == native.returncode
    compare(s_text, p_text)
