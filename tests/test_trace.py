"""`pysud trace` against strace as the oracle: same calls, same results, same injected behaviour.

Normalisation (documented in docs/trace.md): addresses (0x...), pids and times are replaced by
placeholders; `--- SIG...` lines and rt_sigreturn are compared by their own tests; strace's
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
from strace_oracle import STRACE, calls, strace_works, trace_both

pytestmark = requires_sud

BUSYBOX = shutil.which("busybox")
needs_strace = pytest.mark.skipif(
    STRACE is None and not os.environ.get("CI"),
    reason="strace not installed (tools/run_tests.sh installs it)",
)
ENV = dict(os.environ, LC_ALL="C", GLIBC_TUNABLES="glibc.pthread.rseq=0")


def _strace_can_trace() -> bool:
    return strace_works()


def normalise(text: str, pids: set[int]) -> dict[int, list[str]]:
    """Per-process lists of normalised lines from `-f -o` output (PID prefix on every line)."""
    per: dict[int, list[str]] = {}
    for pid, line in calls(text):
        if line.startswith(("---", "+++ killed", "rt_sigreturn(")):  # when a signal comes varies
            continue
        per.setdefault(pid, []).append(_scrub(line, pids))
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
    (native, s_text), (ours, p_text) = trace_both(
        argv, extra or [], lambda: _fresh(tree), tree + "-trace.out", ENV
    )
    return native, ours, s_text, p_text


def compare(s_text: str, p_text: str) -> None:
    s = normalise(s_text, _pids(s_text))
    p = normalise(p_text, _pids(p_text))
    s_lists = list(s.values())
    p_lists = list(p.values())
    # both start with the program's execve (pysud's loader did the kernel's part)
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
        (["-e", "bogus=1"], "only trace=, status=, signal= and inject="),
        (["-e", "status=maybe"], "invalid status"),
        (["-e", "signal=SIGNOPE"], "invalid signal"),
        (["-S", "size"], "-S size"),
        (["-p", "1"], "-p (attach to a running process) cannot apply"),
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


# ---- events strace prints besides calls: signals, deaths, calls interrupted by other threads


@pytest.fixture(scope="module")
def events_prog(tmp_path_factory) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed (tools/run_tests.sh installs it)")
    out = str(tmp_path_factory.mktemp("events") / "trace_events")
    src = str(Path(__file__).parent / "programs" / "trace_events.c")
    subprocess.run([gcc, "-O1", "-pthread", "-o", out, src], check=True)
    return out


def _event_lines(text: str) -> list[str]:
    pids = _pids(text)
    out = []
    for raw in text.splitlines():
        line = re.sub(r"^\d+\s+", "", raw)
        if line.startswith(("---", "+++", "rt_sigreturn(")):
            out.append(re.sub(r"si_uid=\d+", "si_uid=UID", _scrub(line, pids)))
    return out


@needs_strace
def test_signal_lines_match_strace(events_prog, tree):
    """`--- SIG... {siginfo} ---` for a signal the program handles and one it dies of, `+++ killed by`."""
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    native, ours, s_text, p_text = run_both([events_prog, "signals"], tree)
    assert native.returncode == -15
    assert ours.returncode in (-15, 128 + 15), ours.stderr
    assert ours.stdout == native.stdout == b"after\n"
    want = _event_lines(s_text)
    assert want == [
        "--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_TKILL, si_pid=PID, si_uid=UID} ---",
        "rt_sigreturn({mask=[]}) = 0",
        "--- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=PID, si_uid=UID} ---",
        "+++ killed by SIGTERM +++",
    ], want
    assert _event_lines(p_text) == want


@needs_strace
def test_unfinished_and_resumed_lines(events_prog, tree):
    """A call blocked in one thread while another thread's calls print: strace's <unfinished ...>."""
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    spec = ["-e", "trace=read,write,nanosleep,clock_nanosleep"]
    native, ours, s_text, p_text = run_both([events_prog, "threads"], tree, spec)
    assert native.returncode == ours.returncode == 0, ours.stderr
    lines = [re.sub(r"^\d+\s+", "", x) for x in p_text.splitlines()]
    assert "read(3,  <unfinished ...>" in lines, p_text  # two spaces, as strace prints it
    assert '<... read resumed>"x", 1) = 1' in [re.sub(r"\s+= ", " = ", x) for x in lines], p_text
    assert not any(x.startswith(("mmap", "openat")) for x in lines), "-e trace= shows only those calls"
    # joined, each thread's calls are strace's
    s = normalise(s_text, _pids(s_text))
    p = normalise(p_text, _pids(p_text))
    assert sorted(s.values()) == sorted(p.values())


def test_compiled_formatters_equal_reference_decoders():
    """The hot path's compiled line formatters, and the core's templates (format_records), print
    what the reference decoders print, for random registers, results and captured bytes (as the
    core records them: the templates run over the record's bytes)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pysud import _core
    from pysud._abi import X86_64
    from pysud.trace import _fast as F
    from pysud.trace import decoders as D
    from pysud.trace import records as R
    from pysud.trace._tracer import TraceOptions, Tracer
    from pysud.trace.decoders import _base as B

    strsize = 32
    cases = []
    for nr in sorted(X86_64.table):
        dec = D.CallDecoder(nr)
        ops = dec.captures(strsize)
        if ops is None:
            continue
        fmt = F.formatter(dec, ops, strsize, False)
        if fmt is not None:
            cases.append((dec, ops, fmt))
    names = {c[0].name for c in cases}
    assert {"read", "write", "close", "fstat", "newfstatat", "lseek", "mmap", "access"} <= names
    programs: list = [None] * 512
    for dec, ops, _fmt in cases:
        programs[X86_64.numbers[dec.name]] = F.program(dec, ops, strsize)
    templated = {D.CallDecoder(nr).name for nr, p in enumerate(programs) if p is not None}
    assert {"read", "write", "close", "lseek", "mmap", "access", "getrandom", "pread64"} <= templated
    errors: dict[int, bytes] = {}

    tracer = Tracer(TraceOptions(output=os.devnull))
    tracer.out = None
    tracer.records = []
    small = st.integers(0, 70) | st.integers(0, 2**64 - 1) | st.sampled_from([0xFFFFFF9C, 2**64 - 1])
    rets = st.integers(-4095, -1) | st.integers(0, 100) | st.integers(0, 2**63 - 1)

    # half of the examples go to calls with captured bytes (quoting is where lines differ most)
    some_case = st.sampled_from(cases) | st.sampled_from([c for c in cases if c[1]])

    @settings(max_examples=300, deadline=None)
    @given(some_case, st.lists(small, min_size=6, max_size=6), rets, st.data())
    def check(case, args, ret, data):
        dec, ops, fmt = case
        args = list(args)
        # distinct addresses for arguments that are captured
        for j, op in enumerate(ops):
            args[op[2]] = data.draw(st.sampled_from([0, 0x1000 * (j + 1) + 8]))
        failed = -4096 < ret < 0
        order = [op for op in ops if op[0] == B.CAP_ENTRY] + [op for op in ops if op[0] == B.CAP_EXIT]
        caps: list = []
        snaps: dict[int, dict] = {B.CAP_ENTRY: {}, B.CAP_EXIT: {}}
        raw = b""  # the captures as the core records them
        for phase, how, i, lenarg, scale, plus, mx in order:
            if phase == B.CAP_EXIT and failed:
                continue
            addr = args[i]
            if not addr:
                caps.append(None)
                raw += R.CAP.pack(i, phase, R.CAP_NULL, 0, 0)
                continue
            if data.draw(st.integers(0, 9), label="fault") == 0:
                caps.append(False)
                snaps[phase][addr] = False
                raw += R.CAP.pack(i, phase, R.CAP_FAULT, 0, addr)
                continue
            if how == B.CSTR:
                body = data.draw(st.binary(max_size=min(mx, 80)).map(lambda b: b.replace(b"\0", b"a")))
                v = body[: mx - 1] + b"\0" if data.draw(st.booleans()) else body[:mx]
            else:
                want = {B.ARGLEN: args[lenarg] * scale + plus, B.RETLEN: max(ret, 0), B.FIXED: plus}[how]
                v = data.draw(st.binary(min_size=min(want, mx), max_size=min(want, mx)))
            caps.append(v)
            snaps[phase][addr] = v
            status = R.CAP_OK if how != B.CSTR or v.endswith(b"\0") else R.CAP_TRUNC
            raw += R.CAP.pack(i, phase, status, len(v), addr) + v + b"\0" * (-len(v) % 8)
        a = tuple(args)
        tracer.ctx.snapshot = snaps[B.CAP_ENTRY]
        try:
            pre = dec.decode_entry(tracer.ctx, None, a)
            tracer.ctx.snapshot = snaps[B.CAP_EXIT]
            tracer._emit(dec, 1, a, pre, ret, 0, False, None, 1)
        finally:
            tracer.ctx.snapshot = None
        want_line = tracer.records[-1]["line"]
        assert fmt("", *a, ret, caps, 0) == want_line + "\n"
        nr = X86_64.numbers[dec.name]
        if programs[nr] is not None:
            size = R.REC.size + len(raw)
            rec = R.REC.pack(size, R.REC_FULL, nr, 7, len(caps), 0, 0, *a, ret) + raw
            text, off, n, stop = _core.format_records(
                rec * 2, 0, programs, {7: b""}, errors, F.error_text, strsize, False
            )
            assert (off, n, stop) == (2 * size, 2, 0)
            assert text.decode() == 2 * (want_line + "\n")

    check()
    # every byte value, each before a digit and before a letter (strace's three-digit octal rule)
    every = b"".join(bytes([c, 0x31, c, 0x61]) for c in range(256))
    write = D.CallDecoder(X86_64.numbers["write"])
    for size in (4, 31, 32, 33, 1024):
        v = every[: min(size, strsize)]
        raw = R.CAP.pack(1, B.CAP_ENTRY, R.CAP_OK, len(v), 0x1000) + v + b"\0" * (-len(v) % 8)
        args = (1, 0x1000, size, 0, 0, 0)
        rec = R.REC.pack(R.REC.size + len(raw), R.REC_FULL, 1, 7, 1, 0, 0, *args, size) + raw
        text = _core.format_records(rec, 0, programs, {7: b""}, errors, F.error_text, strsize, False)[0]
        tracer.ctx.snapshot = {0x1000: v}
        tracer._emit(write, 1, args, write.decode_entry(tracer.ctx, None, args), size, 0, False, None, 1)
        tracer.ctx.snapshot = None
        assert text.decode() == tracer.records[-1]["line"] + "\n"
    for start in range(0, 1024, 32):
        v = every[start : start + 32]
        raw = R.CAP.pack(1, B.CAP_ENTRY, R.CAP_OK, 32, 0x1000) + v
        args = (1, 0x1000, 32, 0, 0, 0)
        rec = R.REC.pack(R.REC.size + len(raw), R.REC_FULL, 1, 7, 1, 0, 0, *args, 32) + raw
        text = _core.format_records(rec, 0, programs, {7: b""}, errors, F.error_text, strsize, False)[0]
        assert text.decode() == "write(1, " + D.quote(v) + ", 32) = 32\n"
    # -T (the record's times), a prefix (-f), an error result, and a stop at a thread with no prefix
    fmt_t = F.formatter(write, write.captures(strsize), strsize, True)
    assert fmt_t is not None
    v = b"ab\n"
    raw = R.CAP.pack(1, B.CAP_ENTRY, R.CAP_OK, 3, 0x1000) + v + b"\0" * 5
    for ret, (t0, t1) in [(3, (10**18, 10**18 + 123456)), (-9, (5, 5 + 2_500_000_001)), (-512, (0, 999))]:
        args = (1, 0x1000, 3, 0, 0, 0)
        rec = R.REC.pack(R.REC.size + len(raw), R.REC_FULL, 1, 42, 1, t0, t1, *args, ret) + raw
        other = R.REC.pack(R.REC.size + len(raw), R.REC_FULL, 1, 43, 1, t0, t1, *args, ret) + raw
        text, off, n, stop = _core.format_records(
            rec + other, 0, programs, {42: b"[pid    42] "}, errors, F.error_text, strsize, True
        )
        assert (off, n, stop) == (len(rec), 1, 2)
        assert text.decode() == fmt_t("[pid    42] ", *args, ret, (v,), t1 - t0)


def test_bench_trace_rows():
    """`pysud bench` rows: pysud trace and strace -o, default and pinned, with ratios and a breakdown."""
    if shutil.which("strace") is None or shutil.which("dd") is None:
        pytest.skip("strace or dd missing")
    bench = [sys.executable, "-m", "pysud", "bench", "--iterations", "300", "--rounds", "1"]
    args = ["--program-runs", "0", "--trace-runs", "1", "--trace-count", "500", "--exe-runs", "0"]
    r = subprocess.run([*bench, "--json", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import json

    trace = json.loads(r.stdout)["trace"]
    per = trace["us_per_call"]
    assert {"native", "pysud", "strace"} <= set(per)
    if shutil.which("taskset"):
        assert {"pysud_pinned", "strace_pinned"} <= set(per)
    bd = trace["breakdown"]
    assert set(bd) == {"total", "sigsys_floor", "run_untraced", "record", "decode", "output"}
    # measured directly (not a difference of two noisy runs), so positive whatever the load
    assert bd["sigsys_floor"] > 0 and bd["decode"] > 0
    table = subprocess.run([*bench, *args], capture_output=True, text=True, timeout=600)
    assert "pinned to one CPU" in table.stdout and "where pysud trace's time per call goes" in table.stdout


@needs_strace
def test_bad_pointers_trace_like_strace(tmp_path, tree):
    """Arguments that point nowhere print as addresses; the program sees EFAULT; the host lives."""
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed (tools/run_tests.sh installs it)")
    prog = str(tmp_path / "bad_pointers")
    subprocess.run(
        [gcc, "-O1", "-o", prog, str(Path(__file__).parent / "programs" / "bad_pointers.c")], check=True
    )
    native, ours, s_text, p_text = run_both([prog], tree)
    assert native.returncode == ours.returncode == 0, ours.stderr
    assert ours.stdout == native.stdout == b"ok\n"
    assert "write(1, 0x10, 5)" in p_text
    compare(s_text, p_text)


def test_record_layout_is_the_cores():
    """pysud.trace.records reads the ring with the sizes and kinds the core was built with."""
    from pysud import _core
    from pysud.trace import records

    for name in ("TRACE_REC_SIZE", "TRACE_CAP_SIZE", "TRACE_CAP_OPS", "TRACE_REC_FULL", "TRACE_REC_SIGNAL"):
        assert hasattr(_core, name), name
    assert records.check_layout() == []
    assert records.REC.size == _core.TRACE_REC_SIZE and records.CAP.size == _core.TRACE_CAP_SIZE


def test_a_decoder_bug_never_changes_the_call():
    """A decoder that raises prints the raw value; the call and its line go on."""
    from pysud._abi import X86_64
    from pysud.trace import decoders as D

    dec = D.CallDecoder(X86_64.number_of("close"))
    ctx = D.Ctx()

    def boom(*_a):
        raise RuntimeError("decoder bug")

    dec.entry = ((0, boom),)
    assert dec.decode_entry(ctx, None, (0x10, 0, 0, 0, 0, 0)) == ["0x10"]


def test_json_arguments_are_signed_where_the_kind_is(tmp_path):
    """--json: fd -1 and AT_FDCWD as -1 and -100 (the kernel's int), not 4294967295."""
    import json

    out = tmp_path / "t.json"
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "trace", "--json", "-o", str(out), "/bin/cat", "/dev/null"],
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    anon = [x for x in recs if x["syscall"] == "mmap" and "MAP_ANONYMOUS" in x["text"]]
    assert anon and all(x["args"][4] == -1 for x in anon)
    opened = [x for x in recs if x["syscall"] == "openat"]
    assert opened and all(x["args"][0] == -100 for x in opened)
    assert recs[0]["syscall"] == "execve" and recs[0]["text"].startswith('execve("/bin/cat", ["/bin/cat"')


BG_RUN = """
import sys
from pysud.trace import TraceOptions, trace_program
opts = TraceOptions(output=sys.argv[1], follow=True, background=sys.argv[2] == "1")
sys.exit(trace_program("busybox", ["sh", "-c", sys.argv[3]], opts))
"""


@pytest.mark.skipif(BUSYBOX is None and not os.environ.get("CI"), reason="busybox-static not installed")
def test_decoder_thread_prints_what_inline_decoding_prints(tmp_path):
    """Decoding on a thread of its own (the default where there is a second CPU) and in line give
    the same lines, forks included (the tracer's lock is held across a fork)."""
    script = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo $i > /dev/null; done; (echo a); echo b | cat"
    texts = []
    for bg in ("1", "0"):
        out = tmp_path / f"bg{bg}.out"
        r = subprocess.run(
            [sys.executable, "-c", BG_RUN, str(out), bg, script], capture_output=True, env=ENV, timeout=120
        )
        assert r.returncode == 0 and r.stdout == b"a\nb\n", r
        texts.append(out.read_text())
    with_thread, inline = (normalise(t, _pids(t)) for t in texts)

    def calls(per: dict[int, list[str]]) -> list[list[str]]:
        # the pipe's two children run at once (which prints first varies); how many wait4 calls
        # the shell makes, and whether a SIGCHLD interrupts a call (EINTR: seen once on close(4),
        # a core matter), depend on when each SIGCHLD comes: the program's run, not the tracer
        return sorted(
            [x for x in lines if not x.startswith("wait4(") and "= -1 EINTR" not in x]
            for lines in per.values()
        )

    got, want = calls(with_thread), calls(inline)
    if got != want:
        import difflib

        shown = [
            "\n".join(difflib.unified_diff(w, g, "in line", "decoder thread", lineterm="", n=1))
            for w, g in zip(want, got, strict=False)
            if w != g
        ]
        raise AssertionError(f"{len(want)} vs {len(got)} processes\n" + "\n".join(shown)[:4000])
    assert len(with_thread) == 4  # the shell, the subshell, the pipe's echo and cat


@needs_strace
def test_exit_group_ends_the_other_threads_like_strace(events_prog, tree):
    """exit_group while another thread blocks in read: strace's `<... read resumed> <unfinished
    ...>) = ?` and a `+++ exited` line for each thread, in strace's order."""
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    spec = ["-e", "trace=read,exit_group"]
    native, ours, s_text, p_text = run_both([events_prog, "exit"], tree, spec)
    assert native.returncode == ours.returncode == 3, ours.stderr

    def lines(text: str) -> list[str]:
        pids = _pids(text)
        return [_scrub(re.sub(r"^\d+\s+", "", x), pids) for x in text.splitlines() if "ELF" not in x]

    assert (
        lines(p_text)
        == lines(s_text)
        == [
            "read(3,  <unfinished ...>",
            "exit_group(3) = ?",
            "<... read resumed> <unfinished ...>) = ?",
            "+++ exited with 3 +++",
            "+++ exited with 3 +++",
        ]
    )
