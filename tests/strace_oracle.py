"""The trace tests' oracle: one program run under `strace -f` and under `pysud trace -f`, with the
same options, each in a working directory in its original state (test_trace*.py, the corpus)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

STRACE = shutil.which("strace")
PYSUD = (sys.executable, "-m", "pysud")


@functools.cache
def strace_works() -> bool:
    """strace is installed and may ptrace here (not in a container without CAP_SYS_PTRACE)."""
    if STRACE is None:
        return False
    return subprocess.run([STRACE, "-o", "/dev/null", "true"], capture_output=True).returncode == 0


Run = tuple["subprocess.CompletedProcess[bytes]", str]
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")


def calls(text: str) -> Iterator[tuple[int, str]]:
    """(pid, line) for each line of `-f -o` output, a call another process's lines split (`...
    <unfinished ...>` then `<... NAME resumed>...`) joined back into one line."""
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
        yield pid, line


def trace_both(
    argv: Sequence[str],
    opts: Sequence[str],
    workdir: Callable[[], str],
    out: str,
    env: dict[str, str],
    *,
    pysud: Sequence[str] = PYSUD,
    timeout: float = 60,
) -> tuple[Run, Run]:
    """(strace's run and trace text, pysud's run and trace text); ``workdir()`` gives the directory
    each runs in, made afresh (paths appear in the traces: the same path for both)."""
    assert STRACE is not None
    runs = []
    for tracer in ([STRACE, "-f", *opts], [*pysud, "trace", "-f", *opts]):
        cwd = workdir()
        r = subprocess.run(
            [*tracer, "-o", out, *argv], cwd=cwd, env=env, capture_output=True, timeout=timeout
        )
        with open(out) as f:
            runs.append((r, f.read()))
    return runs[0], runs[1]
