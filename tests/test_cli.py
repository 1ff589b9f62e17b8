"""The `pysud` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SUPPORT, requires_sud


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pysud", *args], capture_output=True, text=True, timeout=300)


def test_check_reports_features_and_exit_status():
    r = run("check")
    assert r.returncode == (0 if SUPPORT.usable else 1)
    for name in ("exclusive", "inclusive", "ptrace_config", "fsgsbase", "sysctl"):
        assert name in r.stdout
    j = json.loads(run("check", "--json").stdout)
    assert j["usable"] == SUPPORT.usable
    assert j["exclusive"]["supported"] == SUPPORT.exclusive.supported
    assert j["inclusive"]["supported"] == SUPPORT.inclusive.supported


@requires_sud
def test_bench_json_has_every_row():
    r = run("bench", "--json", "--iterations", "300", "--rounds", "1", "--trace-runs", "0", "--exe-runs", "0")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    rows = j["ns_per_call"]
    assert set(rows) == {
        "native",
        "allow",
        "floor",
        "floor_native",
        "fast_native",
        "python_return",
        "python_native",
        "direct_fast",
        "direct_python",
        "rewrite_fast",
        "rewrite_python",
    }
    assert all(v > 0 for v in rows.values())  # (ratios are the benchmark's business, not a test's)


@requires_sud
def test_bench_table():
    r = run("bench", "--iterations", "300", "--rounds", "1", "--trace-runs", "0", "--exe-runs", "0")
    assert r.returncode == 0, r.stderr
    assert "floor: minimal C SIGSYS handler" in r.stdout
    assert "Python handler returns a value" in r.stdout


def test_usage_errors():
    r = run("frobnicate")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr
