"""Stress: signal storms against blocking calls, Ctrl-C at random moments; nothing lost, nothing hangs.

Every run is bounded (the driver gives up after 5 s without an acknowledgement, every process has
a timeout).  Oracle: the counts the programs acknowledge and the raw wait statuses they give natively.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import requires_sud
from test_signals import MODES, PYSUD_RUN, build_sigprogs, output, wait_status

pytestmark = [requires_sud, pytest.mark.slow]

N = 1000
SEED = int(os.environ.get("PYSUD_STRESS_SEED", "0")) or random.randrange(1, 2**31)

# The blocking calls go through a Python handler: call.native() (the core runs them for the
# handler, GIL released) or the NATIVE token (run after the handler returns).
HANDLER = """
import sys, pysud
d = pysud.Dispatcher()
for name in ("pause", "rt_sigsuspend", "read", "nanosleep", "clock_nanosleep", "futex", "wait4",
             "poll", "ppoll", "getppid"):
    d.on(name, (lambda call: call.native()) if sys.argv[1] == "native" else (lambda call: pysud.NATIVE))
sys.exit(pysud.run(sys.argv[2], sys.argv[3:], dispatcher=d))
"""

RUNNERS = {
    "run": (PYSUD_RUN, signal.SIGTERM),
    "trace": ([sys.executable, "-m", "pysud", "trace", "-f", "-o", os.devnull], signal.SIGTERM),
    # pysud.run() in a host: the program's death is the status 128 + SIGTERM
    "handler-native": ([sys.executable, "-c", HANDLER, "native"], (128 + signal.SIGTERM) << 8),
    "handler-token": ([sys.executable, "-c", HANDLER, "token"], (128 + signal.SIGTERM) << 8),
}
CASES = [(mode, "run") for mode in MODES] + [
    (mode, runner)
    for runner in ("trace", "handler-native", "handler-token")
    for mode in ("pause", "read", "futex", "threads", "getppid")
]


@pytest.fixture(scope="module")
def sigprogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_sigprogs(tmp_path_factory.mktemp("stress"))


@pytest.mark.parametrize(("mode", "runner"), CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_signal_storm_against_a_blocking_call(sigprogs, mode, runner):
    # N SIGUSR1 one at a time, N SIGRTMIN in bursts of 64 (real-time signals queue: each one is
    # acknowledged), then SIGTERM in the blocking call.
    prefix, status = RUNNERS[runner]
    argv = [sigprogs["signals_driver"], str(N), "64", "--", *prefix, sigprogs["signals_wait"], mode]
    r = subprocess.run(argv, capture_output=True, timeout=180)
    assert r.stdout == f"usr1={N} rt={N} status=0x{status:x}\n".encode(), r.stderr.decode(errors="replace")[
        -2000:
    ]


INTERRUPTED = [
    ["yes"],
    ["cat", "/dev/zero"],
    ["sh", "-c", "echo r; while :; do /bin/true; done"],
    ["@signals_wait", "spin"],
    ["@signals_wait", "read"],
    ["sh", "-c", "echo r; sleep 5"],
]


@pytest.mark.parametrize("argv", INTERRUPTED, ids=[" ".join(a).replace("@", "") for a in INTERRUPTED])
def test_ctrl_c_at_random_moments_ends_pysud_by_sigint(sigprogs, argv):
    # Ctrl-C (SIGINT to the process group) at a random moment once the program has written its
    # first byte (its stdout is then left undrained: yes and cat end up blocked in write):
    # `pysud run` always dies of SIGINT, as the program does natively (its default action).
    # (Not earlier: CPython exits 1 when a KeyboardInterrupt comes while it initialises itself.)
    argv = [sigprogs[a[1:]] if a.startswith("@") else a for a in argv]
    rng = random.Random(SEED + len(" ".join(argv)))
    for _ in range(6):
        delay = rng.uniform(0, 0.3)
        p = subprocess.Popen(
            [*PYSUD_RUN, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert p.stdout is not None and p.stdout.read(1)
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGINT)
        status = wait_status(p, 15)
        err = output(p)[1]
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        assert status == signal.SIGINT, (
            f"seed {SEED}, SIGINT after {delay:.3f} s",
            err.decode(errors="replace"),
        )


def test_ctrl_c_storm_against_a_program_that_ignores_it_while_it_execs():
    # SIGINT every few milliseconds while a program that ignores it execs twice: ignored in every
    # image and while pysud loads the next one (Python's handler never sees it).
    argv = ["sh", "-c", "trap '' INT; echo r; exec sh -c 'exec sleep 0.5'"]
    statuses = []
    for run in ([], PYSUD_RUN):
        p = subprocess.Popen(
            [*run, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        assert p.stdout is not None and p.stdout.read(1) == b"r"
        status = None
        for _ in range(300):
            pid, st = os.waitpid(p.pid, os.WNOHANG)
            if pid:
                status, p.returncode = st, 0
                break
            os.killpg(p.pid, signal.SIGINT)
            time.sleep(0.003)
        if status is None:
            status = wait_status(p, 15)
        statuses.append((status, output(p)))
    assert statuses[0][0] == 0
    assert statuses[1][0] == 0, statuses[1][1][1].decode(errors="replace")
