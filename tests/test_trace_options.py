"""`pysud trace` options against strace's own output for the same run: timestamps (-t, -tt,
-ttt, -r), filters (-e trace=!SET, -e status=, -z, -Z, -e signal=, -P), the -c table's layout
(-w, -S), and --timeline read back against the text trace of the same run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import requires_sud
from test_trace import (
    ENV,
    _event_lines,
    _strace_can_trace,
    compare,
    events_prog,  # noqa: F401  (fixture)
    needs_strace,
    run_both,
    tree,  # noqa: F401  (fixture)
)

pytestmark = [requires_sud, needs_strace]

STAMPS = {
    "-t": r"\d\d:\d\d:\d\d ",
    "-tt": r"\d\d:\d\d:\d\d\.\d{6} ",
    "-ttt": r"\d{10}\.\d{6} ",
    "-r": r" {0,5}\d+\.\d{6} ",
}


@pytest.fixture(autouse=True)
def _ptrace_works():
    if not _strace_can_trace():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")


def _strip(text: str, stamp: str) -> tuple[str, list[str]]:
    """The trace without its time stamps (after the pid column), and the stamps."""
    out, stamps = [], []
    for line in text.splitlines():
        m = re.match(rf"^(\d+\s+)({stamp})(.*)$", line)
        assert m, f"no {stamp!r} stamp: {line!r}"
        out.append(m.group(1) + m.group(3))
        stamps.append(m.group(2))
    return "\n".join(out) + "\n", stamps


@pytest.mark.parametrize("opt", list(STAMPS))
def test_timestamps_like_strace(opt, tree):  # noqa: F811
    """Every line carries strace's stamp for the option; without the stamps the traces are equal;
    the stamps are the run's own times."""
    t0 = time.time()
    native, ours, s_text, p_text = run_both(["/bin/cat", "a.txt"], tree, [opt])
    t1 = time.time()
    assert ours.returncode == native.returncode == 0 and ours.stdout == native.stdout
    s_plain, _ = _strip(s_text, STAMPS[opt])
    p_plain, stamps = _strip(p_text, STAMPS[opt])
    compare(s_plain, p_plain)
    if opt == "-ttt":
        values = [float(s) for s in stamps]
        assert t0 - 1 <= values[0] <= values[-1] <= t1 + 1 and values == sorted(values)
    if opt == "-r":
        deltas = [float(s) for s in stamps]
        assert deltas[0] == 0.0 and all(d >= 0 for d in deltas) and sum(deltas) <= t1 - t0
    if opt == "-tt":
        now = time.localtime(t1)
        assert stamps[-1][:5] in (time.strftime("%H:%M", now), time.strftime("%H:%M", time.localtime(t0)))


FILTERS = [
    ["-e", "trace=!read,write,mmap,close"],
    ["-e", "status=failed"],
    ["-Z"],
    ["-z"],
    ["-e", "trace=openat", "-e", "status=!failed"],
    ["-e", "trace=/^open,%%stat,?nosuchcall"],
    ["-e", "trace=%creds,%clock,%pure,%fstat"],
]


@pytest.mark.parametrize("opts", FILTERS, ids=[" ".join(f) for f in FILTERS])
def test_filters_like_strace(opts, tree):  # noqa: F811
    native, ours, s_text, p_text = run_both(["/bin/cat", "a.txt", "missing.txt"], tree, opts)
    assert ours.returncode == native.returncode == 1
    assert ours.stdout == native.stdout
    compare(s_text, p_text)
    if "-Z" in opts or "status=failed" in opts[-1]:
        calls = [x for x in p_text.splitlines() if not re.match(r"^\d+\s+\+\+\+", x)]
        assert calls and all(" = -1 E" in x for x in calls), p_text
        assert "execve(" not in p_text


def test_path_filter_like_strace(tree):  # noqa: F811
    """-P: the calls whose path or descriptor is the file (an absolute path, as strace matches)."""
    work = tree + "-work"
    target = f"{work}/a.txt"
    native, ours, s_text, p_text = run_both(["/bin/cat", target], tree, ["-P", target])
    assert ours.returncode == native.returncode == 0
    assert 'openat(AT_FDCWD, "' + target in p_text and "close(3)" in p_text
    assert "mmap(" not in p_text
    compare(s_text, p_text)


@pytest.mark.parametrize("spec", ["signal=none", "signal=SIGTERM", "signal=!USR1", "signal=all"])
def test_signal_filter_like_strace(spec, events_prog, tree):  # noqa: F811
    native, _ours, s_text, p_text = run_both([events_prog, "signals"], tree, ["-e", spec])
    assert native.returncode == -15
    assert _event_lines(p_text) == _event_lines(s_text)
    assert ("--- SIGTERM" in p_text) == (spec != "signal=none")


def _table(text: str) -> list[tuple[str, str, str]]:
    """(syscall, calls, errors) per row of a -c table, in its order."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\s*\d+\.\d\d\s+\d+\.\d{6}\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$", line)
        if m and m.group(3) != "total":
            rows.append((m.group(3), m.group(1), m.group(2)))
    return rows


@pytest.mark.parametrize("sort", ["calls", "name", "errors"])
def test_summary_table_like_strace(sort, tree):  # noqa: F811
    """-c -w -S: the same rows in the same order with the same counts; the layout is strace's."""
    native, ours, s_text, p_text = run_both(
        ["/bin/cat", "a.txt", "missing.txt"], tree, ["-c", "-w", "-S", sort]
    )
    assert ours.returncode == native.returncode == 1
    s_lines, p_lines = s_text.splitlines(), p_text.splitlines()
    assert p_lines[:2] == s_lines[:2]  # header and rule
    assert p_lines[-2] == s_lines[-2] and p_lines[-1].endswith(" total")
    assert _table(p_text) == _table(s_text), (p_text, s_text)


def test_timeline_matches_the_text_trace(tmp_path, events_prog):  # noqa: F811
    """--timeline: a slice per printed call (name, arguments, result) on its thread's track, the
    exit as an instant, a calls/s counter that adds up; the JSON loads as the trace-event format."""
    out, tl = tmp_path / "trace.txt", tmp_path / "timeline.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pysud",
            "trace",
            "-f",
            "-o",
            str(out),
            "--timeline",
            str(tl),
            events_prog,
            "threads",
        ],
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(tl.read_text())
    events = doc["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    lines = [re.sub(r"^\d+\s+", "", x) for x in out.read_text().splitlines()]
    calls = []
    pending: dict[str, str] = {}
    for x in lines:
        if x.startswith(("+++", "---")):
            continue
        if x.endswith(" <unfinished ...>"):
            pending[x.split("(")[0]] = x[: -len(" <unfinished ...>")]
            continue
        m = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", x)
        if m:
            x = pending.pop(m.group(1)) + m.group(2)
        calls.append(x)
    assert len(slices) == len(calls)
    texts = sorted(
        re.sub(r"\s+= ", " = ", f"{e['name']}({e['args']['args']}) = {e['args']['result']}") for e in slices
    )
    assert texts == sorted(re.sub(r"\s+= ", " = ", c) for c in calls)
    assert all(e["dur"] >= 0 and e["ts"] > 1e15 for e in slices)  # microseconds since the epoch
    tids = {e["tid"] for e in slices}
    assert len(tids) == 2, tids  # the main thread and the reader thread: one track each
    names = {(e["tid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {t for t, _ in names} == tids
    procs = [e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert procs == [Path(events_prog).name]
    reader = [e for e in slices if e["name"] == "read" and e["args"]["result"] == "1"]
    assert reader and reader[0]["dur"] > 100_000  # blocked ~0.3 s until the main thread wrote
    exits = [e for e in events if e["ph"] == "i" and e["name"].startswith("exited with")]
    assert exits
    counters = [e for e in events if e["ph"] == "C"]
    assert sum(e["args"]["calls"] for e in counters) == len(slices)


def test_timeline_of_signals(tmp_path, events_prog):  # noqa: F811
    tl = tmp_path / "timeline.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pysud",
            "trace",
            "-o",
            "/dev/null",
            "--timeline",
            str(tl),
            events_prog,
            "signals",
        ],
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    assert r.returncode in (-15, 128 + 15)
    events = json.loads(Path(tl).read_text())["traceEvents"]
    instants = [e["name"] for e in events if e["ph"] == "i"]
    assert instants == ["SIGUSR1", "SIGTERM", "killed by SIGTERM"], instants


@pytest.mark.skipif(shutil.which("script") is None, reason="script (util-linux) not installed")
def test_terminal_ioctls_like_strace(tree):  # noqa: F811
    """On a terminal (a pty from `script`): TCGETS's termios and TIOCGWINSZ's winsize as strace
    prints them, and the whole trace equal."""
    work = tree  # the fixture's directory, listed (not changed) by both runs
    outs = []
    for tracer in (["strace", "-f"], [sys.executable, "-m", "pysud", "trace", "-f"]):
        out = f"{tree}-tty-{len(outs)}.out"
        cmd = " ".join([*tracer, "-o", out, "ls", "--color=never", "-C", work])
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=ENV, timeout=60)
        assert r.returncode == 0, r
        outs.append(Path(out).read_text())
    # each run has a terminal of its own: /dev/pts/N differs
    s_text, p_text = (re.sub(r"makedev\([^)]*\)", "makedev(PTY)", t) for t in outs)
    assert "ioctl(1, TCGETS, {c_iflag=" in p_text and "ioctl(1, TIOCGWINSZ, {ws_row=" in p_text, p_text
    compare(s_text, p_text)
