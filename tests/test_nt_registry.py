"""The registry: Wine's .reg text format (files written by Wine are read, files written here are read
by ``wine reg query``), keys and values through the NT calls of a Windows program (its output equal
to Wine's for the same .exe), and the prefix shared by processes."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from conftest import requires_sud
from pysud.nt import kernel
from pysud.nt import registry as rg
from pysud.nt.prefix import find_wine_dlls
from test_nt import CC, WINE, build, requires_cc, requires_wine, run_wine
from test_nt import wine_env as wine_env  # the session's Wine prefix (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------- text format


@given(hs.text(alphabet=hs.characters(codec="utf-16", exclude_categories=("Cs",)), max_size=40))
def test_string_escapes_round_trip(text: str) -> None:
    for specials, end in (('"', '"'), ("[]", "]")):
        escaped = rg.escape_text(text, specials)
        assert escaped.isascii()
        back, after = rg.unescape(escaped + end, 0, end)
        assert back == text.rstrip("\0") or back == text
        assert after == len(escaped) + 1


@given(
    hs.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 11, 0x1234]),
    hs.binary(max_size=300),
    hs.text(alphabet=hs.characters(codec="utf-16", exclude_categories=("Cs",)), max_size=12),
)
def test_values_round_trip(type_: int, data: bytes, name: str) -> None:
    name = name.replace("\0", "")
    v = rg.Value(name, type_, data)
    lines = rg.format_value(v).split("\n")
    assert all(len(line) <= 80 for line in lines[1:])
    rest = iter(lines[1:])
    back = rg.parse_value(lines[0], rest)
    assert (back.name, back.type, back.data) == (name, type_, data)
    assert next(rest, None) is None


def test_wine_spellings() -> None:
    assert (
        rg.format_value(rg.Value('a"b\\c', rg.REG_SZ, rg.sz("x\ty\u00e9z"))) == '"a\\"b\\\\c"="x\\ty\\xe9z"'
    )
    assert rg.format_value(rg.Value("", rg.REG_DWORD, rg.dword(10))) == "@=dword:0000000a"
    assert rg.format_value(rg.Value("e", rg.REG_EXPAND_SZ, rg.sz("%A%"))) == '"e"=str(2):"%A%"'
    assert rg.format_value(rg.Value("m", rg.REG_MULTI_SZ, rg.multi_sz(["a", "b"]))) == '"m"=str(7):"a\\0b\\0"'
    assert rg.format_value(rg.Value("q", rg.REG_QWORD, rg.qword(1))) == '"q"=hex(b):01,00,00,00,00,00,00,00'
    assert rg.format_value(rg.Value("b", rg.REG_BINARY, b"\x01\xff")) == '"b"=hex:01,ff'
    assert rg.format_value(rg.Value("d", rg.REG_DWORD, b"\x01")) == '"d"=hex(4):01'  # not 4 bytes
    assert rg.format_value(rg.Value("s", rg.REG_SZ, b"a\0")) == '"s"=hex(1):61,00'  # no final NUL
    assert rg.escape_text("\u00e9a", '"') == "\\x00e9a"  # a hex digit follows: four digits


def test_bad_files_are_clean_errors(tmp_path: Path) -> None:
    (tmp_path / "system.reg").write_text("REGEDIT4\n")
    with pytest.raises(rg.RegFormatError, match=r"system\.reg"):
        rg.Registry(str(tmp_path))
    (tmp_path / "system.reg").write_text('WINE REGISTRY Version 2\n\n[A] 0\n"x"=hex:zz\n')
    with pytest.raises(rg.RegFormatError, match="bad hex"):
        rg.Registry(str(tmp_path))
    (tmp_path / "system.reg").write_text('WINE REGISTRY Version 2\n"x"="y"\n')
    with pytest.raises(rg.RegFormatError, match="without a key"):
        rg.Registry(str(tmp_path))


# ---------------------------------------------------------------------------------- the model


def test_seeded_prefix(tmp_path: Path) -> None:
    reg = rg.Registry(str(tmp_path))
    cv = reg.resolve(r"\Registry\Machine\Software\Microsoft\Windows NT\CurrentVersion")
    assert cv.values["currentbuild"].data == rg.sz("22631")
    name = reg.resolve(r"\REGISTRY\MACHINE\System\CurrentControlSet\Control\ComputerName\ComputerName")
    assert name.values["computername"].data == rg.sz(rg.computer_name())
    assert reg.resolve(rf"\Registry\User\{rg.USER_SID}\Environment").values
    assert reg.resolve(r"\Registry\User\.Default\Environment").path == r"\REGISTRY\User\.Default\Environment"
    for f in rg.BRANCHES:
        assert (tmp_path / f).read_text().startswith("WINE REGISTRY Version 2\n")


def test_processes_of_one_prefix_see_each_others_changes(tmp_path: Path) -> None:
    a = rg.Registry(str(tmp_path))
    b = rg.Registry(str(tmp_path))
    key, created = a.create(r"\Registry\Machine\Software\Shared")
    assert created
    a.set_value(key, "n", rg.REG_DWORD, rg.dword(1))
    kb = b.resolve(r"\Registry\Machine\Software\Shared")  # b has not looked since: a lookup refreshes
    b.refresh()
    assert kb.values["n"].data == rg.dword(1)
    b.set_value(kb, "m", rg.REG_DWORD, rg.dword(2))  # b writes: a's value survives (reload, then save)
    a.refresh()
    assert set(key.values) == {"n", "m"} and key is a.resolve(r"\Registry\Machine\Software\Shared")
    b.delete(kb)
    a.refresh()
    assert key.deleted
    with pytest.raises(rg.RegistryError) as e:
        a.set_value(key, "x", rg.REG_DWORD, rg.dword(0))
    assert e.value.status == rg.STATUS_KEY_DELETED
    # a separate process (the real case): its change is seen here
    code = (
        "import sys; from pysud.nt import registry as rg; r = rg.Registry(sys.argv[1]);"
        "k, _ = r.create(r'\\Registry\\Machine\\Software\\FromChild'); r.set_value(k, 'c', 1, rg.sz('hi'))"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
    assert a.resolve(r"\Registry\Machine\Software\FromChild").values["c"].data == rg.sz("hi")


def test_setting_an_identical_value_changes_nothing(tmp_path: Path) -> None:
    # Wine's server (set_value in server/registry.c) skips a value equal to the one stored: the key's
    # write time stays, no notification fires, and here no branch file is written either
    from pysud.nt import objects

    r = rg.Registry(str(tmp_path))
    key, _ = r.create(r"\Registry\Machine\Software\Same")
    r.set_value(key, "n", rg.REG_SZ, rg.sz("one"))
    modif, inode = key.modif, os.stat(tmp_path / "system.reg").st_ino
    ev = objects.Event(manual_reset=True, state=False)
    key.watchers.append((ev, False))
    r.set_value(key, "N", rg.REG_SZ, rg.sz("one"))  # names compare case-insensitively
    assert (key.modif, os.stat(tmp_path / "system.reg").st_ino, ev.state) == (modif, inode, False)
    assert key.values["n"].name == "n"
    r.set_value(key, "n", rg.REG_EXPAND_SZ, rg.sz("one"))  # another type is a change
    assert key.modif != modif and os.stat(tmp_path / "system.reg").st_ino != inode and ev.state
    assert rg.Registry(str(tmp_path)).resolve(r"\Registry\Machine\Software\Same").values["n"].type == 2


def test_links_and_volatile_keys(tmp_path: Path) -> None:
    reg = rg.Registry(str(tmp_path))
    target, _ = reg.create(r"\Registry\Machine\Software\Target")
    reg.set_value(target, "v", rg.REG_SZ, rg.sz("t"))
    link, _ = reg.create(r"\Registry\Machine\Software\Link", link=True)
    reg.set_value(link, rg.SYMLINK_VALUE, rg.REG_LINK, target.path.encode("utf-16-le"))
    assert reg.resolve(r"\Registry\Machine\Software\Link") is target
    assert reg.resolve(r"\Registry\Machine\Software\Link", open_link=True) is link
    vol, _ = reg.create(r"\Registry\Machine\Software\Vol", volatile=True)
    reg.set_value(vol, "x", rg.REG_DWORD, rg.dword(1))
    text = (tmp_path / "system.reg").read_text()
    assert "[Software\\\\Link]" in text and "#link" in text and "Vol" not in text
    with pytest.raises(rg.RegistryError) as e:
        reg.create(r"\Registry\Machine\Software\Vol\Child")
    assert e.value.status == rg.STATUS_CHILD_MUST_BE_VOLATILE
    fresh = rg.Registry(str(tmp_path))  # a new process: the link is a link, the volatile key gone
    assert fresh.resolve(r"\Registry\Machine\Software\Link").values["v"].data == rg.sz("t")
    with pytest.raises(rg.RegistryError):
        fresh.resolve(r"\Registry\Machine\Software\Vol")


# ---------------------------------------------------------------------------------- Wine as the oracle


def _wine(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert WINE is not None
    # the console output of Wine's programs to a pipe is in the OEM code page: ASCII is compared
    return subprocess.run(
        [WINE, *args], env=env, capture_output=True, text=True, errors="replace", timeout=180
    )


def _stop_wineserver(env: dict[str, str]) -> None:
    """Let the prefix's wineserver exit (it saves the registry files as it does)."""
    server = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
    subprocess.run([server, "-w"], env=env, timeout=120, check=False)


@requires_wine
@pytest.mark.slow
def test_reads_what_wine_reg_writes(wine_env: dict[str, str], tmp_path: Path) -> None:
    key = r"HKCU\Software\PysudFromWine"
    adds = [
        ("sz", "REG_SZ", 'quote " backslash \\ tab\tend'),
        ("exp", "REG_EXPAND_SZ", "%SystemRoot%\\x"),
        ("dw", "REG_DWORD", "0x12345678"),
        ("qw", "REG_QWORD", "0x1122334455667788"),
        ("bin", "REG_BINARY", "00ff10" * 40),
        ("multi", "REG_MULTI_SZ", "one\\0two"),
        ("unicode", "REG_SZ", "caf\u00e9 \u4e2d"),
    ]
    for name, type_, data in adds:
        r = _wine(wine_env, "reg", "add", key, "/v", name, "/t", type_, "/d", data, "/f")
        assert r.returncode == 0, r.stderr
    _stop_wineserver(wine_env)
    prefix = wine_env["WINEPREFIX"]
    for f in rg.BRANCHES:
        shutil.copy(os.path.join(prefix, f), tmp_path / f)
    reg = rg.Registry(str(tmp_path))
    k = reg.resolve(rf"\Registry\User\{rg.USER_SID}\Software\PysudFromWine")
    got = {v.name: (v.type, v.data) for v in k.sorted_values()}
    assert got == {
        "sz": (rg.REG_SZ, rg.sz('quote " backslash \\ tab\tend')),
        "exp": (rg.REG_EXPAND_SZ, rg.sz("%SystemRoot%\\x")),
        "dw": (rg.REG_DWORD, rg.dword(0x12345678)),
        "qw": (rg.REG_QWORD, rg.qword(0x1122334455667788)),
        "bin": (rg.REG_BINARY, bytes.fromhex("00ff10" * 40)),
        "multi": (rg.REG_MULTI_SZ, rg.multi_sz(["one", "two"])),
        "unicode": (rg.REG_SZ, rg.sz("caf\u00e9 \u4e2d")),
    }
    # and a whole Wine prefix's files come back byte for byte when written here
    for f, base in reg._branch_keys.items():
        assert rg.dump_text(base, rg._COMMENTS[f]) == (tmp_path / f).read_text(), f


@requires_wine
@pytest.mark.slow
def test_wine_reg_reads_what_we_write(wine_env: dict[str, str], tmp_path: Path) -> None:
    _stop_wineserver(wine_env)
    reg = rg.Registry(wine_env["WINEPREFIX"])
    k, _ = reg.create(rf"\Registry\User\{rg.USER_SID}\Software\PysudToWine")
    reg.set_value(k, "sz", rg.REG_SZ, rg.sz('a "quoted" \\ value \u00e9'))
    reg.set_value(k, "dw", rg.REG_DWORD, rg.dword(0xDEADBEEF))
    reg.set_value(k, "qw", rg.REG_QWORD, rg.qword(0x0102030405060708))
    reg.set_value(k, "multi", rg.REG_MULTI_SZ, rg.multi_sz(["x", "y z"]))
    reg.set_value(k, "bin", rg.REG_BINARY, bytes(range(60)))
    sub, _ = reg.create("Sub Key", k)
    reg.set_value(sub, "", rg.REG_SZ, rg.sz("default"))
    r = _wine(wine_env, "reg", "query", r"HKCU\Software\PysudToWine", "/s")
    assert r.returncode == 0, r.stderr
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    assert 'sz    REG_SZ    a "quoted" \\ value \ufffd' in lines
    exported = tmp_path / "export.reg"  # regedit's format, UTF-16: the exact text
    r = _wine(wine_env, "reg", "export", r"HKCU\Software\PysudToWine", "Z:" + str(exported), "/y")
    assert r.returncode == 0, r.stderr
    assert '"sz"="a \\"quoted\\" \\\\ value \u00e9"' in exported.read_text(encoding="utf-16")
    assert "dw    REG_DWORD    0xdeadbeef" in lines
    # Wine 8's reg query prints every REG_QWORD as "(null)" (its own values too): the export has it
    assert '"qw"=hex(b):08,07,06,05,04,03,02,01' in exported.read_text(encoding="utf-16")
    assert "multi    REG_MULTI_SZ    x\\0y z" in lines
    assert "bin    REG_BINARY    " + bytes(range(60)).hex().upper() in lines
    assert r"HKEY_CURRENT_USER\Software\PysudToWine\Sub Key" in lines
    assert "(Default)    REG_SZ    default" in lines


# ---------------------------------------------------------------------------------- NT calls


@pytest.fixture(scope="module")
def registry_exe(tmp_path_factory: pytest.TempPathFactory) -> str:
    if CC is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed")
    return build(str(tmp_path_factory.mktemp("nt-registry")), "registry")


def _run_pysud(exe: str, prefix: Path, *options: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYSUD_PREFIX=str(prefix))
    return subprocess.run(
        [sys.executable, "-m", "pysud", "run", *options, exe], capture_output=True, timeout=120, env=env
    )


#: the DLL sets a test program runs on: pysud's own ntdll, and Wine's when installed
NTDLLS = [
    "builtin",
    pytest.param(
        "wine", marks=pytest.mark.skipif(find_wine_dlls() is None, reason="no Wine PE DLLs installed")
    ),
]


def unimplemented_kernel_calls(stderr: str) -> list[str]:
    """The calls of nt/kernel's tables that the run reported as not implemented (none, we hope)."""
    mine = set(kernel.handlers())
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("pysud: ") and "not implemented" in line and line.split()[1] in mine
    ]


@requires_sud
@requires_cc
@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("ntdll", NTDLLS)
def test_registry_program_matches_wine(
    registry_exe: str, wine_env: dict[str, str], tmp_path: Path, ntdll: str
) -> None:
    wine_out, wine_status = run_wine(wine_env, registry_exe)
    ours = _run_pysud(registry_exe, tmp_path, "--ntdll", ntdll)
    assert ours.returncode == wine_status == 0, ours.stderr.decode()
    assert ours.stdout.decode() == wine_out.decode()
    assert b"create = 0x0 disposition 1" in wine_out  # the program ran its course on both


@requires_sud
@requires_cc
@pytest.mark.parametrize("ntdll", NTDLLS)
def test_registry_calls_are_handled_and_stored(registry_exe: str, tmp_path: Path, ntdll: str) -> None:
    r = _run_pysud(registry_exe, tmp_path, "--trace", "--ntdll", ntdll)
    err = r.stderr.decode()
    assert r.returncode == 0, err[-3000:]
    for call in ("NtCreateKey", "NtSetValueKey", "NtQueryValueKey", "NtEnumerateKey", "NtNotifyChangeKey"):
        assert f"[nt] {call}(" in err, call
    assert not unimplemented_kernel_calls(err)
    # the trace names the key and the value (nt/kernel/registry.py's SIGNATURES)
    assert 'ObjectAttributes="\\\\Registry\\\\Machine\\\\Software\\\\PysudTest") = STATUS_SUCCESS' in err
    assert 'ValueName="DW"' in err and "= STATUS_OBJECT_PATH_SYNTAX_BAD" in err
    out = r.stdout.decode()
    assert "create = 0x0 disposition 1\n" in out and "wait after change in subtree = 0x0\n" in out
    # the program deleted its key: the prefix holds the seeded keys and no trace of it
    system = (tmp_path / "system.reg").read_text()
    assert "PysudTest" not in system and "[Software\\\\Microsoft\\\\Windows NT\\\\CurrentVersion]" in system


@requires_sud
@requires_cc
def test_registry_program_sees_a_value_set_by_another_process(registry_exe: str, tmp_path: Path) -> None:
    reg = rg.Registry(str(tmp_path))
    cv = reg.resolve(r"\Registry\Machine\Software\Microsoft\Windows NT\CurrentVersion")
    reg.set_value(cv, "ProductName", rg.REG_DWORD, rg.dword(7))
    r = _run_pysud(registry_exe, tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert "  ProductName = 0x0\n  type 4\n" in r.stdout.decode()


def test_info_classes_layout() -> None:
    from pysud.nt.kernel import registry as kr

    key = rg.Key(name="Abc")
    key.set("vv", rg.REG_DWORD, rg.dword(5))
    key.modif = 0x0102030405060708
    data, fixed = kr.key_info(key, kr.KeyBasicInformation) or (b"", 0)
    assert fixed == 16 and data == struct.pack("<qII", 0x0102030405060708, 0, 6) + "Abc".encode("utf-16-le")
    data, fixed = kr.key_info(key, kr.KeyCachedInformation) or (b"", 0)
    assert fixed == len(data) == 36
    assert struct.unpack_from("<IIIIII", data, 12) == (0, 0, 1, 4, 4, 6)
    v = key.values["vv"]
    data, fixed = kr.value_info(v, kr.KeyValueFullInformationAlign64) or (b"", 0)
    assert struct.unpack_from("<IIIII", data) == (0, 4, 24, 4, 4) and data[24:] == rg.dword(5)
    data, fixed = kr.value_info(v, kr.KeyValuePartialInformationAlign64) or (b"", 0)
    assert data == struct.pack("<II", 4, 4) + rg.dword(5) and fixed == 8
    assert kr.map_access(0x80000000) == kr.KEY_READ and kr.map_access(0x02000000) == kr.KEY_ALL_ACCESS


# ---------------------------------------------------------------------------------- Wine's reg.exe


@requires_sud
@requires_wine
@pytest.mark.slow
@pytest.mark.skipif(find_wine_dlls() is None, reason="no Wine PE DLLs installed")
def test_wine_reg_exe_on_pysud_matches_wine(wine_env: dict[str, str], tmp_path: Path) -> None:
    # Wine's own reg.exe (advapi32, kernelbase, ntdll: Wine's PE DLLs) on pysud's registry: the same
    # commands print what they print on Wine, and the values land in the prefix's user.reg.
    dlls = find_wine_dlls()
    assert dlls is not None
    reg_exe = os.path.join(dlls, "reg.exe")
    key = r"HKCU\Software\PysudRegExe"
    commands = [
        ["add", key, "/v", "dw", "/t", "REG_DWORD", "/d", "42", "/f"],
        ["add", key, "/v", "sz", "/t", "REG_SZ", "/d", "text with spaces", "/f"],
        ["add", key, "/v", "multi", "/t", "REG_MULTI_SZ", "/d", "a\\0b", "/f"],
        ["add", key, "/v", "exp", "/t", "REG_EXPAND_SZ", "/d", "%SystemRoot%\\x", "/f"],
        ["add", key, "/v", "bin", "/t", "REG_BINARY", "/d", "00ff7f", "/f"],
        ["add", key + r"\Sub", "/ve", "/d", "default", "/f"],
        ["query", key, "/s"],
        ["query", key, "/v", "missing"],
        ["delete", key, "/v", "sz", "/f"],
        ["query", key],
    ]
    prefix = tmp_path / "prefix"
    printed = []
    for args in commands:
        wine = _wine(wine_env, reg_exe, *args)
        ours = subprocess.run(
            [sys.executable, "-m", "pysud", "run", reg_exe, *args],
            capture_output=True,
            timeout=120,
            env=dict(os.environ, PYSUD_PREFIX=str(prefix)),
            text=True,
            errors="replace",
        )
        assert (ours.stdout, ours.returncode) == (wine.stdout, wine.returncode), (args, ours.stderr)
        printed.append(ours.stdout)
    assert "    dw    REG_DWORD    0x2a" in printed[6] and "(Default)    REG_SZ    default" in printed[6]
    saved = rg.Registry(str(prefix)).resolve(rf"\Registry\User\{rg.USER_SID}\Software\PysudRegExe")
    assert saved.values["dw"].data == rg.dword(42) and "sz" not in saved.values
    assert saved.values["multi"].data == rg.multi_sz(["a", "b"])
    _wine(wine_env, reg_exe, "delete", key, "/f")


def test_current_version_follows_the_running_version(tmp_path: Path) -> None:
    path = r"\Registry\Machine\Software\Microsoft\Windows NT\CurrentVersion"
    reg = rg.Registry(str(tmp_path), version=(10, 0, 22631))
    assert reg.resolve(path).values["currentbuild"].data == rg.sz("22631")
    assert reg.resolve(path).values["displayversion"].data == rg.sz("23H2")
    again = rg.Registry(str(tmp_path), version=(10, 0, 19043))  # Wine's DLLs report 19043
    cv = again.resolve(path)
    assert cv.values["currentbuild"].data == rg.sz("19043")
    assert cv.values["currentbuildnumber"].data == rg.sz("19043")
    assert cv.values["productname"].data == rg.sz("Windows 10 Pro")  # kept
    assert 'CurrentBuild"="19043"' in (tmp_path / "system.reg").read_text()


def test_query_multiple_value_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from pysud.nt.personality import NtPersonality
    from test_nt_sync import Buf, Call, handler

    monkeypatch.setenv("PYSUD_PREFIX", str(tmp_path))
    nt = NtPersonality(ntdll="builtin")
    try:
        keep = []

        def ustr(text: str) -> int:
            raw = ctypes.create_string_buffer(text.encode("utf-16-le"))
            us = ctypes.create_string_buffer(
                struct.pack("<HHIQ", len(text) * 2, len(text) * 2, 0, ctypes.addressof(raw))
            )
            keep.extend((raw, us))
            return ctypes.addressof(us)

        oa = ctypes.create_string_buffer(
            struct.pack(
                "<I4xQQI4xQQ",
                48,
                0,
                ustr(r"\Registry\Machine\Software\Microsoft\Windows NT\CurrentVersion"),
                0x40,
                0,
                0,
            )
        )
        key = Buf()
        assert handler(nt, "NtOpenKey")(Call(key.addr, 0x20019, ctypes.addressof(oa))) == 0
        entries = ctypes.create_string_buffer(
            struct.pack("<Q12x4x", ustr("SystemRoot"))
            + struct.pack("<Q12x4x", ustr("CurrentMajorVersionNumber"))
        )
        out = ctypes.create_string_buffer(256)
        length, needed = Buf(), Buf()
        query = handler(nt, "NtQueryMultipleValueKey")
        struct.pack_into("<I", length.b, 0, 8)
        args = (key.u64(), ctypes.addressof(entries), 2, ctypes.addressof(out), length.addr, needed.addr)
        assert query(Call(*args)) == 0x80000005  # STATUS_BUFFER_OVERFLOW, the size needed given
        size = length.u64() & 0xFFFFFFFF
        assert size == needed.u64() & 0xFFFFFFFF == len(rg.sz("C:\\windows")) + 4 + 2  # aligned to 4
        struct.pack_into("<I", length.b, 0, 256)
        assert query(Call(*args)) == 0
        first = struct.unpack_from("<III", entries.raw, 8)
        second = struct.unpack_from("<III", entries.raw, 32)
        assert first == (len(rg.sz("C:\\windows")), 0, rg.REG_SZ)
        assert second[0] == 4 and second[2] == rg.REG_DWORD and second[1] % 4 == 0
        assert out.raw[: first[0]] == rg.sz("C:\\windows")
        assert out.raw[second[1] : second[1] + 4] == rg.dword(10)
        bad = ctypes.create_string_buffer(struct.pack("<Q12x4x", ustr("Missing")))
        assert (
            query(Call(key.u64(), ctypes.addressof(bad), 1, ctypes.addressof(out), length.addr, 0))
            == 0xC0000034
        )
    finally:
        nt.close()
