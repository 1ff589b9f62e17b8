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
from pathlib import Path

import pytest

from conftest import requires_sud

pytestmark = requires_sud

STRACE = shutil.which("strace")
BUSYBOX = shutil.which("busybox")
needs_strace = pytest.mark.skipif(
    STRACE is None and not os.environ.get("CI"),
    reason="strace not installed (tools/run_tests.sh installs it)",
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


INJECTS = [
    (["/bin/cat", "a.txt"], "openat:error=EACCES:when=3"),
    (["/bin/cat", "a.txt"], "read:error=EIO"),
    (["busybox", "cat", "a.txt", "b.txt"], "openat:error=ENOENT:when=2"),
    (["busybox", "wc", "a.txt", "b.txt"], "read:retval=0:when=2+2"),
    (["busybox", "ls", "-1"], "getdents64:error=EPERM:when=1..2"),
]


@needs_strace
@pytest.mark.parametrize(("argv", "spec"), INJECTS, ids=[f"{a[-2]} {s}" for a, s in INJECTS])
def test_inject_matches_strace(argv, spec, tree):
    """Same program output, errors and exit status as `strace -e inject=` with the same spec."""
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    native, ours, s_text, p_text = run_both(argv, tree, ["-e", f"inject={spec}"])
    assert ours.stdout == native.stdout
    assert ours.stderr == native.stderr
    assert ours.returncode == native.returncode
    assert "(INJECTED)" in p_text
    compare(s_text, p_text)


def test_bad_options_are_clear_errors(tree):
    for args, msg in [
        (["-e", "inject=openat:error=NOPE"], "unknown error"),
        (["-e", "inject=openat:when=0:error=EIO"], "when="),
        (["-e", "trace=nosuchcall"], "invalid system call"),
        (["-e", "bogus=1"], "only trace= and inject="),
    ]:
        r = subprocess.run(
            [sys.executable, "-m", "pysud", "trace", *args, "/bin/true"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2, r
        assert msg in r.stderr and "Traceback" not in r.stderr


def test_help_says_why_there_is_no_p():
    r = subprocess.run([sys.executable, "-m", "pysud", "trace", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "There is no -p PID" in r.stdout


def test_json_summary_and_class_filter(tree):
    import json

    out = tree + "-json.out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pysud",
            "trace",
            "--json",
            "-e",
            "trace=%file",
            "-o",
            out,
            "/bin/cat",
            "a.txt",
        ],
        cwd=tree,
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout == b"banana\napple\ncherry\napple\n"
    recs = [json.loads(line) for line in Path(out).read_text().splitlines()]
    names = {rec["syscall"] for rec in recs}
    assert "openat" in names and "read" not in names and "mmap" not in names
    opened = [
        rec for rec in recs if rec["syscall"] == "openat" and rec["text"].endswith('"a.txt", O_RDONLY)')
    ]
    assert len(opened) == 1 and opened[0]["result"] >= 3 and opened[0]["error"] is None
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "trace", "-c", "-o", out, "busybox", "sh", "-c", "(echo x); echo y"],
        cwd=tree,
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    text = Path(out).read_text()
    assert r.stdout == b"x\ny\n"
    total = [line for line in text.splitlines() if line.endswith(" total")]
    assert len(total) == 1
    # the child's write is counted with the parent's: two writes in all
    write = [line.split() for line in text.splitlines() if line.endswith(" write")]
    assert write and int(write[0][3]) == 2


def test_python_api_names_the_calling_frame():
    import ctypes

    from pysud.trace import tracer_for

    libc = ctypes.CDLL(None, use_errno=True)
    d, tracer = tracer_for(frames=True)
    getppid = d.wrap(libc.getppid)

    def caller():
        return getppid()

    assert caller() == os.getppid()
    assert tracer.records is not None
    rec = [r for r in tracer.records if r["syscall"] == "getppid"]
    assert rec and re.match(rf"getppid\(\) +  = {os.getppid()}  # ", rec[0]["line"]), rec
    assert rec[0]["frame"].startswith("test_trace.py:") and rec[0]["frame"].endswith(" in caller")
    d.close()


THREADS = "import threading, os\ndef f(): os.getppid()\nt = threading.Thread(target=f); t.start(); t.join()\n"


@needs_strace
def test_follow_threads_like_strace(tree):
    """strace -f shows the calls of threads the program starts (clone(CLONE_THREAD) children)."""
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    native, ours, s_text, p_text = run_both([sys.executable, "-c", THREADS], tree, ["-e", "trace=getppid"])
    assert ours.returncode == native.returncode == 0
    assert s_text.count("getppid()") == 1
    assert p_text.count("getppid()") == 1
