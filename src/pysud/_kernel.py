"""What this machine's kernel and CPU support, probed safely in child processes."""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
import signal
from dataclasses import asdict, dataclass
from typing import Any

from . import _core
from ._errors import explain_errno

SYSCTL = "/proc/sys/kernel/syscall_user_dispatch"
PTRACE_TRACEME = 0


@dataclass(frozen=True)
class Feature:
    supported: bool
    detail: str


@dataclass(frozen=True)
class Support:
    """The answer of ``pysud check``."""

    kernel: str
    machine: str
    exclusive: Feature
    inclusive: Feature
    ptrace_config: Feature
    fsgsbase: Feature
    sysctl: Feature

    @property
    def usable(self) -> bool:
        return self.exclusive.supported

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usable"] = self.usable
        return d


def _in_child(fn: Any) -> int:
    """Run fn() in a forked child (arming there cannot hurt this process); its int is the exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 125
        try:
            code = int(fn())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _probe_arm(op: int) -> int:
    sel = ctypes.c_uint8(0)  # ALLOW: nothing is dispatched while probing
    addr = ctypes.addressof(sel)
    off, length = (addr, 1) if op == 2 else (0, 0)
    r = _core.prctl_raw(op, off, length, addr)
    if r == 0:
        _core.prctl_raw(0, 0, 0, 0)
    return -r


def _probe_ptrace() -> int:
    """Child: traced, armed with ALLOW, stopped; the parent reads its config."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
        return 3
    sel = ctypes.c_uint8(0)
    if _core.prctl_raw(1, 0, 0, ctypes.addressof(sel)) != 0:
        return 4
    os.kill(os.getpid(), signal.SIGSTOP)
    return 0


def _ptrace_config() -> Feature:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 125
        try:
            code = _probe_ptrace()
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            return Feature(False, f"probe child did not stop (status {status:#x})")
        try:
            mode, sel, off, length = _core.ptrace_get_config(pid)
        except OSError as e:
            return Feature(
                False,
                f"PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG: {os.strerror(e.errno or 0)} (needs Linux 6.4)",
            )
        return Feature(mode == 1, f"read mode={mode} selector={sel:#x} offset={off:#x} len={length:#x}")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def support() -> Support:
    """Probe what Syscall User Dispatch can do here.  Safe: arming happens in child processes."""
    feats = _core.features()
    exclusive = _in_child(lambda: _probe_arm(1))
    inclusive = _in_child(lambda: _probe_arm(2))

    def feature(code: int, what: str) -> Feature:
        if code == 0:
            return Feature(True, f"{what}: prctl accepted")
        if code < 125:
            return Feature(False, f"{what}: {_errno.errorcode.get(code, code)}: {explain_errno(code)}")
        return Feature(False, f"{what}: probe child died (status {code})")

    try:
        with open(SYSCTL) as fh:
            value = fh.read().strip()
        sysctl = Feature(value != "0", f"kernel.syscall_user_dispatch = {value}")
    except OSError:
        sysctl = Feature(True, "no kernel.syscall_user_dispatch sysctl (this kernel does not have one)")
    return Support(
        kernel=platform.release(),
        machine=platform.machine(),
        exclusive=feature(exclusive, "PR_SYS_DISPATCH_EXCLUSIVE_ON (5.11+)"),
        inclusive=feature(inclusive, "PR_SYS_DISPATCH_INCLUSIVE_ON (6.17+)"),
        ptrace_config=_ptrace_config() if exclusive == 0 else Feature(False, "dispatch unavailable"),
        fsgsbase=Feature(
            bool(feats["fsgsbase"]),
            "rdfsbase/wrfsbase usable (AT_HWCAP2 bit 1)"
            if feats["fsgsbase"]
            else "no FSGSBASE: FS switches cost an arch_prctl call",
        ),
        sysctl=sysctl,
    )
