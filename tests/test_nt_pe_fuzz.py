"""Malformed PE files: both loaders (pysud's own for ntdll-only programs, the image-section mapper
used with Wine's DLLs) give a clear PELoadError for mutated headers and directories (imports, TLS,
relocations pointing anywhere), never a crash of the Python host and never a write outside the
image."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile

import pefile
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pysud.nt import _profiles, image, ntdll
from pysud.nt import pe as pe_loader
from pysud.nt.pe import PELoadError

HERE = os.path.dirname(os.path.abspath(__file__))
CC = shutil.which("x86_64-w64-mingw32-gcc")
pytestmark = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)
_DIR = tempfile.mkdtemp(prefix="pysud-pe-")
IMPORT, BASERELOC, TLS = 1, 5, 9


@pytest.fixture(scope="module")
def good() -> bytes:
    assert CC is not None
    exe = os.path.join(_DIR, "hello.exe")
    src = os.path.join(HERE, "nt", "hello.c")
    cmd = [CC, "-O2", "-nostdlib", "-ffreestanding", "-e", "mainCRTStartup", f"-I{os.path.join(HERE, 'nt')}"]
    subprocess.run([*cmd, "-o", exe, src, "-lntdll", "-lgcc"], check=True)
    with open(exe, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def our_ntdll():  # type: ignore[no-untyped-def]
    image = ntdll.build(_profiles.TABLES[_profiles.DEFAULT], _profiles.VERSIONS[_profiles.DEFAULT])
    yield image
    image.release()


def _directory_offset(data: bytes, index: int) -> int:
    pe = pefile.PE(data=data, fast_load=True)
    return pe.OPTIONAL_HEADER.get_file_offset() + 112 + 8 * index


def _try_both(data: bytes, ntdll_image: ntdll.NtdllImage) -> None:
    path = os.path.join(_DIR, "mutant.exe")
    with open(path, "wb") as f:
        f.write(data)
    try:
        loaded = pe_loader.load(path, ntdll_image)
    except PELoadError as exc:
        assert str(exc).startswith(path)
    else:
        loaded.release()
    image._CACHE.clear()
    try:
        view = image.map_view(image.read_info(path))
    except PELoadError as exc:
        assert str(exc).startswith(path)
    else:
        view.release()


def test_tls_directory_at_rva_2_is_a_clear_error(good: bytes, our_ntdll: ntdll.NtdllImage) -> None:
    # the TLS directory read from the DOS header: its "addresses" are whatever bytes are there
    data = bytearray(good)
    struct.pack_into("<II", data, _directory_offset(good, TLS), 2, 40)
    path = os.path.join(_DIR, "tls2.exe")
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(PELoadError, match=r"outside the image|TLS"):
        pe_loader.load(path, our_ntdll).release()


def test_import_directory_outside_the_image_is_a_clear_error(
    good: bytes, our_ntdll: ntdll.NtdllImage
) -> None:
    data = bytearray(good)
    struct.pack_into("<II", data, _directory_offset(good, IMPORT), 0x7FFF0000, 0x100)
    path = os.path.join(_DIR, "imports.exe")
    with open(path, "wb") as f:
        f.write(data)
    try:
        pe_loader.load(path, our_ntdll).release()
    except PELoadError as exc:
        assert path in str(exc)


_STATE: dict[str, object] = {}


def _fuzz_inputs() -> tuple[bytes, ntdll.NtdllImage]:
    """The program to mutate and pysud's ntdll, made once (not fixtures: hypothesis would print them)."""
    if "good" not in _STATE:
        assert CC is not None
        exe = os.path.join(_DIR, "fuzz-base.exe")
        src = os.path.join(HERE, "nt", "hello.c")
        cmd = [
            CC,
            "-O2",
            "-nostdlib",
            "-ffreestanding",
            "-e",
            "mainCRTStartup",
            f"-I{os.path.join(HERE, 'nt')}",
        ]
        subprocess.run([*cmd, "-o", exe, src, "-lntdll", "-lgcc"], check=True)
        with open(exe, "rb") as f:
            _STATE["good"] = f.read()
        _STATE["ntdll"] = ntdll.build(
            _profiles.TABLES[_profiles.DEFAULT], _profiles.VERSIONS[_profiles.DEFAULT]
        )
    return _STATE["good"], _STATE["ntdll"]  # type: ignore[return-value]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    directories=st.lists(
        st.tuples(st.sampled_from([IMPORT, BASERELOC, TLS]), st.integers(0, 0x20000), st.integers(0, 0x400)),
        max_size=3,
    ),
    bytes_=st.lists(st.tuples(st.integers(0, 0x3FF), st.integers(0, 255)), max_size=8),
)
@example(directories=[], bytes_=[(213, 97)])  # SizeOfHeaders past the image: mprotect failed (ELFLoadError)
@example(directories=[(BASERELOC, 208, 1)], bytes_=[])  # pefile's relocation pass raised TypeError
def test_mutated_program_only_raises_peloaderror(
    directories: list[tuple[int, int, int]], bytes_: list[tuple[int, int]]
) -> None:
    good, our_ntdll = _fuzz_inputs()
    data = bytearray(good)
    for index, rva, size in directories:
        struct.pack_into("<II", data, _directory_offset(good, index), rva, size)
    for at, value in bytes_:
        data[at] = value
    _try_both(bytes(data), our_ntdll)


def teardown_module() -> None:
    image = _STATE.pop("ntdll", None)
    if isinstance(image, ntdll.NtdllImage):
        image.release()
    shutil.rmtree(_DIR, ignore_errors=True)
