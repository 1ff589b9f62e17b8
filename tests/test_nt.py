"""The NT personality on pysud's own ntdll (``--ntdll builtin``): Windows test programs (tests/nt/*.c,
built with mingw-w64 at test time) run under pysud; their stdout and exit status must equal Wine's
for the same .exe, and each direct-syscall variant's must equal its import-based twin's.
tests/test_nt_wine.py runs programs on Wine's PE DLLs."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import pefile
import pytest

from conftest import requires_sud
from pysud.nt import _profiles, ntdll
from pysud.nt.prefix import find_wine_dlls

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "nt")
CC = shutil.which("x86_64-w64-mingw32-gcc")
WINE = next(
    (
        w
        for w in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine"))
        if w and os.path.exists(w)
    ),
    None,
)
PROGRAMS = ["hello", "files", "dirlist", "memory", "timing", "threads", "exitcode"]

if os.environ.get("CI") and not (CC and WINE):
    raise RuntimeError("CI must have mingw-w64 and wine64 (tools/run_tests.sh installs them)")
requires_cc = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)
requires_wine = pytest.mark.skipif(WINE is None, reason="wine64 not installed (the oracle)")


def build(out_dir: str, name: str, *, direct: bool = False, extra: tuple[str, ...] = ()) -> str:
    assert CC is not None
    exe = os.path.join(out_dir, f"{name}{'-direct' if direct else ''}.exe")
    cmd = [CC, "-O2", "-Wall", "-Werror", "-nostdlib", "-ffreestanding", "-e", "mainCRTStartup", f"-I{SRC}"]
    cmd += ["-DDIRECT_SYSCALLS"] if direct else []
    cmd += ["-o", exe, os.path.join(SRC, f"{name}.c"), *extra, "-lntdll", "-lgcc"]
    subprocess.run(cmd, check=True, capture_output=True)
    return exe


@pytest.fixture(scope="session")
def exes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], str]:
    if CC is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed")
    out = str(tmp_path_factory.mktemp("nt-exe"))
    return {(p, d): build(out, p, direct=d) for p in [*PROGRAMS, "close_direct"] for d in (False, True)}


@pytest.fixture(scope="session")
def wine_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh WINEPREFIX, initialised once (the first run takes a while)."""
    if WINE is None:
        pytest.skip("wine64 not installed")
    env = dict(os.environ, WINEPREFIX=str(tmp_path_factory.mktemp("wineprefix")), WINEDEBUG="-all")
    subprocess.run([WINE, "wineboot", "-i"], env=env, capture_output=True, timeout=600)
    return env


def run_wine(env: dict[str, str], exe: str, *args: str) -> tuple[bytes, int]:
    assert WINE is not None
    r = subprocess.run([WINE, exe, *args], env=env, capture_output=True, timeout=120)
    return r.stdout, r.returncode


def run_pysud(
    exe: str, *args: str, options: tuple[str, ...] = (), cwd: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--ntdll", "builtin", *options, exe, *args],
        capture_output=True,
        timeout=120,
        cwd=cwd,
    )


@requires_sud
@requires_cc
@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_program_matches_wine(
    program: str, exes: dict[tuple[str, bool], str], wine_env: dict[str, str]
) -> None:
    exe = exes[(program, False)]
    wine_out, wine_status = run_wine(wine_env, exe, "42")
    ours = run_pysud(exe, "42")
    assert ours.stdout.decode() == wine_out.decode()
    assert ours.returncode == wine_status, ours.stderr.decode()
    assert wine_out  # every program prints something: an empty match proves nothing


@requires_sud
@requires_cc
@pytest.mark.parametrize("program", PROGRAMS)
def test_direct_syscall_variant_matches_import_twin(program: str, exes: dict[tuple[str, bool], str]) -> None:
    imported = run_pysud(exes[(program, False)], "42")
    direct = run_pysud(exes[(program, True)], "42")
    assert imported.stdout and imported.stdout == direct.stdout
    assert imported.returncode == direct.returncode, direct.stderr.decode()


@requires_sud
@requires_cc
def test_direct_ntclose(exes: dict[tuple[str, bool], str]) -> None:
    imported = run_pysud(exes[("close_direct", False)])
    direct = run_pysud(exes[("close_direct", True)])
    assert imported.stdout == b"event = 0x0\nclose = 0x0\n"
    assert direct.stdout == imported.stdout and direct.returncode == 0


@requires_sud
@requires_cc
@pytest.mark.parametrize("program", PROGRAMS)
def test_flip_switch_path_matches_the_trap_path(program: str, exes: dict[tuple[str, bool], str]) -> None:
    # The same import-based program, its ntdll calls entering without a kernel trap.
    trapped = run_pysud(exes[(program, False)], "42")
    flipped = run_pysud(exes[(program, False)], "42", options=("--flip-switch",))
    assert trapped.stdout and flipped.stdout == trapped.stdout, flipped.stderr.decode()
    assert flipped.returncode == trapped.returncode


@requires_sud
@requires_cc
@pytest.mark.parametrize("dll_set", ["builtin", "wine"])
def test_flip_switch_calls_make_no_kernel_trap(
    exes: dict[tuple[str, bool], str], dll_set: str, tmp_path
) -> None:
    # strace sees every SIGSYS the kernel sends: the trap path (no flip switch, no rewriting)
    # has one per NT call, the flip switch none for calls made through ntdll (pysud's stubs jump
    # to the core's direct entry; Wine's `call [0x7ffe1000]`, which holds pysud's entry to it);
    # with rewriting on, pysud's stubs take the direct entry without the flip switch too.
    if shutil.which("strace") is None:
        pytest.skip("strace not installed (tools/run_tests.sh installs it)")
    if dll_set == "wine" and find_wine_dlls() is None:
        pytest.skip("no Wine PE DLLs installed (tools/run_tests.sh installs wine64)")
    where = ("--prefix", str(tmp_path / "pfx")) if dll_set == "wine" else ()
    counts = []
    runs = [(("--no-flip-switch", "--no-rewrite"), "0"), (("--flip-switch",), "0")]
    if dll_set == "builtin":
        runs.append((("--no-flip-switch",), "1"))
    for opts, rewrite in runs:
        r = subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-e",
                "trace=none",
                "-e",
                "signal=SIGSYS",
                sys.executable,
                "-m",
                "pysud",
                "run",
                "--ntdll",
                dll_set,
                *where,
                *opts,
                exes[("files", False)],
                "42",
            ],
            env=dict(os.environ, PYSUD_REWRITE=rewrite),
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        counts.append(r.stderr.count(b"SYS_USER_DISPATCH"))
    assert counts[0] > 20
    assert counts[1] < counts[0] // 4
    assert all(c < counts[0] // 4 for c in counts[2:]), counts


@requires_sud
@requires_cc
def test_trace_decodes_paths_and_statuses(exes: dict[tuple[str, bool], str]) -> None:
    r = run_pysud(exes[("files", False)], options=("--trace",))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "[nt] NtCreateFile(FileHandle=" in err
    assert 'ObjectAttributes="\\\\??\\\\C:\\\\pysud-files"' in err  # quoted as strace quotes
    assert "= STATUS_OBJECT_NAME_COLLISION" in err and "= STATUS_OBJECT_NAME_NOT_FOUND" in err
    assert "[nt] NtClose(Handle=" in err
    assert "[nt]" not in r.stdout.decode()


@requires_sud
@requires_cc
def test_drive_map_puts_files_in_the_host_directory(tmp_path, exes: dict[tuple[str, bool], str]) -> None:
    seen = tmp_path / "seen"
    code = (
        "import os, sys, pysud.nt as nt\n"
        "p = nt.NtPersonality(drives={'C': sys.argv[2]})\n"
        "orig = p.d.handler_of('NtWriteFile')\n"
        "def spy(call):\n"
        "    open(sys.argv[3], 'a').write(' '.join(sorted(os.listdir(sys.argv[2]))) + '\\n')\n"
        "    return orig(call)\n"
        "p.on('NtWriteFile', spy)\n"
        "sys.exit(p.run(sys.argv[1]))\n"
    )
    drive = tmp_path / "c"
    drive.mkdir()
    r = subprocess.run(
        [sys.executable, "-c", code, exes[("files", False)], str(drive), str(seen)],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr.decode()
    lines = seen.read_text().splitlines()
    assert "pysud-files" in lines[1]  # the directory the program created exists on the host
    assert os.listdir(drive) == []  # and the program removed it again


@requires_sud
@requires_cc
def test_unimplemented_call_is_reported_once_by_name(tmp_path) -> None:
    src = tmp_path / "unimpl.c"
    src.write_text(
        '#include "nt.h"\n'
        "NTSTATUS NTAPI NtFlushProcessWriteBuffers(void);\n"
        "int mainCRTStartup(void) {\n"
        '  check("first", NtFlushProcessWriteBuffers());\n'
        '  check("second", NtFlushProcessWriteBuffers());\n'
        "  return 0;\n}\n"
    )
    exe = tmp_path / "unimpl.exe"
    subprocess.run(
        [
            CC,
            "-O2",
            "-nostdlib",
            "-ffreestanding",
            "-e",
            "mainCRTStartup",
            f"-I{SRC}",
            "-o",
            exe,
            src,
            "-lntdll",
            "-lgcc",
        ],
        check=True,
    )
    r = run_pysud(str(exe))
    assert r.stdout == b"first = 0xc0000002\nsecond = 0xc0000002\n"
    assert r.stderr.decode().count("NtFlushProcessWriteBuffers is not implemented") == 1


@requires_sud
@requires_cc
def test_relocated_when_the_preferred_base_is_taken(tmp_path) -> None:
    src = tmp_path / "reloc.c"
    src.write_text(
        '#include "nt.h"\n'
        'static const char *const words[] = { "absolute ", "pointers ", "relocated\\n" };\n'
        "int mainCRTStartup(void) { for (int i = 0; i < 3; i++) out(words[i]); return 0; }\n"
    )
    exe = tmp_path / "reloc.exe"
    subprocess.run(
        [
            CC,
            "-O0",
            "-nostdlib",
            "-ffreestanding",
            "-e",
            "mainCRTStartup",
            f"-I{SRC}",
            "-Wl,--dynamicbase",
            "-o",
            exe,
            src,
            "-lntdll",
            "-lgcc",
        ],
        check=True,
    )
    base = pefile.PE(str(exe)).OPTIONAL_HEADER.ImageBase
    code = (
        "import sys, pysud.nt as nt\n"
        "from pysud import _memory as memory\n"
        f"memory.map_at({base}, 0x10000, memory.PROT_READ, 'squatter')\n"
        "sys.exit(nt.run(sys.argv[1], ntdll='builtin'))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(exe)], capture_output=True, timeout=60)
    assert r.stdout == b"absolute pointers relocated\n", r.stderr.decode()


@requires_sud
@requires_cc
def test_bad_programs_get_clear_errors(tmp_path, exes: dict[tuple[str, bool], str]) -> None:
    with open(exes[("hello", False)], "rb") as f:
        good = f.read()
    pe = pefile.PE(data=good)
    opt = pe.OPTIONAL_HEADER.get_file_offset()
    coff = pe.FILE_HEADER.get_file_offset()
    cases = {
        "text.exe": (b"MZ this is not a program", "malformed PE file"),
        "pe32.exe": (good[:opt] + struct.pack("<H", 0x10B) + good[opt + 2 :], "32-bit (PE32)"),
        "dll.exe": (
            good[: coff + 18] + struct.pack("<H", 0x2022) + good[coff + 20 :],
            "a DLL, not a program",
        ),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        r = run_pysud(str(path))
        assert r.returncode == 2 and message in r.stderr.decode(), (name, r.stderr)
        assert "Traceback" not in r.stderr.decode()
    src = tmp_path / "k32.c"
    src.write_text(
        "unsigned __stdcall GetTickCount(void);\nint mainCRTStartup(void) { return GetTickCount(); }\n"
    )
    exe = tmp_path / "k32.exe"
    subprocess.run([CC, "-nostdlib", "-e", "mainCRTStartup", "-o", exe, src, "-lkernel32"], check=True)
    r = run_pysud(str(exe))
    assert r.returncode == 2 and "imports KERNEL32.dll; pysud provides ntdll.dll only" in r.stderr.decode()


@pytest.mark.parametrize("profile", sorted(_profiles.TABLES))
def test_ntdll_exports_find_numbers_as_syswhispers_does(profile: str) -> None:
    table = _profiles.TABLES[profile]
    image = ntdll.build(table, _profiles.VERSIONS[profile])
    try:
        from pysud import _memory as memory

        pe = pefile.PE(data=memory.peek(image.base, image.size))
        exports = {e.name.decode(): e.address for e in pe.DIRECTORY_ENTRY_EXPORT.symbols}
        zw = sorted((addr, name) for name, addr in exports.items() if name.startswith("Zw"))
        assert ["Nt" + name[2:] for _addr, name in zw] == [table[nr] for nr in range(len(table))]
        for nr, name in table.items():
            stub = memory.peek(image.base + exports[name], 0x15)
            assert exports[name] == exports["Zw" + name[2:]]
            assert (
                stub[:4] == b"\x4c\x8b\xd1\xb8" and struct.unpack_from("<I", stub, 4)[0] == nr
            )  # Hell's Gate
            assert stub[0x12:0x15] == b"\x0f\x05\xc3"
        assert {"RtlInitUnicodeString", "RtlAllocateHeap", "RtlFreeHeap", "memset"} <= exports.keys()
    finally:
        image.release()


@requires_sud
@requires_cc
def test_crash_on_builtin_ntdll_is_signal_status(tmp_path) -> None:
    # pysud's own ntdll has no exception dispatcher: the program dies of SIGSEGV, the host lives on
    src = tmp_path / "segv.c"
    src.write_text("int mainCRTStartup(void) { *(volatile int *)0 = 1; return 0; }\n")
    exe = tmp_path / "segv.exe"
    subprocess.run([CC, "-nostdlib", "-e", "mainCRTStartup", "-o", exe, src], check=True)
    code = "import sys, pysud.nt as nt\nprint(nt.run(sys.argv[1], ntdll='builtin'))\nprint('host alive')\n"
    r = subprocess.run([sys.executable, "-c", code, str(exe)], capture_output=True, timeout=60)
    assert r.stdout == b"139\nhost alive\n", r.stderr.decode()


def test_teb_blocks_hold_wines_debug_buffer() -> None:
    """Wine 8's PE ntdll keeps each thread's debug strings at gs:[0x30] + 0x3000 (0x800 bytes):
    one thread's debug output must not land in the next thread's TEB (it once overwrote the
    next TEB's ActivationContextStack, which crashed that thread in its exit)."""
    from pysud import _memory as memory
    from pysud.nt import process

    arena = process.Arena()
    try:
        stack = (0x7000_0000_0000, 0x6FFF_FFF0_0000)
        first = process.build_teb(arena, 0, stack, 1, 2, None, 0)
        second = process.build_teb(arena, 0, stack, 1, 3, None, 0)
        debug = first + process.TEB_WINE_DEBUG_INFO
        assert debug + process.TEB_WINE_DEBUG_INFO_SIZE <= second
        assert memory.peek(debug, process.TEB_WINE_DEBUG_INFO_SIZE) == bytes(process.TEB_WINE_DEBUG_INFO_SIZE)
        before = memory.peek(second, process.TEB_SIZE)
        memory.poke(debug, b"HIJKLMNO" * (process.TEB_WINE_DEBUG_INFO_SIZE // 8))  # a full debug buffer
        assert memory.peek(second, process.TEB_SIZE) == before
        acs = second + process.TEB_ACTIVATION_CONTEXT_STACK
        assert struct.unpack("<QQQ", memory.peek(acs, 24)) == (0, acs + 8, acs + 8)
    finally:
        arena.release()
