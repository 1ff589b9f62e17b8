"""Real Windows programs beyond mingw C on Wine's DLLs with pysud as the kernel: Go programs (their
runtime's threads, I/O completion port, timers and asynchronous preemption), the vector state in
NT contexts, user APCs and timers' completion routines, a context set on a thread blocked in a
wait, MSVC script launchers (pip's and setuptools'), and Wine's console programs.  Each is compared
with `wine` running the same .exe with the same DLLs (stdout, exit status, files left behind), and
the trace shows pysud handled the calls.
Every run is bounded (run_pysud's timeout): a hang fails the test.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import zipfile

import pytest

from conftest import requires_sud
from test_nt_wine import CC, CXX, DLLS, WINE, prefix, run_pysud, run_wine, wine_env  # noqa: F401 (fixtures)

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

GO_PROGRAMS = {"hello": (), "work": ("first arg", "2"), "spin": ()}


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


@requires_cc
@requires_wine
@pytest.mark.slow
def test_user_apcs_match_wine(
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """QueueUserAPC to the same thread and to another, run by alertable waits only (SleepEx,
    WaitFor*ObjectsEx and GetQueuedCompletionStatusEx returning WAIT_IO_COMPLETION), NtTestAlert
    and before a new thread's entry point, in queue order, through Wine's KiUserApcDispatcher;
    NtContinue back to the wait."""
    assert CC is not None
    exe = str(tmp_path / "apc.exe")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, "apc.c")], check=True)
    _compare(exe, (), prefix, wine_env, tmp_path)
    r = run_pysud(exe, prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = r.stdout.decode()
    assert "SleepEx(5000, TRUE) = 0xc0" in out and "apc 23 (#7) in the main thread" in out
    assert "worker: wait returned 0xc0" in out and "apc 8 (#13) in another thread" in out
    trace = r.stderr.decode()
    # every APC went through pysud's queue: 13 routines run, one call refused (the ended thread)
    # and one without a routine
    assert trace.count("NtQueueApcThread(") == 15
    assert "ApcArgument2=0x9, ApcArgument3=0) = STATUS_UNSUCCESSFUL" in trace  # the ended thread
    assert "NtTestAlert(" in trace
    # a wait that ran an APC does not return there (= ?): KiUserApcDispatcher's NtContinue does
    assert re.search(r"NtDelayExecution\(Alertable=0x1, DelayInterval=0x[0-9a-f]+\) += \?", trace)
    assert re.search(r"NtContinue\(Context=0x[0-9a-f]+, TestAlert=0x1\) += \?", trace)
    assert "not implemented" not in trace


@requires_wine
@pytest.mark.slow
@pytest.mark.skipif(CXX is None, reason="x86_64-w64-mingw32-g++ not installed (g++-mingw-w64-x86-64)")
def test_exception_thrown_by_an_apc_matches_wine(
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """A C++ exception thrown in an APC routine unwinds through KiUserApcDispatcher's frame (the
    CONTEXT pysud put below the wait's stack) to the frame that waited alertably."""
    assert CXX is not None
    exe = str(tmp_path / "apcthrow.exe")
    subprocess.run([CXX, "-O2", "-static", "-o", exe, os.path.join(SRC, "apcthrow.cpp")], check=True)
    out = _compare(exe, (), prefix, wine_env, tmp_path)
    assert b"terminate called" not in out, out.decode()
    r = run_pysud(exe, prefix=prefix, cwd=str(tmp_path))
    caught = ['caught "from the first APC", kept 1234', 'caught "from another"']
    assert r.stdout.decode().splitlines()[:2] == caught


@requires_cc
@requires_wine
@pytest.mark.slow
def test_timer_completion_routines_match_wine(
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """SetWaitableTimer with a completion routine: an APC to the setting thread at each expiry, run
    by its alertable waits, one queued per timer, dropped by a new setting or a cancel."""
    assert CC is not None
    exe = str(tmp_path / "timerapc.exe")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, "timerapc.c")], check=True)
    _compare(exe, (), prefix, wine_env, tmp_path)
    r = run_pysud(exe, prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.returncode == 5, r.stderr.decode()[-3000:]
    assert r.stdout.decode().count("routine(11)") == 3
    err = r.stderr.decode()
    # the routine's arguments are the expiry as a FILETIME, as Windows documents them (Wine 8
    # passes its internal relative time)
    assert err.count("expiry in range") == 5 and "out of range" not in err
    assert "NtSetTimer(" in err and "TimerApcRoutine=0x" in err


@requires_cc
@requires_wine
@pytest.mark.slow
def test_context_set_inside_a_blocking_call_matches_wine(
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """SetThreadContext on a thread suspended in WaitForSingleObject: read back at once, taken
    when the wait ends (the event set after ResumeThread), the thread goes on from it."""
    assert CC is not None
    exe = str(tmp_path / "setctx.exe")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, "setctx.c")], check=True)
    _compare(exe, (), prefix, wine_env, tmp_path)
    r = run_pysud(exe, prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = r.stdout.decode().splitlines()
    assert "suspended inside NtWaitForMultipleObjects: yes" in out
    assert "before SetEvent: thread still waits" in out
    assert "hijacked: rbx = 0x9abc, r12 = 0x5678" in out and "exit code 42" in out
    trace = r.stderr.decode()
    sets = [line for line in trace.splitlines() if "NtSetContextThread(" in line]
    assert len(sets) == 1 and sets[0].endswith("= STATUS_SUCCESS"), sets


# ---- an MSVC program: distlib's script launcher (pip's t64.exe) starting another program


def _launcher(tmp_path, target: str) -> str:
    """A distlib launcher (ScriptMaker's layout: t64.exe, ``#!<exe>\\n``, a zip with __main__.py)
    whose shebang names ``target`` (a Windows path)."""
    import pip._vendor.distlib as distlib

    t64 = os.path.join(os.path.dirname(distlib.__file__), "t64.exe")
    if not os.path.exists(t64):
        pytest.skip("pip's distlib has no t64.exe (a pip without the Windows launchers)")
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as z:
        z.writestr("__main__.py", "raise SystemExit('the shebang names the program to run')\n")
    exe = str(tmp_path / "launch.exe")
    with open(t64, "rb") as f, open(exe, "wb") as out:
        out.write(f.read() + b"#!" + target.encode() + b"\n" + stream.getvalue())
    return exe


def _windows_path(host: str) -> str:
    return "Z:" + os.path.abspath(host).replace("/", "\\")


@pytest.fixture(scope="module")
def mingw_exes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if CC is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)")
    out = tmp_path_factory.mktemp("mingw-exe")
    built = {}
    for name in ("whoruns", "exitwith"):
        exe = str(out / f"{name}.exe")
        subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, f"{name}.c")], check=True)
        built[name] = exe
    return built


@requires_wine
@pytest.mark.slow
def test_msvc_launcher_runs_its_program_as_wine_does(
    mingw_exes: dict[str, str],
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """pip's t64.exe (MSVC: static CRT, kernel32, shlwapi) reads its shebang, makes a job object
    that kills the child with it, starts the program with its own path and arguments, waits, and
    exits with the child's code."""
    exe = _launcher(tmp_path, _windows_path(mingw_exes["exitwith"]))
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    for code in ("0", "42", "0x1234"):
        wine_out, _err, wine_status = run_wine(wine_env, exe, code, cwd=str(tmp_path / "w"))
        ours = run_pysud(exe, code, prefix=prefix, cwd=str(tmp_path / "p"))
        assert ours.stdout == wine_out, ours.stderr.decode()
        assert ours.returncode == wine_status == int(code, 0) & 0xFF, ours.stderr.decode()


@pytest.mark.slow
def test_msvc_launcher_child_runs_under_pysud(mingw_exes: dict[str, str], prefix: str, tmp_path) -> None:  # noqa: F811
    exe = _launcher(tmp_path, _windows_path(mingw_exes["whoruns"]))
    r = run_pysud(exe, "a", "b c", prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.returncode == 3, r.stderr.decode()[-3000:]
    # the child saw the launcher's path and the arguments, and its process is a pysud
    assert r.stdout.decode().splitlines() == [
        "run by pysud: yes",
        f"argv[1] = {_windows_path(exe)}",
        "argv[2] = a",
        "argv[3] = b c",
    ]
    trace = r.stderr.decode()
    for call in (
        "NtCreateJobObject(",
        "NtSetInformationJobObject(",
        "NtCreateUserProcess(",
        "NtAssignProcessToJobObject(",
    ):
        assert call in trace, call
    assert "NtTerminateProcess(ProcessHandle=0xffffffffffffffff, ExitStatus=0x3)" in trace


# ---- another MSVC program: setuptools' script launcher (cli-64.exe) starting another program


def _setuptools_launcher(tmp_path, target: str) -> str:
    """setuptools' launcher layout: ``NAME.exe`` (cli-64.exe) runs the program named by the shebang
    of ``NAME-script.py`` next to it, with that script's path and its own arguments."""
    spec = importlib.util.find_spec("setuptools")  # found, not imported (no distutils hack)
    origin = spec.origin if spec else None
    cli64 = os.path.join(os.path.dirname(origin), "cli-64.exe") if origin else ""
    if not os.path.exists(cli64):
        pytest.skip("no setuptools with its Windows launchers (setuptools/cli-64.exe) is installed")
    exe = str(tmp_path / "launch.exe")
    shutil.copy(cli64, exe)
    (tmp_path / "launch-script.py").write_text(f"#!{target}\nraise SystemExit('not python')\n")
    return exe


@requires_wine
@pytest.mark.slow
def test_setuptools_launcher_runs_its_program_as_wine_does(
    mingw_exes: dict[str, str],
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """cli-64.exe (MSVC, no NX_COMPAT: ntdll asks to turn DEP off, refused as Wine does) finds
    launch-script.py from its own name, reads the shebang, starts the program, waits and exits
    with the child's code."""
    exe = _setuptools_launcher(tmp_path, _windows_path(mingw_exes["exitwith"]))
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    for code in ("0", "42", "0x1234"):
        wine_out, _err, wine_status = run_wine(wine_env, exe, code, cwd=str(tmp_path / "w"))
        ours = run_pysud(exe, code, prefix=prefix, cwd=str(tmp_path / "p"))
        assert ours.stdout == wine_out, ours.stderr.decode()
        assert ours.returncode == wine_status == int(code, 0) & 0xFF, ours.stderr.decode()
        assert b"not implemented" not in ours.stderr, ours.stderr.decode()
    for d in ("w", "p"):  # neither left a file behind
        assert os.listdir(tmp_path / d) == []


@requires_wine
@pytest.mark.slow
def test_setuptools_launcher_child_runs_under_pysud(
    mingw_exes: dict[str, str],
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    exe = _setuptools_launcher(tmp_path, _windows_path(mingw_exes["whoruns"]))
    r = run_pysud(exe, "a", "b c", prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.returncode == 3, r.stderr.decode()[-3000:]
    script = _windows_path(str(tmp_path / "launch-script.py"))
    expected = [f"argv[1] = {script}", "argv[2] = a", "argv[3] = b c"]
    # the child saw the script's path and the arguments, and its process is a pysud
    assert r.stdout.decode().splitlines() == ["run by pysud: yes", *expected]
    wine_out, _err, wine_status = run_wine(wine_env, exe, "a", "b c", cwd=str(tmp_path))
    assert (wine_out.decode().splitlines(), wine_status) == (["run by pysud: no", *expected], 3)
    trace = r.stderr.decode()
    assert "launch-script.py" in trace and "NtCreateUserProcess(" in trace
    assert "NtSetInformationProcess(0xffffffffffffffff, 0x22" in trace  # DEP off, refused
    assert "NtTerminateProcess(ProcessHandle=0xffffffffffffffff, ExitStatus=0x3)" in trace


# ---- exit codes are 32-bit: a child's whole code reaches its parent


CMD = os.path.join(DLLS, "cmd.exe") if DLLS else ""


@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize(
    "line",
    [
        "exitwith.exe 300 & echo %errorlevel%",
        "exitwith.exe 0xC0000005 & echo %errorlevel%",
        "cmd /c exit /b 300 & echo %errorlevel%",
        "(cmd /c exit /b 65537) & if errorlevel 65537 echo at least 65537",
    ],
)
def test_child_exit_codes_are_32_bit(
    line: str,
    mingw_exes: dict[str, str],
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    for d in ("w", "p"):
        (tmp_path / d).mkdir()
        shutil.copy(mingw_exes["exitwith"], tmp_path / d / "exitwith.exe")
    wine_out, _err, wine_status = run_wine(wine_env, CMD, "/c", line, cwd=str(tmp_path / "w"))
    ours = run_pysud(CMD, "/c", line, prefix=prefix, cwd=str(tmp_path / "p"))
    assert ours.stdout == wine_out, ours.stderr.decode()
    assert ours.returncode == wine_status, ours.stderr.decode()
    assert wine_out.strip() not in (b"", b"44", b"5")  # the whole code, not its low byte


# ---- Wine's console programs


@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("program", ["whoami.exe", "hostname.exe"])
def test_wine_console_program_matches_wine(
    program: str,
    prefix: str,  # noqa: F811
    wine_env: dict[str, str],  # noqa: F811
    tmp_path,
) -> None:
    """whoami: GetUserNameEx(NameSamCompatible) = COMPUTERNAME\\user, which advapi32 reads from the
    environment Wine's ntdll builds (WINEUSERNAME)."""
    assert DLLS is not None
    _compare(os.path.join(DLLS, program), (), prefix, wine_env, tmp_path)
