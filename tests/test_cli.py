"""The `pysud` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import SUPPORT, requires_sud
from pysud import cli

#: the file pip installs as the `pysud` command
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pysud"
TRUE = shutil.which("true") or "/bin/true"


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


# ---- `pysud run`'s command line read without argparse (start-up): argparse's namespace exactly

#: words a `pysud run` command line is made of here: its options written every way, a few of
#: argparse's own (help, `--`, abbreviations, `=`), programs, arguments that look like options
_WORDS = [
    "run",
    "--no-vdso",
    "--no-rewrite",
    "--native-exec",
    "--hooks",
    "--hooks=h.py",
    "h.py",
    "--no-v",
    "--native",
    "--trace",
    "--drive",
    "C=/tmp",
    "--timeline",
    "-h",
    "--help",
    "--",
    "-",
    "-5",
    "",
    "prog",
    "/usr/bin/true",
    "-c",
    "a b",
    "-x y",
    "run",
    "trace",
]


def _argparse(words: list[str]) -> dict[str, object] | None:
    """What argparse makes of ``words`` (None: it exits with help or an error)."""
    try:
        return vars(cli._parse(list(words)))
    except SystemExit:
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=7))
@example(["run", "/usr/bin/true"])
@example(["run", "--no-vdso", "--no-rewrite", "--native-exec", "prog", "--no-vdso", "-h", "--"])
@example(["run", "--hooks", "h.py", "--hooks", "h.py", "prog", "--hooks", "h.py"])
@example(["run", "--hooks", "--no-vdso", "prog"])
@example(["run", "--no-v", "prog"])
def test_run_words_are_argparse_s_namespace(words: list[str]) -> None:
    """Where the hand reading answers, argparse gives the same namespace (every attribute, the
    handler too); where it does not, argparse alone parses (help, errors, the other options)."""
    quick = cli._run_words(["run", *words])
    if quick is not None:
        assert vars(quick) == _argparse(["run", *words])
    quick = cli._run_words(words)
    if quick is not None:
        assert vars(quick) == _argparse(words)


def test_run_words_take_the_plain_command_lines() -> None:
    """The command lines it exists for are read by hand (the test above would pass if none were)."""
    for words in (
        ["run", TRUE],
        ["run", "--no-rewrite", "--hooks", "h.py", TRUE, "-x", "--no-vdso"],
        ["run", "--native-exec", "--no-vdso", "sh", "-c", "exit 3"],
    ):
        assert cli._run_words(words) is not None, words
    for words in (["run"], ["run", "--no-vdso"], ["run", "-h"], ["run", "--", "p"], ["trace", "p"]):
        assert cli._run_words(words) is None, words


#: what a warm `pysud run` of a small program does not import: the parsers whose results are
#: cached (pyelftools, capstone), argparse and what it brings, json (and its re), threading,
#: contextlib, the other personalities and subcommands
_NOT_ON_THE_RUN_PATH = {
    "argparse",
    "gettext",
    "locale",
    "re",
    "json",
    "typing",
    "shutil",
    "inspect",
    "subprocess",
    "contextlib",
    "threading",
    "elftools",
    "capstone",
    "pefile",
    "pysud.trace",
    "pysud.nt",
    "pysud._bench",
    "pysud._kernel",
}


def _imports(argv: list[str], env: dict[str, str]) -> tuple[int, set[str]]:
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True, timeout=120
    )
    names = {
        line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")
    }
    names.discard("package")  # (the header line)
    return r.returncode, names


@requires_sud
@pytest.mark.parametrize("rewrite", ["1", "0"], ids=["rewrite", "no-rewrite"])
def test_warm_pysud_run_imports_none_of_the_heavy_modules(rewrite: str, tmp_path: Path) -> None:
    """The `pysud` command (the script pip installs) running /usr/bin/true on a warm start-up cache:
    the modules it imports, from ``-X importtime``, include none of the heavy ones (a cold run,
    its oracle here, imports pyelftools)."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYSUD_REWRITE=rewrite)
    env.pop("PYSUD_CACHE", None)
    cold_rc, cold = _imports([str(SCRIPT), "run", TRUE], env)
    warm_rc, warm = _imports([str(SCRIPT), "run", TRUE], env)
    assert cold_rc == warm_rc == 0
    assert "elftools" in cold and "pysud._linux" in warm  # (the import lines are read)
    assert not warm & _NOT_ON_THE_RUN_PATH, sorted(warm & _NOT_ON_THE_RUN_PATH)
    # with its standard error a pipe, the command's own status: false's, and a usage error's
    false_rc, _ = _imports([str(SCRIPT), "run", shutil.which("false") or "/bin/false"], env)
    assert false_rc == 1
    usage_rc, _ = _imports([str(SCRIPT), "run"], env)
    assert usage_rc == 2


_LATE_THREAD_HOOKS = """
import atexit, os, threading, time

def hooks(d):
    atexit.register(lambda: os.write(1, b"atexit\\n"))
    def late():
        time.sleep(0.3)
        os.write(1, b"thread-done\\n")
    threading.Thread(target=late).start()  # still running when the program has ended
"""


@requires_sud
@pytest.mark.parametrize("threads", [False, True], ids=["alone", "thread-left"])
def test_command_exit_runs_exit_functions_and_waits_for_threads(threads: bool, tmp_path: Path) -> None:
    """The command's way out (entry): the exit functions run, the status is the program's, and
    a Python thread still running (a hooks file's) is waited for as Python's own exit does."""
    hooks = tmp_path / "hooks.py"
    body = _LATE_THREAD_HOOKS if threads else _LATE_THREAD_HOOKS.split("    def late")[0]
    hooks.write_text(body)
    false = shutil.which("false") or "/bin/false"
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "run", "--hooks", str(hooks), false],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == (["thread-done", "atexit"] if threads else ["atexit"])
