"""NT file calls: paths (\\??\\C:\\... on host directories, case-insensitively), files, directories,
volumes."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import objects, process
from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

FILE_DIRECTORY_FILE = 0x1
FILE_NON_DIRECTORY_FILE = 0x40
FILE_DELETE_ON_CLOSE = 0x1000
WRITE_ACCESS = 0x2 | 0x4 | 0x40000000 | 0x10000000 | 0x02000000  # write/append data, GENERIC_WRITE/ALL, MAX
READ_ACCESS = 0x1 | 0x80000000 | 0x10000000 | 0x02000000
FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_ARCHIVE = 0x20
FILE_ATTRIBUTE_READONLY = 0x1
_DOS_PREFIXES = ("\\??\\", "\\DOSDEVICES\\", "\\GLOBAL??\\")
_DRIVE = re.compile(r"^([A-Za-z]):(\\.*)?$")


def _filetime(ns: int) -> int:
    return ns // 100 + process.EPOCH_DELTA


def _basic(s: os.stat_result) -> bytes:
    attrs = FILE_ATTRIBUTE_DIRECTORY if stat.S_ISDIR(s.st_mode) else FILE_ATTRIBUTE_ARCHIVE
    if not s.st_mode & 0o200:
        attrs |= FILE_ATTRIBUTE_READONLY
    t = _filetime
    return struct.pack(
        "<qqqqI4x", t(s.st_ctime_ns), t(s.st_atime_ns), t(s.st_mtime_ns), t(s.st_ctime_ns), attrs
    )


FSCTL_GET_OBJECT_ID = 0x9009C
FILE_DEVICE_DISK = 0x07
FILE_DEVICE_NAMED_PIPE = 0x11
FILE_DEVICE_NULL = 0x15
FILE_DEVICE_SERIAL_PORT = 0x1B
FILE_DEVICE_UNKNOWN = 0x22
FILE_DEVICE_IS_MOUNTED = 0x20


def _network_open(s: os.stat_result) -> bytes:
    """FILE_NETWORK_OPEN_INFORMATION: the four times, allocation size, end of file, attributes."""
    return _basic(s)[:32] + struct.pack("<qqI4x", s.st_blocks * 512, s.st_size, _attributes(s))


def _device(s: os.stat_result) -> tuple[int, int]:
    """(DeviceType, Characteristics) of FileFsDeviceInformation for a host file, as Wine decides."""
    if stat.S_ISFIFO(s.st_mode) or stat.S_ISSOCK(s.st_mode):
        return FILE_DEVICE_NAMED_PIPE, 0
    if stat.S_ISCHR(s.st_mode):
        major = os.major(s.st_rdev)
        if major == 1:  # mem: /dev/null, /dev/zero
            return FILE_DEVICE_NULL, 0
        if major in (4, 5, 136):  # ttys and ptys
            return FILE_DEVICE_SERIAL_PORT, 0
        return FILE_DEVICE_UNKNOWN, 0
    return FILE_DEVICE_DISK, FILE_DEVICE_IS_MOUNTED


def _attributes(s: os.stat_result) -> int:
    (attrs,) = struct.unpack_from("<I", _basic(s), 32)
    return int(attrs)


def host_path(nt: NtPersonality, call: NtSyscall, oa: int) -> tuple[str | None, int]:
    """The host path an OBJECT_ATTRIBUTES names, or (None, NTSTATUS)."""
    if not oa:
        return None, st.STATUS_INVALID_PARAMETER
    _len, root, name_ptr, _attrs = struct.unpack("<I4xQQI", call.read(oa, 28))
    if not name_ptr:
        return None, st.STATUS_OBJECT_NAME_INVALID
    return resolve_nt_path(nt, nt.read_unicode(call, name_ptr), root)


def resolve_nt_path(nt: NtPersonality, name: str, root: int = 0) -> tuple[str | None, int]:
    """The host path of an NT name (relative to the directory handle ``root`` if given)."""
    if root:
        parent = nt.handles.get(root)
        if not isinstance(parent, objects.File) or not parent.directory:
            return None, st.STATUS_INVALID_HANDLE
        base, rel = parent.path, name
    else:
        upper = name.upper()
        if upper in ("\\??\\NUL", "\\DEVICE\\NULL", "\\DOSDEVICES\\NUL", "\\GLOBAL??\\NUL"):
            return "/dev/null", st.STATUS_SUCCESS  # the null device, as Wine maps it
        for prefix in _DOS_PREFIXES:
            if upper.startswith(prefix):
                name = name[len(prefix) :]
                break
        else:
            return None, st.STATUS_OBJECT_PATH_NOT_FOUND
        m = _DRIVE.match(name)
        if not m:
            return None, st.STATUS_OBJECT_NAME_INVALID if ":" in name else st.STATUS_OBJECT_PATH_NOT_FOUND
        drive = nt.drives.get(m.group(1).upper())
        if drive is None:
            return None, st.STATUS_OBJECT_PATH_NOT_FOUND
        base, rel = drive, m.group(2) or ""
    parts: list[str] = []
    for comp in rel.split("\\"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        if any(c in comp for c in '<>:"|?*/') or "\0" in comp:
            return None, st.STATUS_OBJECT_NAME_INVALID
        parts.append(comp)
    cur = base
    for i, comp in enumerate(parts):
        cand = os.path.join(cur, comp)
        if not os.path.lexists(cand):
            try:
                match = next((e for e in os.listdir(cur) if e.lower() == comp.lower()), None)
            except OSError:
                match = None
            if match is not None:
                cand = os.path.join(cur, match)
            elif i < len(parts) - 1:
                return None, st.STATUS_OBJECT_PATH_NOT_FOUND
        cur = cand
    if nt.prefix is not None:
        cur = nt.prefix.overlay(cur)
    return cur, st.STATUS_SUCCESS


def _open(
    nt: NtPersonality,
    call: NtSyscall,
    out: int,
    access: int,
    oa: int,
    iosb: int,
    disposition: int,
    options: int,
) -> int:
    access &= 0xFFFFFFFF
    options &= 0xFFFFFFFF
    path, status = host_path(nt, call, oa)
    if path is None:
        nt.put_iosb(call, iosb, status, 0)
        return status
    exists = os.path.lexists(path)
    is_dir = os.path.isdir(path)
    want_dir = bool(options & FILE_DIRECTORY_FILE)
    info = 1  # FILE_OPENED
    if exists and is_dir and options & FILE_NON_DIRECTORY_FILE:
        return st.STATUS_FILE_IS_A_DIRECTORY
    if exists and not is_dir and want_dir:
        return st.STATUS_NOT_A_DIRECTORY
    if not os.path.isdir(os.path.dirname(path) or "/"):
        return st.STATUS_OBJECT_PATH_NOT_FOUND
    if disposition == 2 and exists:  # FILE_CREATE
        return st.STATUS_OBJECT_NAME_COLLISION
    if disposition in (1, 4) and not exists:  # FILE_OPEN, FILE_OVERWRITE
        return st.STATUS_OBJECT_NAME_NOT_FOUND
    if disposition > 5:
        return st.STATUS_INVALID_PARAMETER
    try:
        if want_dir or is_dir:
            if not exists:
                os.mkdir(path)
                info = 2  # FILE_CREATED
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            obj = objects.File(fd=fd, path=path, access=access, directory=True)
        else:
            flags = os.O_CLOEXEC | (os.O_RDWR if access & WRITE_ACCESS else os.O_RDONLY)
            if not exists:
                flags |= os.O_CREAT | os.O_EXCL
                info = 2
            elif disposition in (0, 4, 5):  # supersede, overwrite, overwrite_if
                flags |= os.O_TRUNC
                info = 0 if disposition == 0 else 3  # FILE_SUPERSEDED / FILE_OVERWRITTEN
            fd = os.open(path, flags, 0o666)
            obj = objects.File(fd=fd, path=path, access=access)
    except OSError as e:
        status = st.from_errno(e.errno or 0)
        nt.put_iosb(call, iosb, status, 0)
        return status
    obj.delete_on_close = bool(options & FILE_DELETE_ON_CLOSE)
    nt.put_handle(call, out, obj)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, info)
    return st.STATUS_SUCCESS


def NtCreateFile(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa, iosb, _alloc, _attrs, _share, disposition, options = call.args[:9]
    return _open(nt, call, out, access, oa, iosb, disposition & 0xFFFFFFFF, options)


def NtOpenFile(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa, iosb, _share, options = call.args[:6]
    return _open(nt, call, out, access, oa, iosb, 1, options)


def _file(nt: NtPersonality, handle: int) -> objects.File | None:
    return nt.handles.get_as(handle, objects.File)


def _position(call: NtSyscall, offset_ptr: int) -> int | None:
    """The explicit byte offset, or None for the file pointer."""
    if not offset_ptr:
        return None
    (off,) = struct.unpack("<q", call.read(offset_ptr, 8))
    return None if off == -2 else off  # FILE_USE_FILE_POINTER_POSITION


def _signal_event(nt: NtPersonality, handle: int) -> None:
    ev = nt.handles.get(handle) if handle else None
    if isinstance(ev, objects.Event):
        with objects.CHANGED:
            ev.state = True
            objects.CHANGED.notify_all()


def _data_file(nt: NtPersonality, handle: int) -> objects.File | int:
    """The file NtReadFile/NtWriteFile may move data through, or the NTSTATUS to return."""
    f = _file(nt, handle)
    if f is None:
        return st.STATUS_INVALID_HANDLE
    if f.directory:
        return st.STATUS_INVALID_DEVICE_REQUEST
    return f


def NtReadFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, event, _apc, _ctx, iosb, buf, length, offset_ptr = call.args[:8]
    f = _data_file(nt, handle)
    if isinstance(f, int):
        return f
    length &= 0xFFFFFFFF
    off = _position(call, offset_ptr)
    try:
        data = os.read(f.fd, length) if off is None else os.pread(f.fd, length, off)
        if off is not None and not f.console:
            os.lseek(f.fd, off + len(data), os.SEEK_SET)
    except OSError as e:
        return st.from_errno(e.errno or 0)
    if not data and length:
        nt.put_iosb(call, iosb, st.STATUS_END_OF_FILE, 0)
        return st.STATUS_END_OF_FILE
    call.write(buf, data)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, len(data))
    _signal_event(nt, event)
    return st.STATUS_SUCCESS


def NtWriteFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, event, _apc, _ctx, iosb, buf, length, offset_ptr = call.args[:8]
    f = _data_file(nt, handle)
    if isinstance(f, int):
        return f
    if not f.console and not f.access & WRITE_ACCESS:
        return st.STATUS_ACCESS_DENIED
    data = call.read(buf, length & 0xFFFFFFFF) if length & 0xFFFFFFFF else b""
    off = _position(call, offset_ptr)
    try:
        if off == -1:  # FILE_WRITE_TO_END_OF_FILE
            os.lseek(f.fd, 0, os.SEEK_END)
            off = None
        n = os.write(f.fd, data) if off is None else os.pwrite(f.fd, data, off)
        if off is not None and not f.console:
            os.lseek(f.fd, off + n, os.SEEK_SET)
    except OSError as e:
        return st.from_errno(e.errno or 0)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, n)
    _signal_event(nt, event)
    return st.STATUS_SUCCESS


def NtQueryInformationFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, iosb, buf, length, cls = call.args[:5]
    f = _file(nt, handle)
    if f is None:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    s = os.fstat(f.fd)
    if cls == 4:  # FileBasicInformation
        data = _basic(s)
    elif cls == 5:  # FileStandardInformation
        is_dir = stat.S_ISDIR(s.st_mode)
        size = 0 if is_dir else s.st_size
        data = struct.pack("<qqIBB2x", s.st_blocks * 512, size, s.st_nlink, f.delete_on_close, is_dir)
    elif cls == 14:  # FilePositionInformation
        data = struct.pack("<q", 0 if f.console else os.lseek(f.fd, 0, os.SEEK_CUR))
    elif cls == 34:  # FileNetworkOpenInformation
        data = _network_open(s)
    elif cls == 18:  # FileAllInformation
        return _all_information(nt, call, f, s)
    else:
        return nt._unimplemented_class(call, cls)
    if (length & 0xFFFFFFFF) < len(data):
        return st.STATUS_INFO_LENGTH_MISMATCH
    call.write(buf, data)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, len(data))
    return st.STATUS_SUCCESS


def _all_information(nt: NtPersonality, call: NtSyscall, f: objects.File, s: os.stat_result) -> int:
    """FileAllInformation: basic, standard, internal, EA, access, position, mode, alignment, then
    the name (without the drive); the fixed part alone when the name does not fit
    (STATUS_BUFFER_OVERFLOW, which GetFileInformationByHandle accepts)."""
    _handle, iosb, buf, length = call.args[:4]
    is_dir = stat.S_ISDIR(s.st_mode)
    pos = 0 if f.console or is_dir else os.lseek(f.fd, 0, os.SEEK_CUR)
    name = drive_relative(nt, f.path).encode("utf-16-le")
    fixed = _basic(s) + struct.pack(
        "<qqIBB2xQIIqII",
        s.st_blocks * 512,
        0 if is_dir else s.st_size,
        s.st_nlink,
        f.delete_on_close,
        is_dir,
        s.st_ino,
        0,
        f.access,
        pos,
        0,
        0,
    )
    room = (length & 0xFFFFFFFF) - len(fixed) - 4
    if room < 0:
        return st.STATUS_INFO_LENGTH_MISMATCH
    data = fixed + struct.pack("<I", len(name)) + name[: room & ~1]
    call.write(buf, data)
    status = st.STATUS_BUFFER_OVERFLOW if room < len(name) else st.STATUS_SUCCESS
    nt.put_iosb(call, iosb, status, len(data))
    return status


def drive_relative(nt: NtPersonality, path: str) -> str:
    """A host path as Windows names it inside its drive (``\\dir\\file``): the drive whose root
    holds it, the deepest one first (Z: is ``/``); "" for a console handle."""
    if not path:
        return ""
    for root in sorted(nt.drives.values(), key=len, reverse=True):
        rel = os.path.relpath(path, root)
        if rel == ".":
            return "\\"
        if not rel.startswith(".."):
            return "\\" + rel.replace("/", "\\")
    return ""


def NtSetInformationFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, iosb, buf, length, cls = call.args[:5]
    f = _file(nt, handle)
    if f is None:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    length &= 0xFFFFFFFF
    try:
        if cls == 14:  # FilePositionInformation
            if length < 8:
                return st.STATUS_INFO_LENGTH_MISMATCH
            (pos,) = struct.unpack("<q", call.read(buf, 8))
            if pos < 0:
                return st.STATUS_INVALID_PARAMETER
            os.lseek(f.fd, pos, os.SEEK_SET)
        elif cls in (13, 64):  # FileDispositionInformation(Ex)
            if length < 1:
                return st.STATUS_INFO_LENGTH_MISMATCH
            flag = call.read(buf, 1)[0]
            if flag and f.directory and os.listdir(f.path):
                return st.STATUS_DIRECTORY_NOT_EMPTY
            f.delete_on_close = bool(flag & 1)
        elif cls == 20:  # FileEndOfFileInformation
            if length < 8:
                return st.STATUS_INFO_LENGTH_MISMATCH
            (end,) = struct.unpack("<q", call.read(buf, 8))
            os.ftruncate(f.fd, end)
        elif cls == 4:  # FileBasicInformation: times and attributes are accepted, not stored
            pass
        else:
            return nt._unimplemented_class(call, cls)
    except OSError as e:
        return st.from_errno(e.errno or 0)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, 0)
    return st.STATUS_SUCCESS


def NtQueryVolumeInformationFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, iosb, buf, length, cls = call.args[:5]
    f = _file(nt, handle)
    if f is None:
        return st.STATUS_INVALID_HANDLE
    cls &= 0xFFFFFFFF
    s = os.fstat(f.fd)
    if cls == 4:  # FileFsDeviceInformation: what GetFileType answers from
        data = struct.pack("<II", *_device(s))
    elif cls in (1, 3, 5, 7):
        v = os.fstatvfs(f.fd)
        if cls == 1:  # FileFsVolumeInformation
            label = "".encode("utf-16-le")
            data = struct.pack("<qIIB?", 0, s.st_dev & 0xFFFFFFFF, len(label), 0, False) + label
            data = data.ljust(18 + len(label), b"\0")
        elif cls == 3:  # FileFsSizeInformation
            data = struct.pack("<qqII", v.f_blocks, v.f_bavail, 1, v.f_frsize)
        elif cls == 7:  # FileFsFullSizeInformation
            data = struct.pack("<qqqII", v.f_blocks, v.f_bavail, v.f_bfree, 1, v.f_frsize)
        else:  # FileFsAttributeInformation: NTFS-like, case-preserving, Unicode names
            name = "NTFS".encode("utf-16-le")
            data = struct.pack("<IiI", 0x0000002F, min(v.f_namemax, 255), len(name)) + name
    else:
        return nt._unimplemented_class(call, cls)
    length &= 0xFFFFFFFF
    if length < len(data):
        if cls in (1, 5) and length >= 12:
            call.write(buf, data[:length])
            nt.put_iosb(call, iosb, st.STATUS_BUFFER_OVERFLOW, length)
            return st.STATUS_BUFFER_OVERFLOW
        return st.STATUS_INFO_LENGTH_MISMATCH
    call.write(buf, data)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, len(data))
    return st.STATUS_SUCCESS


def NtFsControlFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, _event, _apc, _ctx, iosb, code, _inbuf, _inlen, outbuf, outlen = call.args[:10]
    f = _file(nt, handle)
    if f is None:
        return st.STATUS_INVALID_HANDLE
    code &= 0xFFFFFFFF
    if code == FSCTL_GET_OBJECT_ID:  # the loader tells files apart by it (as Wine: device, inode)
        if (outlen & 0xFFFFFFFF) < 64:
            return st.STATUS_BUFFER_TOO_SMALL
        s = os.fstat(f.fd)
        call.write(outbuf, struct.pack("<QQ", s.st_dev, s.st_ino) + bytes(48))
        nt.put_iosb(call, iosb, st.STATUS_SUCCESS, 64)
        return st.STATUS_SUCCESS
    return st.STATUS_INVALID_DEVICE_REQUEST


def NtDeviceIoControlFile(nt: NtPersonality, call: NtSyscall) -> int:
    """Device requests (console ioctls among them): no device here answers any."""
    if _file(nt, call.args[0]) is None:
        return st.STATUS_INVALID_HANDLE
    return st.STATUS_NOT_SUPPORTED


def _query_attributes(nt: NtPersonality, call: NtSyscall, encode: Callable[[os.stat_result], bytes]) -> int:
    """NtQuery(Full)AttributesFile(OBJECT_ATTRIBUTES, info): the named file's ``encode``d stat."""
    oa, info = call.args[:2]
    path, status = host_path(nt, call, oa)
    if path is None:
        return status
    try:
        s = os.stat(path)
    except OSError as e:
        return st.from_errno(e.errno or 0)
    call.write(info, encode(s))
    return st.STATUS_SUCCESS


def NtQueryAttributesFile(nt: NtPersonality, call: NtSyscall) -> int:
    return _query_attributes(nt, call, _basic)


def NtQueryFullAttributesFile(nt: NtPersonality, call: NtSyscall) -> int:
    return _query_attributes(nt, call, _network_open)


def NtDeleteFile(nt: NtPersonality, call: NtSyscall) -> int:
    path, status = host_path(nt, call, call.args[0])
    if path is None:
        return status
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as e:
        return st.from_errno(e.errno or 0)
    return st.STATUS_SUCCESS


def _dir_entry(cls: int, name: str, path: str) -> bytes | None:
    try:
        s = os.lstat(path)
    except OSError:
        return None
    raw = name.encode("utf-16-le")
    b = _basic(s)
    size = 0 if stat.S_ISDIR(s.st_mode) else s.st_size
    common = (
        struct.pack("<II", 0, 0)
        + b[:32]
        + struct.pack("<qqII", size, s.st_blocks * 512, _attributes(s), len(raw))
    )
    if cls == 1:  # FileDirectoryInformation
        return common + raw
    if cls == 2:  # FileFullDirectoryInformation
        return common + struct.pack("<I", 0) + raw
    if cls == 3:  # FileBothDirectoryInformation
        return common + struct.pack("<IB", 0, 0) + bytes(1 + 24) + raw
    if cls == 12:  # FileNamesInformation
        return struct.pack("<III", 0, 0, len(raw)) + raw
    return None


def NtQueryDirectoryFile(nt: NtPersonality, call: NtSyscall) -> int:
    handle, event, _apc, _ctx, iosb, buf, length, cls, single, mask_ptr, restart = call.args[:11]
    f = _file(nt, handle)
    if f is None:
        return st.STATUS_INVALID_HANDLE
    if not f.directory:
        return st.STATUS_INVALID_PARAMETER
    cls &= 0xFFFFFFFF
    length &= 0xFFFFFFFF
    if cls not in (1, 2, 3, 12):
        return nt._unimplemented_class(call, cls)
    first = f.listing is None
    if first or restart & 0xFF:
        if first:  # the mask of the first call holds for the handle's life, as in Windows
            f.mask = nt.read_unicode(call, mask_ptr) if mask_ptr else "*"
        mask = f.mask
        try:
            listed = set(os.listdir(f.path))
        except OSError as e:
            return st.from_errno(e.errno or 0)
        if nt.prefix is not None and f.path == nt.prefix.system32:  # and the DLL set's files
            have = {n.lower() for n in listed}
            listed |= {os.path.basename(p) for n, p in nt.prefix.dll_names().items() if n not in have}
        names = [".", "..", *sorted(listed)]
        if mask not in ("*", "*.*"):
            names = [n for n in names if fnmatch.fnmatchcase(n.upper(), mask.upper())]
        f.listing = names
        if not names:
            nt.put_iosb(call, iosb, st.STATUS_NO_SUCH_FILE, 0)
            return st.STATUS_NO_SUCH_FILE
    assert f.listing is not None
    if not f.listing:
        nt.put_iosb(call, iosb, st.STATUS_NO_MORE_FILES, 0)
        return st.STATUS_NO_MORE_FILES
    out = bytearray()
    last = -1
    while f.listing:
        name = f.listing[0]
        host = os.path.join(f.path, name)
        entry = _dir_entry(cls, name, nt.prefix.overlay(host) if nt.prefix is not None else host)
        if entry is None:
            f.listing.pop(0)
            continue
        start = (len(out) + 7) & ~7
        if start + len(entry) > length:
            if last < 0:
                return st.STATUS_BUFFER_OVERFLOW
            break
        out += bytes(start - len(out))
        if last >= 0:
            struct.pack_into("<I", out, last, start - last)
        last = start
        out += entry
        f.listing.pop(0)
        if single & 0xFF:
            break
    call.write(buf, bytes(out))
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, len(out))
    _signal_event(nt, event)
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateFile,
        NtOpenFile,
        NtReadFile,
        NtWriteFile,
        NtQueryInformationFile,
        NtSetInformationFile,
        NtQueryVolumeInformationFile,
        NtFsControlFile,
        NtDeviceIoControlFile,
        NtQueryAttributesFile,
        NtQueryFullAttributesFile,
        NtDeleteFile,
        NtQueryDirectoryFile,
    )
}
