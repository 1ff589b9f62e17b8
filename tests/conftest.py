"""Shared fixtures; skips are computed once from what the machine supports."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import pysud

SUPPORT = pysud.support()

# pysud's persistent cache (pysud._cache) goes to a directory of the session's own, not the
# user's ~/.cache: the suite starts cold and leaves nothing behind (programs it runs inherit it).
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME = tempfile.mkdtemp(prefix="pysud-test-cache-")
atexit.register(shutil.rmtree, _CACHE_HOME, True)

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
