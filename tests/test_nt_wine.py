"""Windows programs on Wine's own PE DLLs (ntdll, kernel32, kernelbase, msvcrt) with pysud as the
kernel: mingw C programs (tests/nt/wine/*.c, built at test time) must print what `wine` prints for
the same .exe and end with the same status; the trace must show the NT calls pysud handled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import requires_sud
from pysud.nt.prefix import find_wine_dlls

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "nt", "wine")
NT_SRC = os.path.join(HERE, "nt")
CC = shutil.which("x86_64-w64-mingw32-gcc")
CXX = shutil.which("x86_64-w64-mingw32-g++")
WINE = next(
    (
        w
        for w in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine"))
        if w and os.path.exists(w)
    ),
    None,
)
DLLS = find_wine_dlls()
PROGRAMS = [
    "hello",
    "stdio",
    "dirs",
    "env",
    "stdin",
    "threads",
    "timing",
    "faults",
    "cxx",
    "exitthread",
    "spinworker",
]
NTDLL_ONLY = ["hello", "files", "dirlist", "memory", "timing", "threads", "exitcode"]
STDIN = b"one\ntwo three\n\nfour\n"

if os.environ.get("CI") and not (CC and WINE and DLLS):
    raise RuntimeError("CI must have mingw-w64 and wine64 8.0+ (tools/run_tests.sh installs them)")
requires_cc = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)
requires_wine = pytest.mark.skipif(WINE is None, reason="wine64 not installed (the oracle)")
requires_dlls = pytest.mark.skipif(DLLS is None, reason="no Wine PE DLLs installed (wine64 8.0+)")
pytestmark = [requires_sud, requires_cc, requires_dlls]


@pytest.fixture(scope="module")
def exes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    assert CC is not None
    out = tmp_path_factory.mktemp("wine-exe")
    built = {}
    for name in [*PROGRAMS, "crash"]:
        exe = str(out / f"{name}.exe")
        if name == "cxx":
            if CXX is None:
                continue
            cmd = [CXX, "-O2", "-static", "-o", exe, os.path.join(SRC, "cxx.cpp")]
        else:
            cmd = [CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, f"{name}.c")]
        subprocess.run(cmd, check=True)
        built[name] = exe
    for name in NTDLL_ONLY:
        exe = str(out / f"nt-{name}.exe")
        cmd = [CC, "-O2", "-nostdlib", "-ffreestanding", "-e", "mainCRTStartup", f"-I{NT_SRC}", "-o", exe]
        subprocess.run([*cmd, os.path.join(NT_SRC, f"{name}.c"), "-lntdll", "-lgcc"], check=True)
        built[f"nt-{name}"] = exe
    return built


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("pysud-prefix") / "prefix")


@pytest.fixture(scope="module")
def wine_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if WINE is None:
        pytest.skip("wine64 not installed")
    env = dict(
        os.environ,
        WINEPREFIX=str(tmp_path_factory.mktemp("wineprefix")),
        WINEDEBUG="-all",
        WINEDLLOVERRIDES="winedbg.exe=d",  # a crash ends the process, as on a Windows without a debugger
    )
    subprocess.run([WINE, "wineboot", "-i"], env=env, capture_output=True, timeout=600)
    return env


def run_wine(
    env: dict[str, str], exe: str, *args: str, cwd: str, stdin: bytes = b""
) -> tuple[bytes, bytes, int]:
    assert WINE is not None
    r = subprocess.run(
        [WINE, exe, *args],
        env=dict(env, PYSUD_TEST_VAR="value"),
        input=stdin,
        capture_output=True,
        timeout=120,
        cwd=cwd,
    )
    return r.stdout, r.stderr, r.returncode


def run_pysud(
    exe: str, *args: str, prefix: str, cwd: str, stdin: bytes = b"", options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--prefix", prefix, *options, exe, *args],
        env=dict(os.environ, PYSUD_TEST_VAR="value"),
        input=stdin,
        capture_output=True,
        timeout=120,
        cwd=cwd,
    )


@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS + [f"nt-{p}" for p in NTDLL_ONLY])
def test_program_matches_wine(
    program: str, exes: dict[str, str], prefix: str, wine_env: dict[str, str], tmp_path
) -> None:
    if program not in exes:
        pytest.skip("x86_64-w64-mingw32-g++ not installed (g++-mingw-w64-x86-64-posix)")
    args = ("42",) if program.startswith("nt-") else ("first arg", "2")
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    wine_out, _err, wine_status = run_wine(
        wine_env, exes[program], *args, cwd=str(tmp_path / "w"), stdin=STDIN
    )
    ours = run_pysud(exes[program], *args, prefix=prefix, cwd=str(tmp_path / "p"), stdin=STDIN)
    assert ours.stdout.decode() == wine_out.decode(), ours.stderr.decode()
    assert ours.returncode == wine_status, ours.stderr.decode()
    assert wine_out  # every program prints something: an empty match proves nothing
    # files left behind: the programs clean up after themselves, in both runs
    assert sorted(os.listdir(tmp_path / "p")) == sorted(os.listdir(tmp_path / "w"))


def test_hello_runs_on_wines_dlls_through_pysuds_handlers(
    exes: dict[str, str], prefix: str, tmp_path
) -> None:
    r = run_pysud(exes["hello"], "x", prefix=prefix, cwd=str(tmp_path), options=("--trace",))
    assert r.stdout == b"hello from a mingw program, 2 arguments\r\nargv[1] = x\r\n"  # msvcrt text mode
    assert r.returncode == 42
    trace = r.stderr.decode()
    # the DLLs were loaded by Wine's ntdll through pysud's file and section calls
    lines = trace.splitlines()
    for dll in ("kernel32.dll", "kernelbase.dll", "msvcrt.dll"):
        opened = [ln for ln in lines if ln.startswith("[nt] NtOpenFile(") and "system32" in ln and dll in ln]
        assert opened and opened[-1].endswith("= STATUS_SUCCESS"), (dll, opened)
    assert "NtMapViewOfSection(" in trace and "NtContinue(" in trace
    # printf's bytes went through pysud's NtWriteFile, the status through NtTerminateProcess
    assert "NtWriteFile(FileHandle=" in trace
    assert "NtTerminateProcess(ProcessHandle=0xffffffffffffffff, ExitStatus=0x2a)" in trace


def test_prefix_is_created_as_wine_lays_it_out(exes: dict[str, str], tmp_path) -> None:
    pfx = tmp_path / "fresh"
    r = run_pysud(exes["hello"], prefix=str(pfx), cwd=str(tmp_path))
    assert r.returncode == 42, r.stderr.decode()
    assert (pfx / "drive_c" / "windows" / "system32").is_dir()
    assert os.readlink(pfx / "dosdevices" / "c:") == "../drive_c"
    assert os.readlink(pfx / "dosdevices" / "z:") == "/"


def test_pysud_prefix_environment_variable(exes: dict[str, str], tmp_path) -> None:
    env = dict(os.environ, PYSUD_PREFIX=str(tmp_path / "env-prefix"))
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "run", exes["hello"]], env=env, capture_output=True, timeout=120
    )
    assert r.returncode == 42, r.stderr.decode()
    assert (tmp_path / "env-prefix" / "drive_c").is_dir()


def test_dlls_option_picks_another_directory(exes: dict[str, str], prefix: str, tmp_path) -> None:
    assert DLLS is not None
    mine = tmp_path / "dlls"
    mine.mkdir()
    for name in ("ntdll.dll", "kernel32.dll", "kernelbase.dll", "msvcrt.dll", "apisetschema.dll"):
        shutil.copy(os.path.join(DLLS, name), mine / name)
    r = run_pysud(exes["hello"], prefix=prefix, cwd=str(tmp_path), options=("--dlls", str(mine), "--trace"))
    assert r.returncode == 42 and r.stdout.startswith(b"hello from"), r.stderr.decode()
    # without kernel32 in the set, loading fails the way Windows fails: STATUS_DLL_NOT_FOUND
    (mine / "kernel32.dll").unlink()
    r = run_pysud(exes["hello"], prefix=prefix, cwd=str(tmp_path), options=("--dlls", str(mine)))
    assert r.returncode == 0xC0000135 & 0xFF, r.stderr.decode()
    assert "Traceback" not in r.stderr.decode()


def test_dlls_without_ntdll_is_a_clear_error(exes: dict[str, str], prefix: str, tmp_path) -> None:
    r = run_pysud(
        exes["hello"], prefix=prefix, cwd=str(tmp_path), options=("--ntdll", "wine", "--dlls", str(tmp_path))
    )
    assert r.returncode == 2 and "ntdll.dll" in r.stderr.decode(), r.stderr.decode()
    assert "Traceback" not in r.stderr.decode()


def test_builtin_ntdll_still_refuses_kernel32_programs(exes: dict[str, str], prefix: str, tmp_path) -> None:
    r = run_pysud(exes["hello"], prefix=prefix, cwd=str(tmp_path), options=("--ntdll", "builtin"))
    assert r.returncode == 2 and "pysud provides ntdll.dll only" in r.stderr.decode()


def test_faults_reach_the_programs_handler_through_pysud(exes: dict[str, str], prefix: str, tmp_path) -> None:
    # the vectored handler's view is Windows' (tested against wine above); here: pysud made it so,
    # one signal turned exception each (AV write, AV read, int3, divide), resumed by NtContinue
    code = (
        "import sys, collections, pysud.nt as nt\n"
        "p = nt.NtPersonality(ntdll='wine', prefix=sys.argv[2])\n"
        "seen = collections.Counter()\n"
        "for name in ('PysudFault', 'NtContinue'):\n"
        "    h = p.d.handler_of(name)\n"
        "    p.on(name, lambda call, h=h, name=name: (seen.update([name]), h(call))[1])\n"
        "status = p.run(sys.argv[1])\n"
        "print(status, seen['PysudFault'], seen['NtContinue'], file=sys.stderr)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, exes["faults"], prefix],
        capture_output=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    status, faults, continues = r.stderr.decode().split()[-3:]
    assert (int(status), int(faults)) == (4, 4), r.stderr.decode()
    assert int(continues) == 5  # the start, and the return from each handler


@requires_wine
def test_unhandled_crash_reports_and_exits_as_windows(
    exes: dict[str, str], prefix: str, wine_env: dict[str, str], tmp_path
) -> None:
    wine_out, wine_err, wine_status = run_wine(wine_env, exes["crash"], cwd=str(tmp_path))
    r = run_pysud(exes["crash"], prefix=prefix, cwd=str(tmp_path))
    assert r.stdout == wine_out == b"about to crash\r\n"
    assert r.returncode == wine_status == 0xC0000005 & 0xFF
    # kernelbase's own report, as wine prints it (thread ids differ)
    message = "wine: Unhandled page fault on write access to 0000000000000000 at address"
    assert message in r.stderr.decode() and message in wine_err.decode()
    assert "Traceback" not in r.stderr.decode()


CMD_CASES = [
    "echo hello world",
    "echo a& echo b",
    "set PYSUD_X=1& call echo %PYSUD_X%",
    "exit /b 7",
    "echo hi> out.txt& type out.txt& del out.txt",
    "if exist out.txt (echo yes) else (echo no)",
    "for %i in (1 2 3) do @echo %i",
    "mkdir sub& echo x> sub\\f.txt& dir /b sub& rmdir /s /q sub& if exist sub (echo left) else (echo gone)",
    "echo x > nul& echo after nul",
    # child processes (NtCreateUserProcess: a new pysud process on the same prefix)
    'echo one two| find "two"',
    "hostname",
    "echo b> f.txt& attrib f.txt& del f.txt",
    'xcopy /? > help.txt& find /c "XCOPY" help.txt& del help.txt',
    "cmd /c exit 5& echo child said %ERRORLEVEL%",
]


@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("command", CMD_CASES)
def test_wine_cmd_matches_wine(command: str, prefix: str, wine_env: dict[str, str], tmp_path) -> None:
    # Wine's own cmd.exe, its builtins, redirection and exit codes, on pysud's kernel
    assert DLLS is not None
    cmd = os.path.join(DLLS, "cmd.exe")
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    wine_out, _err, wine_status = run_wine(wine_env, "cmd", "/c", command, cwd=str(tmp_path / "w"))
    ours = run_pysud(cmd, "/c", command, prefix=prefix, cwd=str(tmp_path / "p"))
    # the two runs' directories differ by name only
    windows_dir = "Z:" + str(tmp_path).replace("/", "\\")
    mine = ours.stdout.decode().replace(windows_dir + "\\p", "<cwd>")
    theirs = wine_out.decode().replace(windows_dir + "\\w", "<cwd>")
    assert mine == theirs, ours.stderr.decode()
    assert ours.returncode == wine_status, ours.stderr.decode()
    assert sorted(os.listdir(tmp_path / "p")) == sorted(os.listdir(tmp_path / "w"))


def test_threads_that_never_call_again_leave_with_the_process(
    exes: dict[str, str], prefix: str, tmp_path
) -> None:
    # in-process: run() returns the program's status and its spinning thread leaves the guest
    code = (
        "import sys, time, pysud.nt as nt\n"
        "p = nt.NtPersonality(ntdll='wine', prefix=sys.argv[2])\n"
        "rc = p.run(sys.argv[1])\n"
        "deadline = time.time() + 10\n"
        "while time.time() < deadline and not all(t.done for t in p.threads):\n"
        "    time.sleep(0.02)\n"
        "print(rc, len(p.threads), all(t.done for t in p.threads))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, exes["spinworker"], prefix],
        capture_output=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert r.stdout.decode().split()[-3:] == ["5", "1", "True"], r.stderr.decode()


def test_cmd_starts_children_through_nt_create_user_process(prefix: str, tmp_path) -> None:
    assert DLLS is not None
    r = run_pysud(
        os.path.join(DLLS, "cmd.exe"),
        "/c",
        "hostname& cmd /c exit 9",
        prefix=prefix,
        cwd=str(tmp_path),
        options=("--trace",),
    )
    assert r.returncode == 9, r.stderr.decode()
    created = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("[nt] NtCreateUserProcess(")]
    assert len(created) == 2 and all(ln.endswith("= STATUS_SUCCESS") for ln in created), created
    assert r.stdout.strip(), "hostname printed nothing"
