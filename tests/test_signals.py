"""A program's signals and statuses as native: Ctrl-C, fatal signals in blocking calls, death by a signal.

Oracle: the same program run natively, compared by its raw wait status (os.waitpid), never a
shell's $?.  `pysud run` dies of the signal its program dies of, so a parent sees WIFSIGNALED.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import requires_sud

pytestmark = requires_sud

PROGRAMS = Path(__file__).parent / "programs"
PYSUD_RUN = [sys.executable, "-m", "pysud", "run"]


def build_sigprogs(out: Path) -> dict[str, str]:
    """tests/programs/signals_*.c, compiled into out."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    built = {}
    for name in ("signals_wait", "signals_driver", "signals_state", "signals_ignored"):
        exe = str(out / name)
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Wextra", "-o", exe, str(PROGRAMS / f"{name}.c")],
            check=True,
            timeout=120,
        )
        built[name] = exe
    return built


@pytest.fixture(scope="session")
def sigprogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_sigprogs(tmp_path_factory.mktemp("sigprogs"))


def no_core() -> None:
    """Natively, no core file either (the status then has no core-dump flag, as pysud's)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def wait_status(p: subprocess.Popen[bytes], timeout: float) -> int:
    """The raw wait status of p, or -1 (and p killed) if it did not end within timeout seconds."""
    deadline = time.monotonic() + timeout
    status = -1
    while True:
        pid, st = os.waitpid(p.pid, os.WNOHANG)
        if pid:
            status = st
            break
        if time.monotonic() > deadline:
            p.kill()
            os.waitpid(p.pid, 0)
            break
        time.sleep(0.01)
    p.returncode = 0  # reaped here; keep Popen from waiting again
    if p.stdin:
        p.stdin.close()
    return status


def output(p: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """The rest of p's stdout and stderr (pipes closed)."""
    out = err = b""
    if p.stdout:
        out = p.stdout.read()
        p.stdout.close()
    if p.stderr:
        err = p.stderr.read()
        p.stderr.close()
    return out, err


def started(argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
    """argv running with stdout and stderr piped, once its first output byte has arrived."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=no_core, **kw)  # type: ignore[call-overload]
    assert p.stdout is not None
    assert p.stdout.read(1), "the program wrote nothing"
    return p


def signal_status(
    argv: list[str], sig: int, *, settle: float = 0.2, stdin: int | None = None
) -> tuple[int, bytes]:
    """Start argv, send sig once it has written its first byte (and settle seconds more); its wait status."""
    p = started(argv, stdin=stdin)
    time.sleep(settle)
    p.send_signal(sig)
    status = wait_status(p, 10)
    return status, output(p)[1]


# ---- a lost signal (issue 10, item 8) and signals in blocking calls (item 4)


MODES = ["pause", "sigsuspend", "read", "nanosleep", "futex", "wait4", "poll", "getppid", "spin", "threads"]


@pytest.mark.parametrize("mode", MODES)
def test_every_signal_reaches_a_program_waiting_in_a_blocking_call(sigprogs, mode):
    # One SIGUSR1 at a time (SA_RESTART), each acknowledged by the handler before the next; then
    # bursts of queued SIGRTMIN (no SA_RESTART), every one acknowledged; then SIGTERM with the
    # default action, which ends the program in its blocking call.  The C driver sends the next
    # signal the moment the acknowledgement arrives: it reaches the program while pysud is
    # dispatching its next blocking call, where signals used to be held until the call returned.
    n = "3000" if mode == "pause" else "500"
    argv = [sigprogs["signals_driver"], n, "16", "--"]
    native = subprocess.run([*argv, sigprogs["signals_wait"], mode], capture_output=True, timeout=120)
    ours = subprocess.run(
        [*argv, *PYSUD_RUN, sigprogs["signals_wait"], mode], capture_output=True, timeout=120
    )
    expected = f"usr1={n} rt={n} status=0x{signal.SIGTERM:x}\n".encode()
    assert native.stdout == expected
    assert ours.stdout == expected, ours.stderr.decode(errors="replace")[-2000:]


@pytest.mark.parametrize(
    "argv",
    [["cat"], ["sh", "-c", "echo r; sleep 30; echo unreachable"]],
    ids=["read-on-a-pipe", "wait4-for-a-child"],
)
def test_a_fatal_signal_ends_a_blocking_call_at_once(argv):
    # cat blocked in read() on a pipe nobody writes; sh blocked in wait4 for sleep 30.
    # Natively SIGTERM kills them at once; so it must under pysud (it used to wait for the call).
    if argv[0] == "cat":
        argv = ["sh", "-c", "echo r; exec cat"]
    statuses = []
    for run in ([], PYSUD_RUN):
        p = started([*run, *argv], stdin=subprocess.PIPE, start_new_session=True)
        time.sleep(0.3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        statuses.append((wait_status(p, 10), time.monotonic() - t0 < 5))
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the orphaned sleep, which holds stdout open
        except ProcessLookupError:
            pass
        output(p)
    assert statuses[0] == (signal.SIGTERM, True)
    assert statuses[1] == statuses[0]


# ---- Ctrl-C (item 3)


@pytest.mark.parametrize(
    "argv",
    [["yes"], ["cat", "/dev/zero"], ["sh", "-c", "echo r; exec sleep 10"]],
    ids=["yes", "cat-dev-zero", "sleep"],
)
def test_ctrl_c_ends_a_program_and_pysud_as_natively(argv):
    native, _ = signal_status(argv, signal.SIGINT)
    ours, err = signal_status([*PYSUD_RUN, *argv], signal.SIGINT)
    assert native == signal.SIGINT
    assert ours == native, err.decode(errors="replace")
    assert b"KeyboardInterrupt" not in err and b"Traceback" not in err


def test_ctrl_c_ignored_by_the_program_is_ignored():
    # The program's disposition decides, not Python's SIGINT handler.
    argv = ["sh", "-c", "trap '' INT; echo r; sleep 0.5; echo survived"]
    for run in ([], PYSUD_RUN):
        p = started([*run, *argv])
        time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        assert wait_status(p, 10) == 0
        assert output(p)[0] == b"\nsurvived\n"


# ---- death by a signal (item 5)


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP", "USR1", "SEGV", "ABRT", "QUIT", "BUS", "SYS"])
def test_death_by_a_signal_is_a_real_death(sig):
    # The raw wait status of `pysud run` is the native one: WIFSIGNALED with the signal.  For the
    # signals that dump core neither writes a core here (RLIMIT_CORE 0 natively; pysud never
    # writes a core of the Python host), so neither status has the core-dump flag.
    argv = ["sh", "-c", f"kill -{sig} $$; echo unreachable"]
    statuses = []
    for run in ([], PYSUD_RUN):
        p = subprocess.Popen([*run, *argv], stdout=subprocess.PIPE, preexec_fn=no_core)
        statuses.append(wait_status(p, 30))
        assert output(p)[0] == b""
    num = getattr(signal, f"SIG{sig}")
    assert statuses[0] == num
    assert statuses[1] == statuses[0]
    assert os.WIFSIGNALED(statuses[1]) and not os.WCOREDUMP(statuses[1])


def test_a_program_killed_in_its_code_kills_pysud_without_a_core(tmp_path):
    # RLIMIT_CORE unlimited: the program would dump core natively; pysud writes no core of itself.
    def unlimited() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    p = subprocess.Popen([*PYSUD_RUN, "sh", "-c", "kill -SEGV $$"], cwd=tmp_path, preexec_fn=unlimited)
    status = wait_status(p, 30)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV
    assert not os.WCOREDUMP(status)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("core")]


def test_the_library_call_returns_128_plus_the_signal_and_the_host_lives(tmp_path):
    # pysud.run() in a host program: the program's death is a status, the host goes on.
    code = "import pysud, sys; print(pysud.run('sh', ['-c', 'kill -TERM $$'])); print('alive')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"143\nalive\n"), r.stderr


# ---- ignored signals and the mask across exec (item 6)


def inherit_ignored_and_blocked() -> None:
    """What a parent such as nohup, a shell's background job or a daemon leaves its child."""
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    # (signal 64, the mask's top bit, too: the mask is an unsigned 64-bit value)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGALRM, signal.SIGRTMAX})


@pytest.mark.parametrize("how", [[], ["--native-exec"]], ids=["in-process-exec", "native-exec"])
@pytest.mark.parametrize("parent", [inherit_ignored_and_blocked, None], ids=["ignored-blocked", "default"])
def test_inherited_ignored_signals_and_mask_are_the_programs_across_exec(sigprogs, how, parent):
    # The first program, a child it forks and execs, and the program after its own execve: each
    # prints what it ignores and blocks (SIGUSR2 it ignores itself before the exec), then sends
    # itself SIGHUP, which it survives only where SIGHUP is ignored.
    argv = [sigprogs["signals_state"]]
    native = subprocess.run(argv, preexec_fn=parent, capture_output=True, timeout=60)
    ours = subprocess.run([*PYSUD_RUN, *how, *argv], preexec_fn=parent, capture_output=True, timeout=60)
    if parent is not None:
        assert native.stdout.startswith(b"first: ignored 1 2 3 blocked 10 14 64\n")
        assert b"exec survived SIGHUP" in native.stdout
    assert ours.stdout == native.stdout, ours.stderr
    assert ours.returncode == native.returncode


def test_nohup_keeps_sighup_ignored():
    nohup = shutil.which("nohup")
    if nohup is None:
        pytest.skip("nohup not installed")
    argv = ["sh", "-c", "kill -HUP $$; echo survived"]
    native = subprocess.run([nohup, *argv], capture_output=True, timeout=60)
    ours = subprocess.run([nohup, *PYSUD_RUN, *argv], capture_output=True, timeout=60)
    assert native.returncode == 0 and native.stdout == b"survived\n"
    assert (ours.returncode, ours.stdout) == (native.returncode, native.stdout), ours.stderr


def test_ignored_signals_change_nothing(sigprogs):
    # A signal the program ignores must not end its sleep early (the kernel never sees a handler
    # for it), and SIGCHLD set to SIG_IGN reaps its children, as natively.
    native = subprocess.run([sigprogs["signals_ignored"]], capture_output=True, timeout=60)
    ours = subprocess.run([*PYSUD_RUN, sigprogs["signals_ignored"]], capture_output=True, timeout=60)
    assert native.stdout.count(b": 0 errno=0") == 2 and b"echild=1" in native.stdout
    assert ours.stdout == native.stdout, ours.stderr
    assert ours.returncode == native.returncode == 0
