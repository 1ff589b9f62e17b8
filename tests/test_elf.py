"""The in-process ELF loader: segment mapping, protections, the initial stack, and malformed inputs."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import struct
import subprocess
import tempfile

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pysud import _elf
from pysud._elf import ELFLoadError, LoadedImage, build_stack, host_auxv, load_image, unload, unmap_region

PAGE = 4096
TRUE = shutil.which("true") or "/bin/true"
with open(TRUE, "rb") as _f:
    TRUE_BYTES = _f.read()

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


# --- helpers -------------------------------------------------------------------------------------


def maps() -> list[tuple[int, int, str]]:
    """(start, end, perms) of every mapping in /proc/self/maps."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            rng, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in rng.split("-"))
            out.append((lo, hi, perms))
    return out


def perms_at(addr: int, table: list[tuple[int, int, str]] | None = None) -> str | None:
    for lo, hi, perms in table if table is not None else maps():
        if lo <= addr < hi:
            return perms[:3]
    return None


def within(lo: int, hi: int) -> list[tuple[int, int, str]]:
    return [m for m in maps() if m[0] < hi and lo < m[1]]


def reservations() -> list[tuple[int, int, str]]:
    """The inaccessible mappings: a leaked reservation from a failed load would show up here."""
    return [m for m in maps() if m[2].startswith("---")]


def page_down(x: int) -> int:
    return x & ~(PAGE - 1)


def page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


def perm_string(flags: int) -> str:
    return ("r" if flags & 4 else "-") + ("w" if flags & 2 else "-") + ("x" if flags & 1 else "-")


def pt_loads(data: bytes) -> list[tuple[int, int, int, int, int, int]]:
    """(offset, vaddr, filesz, memsz, flags, align) of each PT_LOAD, read independently of the loader."""
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    out = []
    for i in range(phnum):
        p_type, flags, offset, vaddr, _paddr, filesz, memsz, align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            out.append((offset, vaddr, filesz, memsz, flags, align))
    return out


def check_image(image: LoadedImage, data: bytes) -> None:
    """Everything about a loaded image that can be checked against the file itself."""
    e_entry, e_phoff = struct.unpack_from("<QQ", data, 24)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    assert image.entry == image.base + e_entry
    assert (image.phent, image.phnum) == (phentsize, phnum) == (56, phnum)
    assert ctypes.string_at(image.phdr, phnum * phentsize) == data[e_phoff : e_phoff + phnum * phentsize]
    loads = pt_loads(data)
    assert image.start == image.base + page_down(min(v for _, v, *_ in loads))
    assert image.brk_start == image.base + page_up(max(v + m for _, v, _, m, _, _ in loads))
    assert image.end == image.brk_start
    table = maps()
    expected: dict[int, str] = {}  # page -> perms, the last segment touching a page wins (as with mmap)
    for _offset, vaddr, _filesz, memsz, flags, _ in loads:
        addr = image.base + vaddr
        for page in range(page_down(addr), page_up(addr + memsz), PAGE):
            expected[page] = perm_string(flags)
    for page, perms in expected.items():
        assert perms_at(page, table) == perms, f"page {page:#x}"
    for offset, vaddr, filesz, memsz, flags, _ in loads:
        if not flags & 4:
            continue
        addr = image.base + vaddr
        assert ctypes.string_at(addr, filesz) == data[offset : offset + filesz]
        if memsz > filesz:
            # The bss, including the rest of the last file page, is zero.
            tail = page_up(addr + memsz) - (addr + filesz)
            assert ctypes.string_at(addr + filesz, tail) == bytes(tail)


def build_elf(
    phdrs: list[tuple[int, int, int, int, int, int]],
    contents: dict[int, bytes],
    *,
    e_type: int = 2,
    entry: int = 0,
    machine: int = 62,
    size: int = 0x3000,
) -> bytes:
    """A hand-made ELF64: phdrs are (p_type, flags, offset, vaddr, filesz, memsz), contents offset->bytes."""
    buf = bytearray(size)
    buf[:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into(
        "<HHIQQQIHHHHHH", buf, 16, e_type, machine, 1, entry, 64, 0, 0, 64, 56, len(phdrs), 0, 0, 0
    )
    for i, (p_type, flags, offset, vaddr, filesz, memsz) in enumerate(phdrs):
        struct.pack_into(
            "<IIQQQQQQ", buf, 64 + 56 * i, p_type, flags, offset, vaddr, vaddr, filesz, memsz, PAGE
        )
    for off, b in contents.items():
        buf[off : off + len(b)] = b
    return bytes(buf)


def free_address(size: int) -> int:
    """An address range that is free right now (mapped then released)."""
    addr = _libc.mmap(None, size, 0, 0x22, -1, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value)
    _libc.munmap(addr, size)
    return int(addr)


def write(tmp_path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


@pytest.fixture
def loaded():
    images: list[LoadedImage] = []
    yield images
    for im in images:
        unload(im)


# --- real binaries -------------------------------------------------------------------------------


def test_load_true_and_interpreter(loaded):
    with open(TRUE, "rb") as f:
        elf = ELFFile(f)
        interps = [seg.get_interp_name() for seg in elf.iter_segments() if seg["p_type"] == "PT_INTERP"]
    if not interps:
        pytest.skip(f"{TRUE} has no PT_INTERP")
    image = load_image(TRUE)
    loaded.append(image)
    assert image.interp == interps[0]
    assert image.e_type == _elf.ET_DYN
    assert image.base == image.start and image.base % PAGE == 0
    check_image(image, TRUE_BYTES)

    interp = load_image(image.interp)
    loaded.append(interp)
    assert interp.interp is None
    with open(image.interp, "rb") as f:
        check_image(interp, f.read())
    assert not (interp.start < image.end and image.start < interp.end)


def test_unload_removes_mappings():
    image = load_image(TRUE)
    assert perms_at(image.start) is not None
    unload(image)
    assert image.mappings == []
    table = maps()
    assert all(hi <= image.start or lo >= image.end for lo, hi, _ in table)
    unload(image)  # twice is harmless


def test_base_hint_is_used_when_free(loaded):
    hint = free_address(1 << 24)
    image = load_image(TRUE, base_hint=hint)
    loaded.append(image)
    assert image.base == hint
    check_image(image, TRUE_BYTES)


def _compile_static(tmp_path, flags: list[str]) -> str:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "prog.c"
    src.write_text("int counter = 42; char buf[100000];\nint main(void) { return counter + buf[7]; }\n")
    out = tmp_path / "prog"
    r = subprocess.run([gcc, *flags, "-o", str(out), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot link {' '.join(flags)} (static libc missing?): {r.stderr.strip()[:200]}")
    return str(out)


def test_static_pie(tmp_path, loaded):
    path = _compile_static(tmp_path, ["-static-pie", "-fPIE", "-O1"])
    image = load_image(path)
    loaded.append(image)
    assert image.interp is None and image.e_type == _elf.ET_DYN
    with open(path, "rb") as f:
        check_image(image, f.read())


def test_static_exec_fixed_address_and_collision(tmp_path, loaded):
    path = _compile_static(tmp_path, ["-static", "-no-pie", "-O1"])
    with open(path, "rb") as f:
        data = f.read()
    lo = min(v for _, v, *_ in pt_loads(data))
    if perms_at(page_down(lo)) is not None:
        pytest.skip(f"{lo:#x} is already mapped in this process")
    image = load_image(path)
    loaded.append(image)
    assert image.interp is None and image.e_type == _elf.ET_EXEC and image.base == 0
    assert image.start == page_down(lo)
    check_image(image, data)
    before = within(image.start, image.end)
    with pytest.raises(ELFLoadError, match=r"already in use|EEXIST"):
        load_image(path)
    assert within(image.start, image.end) == before  # nothing clobbered
    check_image(image, data)


# --- hand-made images ----------------------------------------------------------------------------


def test_exec_collision_with_existing_mapping(tmp_path):
    addr = free_address(0x10000)
    marker = _libc.mmap(addr + 0x2000, PAGE, 3, 0x22 | 0x100000, -1, 0)
    assert marker == addr + 0x2000
    try:
        ctypes.memmove(marker, b"precious", 8)
        data = build_elf([(1, 5, 0, addr, 0x100, 0x4000)], {}, entry=addr)
        path = write(tmp_path, "exec", data)
        with pytest.raises(ELFLoadError, match=r"already in use|EEXIST"):
            load_image(path)
        assert ctypes.string_at(marker, 8) == b"precious"
        assert perms_at(marker) == "rw-"
    finally:
        _libc.munmap(marker, PAGE)


def test_exec_unaligned_segment_and_partial_bss(tmp_path, loaded):
    addr = free_address(0x10000)
    payload = bytes(range(1, 256)) * 8  # nonzero bytes, also beyond p_filesz in the file
    # Segment 2 starts mid-page, file offset congruent; filesz ends mid-page, bss runs one page further.
    data = build_elf(
        [(1, 5, 0, addr, 0x200, 0x200), (1, 6, 0x1123, addr + 0x2123, 0x300, 0x1800)],
        {0x1000: payload},
        entry=addr + 0x100,
    )
    image = load_image(write(tmp_path, "exec", data))
    loaded.append(image)
    assert image.base == 0 and image.start == addr and image.entry == addr + 0x100
    assert image.brk_start == page_up(addr + 0x2123 + 0x1800)
    # In-page bytes before p_vaddr come from the file, as with the kernel's file mapping.
    assert ctypes.string_at(addr + 0x2000, 0x423) == data[0x1000:0x1423]
    zeros = page_up(addr + 0x2123 + 0x1800) - (addr + 0x2423)
    assert ctypes.string_at(addr + 0x2423, zeros) == bytes(zeros)
    # Without a bss the rest of the last page shows the file, like a file mapping would.
    assert ctypes.string_at(addr, 0x300) == data[:0x300]
    assert perms_at(addr) == "r-x" and perms_at(addr + 0x2000) == "rw-" and perms_at(addr + 0x3000) == "rw-"
    assert perms_at(addr + 0x1000) == "---"  # the gap stays reserved
    check_image(image, data)


def test_phdr_without_pt_phdr_comes_from_the_pt_load(tmp_path, loaded):
    data = build_elf([(1, 4, 0, 0x10000, 0x400, 0x400)], {}, e_type=3, entry=0x10010)
    image = load_image(write(tmp_path, "dyn", data))
    loaded.append(image)
    assert image.phdr == image.base + 0x10000 + 64
    assert image.entry == image.base + 0x10010
    assert image.start == image.base + 0x10000


# --- the initial stack ---------------------------------------------------------------------------


def read_stack(rsp: int) -> tuple[list[bytes], list[bytes], list[tuple[int, int]], list[int]]:
    words = lambda addr, n: list(struct.unpack(f"<{n}Q", ctypes.string_at(addr, 8 * n)))  # noqa: E731
    (argc,) = words(rsp, 1)
    p = rsp + 8
    argv_ptrs = words(p, argc + 1)
    assert argv_ptrs[-1] == 0
    p += 8 * (argc + 1)
    envp_ptrs = []
    while True:
        (w,) = words(p, 1)
        p += 8
        if w == 0:
            break
        envp_ptrs.append(w)
    auxv = []
    while True:
        k, v = words(p, 2)
        p += 16
        auxv.append((k, v))
        if k == 0:
            break
    argv = [ctypes.string_at(a) for a in argv_ptrs[:-1]]
    envp = [ctypes.string_at(a) for a in envp_ptrs]
    return argv, envp, auxv, argv_ptrs[:-1] + envp_ptrs


@pytest.mark.parametrize("with_vdso", [False, True])
def test_build_stack_layout(loaded, with_vdso):
    image = load_image(TRUE)
    loaded.append(image)
    interp = load_image(image.interp) if image.interp else None
    if interp is not None:
        loaded.append(interp)
    host = host_auxv()
    vdso = host.get(_elf.AT_SYSINFO_EHDR) if with_vdso else None
    if with_vdso and vdso is None:
        pytest.skip("host has no vDSO")
    argv = [b"/bin/true", b"", b"second arg", "ünïcode".encode()]
    envp = [b"A=1", b"PATH=/usr/bin:/bin", b"EMPTY="]
    stack, size, rsp = build_stack(image, interp, argv, envp, execfn=b"/usr/bin/true", vdso_base=vdso)
    try:
        assert size == 8 << 20
        assert rsp % 16 == 0 and stack < rsp < stack + size
        assert perms_at(rsp) == "rw-"
        got_argv, got_envp, auxv, ptrs = read_stack(rsp)
        assert got_argv == argv and got_envp == envp
        # The strings are contiguous, argv[0] lowest, as the kernel's copy_strings leaves them.
        assert ptrs == sorted(ptrs)
        for a, s in zip(ptrs, argv + envp, strict=True):
            assert ctypes.string_at(a, len(s) + 1) == s + b"\0"
        for a, b, s in zip(ptrs, ptrs[1:], argv + envp, strict=False):
            assert b == a + len(s) + 1
        keys = [k for k, _ in auxv]
        assert keys[-1] == _elf.AT_NULL and len(keys) == len(set(keys))
        aux = dict(auxv)
        assert aux[_elf.AT_PHDR] == image.phdr
        assert aux[_elf.AT_PHENT] == 56 and aux[_elf.AT_PHNUM] == image.phnum
        assert aux[_elf.AT_PAGESZ] == 4096
        assert aux[_elf.AT_BASE] == (interp.base if interp else 0)
        assert aux[_elf.AT_FLAGS] == 0 and aux[_elf.AT_SECURE] == 0
        assert aux[_elf.AT_ENTRY] == image.entry
        assert (aux[_elf.AT_UID], aux[_elf.AT_EUID]) == (os.getuid(), os.geteuid())
        assert (aux[_elf.AT_GID], aux[_elf.AT_EGID]) == (os.getgid(), os.getegid())
        assert aux[_elf.AT_HWCAP] == host.get(_elf.AT_HWCAP, 0)
        assert aux[_elf.AT_HWCAP2] == host.get(_elf.AT_HWCAP2, 0)
        assert aux[_elf.AT_CLKTCK] == os.sysconf("SC_CLK_TCK")
        if _elf.AT_MINSIGSTKSZ in host:
            assert aux[_elf.AT_MINSIGSTKSZ] == host[_elf.AT_MINSIGSTKSZ]
        assert ctypes.string_at(aux[_elf.AT_PLATFORM]) == b"x86_64"
        execfn = aux[_elf.AT_EXECFN]
        assert ctypes.string_at(execfn) == b"/usr/bin/true"
        assert execfn == ptrs[-1] + len(envp[-1]) + 1  # right above the last environment string
        assert execfn + len(b"/usr/bin/true") + 1 + 8 == stack + size  # under the top NULL word
        rnd = aux[_elf.AT_RANDOM]
        assert rsp < rnd and rnd + 16 <= ptrs[0]
        if with_vdso:
            assert aux[_elf.AT_SYSINFO_EHDR] == vdso
        else:
            assert _elf.AT_SYSINFO_EHDR not in aux
    finally:
        unmap_region(stack, size)


def test_build_stack_random_bytes_differ(loaded):
    image = load_image(TRUE)
    loaded.append(image)
    seen = []
    for _ in range(2):
        stack, size, rsp = build_stack(image, None, [b"x"], [], execfn=b"x", vdso_base=None)
        aux = dict(read_stack(rsp)[2])
        seen.append(ctypes.string_at(aux[_elf.AT_RANDOM], 16))
        assert aux[_elf.AT_BASE] == 0
        unmap_region(stack, size)
    assert seen[0] != seen[1]


def test_build_stack_rejects_bad_arguments(loaded):
    image = load_image(TRUE)
    loaded.append(image)
    with pytest.raises(ValueError, match="NUL"):
        build_stack(image, None, [b"a\0b"], [], execfn=b"x", vdso_base=None)
    with pytest.raises(ELFLoadError, match="argument list too long"):
        build_stack(image, None, [b"x" * 100000], [], execfn=b"x", stack_size=256 * 1024, vdso_base=None)


def test_host_auxv():
    aux = host_auxv()
    assert aux[_elf.AT_PAGESZ] == 4096
    assert _elf.AT_HWCAP in aux and _elf.AT_NULL not in aux


# --- malformed input -----------------------------------------------------------------------------


def _elf32() -> bytes:
    ident = b"\x7fELF\x01\x01\x01" + bytes(9)
    return (
        ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x8048000, 52, 0, 0, 52, 32, 0, 0, 0, 0) + bytes(200)
    )


def _patched(offset: int, value: bytes) -> bytes:
    b = bytearray(TRUE_BYTES)
    b[offset : offset + len(value)] = value
    return bytes(b)


MALFORMED = {
    "empty": (b"", "empty file"),
    "random": (random.Random(1234).randbytes(8192), "not an ELF file"),
    "text": (b"#!/bin/sh\necho hello\n" * 10, "not an ELF file"),
    "magic-only": (b"\x7fELF", "truncated"),
    "truncated100": (TRUE_BYTES[:100], "truncated"),
    "truncated2000": (TRUE_BYTES[:2000], "truncated"),
    "elf32": (_elf32(), "32-bit"),
    "big-endian": (_patched(5, b"\x02"), "little-endian"),
    "wrong-machine": (_patched(18, struct.pack("<H", 40)), "wrong machine.*EM_ARM"),
    "relocatable": (_patched(16, struct.pack("<H", 1)), "ET_REL.*not an executable"),
    "core": (_patched(16, struct.pack("<H", 4)), "not an executable"),
    "phentsize": (_patched(54, struct.pack("<H", 32)), "e_phentsize"),
    "phnum0": (_patched(56, struct.pack("<H", 0)), "e_phnum"),
    "phoff-huge": (_patched(32, struct.pack("<Q", 1 << 62)), "truncated"),
    "no-pt-load": (build_elf([(4, 4, 0, 0, 0x10, 0x10)], {}), "no PT_LOAD"),
    "filesz-gt-memsz": (build_elf([(1, 4, 0, 0x400000, 0x200, 0x100)], {}), "filesz"),
    "kernel-space": (build_elf([(1, 4, 0, 0xFFFF800000000000, 0x200, 0x200)], {}), "outside user space"),
    "missing-interp": (
        _patched(TRUE_BYTES.find(b"/lib64/ld-linux"), b"/nonexistent/ld.so\0"),
        "interpreter /nonexistent/ld.so does not exist",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input(tmp_path, name):
    data, message = MALFORMED[name]
    if name == "missing-interp" and b"/lib64/ld-linux" not in TRUE_BYTES:
        pytest.skip("true has another interpreter")
    path = write(tmp_path, name, data)
    before = reservations()
    with pytest.raises(ELFLoadError, match=message) as info:
        load_image(path)
    assert path in str(info.value)  # the message names the file
    assert reservations() == before  # nothing leaked


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(ELFLoadError, match="is a directory"):
        load_image(tmp_path)
    with pytest.raises(ELFLoadError, match=r"cannot open.*No such file"):
        load_image(tmp_path / "nope")


_MUTATION_DIR = tempfile.mkdtemp(prefix="pysud-elf-")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 255)), min_size=1, max_size=12))
def test_mutated_header_only_raises_elfloaderror(mutations):
    data = bytearray(TRUE_BYTES)
    for index, value in mutations:
        data[index] = value
    path = os.path.join(_MUTATION_DIR, "mutant")
    with open(path, "wb") as f:
        f.write(data)
    try:
        image = load_image(path)
    except ELFLoadError as exc:
        assert str(exc)
    else:
        unload(image)


def teardown_module() -> None:
    shutil.rmtree(_MUTATION_DIR, ignore_errors=True)
