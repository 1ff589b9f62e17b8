"""Numbering an NT program can observe: numbers read from ntdll's exported stubs (Hell's Gate),
from the address order of the Zw exports (SysWhispers2) and the selected Windows build's numbers
typed into the program all reach the same NT call, on pysud's own ntdll and on Wine's DLLs; and
the core's renumbering by call site that makes it so with Wine's DLLs (docs/nt.md)."""

from __future__ import annotations

import pytest

from asm import assemble
from conftest import requires_sud
from pysud import CodeBlob, Dispatcher

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
