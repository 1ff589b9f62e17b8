"""Handle attributes: NtQueryObject and NtSetInformationObject for ObjectHandleFlagInformation
(GetHandleInformation/SetHandleInformation: the inherit and protect-from-close flags).

The flags are kept per handle; a child process gets the standard handles it is given whatever
they say (NtCreateUserProcess passes the files behind them), as launchers and cmd.exe expect.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

OBJECT_HANDLE_FLAG_INFORMATION = 4  # {BOOLEAN Inherit; BOOLEAN ProtectFromClose}
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE


def _known(nt: NtPersonality, handle: int) -> bool:
    return handle in (CURRENT_PROCESS, CURRENT_THREAD) or nt.handles.get(handle) is not None


def NtQueryObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, ret = call.args[:5]
    cls &= 0xFFFFFFFF
    if cls != OBJECT_HANDLE_FLAG_INFORMATION:
        return nt._unimplemented_class(call, cls)
    if not _known(nt, handle):
        return st.STATUS_INVALID_HANDLE
    if (length & 0xFFFFFFFF) < 2:
        return st.STATUS_INFO_LENGTH_MISMATCH
    inherit, protect = nt.handle_flags.get(handle & 0xFFFFFFFFFFFFFFFF, (False, False))
    call.write(buf, struct.pack("<BB", inherit, protect))
    nt.put_u32(call, ret, 2)
    return st.STATUS_SUCCESS


def NtSetInformationObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length = call.args[:4]
    cls &= 0xFFFFFFFF
    if cls != OBJECT_HANDLE_FLAG_INFORMATION:
        return nt._unimplemented_class(call, cls)
    if not _known(nt, handle):
        return st.STATUS_INVALID_HANDLE
    if (length & 0xFFFFFFFF) < 2:
        return st.STATUS_INFO_LENGTH_MISMATCH
    inherit, protect = struct.unpack("<BB", call.read(buf, 2))
    nt.handle_flags[handle & 0xFFFFFFFFFFFFFFFF] = (bool(inherit), bool(protect))
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {f.__name__: f for f in (NtQueryObject, NtSetInformationObject)}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtQueryObject": ("Handle", "ObjectInformationClass", "*ObjectInformation", "Length", "*ReturnLength"),
    "NtSetInformationObject": ("Handle", "ObjectInformationClass", "ObjectInformation", "Length"),
}
