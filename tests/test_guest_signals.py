"""A program's own signals: its handlers run for them, its faults are its own, and the host survives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import pysud
from conftest import requires_sud
from pysud._linux import LinuxPersonality
from test_guest_threads import COMPILERS, build

pytestmark = requires_sud

HERE = os.path.dirname(__file__)


def pysud_run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pysud", "run", *argv], capture_output=True, timeout=60)


@pytest.mark.parametrize(("libc", "cc", "flags"), COMPILERS, ids=[c[0] for c in COMPILERS])
def test_handlers_masks_altstack_segv_and_death_by_signal_match_native(tmp_path, libc, cc, flags):
    # raise/kill/tgkill, block + pending + unblock, SA_SIGINFO with sigqueue's value, alarm + pause
    # (EINTR), a handler on sigaltstack, a NULL write handled with siglongjmp, vector state kept
    # across handlers, and finally death by SIGTERM (default action).
    with open(os.path.join(HERE, "programs_core", "signals.c")) as f:
        exe = build(str(tmp_path), "signals", f.read(), cc, flags)
    native = subprocess.run([exe], capture_output=True, timeout=60)
    ours = pysud_run([exe])
    assert native.returncode == -15
    assert ours.stdout == native.stdout
    assert b"segv at 0x10" in ours.stdout and b"on altstack: 1" in ours.stdout
    assert ours.returncode == -15  # pysud run dies of the signal its program died of


def test_a_crash_gives_128_plus_signal_with_registers_and_the_host_goes_on(tmp_path):
    exe = build(str(tmp_path), "crash", "int main(void) { *(volatile int *)0 = 1; return 0; }", "gcc", [])
    p = LinuxPersonality(pysud.Dispatcher())
    status = p.run(exe, [b"crash"], [])
    assert status == 128 + 11
    assert p.fault is not None
    sig, code, addr, regs = p.fault
    assert (sig, code, addr) == (11, 1, 0)  # SEGV_MAPERR at address 0
    assert regs["rip"] != 0 and regs["rsp"] != 0
    assert pysud.run("/bin/true") == 0  # the host is intact and can run the next program


def test_shell_sees_its_children_die_of_signals_as_natively():
    # SIGPIPE kills `yes`; a crashing child gives the shell 139; the shell then kills itself.
    script = "yes | head -2; sh -c 'kill -SEGV $$'; echo crash $?; kill -TERM $$; echo unreachable"
    native = subprocess.run(["busybox", "sh", "-c", script], capture_output=True, timeout=60)
    ours = pysud_run(["busybox", "sh", "-c", script])
    assert native.stdout == b"y\ny\ncrash 139\n"
    assert ours.stdout == native.stdout
    assert ours.returncode == native.returncode == -15
