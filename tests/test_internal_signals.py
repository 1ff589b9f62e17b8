"""Signals 32 and 33: the host glibc's own (SIGCANCEL, SIGSETXID) and a musl program's (SIGTIMER,
SIGCANCEL). The program's are its own, glibc's stay glibc's, and the host survives both.

Oracles: the same program run natively (output and raw wait status), the kernel's view of every
thread's credentials (/proc/self/task/*/status) for the host's setxid broadcast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import requires_sud
from strace_oracle import calls, strace_works
from test_guest_threads import COMPILERS, build

pytestmark = requires_sud

HERE = Path(__file__).parent
REWRITE = [pytest.param("1", id="rewrite"), pytest.param("0", id="no-rewrite")]

# A hooks file: every tkill/tgkill the program makes reaches the handler, which names the signal.
HOOKS = """
import os, pysud
def hooks(d):
    @d.on("tkill")
    def tkill(call):
        os.write(2, b"kill %d\\n" % call.args[1])
        return pysud.NATIVE
    @d.on("tgkill")
    def tgkill(call):
        os.write(2, b"kill %d\\n" % call.args[2])
        return pysud.NATIVE
"""


def raw_run(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[bytes, bytes, int]:
    """stdout, stderr and the raw wait status (os.waitpid's)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"{argv} hung; stderr: {err.decode(errors='replace')}") from None
    # communicate() reaped it; rebuild the raw status from the return code as wait(2) gives it
    rc = p.returncode
    status = (-rc) & 0x7F if rc < 0 else (rc & 0xFF) << 8
    return out, err, status


def program(tmp_path: Path, name: str, cc: str, flags: list[str]) -> str:
    return build(str(tmp_path), name, (HERE / "programs" / f"{name}.c").read_text(), cc, flags)


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("libc", "cc", "flags"), COMPILERS, ids=[c[0] for c in COMPILERS])
def test_pthread_cancel_matches_native(tmp_path, libc, cc, flags, rewrite):
    exe = program(tmp_path, "cancel", cc, flags)
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS)
    n_out, _, n_status = raw_run([exe])
    assert n_out.count(b"PTHREAD_CANCELED") == 4 and n_out.count(b"cleanup ") == 3
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    out, err, status = raw_run([sys.executable, "-m", "pysud", "run", "--hooks", str(hooks), exe], env)
    assert out == n_out, err.decode(errors="replace")
    assert status == n_status == 3 << 8
    # the cancels went through pysud: musl cancels with 33, glibc with 32 (at least the threads
    # blocked in read and sleep and the asynchronous one need the signal)
    sig = b"33" if libc.startswith("musl") else b"32"
    assert err.count(b"kill " + sig + b"\n") >= 3, err.decode(errors="replace")


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize("sig", [32, 33, 34])
@pytest.mark.parametrize(("libc", "cc", "flags"), [COMPILERS[0], COMPILERS[2]], ids=["glibc", "musl-static"])
def test_raising_32_to_34_ends_or_fails_as_natively(tmp_path, libc, cc, flags, sig, rewrite):
    # musl raises them (the default action kills, pysud run dies of the same signal); glibc's
    # raise refuses its own 32 and 33 with EINVAL before any call.
    exe = program(tmp_path, "raise", cc, flags)
    n_out, _, n_status = raw_run([exe, str(sig)])
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    out, err, status = raw_run([sys.executable, "-m", "pysud", "run", exe, str(sig)], env)
    assert (out, status) == (n_out, n_status), err.decode(errors="replace")
    if libc == "glibc" and sig < 34:
        assert status == 0 and b"returned" in out
    else:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig


@pytest.mark.skipif(os.geteuid() != 0, reason="changing the effective gid back and forth needs root")
@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("libc", "cc", "flags"), [COMPILERS[0], COMPILERS[2]], ids=["glibc", "musl-static"])
def test_host_setxid_reaches_the_programs_threads(tmp_path, libc, cc, flags, rewrite):
    # While a program's threads sleep in a call and run their own code, a host thread changes
    # the process's effective gid: glibc sends SIGSETXID (33) to every thread, the program's
    # included (they are the host's pthreads), and waits for each. The kernel's view of every
    # thread must show the change, and the program must be unaffected.
    exe = program(tmp_path, "setxid_threads", cc, flags)
    script = textwrap.dedent(
        f"""
        import glob, os, sys, threading, time
        import pysud
        seen = {{}}
        def change():
            deadline = time.monotonic() + 10
            while len(os.listdir("/proc/self/task")) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)  # the program's two threads are up
            time.sleep(0.05)
            os.setegid(1)
            for path in glob.glob("/proc/self/task/*/status"):
                with open(path) as f:
                    gid = [line for line in f if line.startswith("Gid:")][0].split()[2]
                seen[path.split("/")[4]] = gid
            os.setegid(0)
        t = threading.Thread(target=change)
        t.start()
        status = pysud.run({exe!r})
        t.join()
        print("status", status, "threads", len(seen), "egids", sorted(set(seen.values())), file=sys.stderr)
        """
    )
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout == b"done\n"
    last = p.stderr.decode().strip().splitlines()[-1]
    words = last.split()
    assert words[:2] == ["status", "0"], last
    assert int(words[3]) >= 4, last  # the host's two threads and at least the program's sleepers
    assert last.endswith("egids ['1']"), last


@pytest.mark.skipif(not strace_works(), reason="strace missing or not allowed to ptrace here")
@pytest.mark.parametrize("rewrite", REWRITE)
def test_pysud_trace_shows_musls_cancel_signals_as_strace(tmp_path, rewrite):
    # musl's pthread_exit blocks every signal, SIGSEGV included, before its last futex call: the
    # recorder's capture of that call must not fault with SIGSEGV blocked (it killed the process).
    exe = program(tmp_path, "cancel", "musl-gcc", ["-static"])
    n_out, _, n_status = raw_run([exe])
    out_file, strace_file = tmp_path / "trace.txt", tmp_path / "strace.txt"
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    out, err, status = raw_run([sys.executable, "-m", "pysud", "trace", "-f", "-o", str(out_file), exe], env)
    assert (out, status) == (n_out, n_status), err.decode(errors="replace")
    subprocess.run(["strace", "-f", "-o", str(strace_file), exe], capture_output=True, timeout=60)  # exits 3

    def cancels(text: str) -> set[str]:
        # the cancel signals' lines (split calls joined), pids and padding taken out
        return {
            re.sub(r"\s+", " ", re.sub(r"\d{2,}", "N", line))
            for _, line in calls(text)
            if "SIGRT_1" in line and (line.startswith("--- SIGRT_1") or line.startswith("tkill("))
        }

    ours, native = cancels(out_file.read_text()), cancels(strace_file.read_text())
    assert (
        ours
        == native
        == {
            "tkill(N, SIGRT_1) = 0",
            "--- SIGRT_1 {si_signo=SIGRT_1, si_code=SI_TKILL, si_pid=N, si_uid=0} ---",
        }
    )


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("libc", "cc", "flags"), COMPILERS, ids=[c[0] for c in COMPILERS])
def test_sigev_thread_timers_fire_as_natively(tmp_path, libc, cc, flags, rewrite):
    exe = program(tmp_path, "timer_thread", cc, flags)
    n_out, _, n_status = raw_run([exe])
    assert (n_out, n_status) == (b"fired 3+\n", 0)
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    out, err, status = raw_run([sys.executable, "-m", "pysud", "run", exe], env)
    assert (out, status) == (n_out, n_status), err.decode(errors="replace")
