"""The NT personality's trace keeps `pysud trace`'s conventions: strace's line layout, time
stamps, durations, a file of its own, and the timeline, read back against the text lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import requires_sud
from test_nt import CC, build, requires_cc  # noqa: F401  (CC: the condition of requires_cc)

pytestmark = [requires_sud, requires_cc]


def test_nt_trace_options_and_timeline(tmp_path):
    exe = build(str(tmp_path), "threads")
    out, tl = tmp_path / "nt.txt", tmp_path / "nt.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pysud",
            "run",
            "--trace",
            "--trace-output",
            str(out),
            "--trace-timestamps",
            "2",
            "--trace-durations",
            "--timeline",
            str(tl),
            exe,
        ],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 10, r.stderr.decode()[-2000:]  # threads.c: sum / 100
    assert b"[nt]" not in r.stderr  # the lines went to the file
    lines = out.read_text().splitlines()
    assert lines
    pat = re.compile(
        r"^\d\d:\d\d:\d\d\.\d{6} \[nt\] (Nt\w+)\((.*)\) += (STATUS_\w+|0x[0-9a-f]+|\?)( <\d+\.\d{6}>)?$"
    )
    parsed = [pat.match(x) for x in lines]
    assert all(parsed), [x for x, m in zip(lines, parsed, strict=True) if not m][:3]
    for x in lines:  # strace's column: ` = ` no earlier than column 40
        assert x.index(" = ") >= 39 - len(x.split("[nt]")[0]) or len(x.split(" = ")[0]) >= 39
    events = json.loads(tl.read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert [e["name"] for e in slices] == [m.group(1) for m in parsed if m]
    assert [e["args"]["result"] for e in slices] == [m.group(3) for m in parsed if m]
    assert all(e["dur"] >= 0 for e in slices)
    assert len({e["tid"] for e in slices}) >= 2  # the program's threads, a track each
    assert sum(e["args"]["calls"] for e in events if e["ph"] == "C") == len(slices)
