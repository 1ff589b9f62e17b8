"""Shared fixtures; skips are computed once from what the machine supports."""

from __future__ import annotations

import ctypes
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import pysud

SUPPORT = pysud.support()

if not SUPPORT.usable and os.environ.get("CI"):
    # In CI an unusable kernel must fail loudly, never skip the whole suite.
    raise RuntimeError(f"syscall user dispatch is not usable on the CI machine: {SUPPORT.exclusive.detail}")

requires_sud = pytest.mark.skipif(not SUPPORT.usable, reason=f"SUD unusable: {SUPPORT.exclusive.detail}")
requires_inclusive = pytest.mark.skipif(
    not SUPPORT.inclusive.supported, reason=f"inclusive mode unsupported: {SUPPORT.inclusive.detail}"
)


@pytest.fixture
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def dispatcher():
    d = pysud.Dispatcher()
    yield d
    d.close()


def run_in_child(fn, timeout: float = 60.0) -> int:
    """Run fn() in a forked child; returns its wait status decoded: exit code, or -signal."""
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        try:
            code = int(fn() or 0)
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 98
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
