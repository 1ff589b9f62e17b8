"""NT registry calls: NtCreateKey, NtOpenKey(Ex), NtQueryKey, NtEnumerateKey, values, delete, notify.

The keys live in :class:`pysud.nt.registry.Registry`, the prefix's registry (opened on first use
from ``nt.prefix.path``, else ``PYSUD_PREFIX``, else a temporary directory).  Information
classes are laid out as Windows defines them; buffers too small for the fixed part give
STATUS_BUFFER_TOO_SMALL, too small for the rest STATUS_BUFFER_OVERFLOW with the fixed part and
what fits written, and the needed size in ResultLength, as Wine does.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Any

from .. import objects
from .. import registry as rg
from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

STATUS_NO_MORE_ENTRIES = st.STATUS_NO_MORE_ENTRIES
STATUS_KEY_DELETED = st.STATUS_KEY_DELETED
REG_CREATED_NEW_KEY = 1
REG_OPENED_EXISTING_KEY = 2
REG_OPTION_VOLATILE = 0x1
REG_OPTION_CREATE_LINK = 0x2
REG_OPTION_OPEN_LINK = 0x8
OBJ_OPENLINK = 0x100
KEY_CREATE_LINK = 0x20

# KEY_INFORMATION_CLASS
KeyBasicInformation = 0
KeyNodeInformation = 1
KeyFullInformation = 2
KeyNameInformation = 3
KeyCachedInformation = 4
# KEY_VALUE_INFORMATION_CLASS
KeyValueBasicInformation = 0
KeyValueFullInformation = 1
KeyValuePartialInformation = 2
KeyValueFullInformationAlign64 = 3
KeyValuePartialInformationAlign64 = 4


def registry_of(nt: NtPersonality) -> rg.Registry:
    """The personality's registry, opened on first use in the prefix directory; its CurrentVersion
    values follow the version the PEB reports."""
    reg: rg.Registry | None = getattr(nt, "registry", None)
    if reg is None:
        prefix = getattr(nt, "prefix", None)
        directory = getattr(prefix, "path", None) or os.environ.get("PYSUD_PREFIX") or None
        reg = rg.Registry(directory, version=nt.version)
        nt.registry = reg
    return reg


KEY_QUERY_VALUE = 0x1
KEY_SET_VALUE = 0x2
KEY_CREATE_SUB_KEY = 0x4
KEY_ENUMERATE_SUB_KEYS = 0x8
KEY_NOTIFY = 0x10
DELETE = 0x10000
KEY_READ = 0x20019
KEY_WRITE = 0x20006
KEY_ALL_ACCESS = 0xF003F
_GENERIC = {0x80000000: KEY_READ, 0x40000000: KEY_WRITE, 0x20000000: KEY_READ, 0x10000000: KEY_ALL_ACCESS}
MAXIMUM_ALLOWED = 0x02000000
_WOW64_FLAGS = 0x300  # KEY_WOW64_64KEY, KEY_WOW64_32KEY: not access bits


def map_access(access: int) -> int:
    """A key handle's granted access: generic rights mapped as Wine's key_map_access does."""
    access &= 0xFFFFFFFF
    if access & MAXIMUM_ALLOWED:
        access |= KEY_ALL_ACCESS
    for bit, rights in _GENERIC.items():
        if access & bit:
            access |= rights
    return access & ~(0xF0000000 | MAXIMUM_ALLOWED | _WOW64_FLAGS)


def _key(nt: NtPersonality, handle: int, access: int = 0) -> objects.KeyObject | int:
    """The open key behind ``handle`` (granted ``access``), or the NTSTATUS to return."""
    obj = nt.handles.get(handle)
    if obj is None:
        return st.STATUS_INVALID_HANDLE
    if not isinstance(obj, objects.KeyObject):
        return st.STATUS_OBJECT_TYPE_MISMATCH
    if access & ~obj.access:
        return st.STATUS_ACCESS_DENIED
    if obj.key.deleted:
        return STATUS_KEY_DELETED
    return obj


def _open_target(nt: NtPersonality, call: NtSyscall, oa: int) -> tuple[rg.Key | None, str, int] | int:
    """(root key or None, name, OBJECT_ATTRIBUTES.Attributes) or an NTSTATUS."""
    if not oa:
        return st.STATUS_ACCESS_VIOLATION
    root, name, attrs = objects.object_attributes(call, oa)
    base: rg.Key | None = None
    if root:
        k = _key(nt, root)
        if isinstance(k, int):
            return k
        base = k.key
    return base, name, attrs


def _put_handle(nt: NtPersonality, call: NtSyscall, out: int, key: rg.Key, access: int) -> int:
    nt.put_handle(call, out, objects.KeyObject(key=key, access=map_access(access)))
    return st.STATUS_SUCCESS


def NtCreateKey(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa, _title, class_ptr, options, disposition = call.args[:7]
    if not out:
        return st.STATUS_ACCESS_VIOLATION
    target = _open_target(nt, call, oa)
    if isinstance(target, int):
        return target
    base, name, attrs = target
    class_name = nt.read_unicode(call, class_ptr) if class_ptr else None
    reg = registry_of(nt)
    try:
        key, created = reg.create(
            name,
            base,
            class_name=class_name,
            volatile=bool(options & REG_OPTION_VOLATILE),
            link=bool(options & REG_OPTION_CREATE_LINK),
            open_link=bool(attrs & OBJ_OPENLINK),
        )
    except rg.RegistryError as e:
        return e.status
    nt.put_u32(call, disposition, REG_CREATED_NEW_KEY if created else REG_OPENED_EXISTING_KEY)
    return _put_handle(nt, call, out, key, access)


def _open(nt: NtPersonality, call: NtSyscall, out: int, access: int, oa: int, options: int) -> int:
    if not out:
        return st.STATUS_ACCESS_VIOLATION
    target = _open_target(nt, call, oa)
    if isinstance(target, int):
        return target
    base, name, attrs = target
    reg = registry_of(nt)
    try:
        key = reg.resolve(name, base, open_link=bool(attrs & OBJ_OPENLINK or options & REG_OPTION_OPEN_LINK))
    except rg.RegistryError as e:
        nt.put_u64(call, out, 0)
        return e.status
    return _put_handle(nt, call, out, key, access)


def NtOpenKey(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa = call.args[:3]
    return _open(nt, call, out, access, oa, 0)


def NtOpenKeyEx(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa, options = call.args[:4]
    return _open(nt, call, out, access, oa, options)


def NtOpenKeyTransacted(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa, _transaction = call.args[:4]
    return _open(nt, call, out, access, oa, 0)


def NtOpenKeyTransactedEx(nt: NtPersonality, call: NtSyscall) -> int:
    out, access, oa, options, _transaction = call.args[:5]
    return _open(nt, call, out, access, oa, options)


# ---------------------------------------------------------------------------------- key information


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", errors="surrogatepass")


def key_info(key: rg.Key, cls: int, *, full_name: bool = False) -> tuple[bytes, int] | None:
    """(fixed part + variable part, size of the fixed part) of a KEY_INFORMATION_CLASS, or None."""
    t = key.modif
    name = _utf16(key.path if full_name else key.name)
    klass = _utf16(key.class_name or "")
    if cls == KeyBasicInformation:
        return struct.pack("<qII", t, 0, len(name)) + name, 16
    if cls == KeyNodeInformation:
        offset = 24 + len(name) if key.class_name is not None else 0xFFFFFFFF
        return struct.pack("<qIIII", t, 0, offset, len(klass), len(name)) + name + klass, 24
    subkeys = key.sorted_subkeys()
    values = key.sorted_values()
    max_name = max((len(_utf16(k.name)) for k in subkeys), default=0)
    max_class = max((len(_utf16(k.class_name or "")) for k in subkeys), default=0)
    max_vname = max((len(_utf16(v.name)) for v in values), default=0)
    max_vdata = max((len(v.data) for v in values), default=0)
    if cls == KeyFullInformation:
        offset = 44 if key.class_name is not None else 0xFFFFFFFF
        fixed = struct.pack(
            "<qIIIIIIIII",
            t,
            0,
            offset,
            len(klass),
            len(subkeys),
            max_name,
            max_class,
            len(values),
            max_vname,
            max_vdata,
        )
        return fixed + klass, 44
    if cls == KeyNameInformation:
        full = _utf16(key.path)
        return struct.pack("<I", len(full)) + full, 4
    if cls == KeyCachedInformation:
        own = _utf16(key.name)
        return struct.pack(
            "<qIIIIIII", t, 0, len(subkeys), max_name, len(values), max_vname, max_vdata, len(own)
        ), 36
    return None


def _deliver(
    nt: NtPersonality, call: NtSyscall, info: tuple[bytes, int] | None, buf: int, length: int, result: int
) -> int:
    if info is None:
        return st.STATUS_INVALID_PARAMETER
    data, fixed = info
    length &= 0xFFFFFFFF
    nt.put_u32(call, result, len(data))
    if length < fixed:
        return st.STATUS_BUFFER_TOO_SMALL
    if not buf:
        return st.STATUS_ACCESS_VIOLATION
    call.write(buf, data[:length])
    return st.STATUS_SUCCESS if length >= len(data) else st.STATUS_BUFFER_OVERFLOW


def NtQueryKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, result = call.args[:5]
    k = _key(nt, handle, 0 if cls & 0xFFFFFFFF == KeyNameInformation else KEY_QUERY_VALUE)
    if isinstance(k, int):
        return k
    registry_of(nt).refresh()
    if k.key.deleted:
        return STATUS_KEY_DELETED
    cls &= 0xFFFFFFFF
    with registry_of(nt).lock:
        info = key_info(k.key, cls)
    return _deliver(nt, call, info, buf, length, result)


def NtEnumerateKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, index, cls, buf, length, result = call.args[:6]
    k = _key(nt, handle, KEY_ENUMERATE_SUB_KEYS)
    if isinstance(k, int):
        return k
    reg = registry_of(nt)
    if (index & 0xFFFFFFFF) == 0:
        reg.refresh()
    cls &= 0xFFFFFFFF
    if cls not in (KeyBasicInformation, KeyNodeInformation, KeyFullInformation):
        return st.STATUS_INVALID_PARAMETER
    with reg.lock:
        subkeys = k.key.sorted_subkeys()
        index &= 0xFFFFFFFF
        if index >= len(subkeys):
            return STATUS_NO_MORE_ENTRIES
        info = key_info(subkeys[index], cls)
    return _deliver(nt, call, info, buf, length, result)


# ---------------------------------------------------------------------------------- values


def value_info(v: rg.Value, cls: int) -> tuple[bytes, int] | None:
    name = _utf16(v.name)
    if cls == KeyValueBasicInformation:
        return struct.pack("<III", 0, v.type, len(name)) + name, 12
    if cls in (KeyValueFullInformation, KeyValueFullInformationAlign64):
        offset = 20 + len(name)
        if cls == KeyValueFullInformationAlign64:
            offset = (offset + 7) & ~7
        head = struct.pack("<IIIII", 0, v.type, offset, len(v.data), len(name)) + name
        return head.ljust(offset, b"\0") + v.data, 20
    if cls == KeyValuePartialInformation:
        return struct.pack("<III", 0, v.type, len(v.data)) + v.data, 12
    if cls == KeyValuePartialInformationAlign64:
        return struct.pack("<II", v.type, len(v.data)) + v.data, 8
    return None


def _value_name(nt: NtPersonality, call: NtSyscall, ptr: int) -> str:
    return nt.read_unicode(call, ptr) if ptr else ""


def NtQueryValueKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, name_ptr, cls, buf, length, result = call.args[:6]
    k = _key(nt, handle, KEY_QUERY_VALUE)
    if isinstance(k, int):
        return k
    name = _value_name(nt, call, name_ptr)
    reg = registry_of(nt)
    reg.refresh()
    with reg.lock:
        v = k.key.values.get(name.lower())
        if v is None:
            return st.STATUS_OBJECT_NAME_NOT_FOUND
        info = value_info(v, cls & 0xFFFFFFFF)
    return _deliver(nt, call, info, buf, length, result)


def NtEnumerateValueKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, index, cls, buf, length, result = call.args[:6]
    k = _key(nt, handle, KEY_QUERY_VALUE)
    if isinstance(k, int):
        return k
    reg = registry_of(nt)
    index &= 0xFFFFFFFF
    if index == 0:
        reg.refresh()
    with reg.lock:
        values = k.key.sorted_values()
        if index >= len(values):
            return STATUS_NO_MORE_ENTRIES
        info = value_info(values[index], cls & 0xFFFFFFFF)
    return _deliver(nt, call, info, buf, length, result)


def NtQueryMultipleValueKey(nt: NtPersonality, call: NtSyscall) -> int:
    """KEY_VALUE_ENTRY {PUNICODE_STRING ValueName; ULONG DataLength, DataOffset, Type} x count."""
    handle, entries, count, buf, length_ptr, result = call.args[:6]
    k = _key(nt, handle, KEY_QUERY_VALUE)
    if isinstance(k, int):
        return k
    count &= 0xFFFFFFFF
    (length,) = struct.unpack("<I", call.read(length_ptr, 4)) if length_ptr else (0,)
    registry_of(nt).refresh()
    out = b""
    fields: list[tuple[int, int, int, int]] = []
    for i in range(count):
        name_ptr = struct.unpack("<Q", call.read(entries + 24 * i, 8))[0]
        v = k.key.values.get(_value_name(nt, call, name_ptr).lower())
        if v is None:
            return st.STATUS_OBJECT_NAME_NOT_FOUND
        fields.append((entries + 24 * i, len(v.data), len(out), v.type))
        out += v.data
        out = out.ljust((len(out) + 3) & ~3, b"\0")
    nt.put_u32(call, result, len(out))
    if len(out) > length:
        nt.put_u32(call, length_ptr, len(out))
        return st.STATUS_BUFFER_OVERFLOW
    call.write(buf, out)
    for at, size, offset, type_ in fields:
        call.write(at + 8, struct.pack("<III", size, offset, type_))
    nt.put_u32(call, length_ptr, len(out))
    return st.STATUS_SUCCESS


# The registry's RegistryError is an NtStatusError: the tables' wrapper answers its status.


def NtSetValueKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, name_ptr, _title, type_, data_ptr, size = call.args[:6]
    k = _key(nt, handle, KEY_SET_VALUE)
    if isinstance(k, int):
        return k
    name = _value_name(nt, call, name_ptr)
    size &= 0xFFFFFFFF
    if len(name) > 16383:
        return st.STATUS_INVALID_PARAMETER
    data = call.read(data_ptr, size) if size else b""
    registry_of(nt).set_value(k.key, name, type_ & 0xFFFFFFFF, data)
    return st.STATUS_SUCCESS


def NtDeleteValueKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, name_ptr = call.args[:2]
    k = _key(nt, handle, KEY_SET_VALUE)
    if isinstance(k, int):
        return k
    registry_of(nt).delete_value(k.key, _value_name(nt, call, name_ptr))
    return st.STATUS_SUCCESS


def NtDeleteKey(nt: NtPersonality, call: NtSyscall) -> int:
    obj = nt.handles.get(call.args[0])
    if isinstance(obj, objects.KeyObject) and obj.key.deleted and obj.access & DELETE:
        return st.STATUS_SUCCESS  # deleting a deleted key succeeds (Wine)
    k = _key(nt, call.args[0], DELETE)
    if isinstance(k, int):
        return k
    registry_of(nt).delete(k.key)
    return st.STATUS_SUCCESS


def NtRenameKey(nt: NtPersonality, call: NtSyscall) -> int:
    handle, name_ptr = call.args[:2]
    k = _key(nt, handle, KEY_WRITE)
    if isinstance(k, int):
        return k
    if not name_ptr:
        return st.STATUS_ACCESS_VIOLATION
    registry_of(nt).rename(k.key, nt.read_unicode(call, name_ptr))
    return st.STATUS_SUCCESS


def NtFlushKey(nt: NtPersonality, call: NtSyscall) -> int:
    k = _key(nt, call.args[0])
    if isinstance(k, int):
        return k
    registry_of(nt).flush()
    return st.STATUS_SUCCESS


def NtNotifyChangeKey(nt: NtPersonality, call: NtSyscall) -> int:
    """Signal ``Event`` on the next change of the key (or its subtree); synchronous calls wait."""
    handle, event, apc, _ctx, iosb, _filter, subtree, _buf, _size, asynchronous = call.args[:10]
    return _notify(nt, call, handle, event, apc, iosb, subtree, asynchronous)


def NtNotifyChangeMultipleKeys(nt: NtPersonality, call: NtSyscall) -> int:
    handle, count, _subkeys, event, apc, _ctx, iosb, _filter, subtree, _buf, _size, asynchronous = call.args[
        :12
    ]
    if count & 0xFFFFFFFF:
        return st.STATUS_NOT_SUPPORTED
    return _notify(nt, call, handle, event, apc, iosb, subtree, asynchronous)


def _notify(
    nt: NtPersonality,
    call: NtSyscall,
    handle: int,
    event: int,
    apc: int,
    iosb: int,
    subtree: int,
    asynchronous: int,
) -> int:
    k = _key(nt, handle, KEY_NOTIFY)
    if isinstance(k, int):
        return k
    if apc:
        return st.STATUS_NOT_SUPPORTED
    ev: objects.Event | None
    if event:
        obj = nt.handles.get(event)
        if not isinstance(obj, objects.Event):
            return st.STATUS_INVALID_HANDLE
        ev = obj
    elif asynchronous & 0xFF:
        return st.STATUS_INVALID_PARAMETER
    else:
        ev = objects.Event(manual_reset=True, state=False)
    with registry_of(nt).lock:
        k.key.watchers.append((ev, bool(subtree & 0xFF)))
    if asynchronous & 0xFF:
        nt.put_iosb(call, iosb, st.STATUS_PENDING, 0)
        return st.STATUS_PENDING
    objects.wait([ev], False, None, nt.exiting)
    nt.put_iosb(call, iosb, st.STATUS_SUCCESS, 0)
    return st.STATUS_SUCCESS


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtCreateKey,
        NtOpenKey,
        NtOpenKeyEx,
        NtOpenKeyTransacted,
        NtOpenKeyTransactedEx,
        NtQueryKey,
        NtEnumerateKey,
        NtQueryValueKey,
        NtEnumerateValueKey,
        NtQueryMultipleValueKey,
        NtSetValueKey,
        NtDeleteValueKey,
        NtDeleteKey,
        NtRenameKey,
        NtFlushKey,
        NtNotifyChangeKey,
        NtNotifyChangeMultipleKeys,
    )
}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtCreateKey": (
        "*KeyHandle",
        "DesiredAccess",
        "oa:ObjectAttributes",
        "TitleIndex",
        "us:Class",
        "CreateOptions",
        "*Disposition",
    ),
    "NtOpenKey": ("*KeyHandle", "DesiredAccess", "oa:ObjectAttributes"),
    "NtOpenKeyEx": ("*KeyHandle", "DesiredAccess", "oa:ObjectAttributes", "OpenOptions"),
    "NtQueryKey": ("KeyHandle", "KeyInformationClass", "*KeyInformation", "Length", "*ResultLength"),
    "NtEnumerateKey": (
        "KeyHandle",
        "Index",
        "KeyInformationClass",
        "*KeyInformation",
        "Length",
        "*ResultLength",
    ),
    "NtQueryValueKey": (
        "KeyHandle",
        "us:ValueName",
        "KeyValueInformationClass",
        "*KeyValueInformation",
        "Length",
        "*ResultLength",
    ),
    "NtEnumerateValueKey": (
        "KeyHandle",
        "Index",
        "KeyValueInformationClass",
        "*KeyValueInformation",
        "Length",
        "*ResultLength",
    ),
    "NtSetValueKey": ("KeyHandle", "us:ValueName", "TitleIndex", "Type", "Data", "DataSize"),
    "NtDeleteValueKey": ("KeyHandle", "us:ValueName"),
    "NtDeleteKey": ("KeyHandle",),
    "NtRenameKey": ("KeyHandle", "us:NewName"),
    "NtFlushKey": ("KeyHandle",),
    "NtNotifyChangeKey": (
        "KeyHandle",
        "Event",
        "ApcRoutine",
        "ApcContext",
        "*IoStatusBlock",
        "CompletionFilter",
        "WatchTree",
        "Buffer",
        "BufferSize",
        "Asynchronous",
    ),
}
