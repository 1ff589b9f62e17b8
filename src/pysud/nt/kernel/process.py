"""NT processes: this one (its end: NtTerminateProcess, RtlExitUserProcess, the end of a guest call
PysudReturn; NtQueryInformationProcess) and children.

NtCreateUserProcess starts the child as a new pysud process on the same prefix and DLL set, with the
command line, directory, environment and standard handles the parent gives; its handles can be
waited on and report the exit status (the low 8 bits, as the child's Linux exit status carries them)."""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import objects
from .. import status as st
from .virtual import view_of

if TYPE_CHECKING:
    import subprocess  # imported when a child starts

    from ..personality import NtPersonality, NtSyscall

CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
PS_ATTRIBUTE_CLIENT_ID = 0x10003
PS_ATTRIBUTE_IMAGE_NAME = 0x20005
PS_ATTRIBUTE_IMAGE_INFO = 0x00006
THREAD_CREATE_FLAGS_CREATE_SUSPENDED = 0x1
STILL_ACTIVE = 0x103
PROCESS_DEFAULT_HARD_ERROR_MODE = 12
#: ProcessExecuteFlags: ntdll asks to disable DEP for an image without NX_COMPAT (old MSVC launchers)
PROCESS_EXECUTE_FLAGS = 34
#: the environment variable naming the pipe a child pysud writes its 32-bit exit code to (cli.py)
EXIT_FD_VARIABLE = "PYSUD_NT_EXIT_FD"
# RTL_USER_PROCESS_PARAMETERS (x64)
PP_STDIN, PP_CURDIR, PP_IMAGE, PP_CMDLINE, PP_ENVIRONMENT = 0x20, 0x38, 0x60, 0x70, 0x80
PP_ENVIRONMENT_SIZE = 0x3F0


@dataclass(eq=False)
class Process(objects.Waitable):
    """A child process: a pysud process running the program (started when its thread resumes)."""

    argv: list[str]
    cwd: str | None
    env: dict[str, str]
    std: tuple[int | None, int | None, int | None]
    popen: subprocess.Popen[bytes] | None = None
    error: str = ""
    started: threading.Event = field(default_factory=threading.Event)
    #: the child's whole 32-bit exit code, as its pysud reports it (EXIT_FD_VARIABLE); a Linux exit
    #: status keeps only the low 8 bits
    full_code: int | None = None
    reaped: bool = False  # ended, and its report read
    type_name = "Process"

    def start(self) -> None:
        if self.popen is not None:
            return
        import subprocess

        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=dict(self.env, **{EXIT_FD_VARIABLE: str(report_w)}),
                stdin=self.std[0],
                stdout=self.std[1],
                stderr=self.std[2],
                pass_fds=(report_w,),
            )
        except OSError as e:
            self.error = str(e)
        finally:
            os.close(report_w)
            for fd in self.std:
                if fd is not None:
                    os.close(fd)
            self.std = (None, None, None)
            self.started.set()
        if self.popen is not None:
            threading.Thread(target=self._reap, args=(report_r,), name="pysud-nt-child", daemon=True).start()
        else:
            os.close(report_r)

    def _reap(self, report: int) -> None:
        assert self.popen is not None
        try:
            data = b""
            while len(data) < 4:  # until the child reports, or ends without reporting (a crash)
                chunk = os.read(report, 4 - len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(report)
        self.popen.wait()
        if len(data) == 4:
            (self.full_code,) = struct.unpack("<I", data)
        self.reaped = True
        objects.notify()

    @property
    def exit_code(self) -> int:
        if self.popen is None:
            return 1 if self.error else STILL_ACTIVE
        code = self.popen.returncode
        if code is None or not self.reaped:
            return STILL_ACTIVE
        if self.full_code is not None:
            return self.full_code
        return code if code >= 0 else 128 - code

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else 0

    def signaled(self) -> bool:
        return self.exit_code != STILL_ACTIVE or bool(self.error)

    def close(self) -> None:
        for fd in self.std:
            if fd is not None:
                os.close(fd)
        self.std = (None, None, None)


@dataclass(eq=False)
class ProcessThread(objects.Waitable):
    """The first thread of a child process: resuming it starts the child; it ends with it."""

    process: Process
    type_name = "Thread"

    def signaled(self) -> bool:
        return self.process.signaled()


def _environment(call: NtSyscall, block: int, size: int) -> dict[str, str]:
    raw = call.read(block, size) if size else b""
    if not size:  # find the double NUL
        chunks = []
        at = block
        while True:
            chunk = call.read(at, 4096)
            chunks.append(chunk)
            joined = b"".join(chunks)
            end = next((i for i in range(0, len(joined) - 3, 2) if joined[i : i + 4] == b"\0\0\0\0"), -1)
            if end >= 0:
                raw = joined[: end + 2]
                break
            at += 4096
    env = {}
    for entry in raw.decode("utf-16-le", errors="surrogatepass").split("\0"):
        if "=" in entry[1:]:
            k, v = (
                entry.split("=", 1)
                if not entry.startswith("=")
                else ("=" + entry[1:].split("=", 1)[0], entry[1:].split("=", 1)[1])
            )
            env[k] = v
    return env


def _std_fd(nt: NtPersonality, handle: int) -> int | None:
    f = nt.handles.get(handle)
    if isinstance(f, objects.File) and not f.directory:
        return os.dup(f.fd)
    return None


def NtCreateUserProcess(nt: NtPersonality, call: NtSyscall) -> int:
    (proc_out, thread_out, _pa, _ta, _poa, _toa, _pflags, tflags, params, _info, attrs) = call.args[:11]
    if nt.wine is None or nt.prefix is None:
        return st.STATUS_NOT_SUPPORTED
    image = ""
    client_id_ptr = image_info_ptr = 0
    if attrs:
        (total,) = struct.unpack("<Q", call.read(attrs, 8))
        for i in range(max(0, (total - 8) // 32)):
            kind, size, value, _ret = struct.unpack("<QQQQ", call.read(attrs + 8 + 32 * i, 32))
            if kind == PS_ATTRIBUTE_IMAGE_NAME and size:
                image = call.read(value, size).decode("utf-16-le", errors="surrogatepass")
            elif kind == PS_ATTRIBUTE_CLIENT_ID:
                client_id_ptr = value
            elif kind == PS_ATTRIBUTE_IMAGE_INFO:
                image_info_ptr = value
    if not params:
        return st.STATUS_INVALID_PARAMETER
    if not image:
        image = nt.read_unicode(call, params + PP_IMAGE)
        if not image.startswith("\\"):
            image = "\\??\\" + image
    host, status = nt.resolve_nt_path(image)
    if host is None:
        return status
    if not os.path.isfile(host):
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    cmdline = nt.read_unicode(call, params + PP_CMDLINE)
    if os.path.basename(host).lower() == "winedbg.exe" and "--auto" in cmdline:
        # kernelbase starting the debugger for an unhandled exception: pysud has none (as wine
        # with winedbg disabled, or Windows without a registered debugger)
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    curdir = nt.read_unicode(call, params + PP_CURDIR)
    cwd, _ = nt.resolve_nt_path("\\??\\" + curdir) if curdir else (None, 0)
    env_block, env_size = (
        struct.unpack("<Q", call.read(params + PP_ENVIRONMENT, 8))[0],
        struct.unpack("<Q", call.read(params + PP_ENVIRONMENT_SIZE, 8))[0],
    )
    env = _environment(call, env_block, env_size) if env_block else dict(os.environ)
    std = struct.unpack("<QQQ", call.read(params + PP_STDIN, 24))
    argv = [sys.executable, "-m", "pysud", "run", "--ntdll", "wine", "--prefix", nt.prefix.path]
    if nt.prefix.dlls:
        argv += ["--dlls", nt.prefix.dlls]
    if nt.windows_build is not None:  # the child sees the same numbering
        argv += ["--nt-profile", nt.windows_build]
    argv += ["--flip-switch" if nt.flip_switch else "--no-flip-switch"]
    argv += ["--nt-command-line", cmdline, host]
    # the child pysud runs with this Python's environment; the program's own goes as JSON
    host_env = dict(os.environ, PYSUD_NT_ENVIRONMENT=json.dumps(env))
    host_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    fds = [_std_fd(nt, h) for h in std]
    proc = Process(
        argv=argv, cwd=cwd if cwd and os.path.isdir(cwd) else None, env=host_env, std=(fds[0], fds[1], fds[2])
    )
    try:
        from .. import image as image_mod

        info = image_mod.read_info(host)
    except Exception:  # noqa: BLE001 - not an image: the status a program expects
        proc.close()
        return st.STATUS_INVALID_IMAGE_FORMAT
    if image_info_ptr:
        call.write(image_info_ptr, info.section_image_information())
    ph = nt.handles.add(proc)
    th = nt.handles.add(ProcessThread(proc))
    if not tflags & THREAD_CREATE_FLAGS_CREATE_SUSPENDED:
        proc.start()
    nt.put_u64(call, proc_out, ph)
    nt.put_u64(call, thread_out, th)
    if client_id_ptr:
        call.write(client_id_ptr, struct.pack("<QQ", proc.pid, proc.pid))
    return st.STATUS_SUCCESS


# ---------------------------------------------------------------------------------- this process


def NtTerminateProcess(nt: NtPersonality, call: NtSyscall) -> Any:
    handle, code = call.args[0], call.args[1] & 0xFFFFFFFF
    if handle == 0:  # every other thread ends now (ExitProcess, before the DLLs' detach routines)
        nt.exit_status = code
        nt._kick_others()
        return st.STATUS_SUCCESS
    if handle != CURRENT_PROCESS:
        return st.STATUS_ACCESS_DENIED  # other processes do not exist here
    return nt.exit_process(call, code)


def RtlExitUserProcess(nt: NtPersonality, call: NtSyscall) -> Any:
    return nt.exit_process(call, call.args[0] & 0xFFFFFFFF)


def PysudReturn(nt: NtPersonality, call: NtSyscall) -> None:
    value = call.args[0]
    mode = getattr(nt.tls, "mode", "call")
    if mode == "process":
        return nt.exit_process(call, value & 0xFFFFFFFF)
    call.exit_guest(value & 0xFFFFFFFF)
    return None


def NtQueryInformationProcess(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, ret = call.args[:5]
    cls &= 0xFFFFFFFF
    if handle != CURRENT_PROCESS:
        child = nt.handles.get(handle)
        if not isinstance(child, Process):
            return st.STATUS_INVALID_HANDLE
        if cls != 0:
            return nt._unimplemented_class(call, cls)
        data = struct.pack("<QQQQQQ", child.exit_code, 0, 1, 8, child.pid, os.getpid())
        return nt.put_info(call, buf, length, ret, data)
    if cls == 0:  # ProcessBasicInformation
        data = struct.pack(
            "<QQQQQQ", 0x103, nt.peb, (1 << (os.cpu_count() or 1)) - 1, 8, os.getpid(), os.getppid()
        )
    elif cls == 7:  # ProcessDebugPort: no debugger
        data = struct.pack("<Q", 0)
    elif cls == PROCESS_DEFAULT_HARD_ERROR_MODE:  # GetErrorMode
        data = struct.pack("<I", nt.hard_error_mode)
    elif cls == 21:  # ProcessAffinityMask
        data = struct.pack("<Q", (1 << (os.cpu_count() or 1)) - 1)
    elif cls == 26:  # ProcessWow64Information: not a WoW64 process
        data = struct.pack("<Q", 0)
    elif cls == 37:  # ProcessImageInformation
        view = view_of(nt, nt.image_base)
        if view is None or view.info is None:
            return st.STATUS_INVALID_PARAMETER
        data = view.info.section_image_information()
    else:
        return nt._unimplemented_class(call, cls)
    return nt.put_info(call, buf, length, ret, data, exact=True)


def NtSetInformationProcess(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length = call.args[:4]
    cls &= 0xFFFFFFFF
    if handle != CURRENT_PROCESS:
        known = isinstance(nt.handles.get(handle), Process)
        return st.STATUS_ACCESS_DENIED if known else st.STATUS_INVALID_HANDLE
    if cls == PROCESS_DEFAULT_HARD_ERROR_MODE:  # SetErrorMode: kept, read back by GetErrorMode
        if (length & 0xFFFFFFFF) != 4:
            return st.STATUS_INFO_LENGTH_MISMATCH
        (nt.hard_error_mode,) = struct.unpack("<I", call.read(buf, 4))
        return st.STATUS_SUCCESS
    if cls == PROCESS_EXECUTE_FLAGS:  # DEP is always on for 64-bit processes: Wine refuses too
        return st.STATUS_INVALID_PARAMETER
    return nt._unimplemented_class(call, cls)


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateUserProcess,
        NtSetInformationProcess,
        NtTerminateProcess,
        RtlExitUserProcess,
        PysudReturn,
        NtQueryInformationProcess,
    )
}
#: pysud's own ntdll exports RtlExitUserProcess as a call (Wine's ntdll ends the process itself)
BUILTIN_ONLY = frozenset({"RtlExitUserProcess"})
