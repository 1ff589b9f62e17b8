"""The NT start-up's shortcuts keep the bytes the same: image views mapped from the file hold what
the file holds (compared with pefile's reading of it), the prefix's cache of parsed headers and
exports gives what pefile gives, and a warm start of a program on Wine's DLLs never imports pefile;
`pysud bench` measures hello.exe under pysud and under wine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pefile
import pytest

from conftest import requires_sud
from pysud import _memory as memory
from pysud import _rewrite
from pysud.nt import image, wine
from pysud.nt.prefix import find_wine_dlls

HERE = os.path.dirname(os.path.abspath(__file__))
CC = shutil.which("x86_64-w64-mingw32-gcc")
DLLS = find_wine_dlls()
requires_dlls = pytest.mark.skipif(DLLS is None, reason="no Wine PE DLLs installed (wine64 8.0+)")
requires_cc = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)


def _mapped_files(lo: int, hi: int) -> set[str]:
    """The files /proc/self/maps shows backing pages of [lo, hi)."""
    names = set()
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start < hi and end > lo and len(fields) == 6:
                names.add(fields[5].strip())
    return names


def _check_view_against_pefile(path: str) -> image.ImageView:
    image._CACHE.clear()
    info = image.read_info(path)
    view = image.map_view(info)
    pe = pefile.PE(path, fast_load=True)
    data = pe.__data__
    try:
        assert memory.peek(view.base, 0x200) == bytes(data[:0x200])
        for s, ps in zip(
            info.sections, [p for p in pe.sections if max(p.Misc_VirtualSize, p.SizeOfRawData)], strict=True
        ):
            assert s.name == ps.Name.rstrip(b"\0").decode()
            want = bytes(data[ps.PointerToRawData : ps.PointerToRawData + s.raw_size]) if s.raw_size else b""
            got = memory.peek(view.base + s.rva, s.vsize)
            assert got[: len(want)] == want, s.name
            assert got[len(want) :] == bytes(s.vsize - len(want)), f"{s.name}: not zero past the raw data"
    except BaseException:
        view.release()
        raise
    return view


def _check_file_backing(view: image.ImageView) -> int:
    """Sections at a page-aligned file offset are the file's pages (copy-on-write), the others a
    copy; the number of file-backed sections."""
    assert view.info is not None
    path = os.path.realpath(view.info.path)
    backed = 0
    for s in view.info.sections:
        if s.raw_size:
            first_page = _mapped_files(view.base + s.rva, view.base + s.rva + 0x1000)
            assert (path in first_page) == (s.raw_offset % 0x1000 == 0), s.name
            backed += path in first_page
    return backed


@requires_dlls
def test_a_wine_dll_is_mapped_from_its_file_with_the_files_bytes() -> None:
    assert DLLS is not None
    view = _check_view_against_pefile(os.path.join(DLLS, "kernelbase.dll"))
    try:
        assert view.info is not None
        assert _check_file_backing(view) == sum(1 for s in view.info.sections if s.raw_size)
    finally:
        view.release()


@requires_cc
def test_a_program_with_512_byte_file_alignment_has_the_files_bytes(tmp_path) -> None:
    assert CC is not None
    exe = str(tmp_path / "hello.exe")
    subprocess.run([CC, "-O2", "-o", exe, os.path.join(HERE, "nt", "wine", "hello.c")], check=True)
    assert pefile.PE(exe, fast_load=True).OPTIONAL_HEADER.FileAlignment == 0x200
    view = _check_view_against_pefile(exe)
    try:
        assert view.info is not None
        assert _check_file_backing(view) < sum(1 for s in view.info.sections if s.raw_size)  # some copied
    finally:
        view.release()


@requires_dlls
def test_the_disk_cache_gives_what_pefile_gives(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert DLLS is not None
    monkeypatch.setattr(image, "_CACHE", {})
    monkeypatch.setattr(image, "_EXPORTS", {})
    cache = str(tmp_path / "cache.json")
    image.use_disk_cache(cache)
    try:
        ntdll = os.path.join(DLLS, "ntdll.dll")
        info = image.read_info(ntdll)
        names = wine.exports_of(ntdll)
        table = image.export_table(ntdll)
        image.save_disk_cache()
        assert os.path.exists(cache)
        image._CACHE.clear()
        image._EXPORTS.clear()
        image.use_disk_cache(str(tmp_path / "other.json"))  # forget, then read the file again
        image.use_disk_cache(cache)
        image._load_disk_cache()
        assert image.read_info(ntdll) == info
        assert wine.exports_of(ntdll) == names and image.export_table(ntdll) == table
        pe = pefile.PE(ntdll)
        fresh = {s.name.decode(): s.address for s in pe.DIRECTORY_ENTRY_EXPORT.symbols if s.name}
        assert names == fresh and "NtClose" in names
        assert wine.apiset_map(DLLS) == bytes(
            next(
                s
                for s in pefile.PE(os.path.join(DLLS, "apisetschema.dll")).sections
                if s.Name.startswith(b".apiset")
            ).get_data()
        )
    finally:
        image.use_disk_cache("")
        image.DISK_CACHE = None


@requires_cc
def test_the_disk_cache_leaves_out_files_removed_or_changed(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CC is not None
    monkeypatch.setattr(image, "_CACHE", {})
    monkeypatch.setattr(image, "_EXPORTS", {})
    exes = []
    for name in ("kept", "removed", "changed"):
        exe = str(tmp_path / f"{name}.exe")
        subprocess.run([CC, "-O2", "-o", exe, os.path.join(HERE, "nt", "wine", "hello.c")], check=True)
        exes.append(exe)
    cache = str(tmp_path / "cache.json")
    image.use_disk_cache(cache)
    try:
        for exe in exes:
            image.read_info(exe)
        os.unlink(exes[1])
        with open(exes[2], "ab") as f:
            f.write(b"\0" * 512)  # another size: another file
        image.save_disk_cache()
        with open(cache) as f:
            assert [e["path"] for e in json.load(f)["images"]] == [exes[0]]
    finally:
        image.DISK_CACHE = None


def test_a_cache_file_of_another_layout_is_ignored(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "_CACHE", {})
    monkeypatch.setattr(image, "_EXPORTS", {})
    cache = tmp_path / "cache.json"
    for text in ("[]", '{"version": 1}', '{"version": 2, "images": [{"path": 1}], "exports": []}', "{"):
        cache.write_text(text)
        image.use_disk_cache(str(cache))
        image.use_disk_cache("")  # force a re-read of the file below
        image.use_disk_cache(str(cache))
        image._load_disk_cache()
        assert image._CACHE == {} and image._EXPORTS == {}
    image.DISK_CACHE = None


@requires_dlls
def test_wine_stub_sites_are_what_the_rewrite_planner_refuses() -> None:
    """The sites the NT personality answers without decoding (Wine ntdll's stubs and pysud's
    Windows-numbered ones in the same layout) get the verdict the planner gives after decoding."""
    assert DLLS is not None
    ntdll = wine.load_ntdll(DLLS)
    mapping = memory.map_anywhere(0x2000, memory.PROT_READ | memory.PROT_WRITE, "test stubs")
    block = mapping + 0x1000  # the planner sees 96 bytes before a site: mapped too
    try:
        stubs = [ntdll.exports[name] for name in ntdll.table.values() if name in ntdll.exports]
        memory.poke(block, wine.windows_stub(7) + wine.windows_stub(0x1234))
        ends = wine.stub_sites([*stubs, block, block + wine.STUB_SIZE, ntdll.exports["NtClose"] + 1])
        assert len(ends) == len(set(stubs)) + 2 and len(ends) > 200  # not the misaligned address
        for end in [*sorted(ends)[:: max(1, len(ends) // 40)], block + 0x14]:
            before, after = memory.peek(end - 96, 96), memory.peek(end, 64)
            assert before.endswith(b"\x75\x03\x0f\x05")
            assert _rewrite.plan(end, before, after) == -_rewrite._RELOCATION
    finally:
        memory.unmap(mapping, 0x2000)
        ntdll.release()


#: what a program on Wine's DLLs does not need once the prefix's cache is warm
NOT_IMPORTED = ("pefile", "elftools", "capstone", "subprocess", "tempfile", "socket")


@requires_sud
@requires_cc
@requires_dlls
def test_a_warm_start_on_wines_dlls_imports_no_pefile(tmp_path) -> None:
    assert CC is not None
    exe = str(tmp_path / "hello.exe")
    subprocess.run([CC, "-O2", "-o", exe, os.path.join(HERE, "nt", "wine", "hello.c")], check=True)
    prefix = str(tmp_path / "prefix")
    code = (
        "import sys; from pysud.nt import run; "
        f"status = run({exe!r}, ['x'], prefix={prefix!r}, ntdll='wine'); "
        f"print(*[m for m in {NOT_IMPORTED!r} if m in sys.modules], status, file=sys.stderr)"
    )
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=str(tmp_path))
    assert cold.stdout.startswith(b"hello from a mingw program"), cold.stderr.decode()
    assert cold.stderr.split()[-2:] == [b"pefile", b"42"]  # the first run parses with pefile
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=str(tmp_path))
    assert warm.stdout == cold.stdout
    assert warm.stderr.splitlines()[-1] == b"42", warm.stderr.decode()


@requires_sud
@pytest.mark.slow
def test_bench_rows_for_hello_exe_against_wine() -> None:
    """`pysud bench` rows: hello.exe under pysud (warm prefix, and once in a new one) and under
    wine with a warm wineserver, beside `pysud run /usr/bin/true`; a missing tool is a note."""
    from pysud._bench import find_wine

    bench = [sys.executable, "-m", "pysud", "bench", "--iterations", "300", "--rounds", "1"]
    args = ["--program-runs", "0", "--trace-runs", "0", "--exe-runs", "1"]
    r = subprocess.run([*bench, "--json", *args], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    nt = json.loads(r.stdout)["nt_startup"]
    want = {"true_pysud"}
    if CC is not None and DLLS is not None:
        want |= {"hello_pysud", "hello_pysud_cold"}
    if CC is not None and find_wine() is not None:
        want.add("hello_wine")
    else:
        assert any("wine" in n or "mingw" in n for n in nt["notes"])
    assert set(nt["seconds_per_run"]) == want
    assert all(v > 0 for v in nt["seconds_per_run"].values())
    table = subprocess.run([*bench, *args], capture_output=True, text=True, timeout=900)
    assert table.returncode == 0, table.stderr
    assert "a Windows program, start to exit" in table.stdout and "x wine" in table.stdout
    if "hello_wine" in want:
        assert "wine hello.exe (warm wineserver)" in table.stdout
