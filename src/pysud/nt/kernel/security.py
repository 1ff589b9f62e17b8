"""NT security calls: the process token (as Wine's: an elevated administrator, user
S-1-5-21-0-0-0-1000), thread tokens (none), token information classes, duplicates, privileges,
NtAccessCheck against a DACL, and a minimal NtQuerySecurityObject.

Nothing is enforced: pysud is not a sandbox.  These calls answer what programs ask so that they
take the paths they take on Wine.
"""

from __future__ import annotations

import itertools
import re
import struct
from typing import TYPE_CHECKING, Any

from .. import objects
from .. import registry as rg
from .. import status as st

if TYPE_CHECKING:
    from ..personality import NtPersonality, NtSyscall

STATUS_NO_TOKEN = st.STATUS_NO_TOKEN
STATUS_NOT_ALL_ASSIGNED = st.STATUS_NOT_ALL_ASSIGNED
STATUS_BAD_IMPERSONATION_LEVEL = st.STATUS_BAD_IMPERSONATION_LEVEL
STATUS_NO_IMPERSONATION_TOKEN = st.STATUS_NO_IMPERSONATION_TOKEN
STATUS_INVALID_SECURITY_DESCR = st.STATUS_INVALID_SECURITY_DESCR
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE
MAXIMUM_ALLOWED = 0x02000000
SE_GROUP_MANDATORY = 0x1
SE_GROUP_ENABLED_BY_DEFAULT = 0x2
SE_GROUP_ENABLED = 0x4
SE_GROUP_OWNER = 0x8
SE_GROUP_INTEGRITY = 0x20
SE_GROUP_INTEGRITY_ENABLED = 0x40
SE_GROUP_LOGON_ID = 0xC0000000
SE_PRIVILEGE_ENABLED_BY_DEFAULT = 0x1
SE_PRIVILEGE_ENABLED = 0x2
SE_PRIVILEGE_REMOVED = 0x4
TokenPrimary, TokenImpersonation = 1, 2
SecurityAnonymous, SecurityIdentification, SecurityImpersonation, SecurityDelegation = 0, 1, 2, 3

USER = rg.USER_SID
DOMAIN_USERS = "S-1-5-21-0-0-0-513"
#: the groups of Wine's default token, in its order, with its attributes
GROUPS = (
    ("S-1-1-0", 0x7),  # Everyone
    ("S-1-2-0", 0x7),  # Local
    ("S-1-5-4", 0x7),  # Interactive
    ("S-1-5-11", 0x7),  # Authenticated Users
    (DOMAIN_USERS, 0xF),
    ("S-1-5-32-544", 0xF),  # Administrators
    ("S-1-5-32-545", 0x7),  # Users
    ("S-1-5-5-0-{logon}", SE_GROUP_LOGON_ID | 0x7),  # the logon session
)
#: Wine's default privileges (LUID low part, attributes), in its order
PRIVILEGES = (
    (23, 3),  # SeChangeNotifyPrivilege
    (7, 0),
    (8, 0),
    (17, 0),
    (18, 0),
    (12, 0),
    (19, 0),
    (24, 0),
    (9, 0),
    (20, 0),  # SeDebugPrivilege
    (22, 0),
    (11, 0),
    (13, 0),
    (14, 0),
    (10, 3),  # SeLoadDriverPrivilege
    (15, 0),
    (5, 0),
    (25, 0),
    (28, 0),
    (29, 3),  # SeImpersonatePrivilege
    (30, 3),  # SeCreateGlobalPrivilege
)
HIGH_INTEGRITY = "S-1-16-12288"
LOCAL_SYSTEM = "S-1-5-18"
_luids = itertools.count(0x10000)
LOGON_ID = 0x3E7 + 0x1000  # the logon session's LUID, also in the logon SID


def sid_bytes(text: str) -> bytes:
    """A SID from its S-R-A-S... text."""
    m = re.fullmatch(r"S-(\d+)-(\d+)((?:-\d+)*)", text)
    if not m:
        raise ValueError(f"not a SID: {text!r}")
    subs = [int(x) for x in m.group(3).split("-")[1:]]
    auth = int(m.group(2)).to_bytes(6, "big")
    return struct.pack("<BB", int(m.group(1)), len(subs)) + auth + struct.pack(f"<{len(subs)}I", *subs)


def sid_text(data: bytes, at: int = 0) -> tuple[str, int]:
    """(S-... text, byte length) of the SID at ``data[at:]``."""
    rev, count = data[at], data[at + 1]
    auth = int.from_bytes(data[at + 2 : at + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, at + 8)
    return "S-" + "-".join(str(x) for x in (rev, auth, *subs)), 8 + 4 * count


def _groups() -> list[tuple[str, int]]:
    return [(sid.format(logon=LOGON_ID), attrs) for sid, attrs in GROUPS]


class Token(objects.NtObject):
    """An access token: the user, groups and privileges are the process's; type and level its own."""

    type_name = "Token"

    def __init__(self, primary: bool = True, level: int = SecurityAnonymous) -> None:
        self.primary = primary
        self.level = level
        self.privileges = [list(p) for p in PRIVILEGES]
        self.groups = _groups()
        self.id = next(_luids)
        self.modified = self.id

    def copy(self, primary: bool, level: int) -> Token:
        t = Token(primary, level)
        t.privileges = [list(p) for p in self.privileges]
        return t

    def sids(self) -> set[str]:
        return {USER} | {sid for sid, attrs in self.groups if attrs & SE_GROUP_ENABLED}


# ---------------------------------------------------------------------------------- information classes


def _sid_and_attributes(base: int, entries: list[tuple[str, int]], head: bytes) -> bytes:
    """``head``, then SID_AND_ATTRIBUTES[] pointing at the SIDs that follow them (absolute addresses)."""
    table_end = len(head) + 16 * len(entries)
    sids = b""
    table = b""
    for sid, attrs in entries:
        table += struct.pack("<QI4x", base + table_end + len(sids), attrs)
        sids += sid_bytes(sid)
    return head + table + sids


def _acl(aces: list[tuple[int, int, int, str]]) -> bytes:
    """An ACL of (type, flags, mask, SID) aces."""
    body = b""
    for type_, flags, mask, sid in aces:
        s = sid_bytes(sid)
        body += struct.pack("<BBHI", type_, flags, 8 + len(s), mask) + s
    return struct.pack("<BBHHH", 2, 0, 8 + len(body), len(aces), 0) + body


def token_info(token: Token, cls: int, base: int) -> bytes | None:
    """The bytes of TOKEN_INFORMATION_CLASS ``cls`` as they are at ``base``; None if unknown."""
    if cls == 1:  # TokenUser
        return _sid_and_attributes(base, [(USER, 0)], b"")
    if cls == 2:  # TokenGroups
        return _sid_and_attributes(base, token.groups, struct.pack("<I4x", len(token.groups)))
    if cls == 3:  # TokenPrivileges
        return struct.pack("<I", len(token.privileges)) + b"".join(
            struct.pack("<IiI", luid, 0, attrs) for luid, attrs in token.privileges
        )
    if cls in (4, 5):  # TokenOwner, TokenPrimaryGroup: Wine gives both the primary group
        return struct.pack("<Q", base + 8) + sid_bytes(DOMAIN_USERS)
    if cls == 6:  # TokenDefaultDacl
        return struct.pack("<Q", base + 8) + _acl(
            [(0, 0, 0x10000000, LOCAL_SYSTEM), (0, 0, 0x10000000, DOMAIN_USERS)]
        )
    if cls == 7:  # TokenSource
        return b"Wine\0\0\0\0" + struct.pack("<Ii", 0, 0)
    if cls == 8:  # TokenType
        return struct.pack("<I", TokenPrimary if token.primary else TokenImpersonation)
    if cls == 9:  # TokenImpersonationLevel
        return None if token.primary else struct.pack("<I", token.level)
    if cls == 10:  # TokenStatistics
        level = 0xFFFFFFFF if token.primary else token.level  # Wine's level of a primary token
        return struct.pack(
            "<QQqIIIIIIQ",
            token.id,
            LOGON_ID,
            0x7FFFFFFFFFFFFFFF,
            TokenPrimary if token.primary else TokenImpersonation,
            level,
            0,
            0,
            len(token.groups),
            len(token.privileges),
            token.modified,
        )
    if cls == 12:  # TokenSessionId
        return struct.pack("<I", 1)
    if cls == 18:  # TokenElevationType: TokenElevationTypeFull
        return struct.pack("<I", 2)
    if cls == 20:  # TokenElevation
        return struct.pack("<I", 1)
    if cls == 25:  # TokenIntegrityLevel
        return _sid_and_attributes(
            base, [(HIGH_INTEGRITY, SE_GROUP_INTEGRITY | SE_GROUP_INTEGRITY_ENABLED)], b""
        )
    if cls in (23, 24, 26, 29):  # TokenVirtualizationAllowed/Enabled, TokenUIAccess, TokenIsAppContainer
        return struct.pack("<I", 0)
    if cls == 28:  # TokenLogonSid
        return _sid_and_attributes(base, [g for g in token.groups if g[1] & SE_GROUP_LOGON_ID], b"")
    return None


# ---------------------------------------------------------------------------------- handles


#: pseudo-handles of Windows 8+: GetCurrentProcessToken, GetCurrentThreadToken,
#: GetCurrentThreadEffectiveToken (the process token here: no thread impersonates)
CURRENT_PROCESS_TOKEN = 0xFFFFFFFFFFFFFFFC
CURRENT_THREAD_TOKEN = 0xFFFFFFFFFFFFFFFB
CURRENT_THREAD_EFFECTIVE_TOKEN = 0xFFFFFFFFFFFFFFFA


def _token(nt: NtPersonality, handle: int) -> Token | int:
    if handle in (CURRENT_PROCESS_TOKEN, CURRENT_THREAD_EFFECTIVE_TOKEN):
        with objects.CHANGED:  # one per process, kept under a key no NT name can have
            tok = nt.handles.namespace.get("<process token>")
            if not isinstance(tok, Token):
                tok = Token()
                nt.handles.namespace["<process token>"] = tok
            return tok
    if handle == CURRENT_THREAD_TOKEN:
        return STATUS_NO_TOKEN
    obj = nt.handles.get(handle)
    if obj is None:
        return st.STATUS_INVALID_HANDLE
    return obj if isinstance(obj, Token) else st.STATUS_OBJECT_TYPE_MISMATCH


def _process_ok(nt: NtPersonality, handle: int) -> int:
    if handle == CURRENT_PROCESS:
        return st.STATUS_SUCCESS
    obj = nt.handles.get(handle)
    if obj is None:
        return st.STATUS_INVALID_HANDLE
    return st.STATUS_SUCCESS if obj.type_name == "Process" else st.STATUS_OBJECT_TYPE_MISMATCH


def _give(nt: NtPersonality, call: NtSyscall, out: int, obj: objects.NtObject) -> int:
    if not out:
        return st.STATUS_ACCESS_VIOLATION
    nt.put_handle(call, out, obj)
    return st.STATUS_SUCCESS


def NtOpenProcessToken(nt: NtPersonality, call: NtSyscall) -> int:
    process, _access, out = call.args[:3]
    status = _process_ok(nt, process)
    return status if status else _give(nt, call, out, Token())


def NtOpenProcessTokenEx(nt: NtPersonality, call: NtSyscall) -> int:
    process, _access, _attrs, out = call.args[:4]
    status = _process_ok(nt, process)
    return status if status else _give(nt, call, out, Token())


def _thread_token(nt: NtPersonality, call: NtSyscall, thread: int, out: int) -> int:
    """No thread impersonates: STATUS_NO_TOKEN (and a NULL handle) for a valid thread handle."""
    if thread != CURRENT_THREAD:
        obj = nt.handles.get(thread)
        if obj is None:
            return st.STATUS_INVALID_HANDLE
        if not isinstance(obj, objects.Thread):
            return st.STATUS_OBJECT_TYPE_MISMATCH
    nt.put_u64(call, out, 0)
    return STATUS_NO_TOKEN


def NtOpenThreadToken(nt: NtPersonality, call: NtSyscall) -> int:
    thread, _access, _as_self, out = call.args[:4]
    return _thread_token(nt, call, thread, out)


def NtOpenThreadTokenEx(nt: NtPersonality, call: NtSyscall) -> int:
    thread, _access, _as_self, _attrs, out = call.args[:5]
    return _thread_token(nt, call, thread, out)


def NtQueryInformationToken(nt: NtPersonality, call: NtSyscall) -> int:
    handle, cls, buf, length, result = call.args[:5]
    token = _token(nt, handle)
    if isinstance(token, int):
        return token
    cls &= 0xFFFFFFFF
    data = token_info(token, cls, buf)
    if data is None:
        return st.STATUS_INVALID_PARAMETER if cls == 9 else st.STATUS_INVALID_INFO_CLASS
    nt.put_u32(call, result, len(data))
    if (length & 0xFFFFFFFF) < len(data):
        return st.STATUS_BUFFER_TOO_SMALL
    call.write(buf, data)
    return st.STATUS_SUCCESS


def NtSetInformationToken(nt: NtPersonality, call: NtSyscall) -> int:
    token = _token(nt, call.args[0])
    return token if isinstance(token, int) else st.STATUS_SUCCESS  # nothing a token holds changes here


def NtDuplicateToken(nt: NtPersonality, call: NtSyscall) -> int:
    handle, _access, oa, _effective_only, type_, out = call.args[:6]
    token = _token(nt, handle)
    if isinstance(token, int):
        return token
    type_ &= 0xFFFFFFFF
    if type_ not in (TokenPrimary, TokenImpersonation):
        return st.STATUS_INVALID_PARAMETER
    level = SecurityAnonymous
    if oa:
        qos = struct.unpack("<Q", call.read(oa + 40, 8))[0]
        if qos:
            level = struct.unpack("<I", call.read(qos + 4, 4))[0]
    if type_ == TokenPrimary:
        level = token.level
    return _give(nt, call, out, token.copy(type_ == TokenPrimary, level))


def NtAdjustPrivilegesToken(nt: NtPersonality, call: NtSyscall) -> int:
    handle, disable_all, new_state, buf_len, prev_ptr, result = call.args[:6]
    token = _token(nt, handle)
    if isinstance(token, int):
        return token
    changes: list[tuple[int, int]] = []
    if disable_all & 0xFF:
        changes = [(luid, 0) for luid, _ in token.privileges]
    else:
        if not new_state:
            return st.STATUS_INVALID_PARAMETER
        (count,) = struct.unpack("<I", call.read(new_state, 4))
        for i in range(min(count, 64)):
            luid, _high, attrs = struct.unpack("<IiI", call.read(new_state + 4 + 12 * i, 12))
            changes.append((luid, attrs))
    held = {p[0]: p for p in token.privileges}
    previous: list[tuple[int, int]] = []
    missing = False
    for luid, attrs in changes:
        p = held.get(luid)
        if p is None:
            missing = True
            continue
        if (p[1] & SE_PRIVILEGE_ENABLED) != (attrs & SE_PRIVILEGE_ENABLED) or attrs & SE_PRIVILEGE_REMOVED:
            previous.append((luid, p[1]))  # the previous state lists what changed
        if attrs & SE_PRIVILEGE_REMOVED:
            token.privileges.remove(p)
            del held[luid]
        else:
            p[1] = (p[1] & ~SE_PRIVILEGE_ENABLED) | (attrs & SE_PRIVILEGE_ENABLED)
    token.modified = next(_luids)
    if prev_ptr:
        data = struct.pack("<I", len(previous)) + b"".join(
            struct.pack("<IiI", lu, 0, a) for lu, a in previous
        )
        nt.put_u32(call, result, len(data))
        if (buf_len & 0xFFFFFFFF) < len(data):
            return st.STATUS_BUFFER_TOO_SMALL
        call.write(prev_ptr, data)
    return STATUS_NOT_ALL_ASSIGNED if missing else st.STATUS_SUCCESS


# ---------------------------------------------------------------------------------- access checks


def _read_sd(call: NtSyscall, sd: int) -> tuple[str | None, str | None, list[tuple[int, int, str]] | None]:
    """(owner, group, DACL aces as (type, mask, SID)) of a SECURITY_DESCRIPTOR, absolute or self-relative.

    The DACL is None when the descriptor grants everything (no DACL present, or a NULL DACL).
    """
    rev, _sbz, control = struct.unpack("<BBH", call.read(sd, 4))
    if rev != 1:
        raise ValueError("revision")
    if control & 0x8000:  # SE_SELF_RELATIVE: offsets
        off_owner, off_group, _off_sacl, off_dacl = struct.unpack("<IIII", call.read(sd + 4, 16))
        owner_at = sd + off_owner if off_owner else 0
        group_at = sd + off_group if off_group else 0
        dacl_at = sd + off_dacl if off_dacl else 0
    else:
        owner_at, group_at, _sacl_at, dacl_at = struct.unpack("<QQQQ", call.read(sd + 8, 32))

    def sid_at(at: int) -> str | None:
        if not at:
            return None
        head = call.read(at, 8)
        return sid_text(head + call.read(at + 8, 4 * head[1]))[0]

    owner, group = sid_at(owner_at), sid_at(group_at)
    if not control & 0x4 or not dacl_at:  # SE_DACL_PRESENT
        return owner, group, None
    _rev, _s, size, count, _s2 = struct.unpack("<BBHHH", call.read(dacl_at, 8))
    data = call.read(dacl_at, size)
    aces: list[tuple[int, int, str]] = []
    at = 8
    for _ in range(count):
        type_, _flags, ace_size, mask = struct.unpack_from("<BBHI", data, at)
        if type_ in (0, 1):  # ACCESS_ALLOWED, ACCESS_DENIED
            aces.append((type_, mask, sid_text(data, at + 8)[0]))
        at += ace_size
    return owner, group, aces


def _map_generic(access: int, mapping: tuple[int, int, int, int]) -> int:
    for bit, mapped in zip((0x80000000, 0x40000000, 0x20000000, 0x10000000), mapping, strict=True):
        if access & bit:
            access = (access & ~bit) | mapped
    return access


def NtAccessCheck(nt: NtPersonality, call: NtSyscall) -> int:
    sd, handle, desired, mapping_ptr, _privs, privs_len, granted_ptr, status_ptr = call.args[:8]
    token = _token(nt, handle)
    if isinstance(token, int):
        return token
    if token.primary:
        return STATUS_NO_IMPERSONATION_TOKEN
    if token.level < SecurityIdentification:
        return STATUS_BAD_IMPERSONATION_LEVEL
    if not sd or not mapping_ptr or not granted_ptr or not status_ptr:
        return st.STATUS_ACCESS_VIOLATION
    mapping: tuple[int, int, int, int] = struct.unpack("<4I", call.read(mapping_ptr, 16))
    try:
        owner, group, aces = _read_sd(call, sd)
    except (ValueError, struct.error):
        return STATUS_INVALID_SECURITY_DESCR
    if owner is None or group is None:
        return STATUS_INVALID_SECURITY_DESCR
    desired &= 0xFFFFFFFF
    want = _map_generic(desired & ~MAXIMUM_ALLOWED, mapping)
    if aces is None:
        allowed = mapping[3] | want | 0x01FF0000  # no DACL: everything
        denied = 0
    else:
        sids = token.sids()
        allowed = denied = 0
        for type_, mask, sid in aces:
            if sid not in sids:
                continue
            mask = _map_generic(mask, mapping)
            if type_ == 1:
                denied |= mask & ~allowed
            else:
                allowed |= mask & ~denied
    if privs_len:
        nt.put_u32(call, privs_len, 8)  # no privileges were needed
    if desired & MAXIMUM_ALLOWED:
        granted = (allowed & ~denied) | want
        ok = bool(granted) and not want & ~(allowed & ~denied)
    else:
        granted = want
        ok = not want & ~allowed and not want & denied
    nt.put_u32(call, granted_ptr, granted if ok else 0)
    nt.put_u32(call, status_ptr, st.STATUS_SUCCESS if ok else st.STATUS_ACCESS_DENIED)
    return st.STATUS_SUCCESS


def NtQuerySecurityObject(nt: NtPersonality, call: NtSyscall) -> int:
    """A self-relative descriptor: owner and group the token's, a DACL granting Everyone all."""
    handle, info, buf, length, needed = call.args[:5]
    if nt.handles.get(handle) is None and handle not in (CURRENT_PROCESS, CURRENT_THREAD):
        return st.STATUS_INVALID_HANDLE
    parts: list[tuple[int, bytes]] = []  # (offset slot, data)
    if info & 1:
        parts.append((4, sid_bytes(DOMAIN_USERS)))
    if info & 2:
        parts.append((8, sid_bytes(DOMAIN_USERS)))
    control = 0x8000
    if info & 4:
        control |= 0x4
        parts.append((16, _acl([(0, 0, 0x10000000, "S-1-1-0")])))
    offsets = [0, 0, 0, 0]
    body = b""
    for slot, data in parts:
        offsets[(slot - 4) // 4] = 20 + len(body)
        body += data
    sd = struct.pack("<BBHIIII", 1, 0, control, *offsets) + body
    nt.put_u32(call, needed, len(sd))
    if (length & 0xFFFFFFFF) < len(sd):
        return st.STATUS_BUFFER_TOO_SMALL
    call.write(buf, sd)
    return st.STATUS_SUCCESS


def NtSetSecurityObject(nt: NtPersonality, call: NtSyscall) -> int:
    handle = call.args[0]
    if nt.handles.get(handle) is None and handle not in (CURRENT_PROCESS, CURRENT_THREAD):
        return st.STATUS_INVALID_HANDLE
    return st.STATUS_SUCCESS  # descriptors are not kept: nothing is enforced


HANDLERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        NtOpenProcessToken,
        NtOpenProcessTokenEx,
        NtOpenThreadToken,
        NtOpenThreadTokenEx,
        NtQueryInformationToken,
        NtSetInformationToken,
        NtDuplicateToken,
        NtAdjustPrivilegesToken,
        NtAccessCheck,
        NtQuerySecurityObject,
        NtSetSecurityObject,
    )
}

SIGNATURES: dict[str, tuple[str, ...]] = {
    "NtOpenProcessToken": ("ProcessHandle", "DesiredAccess", "*TokenHandle"),
    "NtOpenProcessTokenEx": ("ProcessHandle", "DesiredAccess", "HandleAttributes", "*TokenHandle"),
    "NtOpenThreadToken": ("ThreadHandle", "DesiredAccess", "OpenAsSelf", "*TokenHandle"),
    "NtOpenThreadTokenEx": (
        "ThreadHandle",
        "DesiredAccess",
        "OpenAsSelf",
        "HandleAttributes",
        "*TokenHandle",
    ),
    "NtQueryInformationToken": (
        "TokenHandle",
        "TokenInformationClass",
        "*TokenInformation",
        "Length",
        "*ReturnLength",
    ),
    "NtDuplicateToken": (
        "ExistingTokenHandle",
        "DesiredAccess",
        "oa:ObjectAttributes",
        "EffectiveOnly",
        "TokenType",
        "*NewTokenHandle",
    ),
}
