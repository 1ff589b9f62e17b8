"""Numbering an NT program can observe: numbers read from ntdll's exported stubs (Hell's Gate),
from the address order of the Zw exports (SysWhispers2) and the selected Windows build's numbers
typed into the program all reach the same NT call, on pysud's own ntdll and on Wine's DLLs; and
the core's renumbering by call site that makes it so with Wine's DLLs (docs/nt.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from asm import assemble
from conftest import requires_sud
from pysud import CodeBlob, Dispatcher
from pysud.nt import _profiles, wine
from pysud.nt.prefix import find_wine_dlls

NR_GETPID = 39
NR_GETPPID = 110
GETPPID_BLOB = assemble("mov eax, 110\nsyscall\nret")


@requires_sud
def test_renumber_applies_outside_the_kept_range_only() -> None:
    inside, outside = CodeBlob(GETPPID_BLOB), CodeBlob(GETPPID_BLOB)
    d = Dispatcher()
    seen: list[tuple[int, str, int]] = []
    d.on("getpid", lambda call: seen.append((call.nr, "getpid", call.call_addr)) or 1111)
    d.on("getppid", lambda call: seen.append((call.nr, "getppid", call.call_addr)) or 2222)
    table = list(range(NR_GETPPID + 1))
    table[NR_GETPPID] = NR_GETPID
    lo, size = inside.region
    d.renumber(table, (lo, lo + size))
    assert inside.run(d) == 2222
    assert outside.run(d) == 1111
    assert seen == [
        (NR_GETPPID, "getppid", inside.address + 7),
        (NR_GETPID, "getpid", outside.address + 7),
    ]
    assert d.counts() == {"getpid": 1, "getppid": 1}
    d.renumber([], (0, 0))
    assert outside.run(d) == 2222


def test_renumber_refuses_numbers_out_of_range() -> None:
    d = Dispatcher()
    with pytest.raises(ValueError, match="renumber table"):
        d.renumber([600], (0, 1))
    with pytest.raises(ValueError, match="renumber table"):
        d.renumber([0] * 513, (0, 1))


# ---- the program: tests/nt/numbering.c, with each Windows build's numbers typed in

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "nt")
CC = shutil.which("x86_64-w64-mingw32-gcc")
DLLS = find_wine_dlls()
CALLS = ("NtWriteFile", "NtQuerySystemTime", "NtCreateEvent", "NtSetEvent", "NtClose", "NtCreateTimer")
WAYS = ("hells-gate", "syswhispers2", "hard-coded", "exported-stubs")
requires_cc = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)
requires_dlls = pytest.mark.skipif(DLLS is None, reason="no Wine PE DLLs installed (wine64 8.0+)")


def numbers(profile: str) -> dict[str, int]:
    by_name = {name: nr for nr, name in _profiles.TABLES[profile].items()}
    return {name: by_name[name] for name in CALLS}


@pytest.fixture(scope="module")
def exes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    assert CC is not None
    out = tmp_path_factory.mktemp("numbering")
    built = {}
    for profile in _profiles.TABLES:
        exe = str(out / f"numbering-{profile}.exe")
        typed_in = [f"-DNR_{name}={nr:#x}" for name, nr in numbers(profile).items()]
        cmd = [
            CC,
            "-O2",
            "-Wall",
            "-Werror",
            "-nostdlib",
            "-ffreestanding",
            "-e",
            "mainCRTStartup",
            f"-I{SRC}",
        ]
        cmd += [*typed_in, "-o", exe, os.path.join(SRC, "numbering.c"), "-lntdll", "-lgcc"]
        subprocess.run(cmd, check=True, capture_output=True)
        built[profile] = exe
    return built


def expected_stdout(profile: str) -> str:
    nrs = " ".join(f"{name}={nr:#x}" for name, nr in numbers(profile).items())
    text = "checker sees a clobber: 0x18060101\n"  # rbx, xmm6 low, xmm15 high, MXCSR: the checker can fail
    for way in WAYS:
        text += f"{way}:{'' if way == 'exported-stubs' else ' ' + nrs}\n{way}: NtWriteFile wrote this\n"
        text += "  write = 0x0\n  time = 0x0\n  time agrees\n  create event = 0x0\n  set event = 0x0\n"
        text += "  previous state = 0\n  close = 0x0\n  create timer = 0x0\n  close timer = 0x0\n"
        text += "  close again = 0xc0000008\n  registers changed = 0x0\n"
    return text


def run_numbering(exe: str, log: str, *options: str) -> subprocess.CompletedProcess[bytes]:
    hooks = os.path.join(SRC, "numbering_hooks.py")
    return subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--hooks", hooks, *options, exe],
        capture_output=True,
        timeout=120,
        env=dict(os.environ, NUMBERING_LOG=log),
    )


def logged(log: str) -> list[list[str]]:
    with open(log) as f:
        return [line.split() for line in f]


@requires_sud
@requires_cc
@pytest.mark.parametrize("flip", [False, True], ids=["trap", "flip-switch"])
@pytest.mark.parametrize("profile", sorted(_profiles.TABLES))
def test_three_numberings_reach_the_same_call_on_pysuds_ntdll(
    exes: dict[str, str], profile: str, flip: bool, tmp_path
) -> None:
    log = str(tmp_path / "calls.log")
    options = ("--ntdll", "builtin", "--nt-profile", profile, *(("--flip-switch",) if flip else ()))
    r = run_numbering(exes[profile], log, *options)
    assert r.stdout.decode() == expected_stdout(profile), r.stderr.decode()
    assert r.returncode == 0
    calls = logged(log)
    # the handler saw every way's calls: the bogus handle of each way, from the program's own
    # `syscall` (Hell's Gate, SysWhispers2, typed-in numbers) or through ntdll's stubs
    nr_close = numbers(profile)["NtClose"]
    closes = [c for c in calls if c[0] == "NtClose" and c[2].startswith("0x777")]
    assert closes == [
        ["NtClose", hex(nr_close), "0x7770", "program"],
        ["NtClose", hex(nr_close), "0x7774", "program"],
        ["NtClose", hex(nr_close), "0x7778", "program"],
        ["NtClose", hex(nr_close), "0x777c", "pysud-ntdll"],
    ]
    timers = [c for c in calls if c[0] == "NtCreateTimer"]
    assert [c[1] for c in timers] == [hex(numbers(profile)["NtCreateTimer"])] * 4


@requires_sud
@requires_cc
@requires_dlls
@pytest.mark.parametrize("flip", [False, True], ids=["trap", "flip-switch"])
@pytest.mark.parametrize("profile", sorted(_profiles.TABLES))
def test_three_numberings_reach_the_same_call_on_wines_dlls(
    exes: dict[str, str], profile: str, flip: bool, tmp_path
) -> None:
    log = str(tmp_path / "calls.log")
    options = ("--ntdll", "wine", "--prefix", str(tmp_path / "pfx"), "--nt-profile", profile)
    r = run_numbering(exes[profile], log, *options, "--flip-switch" if flip else "--no-flip-switch")
    assert r.stdout.decode() == expected_stdout(profile), r.stderr.decode()
    assert r.returncode == 0
    calls = logged(log)
    # one handler, whatever the numbering at the call site: the program's own `syscall` with the
    # build's number and pysud's Windows-numbered stubs are renumbered to the personality's
    # number for the call (Wine's, where Wine has the call)
    stub = "block+0x1f" if flip else "block+0x14"
    closes = [c for c in calls if c[0] == "NtClose" and c[2].startswith("0x777")]
    assert [c[2:] for c in closes] == [
        ["0x7770", "program"],
        ["0x7774", "program"],
        ["0x7778", "program"],
        ["0x777c", stub],
    ]
    timers = [c for c in calls if c[0] == "NtCreateTimer"]
    assert [c[3] for c in timers] == ["program", "program", "program", stub]
    for name, seen in (("NtClose", closes), ("NtCreateTimer", timers)):
        assert len({c[1] for c in seen}) == 1
        assert int(seen[0][1], 16) != numbers(profile)[name]  # renumbered: Wine's numbers differ


@requires_sud
@requires_cc
@requires_dlls
def test_wines_own_calls_keep_wines_numbers_beside_the_builds(tmp_path) -> None:
    """A mingw program on Wine's DLLs with a build selected: ntdll's own NtClose calls (its loader)
    and kernelbase's (bound to the Windows-numbered block through the export directory) reach
    the one handler under one number."""
    assert CC is not None
    exe = str(tmp_path / "hello.exe")
    subprocess.run([CC, "-O2", "-o", exe, os.path.join(SRC, "wine", "hello.c")], check=True)
    log = str(tmp_path / "calls.log")
    r = run_numbering(
        exe, log, "--ntdll", "wine", "--prefix", str(tmp_path / "pfx"), "--nt-profile", "win11-23h2"
    )
    assert r.returncode == 42, r.stderr.decode()
    closes = [c for c in logged(log) if c[0] == "NtClose"]
    sites = {c[3] for c in closes}
    assert "wine-ntdll" in sites and "block+0x1f" in sites  # the flip switch: the default on Wine's DLLs
    assert len({c[1] for c in closes}) == 1


@requires_sud
@requires_cc
@requires_dlls
def test_wines_own_numbering_when_no_build_is_selected(exes: dict[str, str], tmp_path) -> None:
    """Without --nt-profile, Wine's DLLs keep Wine's numbering everywhere: numbers read from the
    exported stubs (Hell's Gate) and the stubs themselves work; a build's typed-in numbers do not
    (docs/nt.md says so)."""
    log = str(tmp_path / "calls.log")
    r = run_numbering(exes["win11-23h2"], log, "--ntdll", "wine", "--prefix", str(tmp_path / "pfx"))
    assert r.returncode == 0, r.stderr.decode()
    sections = r.stdout.decode().split("\n", 1)[1].split("\nsyswhispers2:")
    good = expected_stdout("win11-23h2").split("\n", 1)[1].split("\nsyswhispers2:")
    assert sections[0].split("\n", 1)[1] == good[0].split("\n", 1)[1]  # Hell's Gate, Wine's numbers
    stubs = r.stdout.decode().split("\nexported-stubs:", 1)[1]
    assert stubs == expected_stdout("win11-23h2").split("\nexported-stubs:", 1)[1]
    assert "hells-gate: NtWriteFile=0x8 " not in sections[0]  # the numbers read were Wine's


def test_windows_numbering_gives_each_build_number_the_call_of_its_name() -> None:
    wine_table = {0: "NtClose", 1: "NtWriteFile", 2: "__wine_dbg_write"}
    private = {5: "PysudReturn"}
    build = {0: "NtWriteFile", 1: "NtOpenKeyTransacted", 2: "NtClose", 3: "NtCreateCrossVmEvent"}
    table, renumber = wine.windows_numbering(wine_table, private, build, limit=8)
    assert [table[n] for n in renumber] == [build[nr] for nr in range(4)]
    assert renumber[:1] == [1] and renumber[2] == 0  # Wine's numbers where Wine has the call
    assert {n: table[n] for n in wine_table} == wine_table  # Wine's own numbering stays
    assert not set(renumber) & set(private)  # pysud's own numbers are never handed out
    with pytest.raises(wine.PELoadError, match="no number below 4"):
        wine.windows_numbering(wine_table, private, build, limit=4)


@requires_sud
@requires_cc
@requires_dlls
@pytest.mark.parametrize("profile", sorted(_profiles.TABLES))
def test_getprocaddress_reads_the_windows_numbered_export_directory(profile: str, tmp_path) -> None:
    """Wine's loader (GetProcAddress -> LdrGetProcedureAddress) finds the build's calls, also one
    Wine lacks, at stubs with the build's numbers, and no Zw name for Wine's non-call."""
    assert CC is not None
    exe = str(tmp_path / "getproc.exe")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-o", exe, os.path.join(SRC, "getproc.c")], check=True)
    log = str(tmp_path / "calls.log")
    r = run_numbering(exe, log, "--ntdll", "wine", "--prefix", str(tmp_path / "pfx"), "--nt-profile", profile)
    by_name = {name: nr for nr, name in _profiles.TABLES[profile].items()}
    close, timer, cross = (by_name[n] for n in ("NtClose", "NtCreateTimer", "NtCreateCrossVmEvent"))
    assert r.stdout.decode().replace("\r\n", "\n") == (
        f"NtClose: found, number {close:#x}\nZwClose: found, number {close:#x}\n"
        f"NtCreateTimer: found, number {timer:#x}\nNtCreateCrossVmEvent: found, number {cross:#x}\n"
        "ZwGetTickCount: missing, number 0xffffffff\nNtClose(0x7788) = 0xc0000008\n"
    )
    assert r.returncode == 0, r.stderr.decode()
    assert [c[2:] for c in logged(log) if c[2] == "0x7788"] == [["0x7788", "block+0x1f"]]
