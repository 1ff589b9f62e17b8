"""Job objects: NtCreateJobObject, NtQuery/SetInformationJobObject, NtAssignProcessToJobObject.

A job groups child processes under limits.  Launchers use one so that their child dies with them
(distlib's and setuptools' script launchers: JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, then
CreateProcess, AssignProcessToJobObject, wait).  pysud keeps the limits as given and enforces the
one such programs rely on: when the last handle to a job with KILL_ON_JOB_CLOSE goes away, its
processes still running are killed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import objects
from .. import status as st
from . import namespace
from .process import STILL_ACTIVE, Process

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
#: information classes: (size, offset in the extended limits it shares)
BASIC_LIMIT = 2  # JOBOBJECT_BASIC_LIMIT_INFORMATION, 64 bytes
EXTENDED_LIMIT = 9  # JOBOBJECT_EXTENDED_LIMIT_INFORMATION, 144 bytes (basic limits first)
BASIC_ACCOUNTING = 1  # JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, 48 bytes
BASIC_PROCESS_ID_LIST = 3
_LIMIT_SIZES = {BASIC_LIMIT: 64, EXTENDED_LIMIT: 144}
_LIMIT_FLAGS = 16  # LimitFlags in the basic limits


@dataclass(eq=False)
class Job(objects.NtObject):
    limits: bytearray = field(default_factory=lambda: bytearray(144))
    processes: list[Process] = field(default_factory=list)
    type_name = "Job"

    @property
    def limit_flags(self) -> int:
        return int(struct.unpack_from("<I", self.limits, _LIMIT_FLAGS)[0])

    def close(self) -> None:
        if self.limit_flags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE:
            for p in self.processes:
                if p.popen is not None and p.exit_code == STILL_ACTIVE:
                    p.popen.kill()


def _job(nt: NtPersonality, handle: int) -> Job | None:
    return nt.handles.get_as(handle, Job)


def NtCreateJobObject(nt: NtPersonality, call: NtSyscall) -> int:
    out, _access, oa = call.args[:3]
    return namespace.create(nt, call, out, oa, Job, Job)


NtOpenJobObject = namespace.opener("NtOpenJobObject", Job)


def NtQueryInformationJobObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, ret = call.args[:5]
    job = _job(nt, handle)
    if job is None:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    if cls in _LIMIT_SIZES:
        data = bytes(job.limits[: _LIMIT_SIZES[cls]])
    elif cls == BASIC_ACCOUNTING:  # times and counts: processes assigned, active, ended
        active = sum(p.exit_code == STILL_ACTIVE for p in job.processes)
        data = struct.pack("<qqqqIIII", 0, 0, 0, 0, 0, len(job.processes), active, 0)
    elif cls == BASIC_PROCESS_ID_LIST:
        pids = [p.pid for p in job.processes if p.pid]
        data = struct.pack("<II", len(pids), len(pids)) + b"".join(struct.pack("<Q", p) for p in pids)
    else:
        return nt._unimplemented_class(call, cls)
    if (length & 0xFFFFFFFF) < len(data):
        return st.STATUS_INFO_LENGTH_MISMATCH
    call.write(buf, data)
    nt.put_u32(call, ret, len(data))
    return st.STATUS_SUCCESS


def NtSetInformationJobObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length = call.args[:4]
    job = _job(nt, handle)
    if job is None:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    if cls not in _LIMIT_SIZES:
        return nt._unimplemented_class(call, cls)
    size = _LIMIT_SIZES[cls]
    if (length & 0xFFFFFFFF) != size:
        return st.STATUS_INFO_LENGTH_MISMATCH
    job.limits[:size] = call.read(buf, size)
    return st.STATUS_SUCCESS


def NtAssignProcessToJobObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle, process = call.args[:2]
    job = _job(nt, handle)
    if job is None:
        return st.STATUS_INVALID_HANDLE
    child = nt.handles.get(process)
    if not isinstance(child, Process):  # this process itself: nothing to enforce on it here
        return st.STATUS_SUCCESS if process == 0xFFFFFFFFFFFFFFFF else st.STATUS_INVALID_HANDLE
    job.processes.append(child)
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateJobObject,
        NtOpenJobObject,
        NtQueryInformationJobObject,
        NtSetInformationJobObject,
        NtAssignProcessToJobObject,
    )
}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtCreateJobObject": ("*JobHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtOpenJobObject": ("*JobHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtQueryInformationJobObject": (
        "JobHandle",
        "JobInformationClass",
        "*JobInformation",
        "Length",
        "*ReturnLength",
    ),
    "NtSetInformationJobObject": ("JobHandle", "JobInformationClass", "JobInformation", "Length"),
    "NtAssignProcessToJobObject": ("JobHandle", "ProcessHandle"),
}
