"""Wine's Unix-side calls of ntdll (``__wine_unix_call``), answered by pysud instead of ntdll.so.

Wine 8's ntdll reaches its Unix half through ``__wine_unix_call_dispatcher``, which pysud points at
a stub of its own; the handle is the one NtQueryVirtualMemory(MemoryWineUnixFuncs) gave ntdll.
ntdll's codes: 0 load_so_dll (no .so DLLs here), 1 unwind_builtin_dll (no Unix frames to unwind),
2 system_time_precise.

Other Wine DLLs ask for their own handle in DllMain and fail to load without one (ws2_32.dll, which
every Go program loads). They get a handle of their own (:data:`UNIX_LIBS`); a call they then make
is answered STATUS_NOT_IMPLEMENTED and reported once, by DLL and code.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from typing import TYPE_CHECKING

from .. import process
from .. import status as st
from ..wine import NTDLL_UNIX_HANDLE

if TYPE_CHECKING:
    from ..image import ImageView
    from ..personality import NtPersonality, NtSyscall

LOAD_SO_DLL = 0
UNWIND_BUILTIN_DLL = 1
SYSTEM_TIME_PRECISE = 2

#: Wine DLLs whose DllMain needs a Unix-call handle to load; the handle each one gets
UNIX_LIBS = {"ws2_32.dll": NTDLL_UNIX_HANDLE + 1}


def unix_funcs_handle(nt: NtPersonality, addr: int, view: ImageView | None) -> int | None:
    """NtQueryVirtualMemory(MemoryWineUnixFuncs) for ``addr`` in the image ``view``: None when
    that image has no Unix side."""
    if nt.wine is not None and nt.wine.base <= addr < nt.wine.base + nt.wine.view.size:
        return NTDLL_UNIX_HANDLE
    if view is None or view.info is None:
        return None
    return UNIX_LIBS.get(os.path.basename(view.info.path).lower())


def __wine_unix_call(nt: NtPersonality, call: NtSyscall) -> int:
    handle, code, params = call.args[:3]
    code &= 0xFFFFFFFF
    if handle != NTDLL_UNIX_HANDLE:
        lib = next((name for name, h in UNIX_LIBS.items() if h == handle), None)
        if lib is None:
            return st.STATUS_INVALID_HANDLE
        return nt._unimplemented_class(call, code, f"{lib} Unix call")
    if code == SYSTEM_TIME_PRECISE:
        call.write(params, struct.pack("<q", process.system_time()))
        return st.STATUS_SUCCESS
    if code == LOAD_SO_DLL:
        return st.STATUS_DLL_NOT_FOUND
    if code == UNWIND_BUILTIN_DLL:
        return st.STATUS_UNSUCCESSFUL
    return nt._unimplemented_class(call, code)


HANDLERS = {"__wine_unix_call": __wine_unix_call}


def __wine_dbg_write(nt: NtPersonality, call: NtSyscall) -> int:
    """Wine's debug output: channel lines (``0024:fixme:...``) to the trace under --trace, else
    dropped (as WINEDEBUG=-all); messages for the user (``wine: Unhandled page fault ...``) to stderr."""
    text, length = call.args[0], call.args[1] & 0xFFFFFFFF
    if not text or not length:
        return length
    data = call.read(text, min(length, 1 << 16)).decode("utf-8", errors="replace")
    if nt.trace:
        nt.trace_file.write(data)
        nt.trace_file.flush()
    elif not _CHANNEL_LINE.match(data):
        sys.stderr.write(data)
        sys.stderr.flush()
    return length


_CHANNEL_LINE = re.compile(r"^[0-9a-f]{4,8}:(trace|warn|err|fixme):|^Read the Wine Developers Guide")


HANDLERS["__wine_dbg_write"] = __wine_dbg_write


def wine_nt_to_unix_file_name(nt: NtPersonality, call: NtSyscall) -> int:
    """The host path of an NT name (Wine's call; kernelbase and cmd ask it): UTF-8, NUL-terminated."""
    oa, buf, size_ptr, _disposition = call.args[:4]
    path, status = nt.host_path(call, oa)
    if path is None:
        return status
    raw = path.encode("utf-8", errors="surrogateescape") + b"\0"
    (size,) = struct.unpack("<I", call.read(size_ptr, 4))
    call.write(size_ptr, struct.pack("<I", len(raw)))
    if size < len(raw):
        return st.STATUS_BUFFER_TOO_SMALL
    call.write(buf, raw)
    return st.STATUS_SUCCESS


HANDLERS["wine_nt_to_unix_file_name"] = wine_nt_to_unix_file_name
