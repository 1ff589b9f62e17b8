"""NT system information, locale and time: NtQuerySystemInformation, NtQueryDefaultLocale,
NtQueryDefaultUILanguage, NtQuerySystemTime, NtQueryPerformanceCounter, NtDelayExecution,
NtYieldExecution."""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING, Any

from .. import objects, process
from .. import status as st
from . import thread

_time_ns, _monotonic_ns = time.time_ns, time.monotonic_ns

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall


def NtQueryDefaultLocale(nt: NtPersonality, call: NtSyscall) -> int:
    nt.put_u32(call, call.args[1], nt.lcid)
    return st.STATUS_SUCCESS


def NtQueryDefaultUILanguage(nt: NtPersonality, call: NtSyscall) -> int:
    nt.put_u32(call, call.args[0], nt.lcid & 0xFFFF)
    return st.STATUS_SUCCESS


def NtQuerySystemInformation(nt: NtPersonality, call: NtSyscall) -> int:
    cls, buf, length, ret = call.args[:4]
    cls &= 0xFFFFFFFF
    ncpu = os.cpu_count() or 1
    if cls == 23:  # SystemInterruptInformation: Wine answers random bytes (RtlGenRandom's source,
        # which advapi32 and so Go's runtime seed from), one 24-byte record per processor
        size = 24 * ncpu
        if (length & 0xFFFFFFFF) < size:
            return st.STATUS_INFO_LENGTH_MISMATCH
        call.write(buf, os.urandom(size))
        nt.put_u32(call, ret, size)
        return st.STATUS_SUCCESS
    if cls == 0:  # SystemBasicInformation
        pages = os.sysconf("SC_PHYS_PAGES")
        data = struct.pack(
            "<IIIIIIQQQQB7x",  # SYSTEM_BASIC_INFORMATION: 64 bytes (AllocationGranularity is a ULONG_PTR)
            0,
            156250,
            0x1000,
            pages,
            1,
            pages,
            0x10000,
            0x10000,
            0x7FFFFFFEFFFF,
            (1 << ncpu) - 1,
            ncpu,
        )
    elif cls == 1:  # SystemProcessorInformation
        data = struct.pack("<HHHHI", 9, 6, 0, ncpu, 0)
    elif cls in (44, 102):  # SystemCurrentTimeZoneInformation, SystemDynamicTimeZoneInformation
        data = _time_zone(dynamic=cls == 102)
    elif cls == 1000:  # SystemWineVersionInformation: pysud is not Wine's kernel; Windows' answer
        return st.STATUS_INVALID_INFO_CLASS
    elif cls == 3:  # SystemTimeOfDayInformation
        boot = process.system_time() - process.interrupt_time()
        data = struct.pack("<qqIIQQQ", boot, process.system_time(), 0, 0, 0, 0, 0)
    else:
        return nt._unimplemented_class(call, cls)
    return nt.put_info(call, buf, length, ret, data, exact=True)


def NtQuerySystemTime(nt: NtPersonality, call: NtSyscall) -> int:
    # a hot call (timers, logging): one register, one typed write, process.system_time() inline;
    # NULL is a bad pointer (STATUS_ACCESS_VIOLATION), as on Windows
    call.write_u64(call.arg0, _time_ns() // 100 + process.EPOCH_DELTA)
    return st.STATUS_SUCCESS


def NtQueryPerformanceCounter(nt: NtPersonality, call: NtSyscall) -> int:
    counter, freq = call.arg0, call.arg1
    if not counter:
        return st.STATUS_ACCESS_VIOLATION
    call.write_u64(counter, _monotonic_ns() // 100)
    nt.put_u64(call, freq, process.QPC_FREQUENCY)
    return st.STATUS_SUCCESS


def NtDelayExecution(nt: NtPersonality, call: NtSyscall) -> Any:
    deadline = objects.timeout_deadline(call, call.args[1])
    alerted = thread.alertable(nt, call.args[0])
    if alerted is not None:  # SleepEx(..., TRUE): a user APC ends it (and runs)
        if objects.wait_until(alerted, deadline, nt.exiting):
            return thread.end_wait(nt, call, st.STATUS_USER_APC)
        return st.STATUS_SUCCESS
    if deadline is None:
        nt.exiting.wait()
    else:
        nt.exiting.wait(max(0.0, deadline - time.monotonic()))
    return st.STATUS_SUCCESS


def NtYieldExecution(nt: NtPersonality, call: NtSyscall) -> int:
    os.sched_yield()
    return st.STATUS_SUCCESS


def NtQueryInstallUILanguage(nt: NtPersonality, call: NtSyscall) -> int:
    return NtQueryDefaultUILanguage(nt, call)


def _time_zone(dynamic: bool) -> bytes:
    """RTL_(DYNAMIC_)TIME_ZONE_INFORMATION of the host's zone: the bias and names (no DST rules)."""

    def name(text: str) -> bytes:
        return text.encode("utf-16-le")[:62].ljust(64, b"\0")

    bias = time.timezone // 60
    if bias == 0 and not time.daylight:
        std = dst = "Coordinated Universal Time"
        key = "UTC"
    else:
        std, dst = time.tzname
        key = std
    daylight_bias = (time.altzone - time.timezone) // 60 if time.daylight else 0
    data = struct.pack("<i", bias) + name(std) + bytes(16) + struct.pack("<i", 0)
    data += name(dst) + bytes(16) + struct.pack("<i", daylight_bias)
    if dynamic:
        data += key.encode("utf-16-le")[:254].ljust(256, b"\0") + b"\0\0\0\0"
    return data


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtQuerySystemInformation,
        NtQueryDefaultLocale,
        NtQueryDefaultUILanguage,
        NtQueryInstallUILanguage,
        NtQuerySystemTime,
        NtQueryPerformanceCounter,
        NtDelayExecution,
        NtYieldExecution,
    )
}
