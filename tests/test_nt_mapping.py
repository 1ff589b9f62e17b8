"""The mapping layer under both loaders (src/pysud/_memory.py): a mapping that fails is a
MappingError carrying the errno, and each loader reports it as its own error: the ELF loader as
ELFLoadError, the NT loaders (pysud's PE loader, image sections, the main stack) as PELoadError,
never the other personality's."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import struct
import subprocess
import sys

import pefile
import pytest

from pysud import _elf, _memory
from pysud.nt import _profiles, image, ntdll
from pysud.nt import pe as pe_loader
from pysud.nt.pe import PELoadError

HERE = os.path.dirname(os.path.abspath(__file__))
CC = shutil.which("x86_64-w64-mingw32-gcc")
requires_cc = pytest.mark.skipif(
    CC is None, reason="x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)"
)


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> str:
    assert CC is not None
    exe = str(tmp_path_factory.mktemp("mapping") / "hello.exe")
    src = os.path.join(HERE, "nt", "hello.c")
    cmd = [CC, "-O2", "-nostdlib", "-ffreestanding", "-e", "mainCRTStartup", f"-I{os.path.join(HERE, 'nt')}"]
    subprocess.run([*cmd, "-o", exe, src, "-lntdll", "-lgcc"], check=True)
    return exe


@pytest.fixture
def our_ntdll():  # type: ignore[no-untyped-def]
    built = ntdll.build(_profiles.TABLES[_profiles.DEFAULT], _profiles.VERSIONS[_profiles.DEFAULT])
    yield built
    built.release()


@pytest.fixture
def no_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every mmap fails with ENOMEM from here on (the test's own mappings come first)."""

    def mmap(*args: object) -> int | None:
        ctypes.set_errno(errno.ENOMEM)
        return ctypes.c_void_p(-1).value

    monkeypatch.setattr(_memory, "_mmap", mmap)


def test_a_taken_fixed_range_is_a_mapping_error_with_eexist() -> None:
    page = _memory.map_anywhere(0x10000, _memory.PROT_READ, "test", align=0x10000)
    try:
        with pytest.raises(_memory.MappingError, match=r"EEXIST|already in use") as info:
            _memory.map_at(page, 0x1000, _memory.PROT_READ, "test squatter")
        assert info.value.errno == errno.EEXIST
        assert not isinstance(info.value, _elf.ELFLoadError)
    finally:
        _memory.unmap(page, 0x10000)


def test_a_refused_mmap_is_a_mapping_error_naming_the_errno(no_memory: None) -> None:
    with pytest.raises(_memory.MappingError, match=r"the thing: mmap of 0x1000 bytes .*ENOMEM") as info:
        _memory.map_anywhere(0x1000, _memory.PROT_READ, "the thing")
    assert info.value.errno == errno.ENOMEM


def test_the_elf_loader_reports_a_failed_mapping_as_elfloaderror(no_memory: None) -> None:
    exe = shutil.which("true") or "/bin/true"
    with pytest.raises(_elf.ELFLoadError, match="ENOMEM"):
        _elf.load_image(exe)


@requires_cc
def test_the_pe_loader_reports_a_failed_mapping_as_peloaderror(
    hello: str, our_ntdll: ntdll.NtdllImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = image.read_info(hello)

    def mmap(*args: object) -> int | None:
        ctypes.set_errno(errno.ENOMEM)
        return ctypes.c_void_p(-1).value

    monkeypatch.setattr(_memory, "_mmap", mmap)
    for load in (lambda: pe_loader.load(hello, our_ntdll), lambda: image.map_view(info)):
        with pytest.raises(PELoadError) as caught:
            load()
        assert str(caught.value).startswith(hello) and "ENOMEM" in str(caught.value)
        assert isinstance(caught.value.__cause__, _memory.MappingError)
        assert not isinstance(caught.value, _elf.ELFLoadError)


@requires_cc
def test_a_taken_base_without_relocations_is_a_peloaderror(
    hello: str, our_ntdll: ntdll.NtdllImage, tmp_path
) -> None:
    pe = pefile.PE(hello)
    pe.FILE_HEADER.Characteristics |= 0x0001  # IMAGE_FILE_RELOCS_STRIPPED
    base, size = pe.OPTIONAL_HEADER.ImageBase, pe.OPTIONAL_HEADER.SizeOfImage
    fixed = str(tmp_path / "fixed.exe")
    pe.write(fixed)
    squatter = _memory.map_at(base, 0x1000, _memory.PROT_READ, "squatter")
    try:
        with pytest.raises(PELoadError, match="is taken and it has no relocations") as caught:
            pe_loader.load(fixed, our_ntdll)
        assert isinstance(caught.value.__cause__, _memory.MappingError)
        with pytest.raises(PELoadError, match="is taken and it has no relocations"):
            image.map_view(image.read_info(fixed))
        with pytest.raises(PELoadError, match="is in use"):  # an image section's view asked for there
            image.map_view(image.read_info(hello), at=base)
    finally:
        _memory.unmap(squatter, 0x1000)
    loaded = pe_loader.load(fixed, our_ntdll)  # and with the base free, it loads there
    try:
        assert loaded.base == base and loaded.size == (size + 0xFFF) & ~0xFFF
    finally:
        loaded.release()


@requires_cc
def test_a_main_stack_that_cannot_be_mapped_is_a_clear_nt_error(hello: str, tmp_path) -> None:
    # SizeOfStackReserve of 128 TiB: no address space holds it; `pysud run` says so and exits 2
    with open(hello, "rb") as f:
        data = bytearray(f.read())
    pe = pefile.PE(data=bytes(data), fast_load=True)
    struct.pack_into("<Q", data, pe.OPTIONAL_HEADER.get_file_offset() + 72, 1 << 47)
    exe = tmp_path / "bigstack.exe"
    exe.write_bytes(bytes(data))
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--ntdll", "builtin", str(exe)],
        capture_output=True,
        timeout=60,
    )
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert f"{exe}: its main stack: mmap of" in err and "ENOMEM" in err, err
    assert "Traceback" not in err and "ELFLoadError" not in err


def test_a_commit_the_host_refuses_is_status_no_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # NtAllocateVirtualMemory(MEM_COMMIT) inside a reservation: an mprotect the kernel refuses
    # (ENOMEM: over the commit limit) is STATUS_NO_MEMORY for the program, not a handler error
    from pysud._dispatch import Syscall
    from pysud.nt.personality import NtPersonality

    class Call:
        read = staticmethod(Syscall.read)
        write = staticmethod(Syscall.write)
        write_u64 = staticmethod(Syscall.write_u64)
        write_u32 = staticmethod(Syscall.write_u32)

        def __init__(self, *args: int) -> None:
            self.args = (*args, *(0,) * (16 - len(args)))

    nt = NtPersonality(ntdll="builtin")
    try:
        allocate = nt.d.handler_of("NtAllocateVirtualMemory")
        free = nt.d.handler_of("NtFreeVirtualMemory")
        assert allocate is not None and free is not None
        base, size = ctypes.c_uint64(0), ctypes.c_uint64(0x10000)
        where = (ctypes.addressof(base), 0, ctypes.addressof(size))
        assert allocate(Call(2**64 - 1, *where, 0x2000, 0x04)) == 0  # MEM_RESERVE, PAGE_READWRITE
        reserved = base.value
        assert reserved

        def refuse(*args: object) -> int:
            ctypes.set_errno(errno.ENOMEM)
            return -1

        with monkeypatch.context() as m:
            m.setattr(_memory, "_mprotect", refuse)
            assert allocate(Call(2**64 - 1, *where, 0x1000, 0x04)) == 0xC0000017  # MEM_COMMIT
        assert nt.pages[reserved] == (0x2000, 0)  # still reserved only
        assert allocate(Call(2**64 - 1, *where, 0x1000, 0x04)) == 0  # and committed when it can be
        size.value = 0
        assert free(Call(2**64 - 1, ctypes.addressof(base), ctypes.addressof(size), 0x8000)) == 0
    finally:
        nt.close()
