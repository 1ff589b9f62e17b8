"""The NT kernel's subsystem tables (nt/kernel/): every name is an NT call of the numbering, each is
registered on a personality, and the user's ``personality.on()`` still wins."""

from __future__ import annotations

import functools

import pytest

from pysud.nt import _profiles, kernel, ntdll, wine
from pysud.nt.personality import NtPersonality
from pysud.nt.prefix import find_wine_dlls

KNOWN = {name for table in _profiles.TABLES.values() for name in table.values()}
KNOWN |= set(ntdll.PRIVATE.values()) | set(wine.PRIVATE.values()) | set(wine.WINE_ONLY_CALLS)


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
            assert isinstance(h, functools.partial), name
            assert h.func is fn and h.args == (nt,), name
    finally:
        nt.close()


def test_no_call_is_both_a_method_and_in_a_table() -> None:
    methods = {name[1:] for name in dir(NtPersonality) if name.startswith(("_Nt", "_Rtl"))}
    assert not methods & set(kernel.handlers())


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
            assert isinstance(h, functools.partial) and h.func is fn, name
            registered += 1
        # the Wine-only calls pysud answers are in Wine's numbering, as are the section calls
        for name in ("__wine_dbg_write", "NtMapViewOfSection", "NtContinue", "__wine_unix_call"):
            assert name in nt.abi.numbers, name
        assert registered >= 10
    finally:
        nt.close()
