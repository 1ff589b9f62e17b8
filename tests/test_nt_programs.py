"""Real Windows programs beyond mingw C on Wine's DLLs with pysud as the kernel: Go programs (their
runtime's threads, I/O completion port, timers and asynchronous preemption), the vector state in
NT contexts, and Wine's console programs.  Each is compared with `wine` running the same .exe with
the same DLLs (stdout, exit status, files left behind), and the trace shows pysud handled the calls.
Every run is bounded (run_pysud's timeout): a hang fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import requires_sud
from test_nt_wine import CC, DLLS, WINE, prefix, run_pysud, run_wine, wine_env  # noqa: F401 (fixtures)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "nt", "programs")
GO = shutil.which("go")

requires_go = pytest.mark.skipif(GO is None, reason="go not installed (golang-go)")
requires_cc = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)
requires_wine = pytest.mark.skipif(WINE is None, reason="wine64 not installed (the oracle)")
requires_dlls = pytest.mark.skipif(DLLS is None, reason="no Wine PE DLLs installed (wine64 8.0+)")
pytestmark = [requires_sud, requires_dlls]

GO_PROGRAMS = {"hello": (), "work": ("first arg", "2")}


@pytest.fixture(scope="module")
def go_exes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    assert GO is not None
    out = tmp_path_factory.mktemp("go-exe")
    env = dict(os.environ, GOOS="windows", GOARCH="amd64", CGO_ENABLED="0", GO111MODULE="off")
    built = {}
    for name in GO_PROGRAMS:
        exe = str(out / f"{name}.exe")
        src = os.path.join(SRC, "go", f"{name}.go")
        subprocess.run([GO, "build", "-o", exe, src], check=True, env=env, cwd=str(out), timeout=600)
        built[name] = exe
    return built


def _compare(exe: str, args: tuple[str, ...], prefix: str, wine_env: dict[str, str], tmp_path) -> bytes:  # noqa: F811
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    wine_out, _err, wine_status = run_wine(wine_env, exe, *args, cwd=str(tmp_path / "w"))
    ours = run_pysud(exe, *args, prefix=prefix, cwd=str(tmp_path / "p"))
    assert ours.stdout.decode() == wine_out.decode(), ours.stderr.decode()
    assert ours.returncode == wine_status, ours.stderr.decode()
    assert wine_out  # every program prints something: an empty match proves nothing
    assert sorted(os.listdir(tmp_path / "p")) == sorted(os.listdir(tmp_path / "w"))
    return ours.stderr


@requires_go
@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("program", sorted(GO_PROGRAMS))
def test_go_program_matches_wine(
    program: str,
    go_exes: dict[str, str],
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    err = _compare(go_exes[program], GO_PROGRAMS[program], prefix, wine_env, tmp_path)
    assert b"fatal error" not in err and b"panic" not in err, err.decode()


@requires_go
@pytest.mark.slow
def test_go_runtime_runs_on_pysuds_calls(go_exes: dict[str, str], prefix: str, tmp_path) -> None:  # noqa: F811
    """The Go runtime's threads, its completion port (timers sleep on it) and its exit went through
    pysud's handlers."""
    r = run_pysud(go_exes["work"], "x", prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.returncode == 7, r.stderr.decode()[-3000:]
    trace = r.stderr.decode()
    assert "timer fired" in r.stdout.decode()
    assert "NtCreateIoCompletion(" in trace and "NtRemoveIoCompletionEx(" in trace
    assert trace.count("NtCreateThreadEx(") >= 2
    assert "NtTerminateProcess(ProcessHandle=0xffffffffffffffff, ExitStatus=0x7)" in trace
    # ws2_32.dll (every Go program loads it) got its Unix-call handle and initialised
    assert 'Initialization of L"ws2_32.dll" failed' not in trace


@requires_cc
@requires_wine
@pytest.mark.slow
def test_vector_state_in_contexts_matches_wine(
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """XMM6-15 and MXCSR at an int3 reach the exception handler's CONTEXT; its changes and
    RtlRestoreContext's come back through NtContinue."""
    assert CC is not None
    exe = str(tmp_path / "xmmctx.exe")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, "xmmctx.c")], check=True)
    _compare(exe, (), prefix, wine_env, tmp_path)
    r = run_pysud(exe, prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    out = r.stdout.decode()
    assert "xmm7 55556666777788881111222233334444" in out  # the handler's XMM7
    assert "restored: MXCSR 5f80" in out and "xmm8 fedcba98765432100123456789abcdef" in out
    assert "NtContinue(" in r.stderr.decode()
