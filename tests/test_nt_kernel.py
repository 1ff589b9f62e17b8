"""The NT kernel's subsystem tables (nt/kernel/): every name is an NT call of the numbering, each is
registered on a personality, and the user's ``personality.on()`` still wins."""

from __future__ import annotations

import functools

import pytest

from pysud.nt import _profiles, kernel, ntdll, wine
from pysud.nt.personality import NtPersonality
from pysud.nt.prefix import find_wine_dlls

#: the NT calls of pysud's own ntdll (every Windows build's numbering) and the Wine-only ones
NT_CALLS = {name for table in _profiles.TABLES.values() for name in table.values()}
NT_CALLS |= set(wine.PRIVATE.values()) | set(wine.WINE_ONLY_CALLS)
#: exports of pysud's own ntdll only, answered in Python (its Rtl/C-library helpers, its private calls)
BUILTIN_ONLY = set(ntdll.PRIVATE.values())
KNOWN = NT_CALLS | BUILTIN_ONLY


def _wine_names() -> set[str]:
    """The calls of the installed Wine's PE ntdll, numbered from its own stubs (Wine-only ones too)."""
    dlls = find_wine_dlls()
    if dlls is None:
        return set()
    w = wine.load_ntdll(dlls)
    try:
        return set(w.table.values())
    finally:
        w.release()


def test_every_table_name_is_an_nt_call() -> None:
    names = kernel.handlers()
    assert names, "no subsystem table lists a call"
    unknown = sorted(set(names) - KNOWN - _wine_names())
    assert not unknown, f"names in nt/kernel tables that no numbering has: {unknown}"


@pytest.mark.parametrize("module", kernel.MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_handler_is_named_after_its_call(module: object) -> None:
    for name, fn in module.HANDLERS.items():  # type: ignore[attr-defined]
        assert fn.__name__ == name, f"{module!r}: {name} -> {fn.__name__}"


def test_a_call_claimed_twice_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Twin:
        __name__ = "twin"
        HANDLERS = {"NtSetEvent": lambda nt, call: 0}

    monkeypatch.setattr(kernel, "MODULES", (*kernel.MODULES, Twin))
    with pytest.raises(ValueError, match="NtSetEvent"):
        kernel.handlers()


@pytest.mark.parametrize("profile", sorted(_profiles.TABLES))
def test_personality_registers_every_table(profile: str) -> None:
    nt = NtPersonality(profile=profile)
    try:
        for name, fn in kernel.handlers().items():
            if name not in nt.abi.numbers:
                continue  # a call this build does not have
            h = nt.d.handler_of(name)
            if name in kernel.context.BLOCKING:  # on record while it blocks (a suspension's context)
                h = h.__wrapped__
            assert isinstance(h, functools.partial), name
            assert h.func is fn and h.args == (nt,), name
    finally:
        nt.close()


def test_builtin_only_names_are_marked_and_every_other_name_is_numbered() -> None:
    # a table name is a call of a numbering (a Windows build's or Wine's stubs), or one that only
    # pysud's own ntdll exports (ntdll.PRIVATE), which its module marks BUILTIN_ONLY
    names = set(kernel.handlers())
    marked = kernel.builtin_only()
    numbered = NT_CALLS | _wine_names()
    assert marked <= names
    assert marked <= BUILTIN_ONLY, sorted(marked - BUILTIN_ONLY)
    assert not marked & numbered, f"marked builtin-only but numbered: {sorted(marked & numbered)}"
    unknown = sorted(names - marked - numbered)
    assert not unknown, f"neither numbered nor marked builtin-only: {unknown}"
    # and every call pysud's own ntdll adds has its handler
    assert not BUILTIN_ONLY - names, sorted(BUILTIN_ONLY - names)


def answer(nt: NtPersonality, name: str, call: object) -> int:
    """What the program gets from the handler of ``name``: its result, or, when it raises, what
    the dispatcher's error path makes of the exception (as the core takes that path)."""
    call.nr = nt.abi.number_of(name)  # type: ignore[attr-defined]
    h = nt.d.handler_of(name)
    assert h is not None, name
    try:
        return int(h(call))
    except Exception as exc:  # noqa: BLE001 - the error path decides
        nt.d._on_error(call, exc)  # type: ignore[arg-type]
        return int(call.rax)  # type: ignore[attr-defined]


def test_library_functions_are_registered_unprobed() -> None:
    # rtl.py's C-library and Rtl helpers are functions, not kernel calls: a bad pointer is the
    # program's crash, not STATUS_ACCESS_VIOLATION; every other call answers it, from the
    # dispatcher's error path (no wrapper around the handler)
    from pysud._errors import GuestMemoryError, HandlerError

    assert kernel.rtl.PROBE is False
    assert kernel.library_names() == set(kernel.rtl.HANDLERS)
    names = kernel.handlers()
    for module in kernel.MODULES:
        for name, fn in module.HANDLERS.items():  # type: ignore[attr-defined]
            assert names[name] is fn, name

    class Call:
        rax = 0

        def record(self) -> object:
            return "call"

    nt = NtPersonality(ntdll="builtin")
    try:
        bad = GuestMemoryError(14, "bad address")
        library = sorted(kernel.library_names() & set(nt.abi.numbers))
        assert library
        for name in (library[0], "NtSetEvent"):
            call = Call()
            call.nr = nt.abi.number_of(name)  # type: ignore[attr-defined]
            nt.d._on_error(call, bad)  # type: ignore[arg-type]
            if name in library:
                assert call.rax == -38  # ENOSYS: pysud's handler error, reported by check()
                with pytest.raises(HandlerError):
                    nt.d.check()
            else:
                assert call.rax == 0xC0000005
                nt.d.check()  # nothing to report
    finally:
        nt.close()


def test_the_personality_has_no_handler_methods() -> None:
    # every handler lives in a table of nt/kernel/: no call is discovered from a method name
    names = set(kernel.handlers())
    methods = {name.lstrip("_") for name in dir(NtPersonality)}
    assert not methods & names, sorted(methods & names)


@pytest.mark.parametrize("profile", sorted(_profiles.TABLES))
def test_every_registered_handler_is_from_a_table(profile: str) -> None:
    # what the numbering has and a table names is the table's function; the rest answer
    # STATUS_NOT_IMPLEMENTED (the personality's own fallback), nothing else is registered
    nt = NtPersonality(profile=profile)
    try:
        tables = kernel.handlers()
        for name in nt.abi.numbers:
            h = nt.d.handler_of(name)
            if name in kernel.context.BLOCKING:  # on record while it blocks (a suspension's context)
                h = h.__wrapped__
            if name in tables:
                assert isinstance(h, functools.partial) and h.func is tables[name], name
            elif name not in ntdll.PRIVATE.values():
                assert h == nt._unimplemented, name
    finally:
        nt.close()


def test_user_override_wins() -> None:
    nt = NtPersonality()
    try:

        def mine(call: object) -> int:
            return 0

        nt.on("NtSetEvent", mine)
        assert nt.d.handler_of("NtSetEvent") is mine
    finally:
        nt.close()


@pytest.mark.skipif(find_wine_dlls() is None, reason="no Wine PE DLLs installed (wine64 8.0+)")
def test_personality_registers_every_table_on_wine_numbering(tmp_path) -> None:
    nt = NtPersonality(ntdll="wine", prefix=str(tmp_path / "prefix"))
    try:
        assert nt.wine is not None
        registered = 0
        for name, fn in kernel.handlers().items():
            if name not in nt.abi.numbers:
                continue
            h = nt.d.handler_of(name)
            if name in kernel.context.BLOCKING:  # on record while it blocks (a suspension's context)
                h = h.__wrapped__
            assert isinstance(h, functools.partial) and h.func is fn, name
            registered += 1
        # the Wine-only calls pysud answers are in Wine's numbering, as are the section calls
        for name in ("__wine_dbg_write", "NtMapViewOfSection", "NtContinue", "__wine_unix_call"):
            assert name in nt.abi.numbers, name
        assert registered >= 10
    finally:
        nt.close()


def test_bad_pointers_give_access_violation(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The program's bad pointers reach the handlers as GuestMemoryError (pysud's checked memory
    # access): every table's handler answers STATUS_ACCESS_VIOLATION, and the host goes on.
    import ctypes
    import struct

    from pysud._dispatch import Syscall

    class Call:
        read = staticmethod(Syscall.read)
        write = staticmethod(Syscall.write)
        write_u64 = staticmethod(Syscall.write_u64)
        write_u32 = staticmethod(Syscall.write_u32)

        def __init__(self, *args: int) -> None:
            self.args = (*args, *(0,) * (16 - len(args)))

    monkeypatch.setenv("PYSUD_PREFIX", str(tmp_path))
    nt = NtPersonality(ntdll="builtin")
    try:
        out = ctypes.create_string_buffer(8)
        bad = 0x10
        name = ctypes.create_string_buffer(struct.pack("<HHIQ", 8, 8, 0, bad))  # its text is at 0x10
        oa = ctypes.create_string_buffer(
            struct.pack("<I4xQQI4xQQ", 48, 0, ctypes.addressof(name), 0x40, 0, 0)
        )
        cases = {
            "NtOpenKey": (ctypes.addressof(out), 0x20019, bad),  # OBJECT_ATTRIBUTES at 0x10
            "NtCreateKey": (ctypes.addressof(out), 0xF003F, ctypes.addressof(oa)),  # its name at 0x10
            "NtCreateEvent": (ctypes.addressof(out), 0x1F0003, ctypes.addressof(oa), 0, 0),
            "NtWaitForMultipleObjects": (2, bad, 0, 0, 0),  # handle array at 0x10
            "NtQueryInformationToken": (0xFFFFFFFFFFFFFFFC, 1, bad, 256, 0),  # output at 0x10
            "NtOpenProcessToken": (0xFFFFFFFFFFFFFFFF, 8, bad),  # handle out at 0x10
        }
        for call_name, args in cases.items():
            assert answer(nt, call_name, Call(*args)) == 0xC0000005, call_name
        nt.d.check()  # none of them was an error of pysud's
        assert not nt.handles._objects  # no handle left behind by a call that failed half-way
    finally:
        nt.close()


class _Call:
    """Just enough of an NT call for a handler: its arguments, checked memory access."""

    def __init__(self, *args: int) -> None:
        from pysud._dispatch import Syscall

        self.read = Syscall.read
        self.write = Syscall.write
        self.write_u64 = Syscall.write_u64
        self.write_u32 = Syscall.write_u32
        self.args = (*args, *(0,) * (16 - len(args)))


def test_an_nt_status_error_from_below_is_the_calls_status(monkeypatch: pytest.MonkeyPatch) -> None:
    # what a handler calls may fail with an NTSTATUS (the registry's RegistryError does): the
    # dispatcher's error path answers it, as it answers a bad pointer with STATUS_ACCESS_VIOLATION
    from pysud.nt import status

    def NtSetEvent(nt: object, call: object) -> int:
        raise status.NtStatusError(status.STATUS_OBJECT_NAME_NOT_FOUND)

    class Module:
        __name__ = "fake"
        HANDLERS = {"NtSetEvent": NtSetEvent}

    monkeypatch.setattr(kernel, "MODULES", (Module,))
    assert kernel.error_status(status.NtStatusError(status.STATUS_OBJECT_NAME_NOT_FOUND)) == (
        status.STATUS_OBJECT_NAME_NOT_FOUND
    )
    assert kernel.error_status(ValueError("a bug of pysud's")) is None
    nt = NtPersonality(ntdll="builtin")
    try:
        assert answer(nt, "NtSetEvent", _Call()) == status.STATUS_OBJECT_NAME_NOT_FOUND
        nt.d.check()
    finally:
        nt.close()


@pytest.mark.parametrize("call_name", ["NtOpenFile", "NtCreateFile"])
def test_a_bad_handle_pointer_leaves_no_handle_behind(call_name: str, tmp_path) -> None:
    import ctypes
    import struct

    (tmp_path / "there.txt").write_text("x")
    nt = NtPersonality(ntdll="builtin", drives={"C": str(tmp_path)})
    try:
        text = "\\??\\C:\\there.txt".encode("utf-16-le")
        buf = ctypes.create_string_buffer(text)
        name = ctypes.create_string_buffer(
            struct.pack("<HHIQ", len(text), len(text) + 2, 0, ctypes.addressof(buf))
        )
        oa = ctypes.create_string_buffer(
            struct.pack("<I4xQQI4xQQ", 48, 0, ctypes.addressof(name), 0x40, 0, 0)
        )
        iosb = ctypes.create_string_buffer(16)
        bad = 0x10  # where the handle would go
        args = (bad, 0x80100000, ctypes.addressof(oa), ctypes.addressof(iosb))
        if call_name == "NtOpenFile":
            args += (7, 0x40)  # share all, FILE_NON_DIRECTORY_FILE
        else:
            args += (0, 0x80, 7, 1, 0x40)  # no allocation size, normal attributes, FILE_OPEN
        assert answer(nt, call_name, _Call(*args)) == 0xC0000005
        assert not nt.handles._objects  # the file opened on the way is closed again
    finally:
        nt.close()
