"""The registry: keys and values in memory, stored in a prefix as Wine's ``.reg`` text files.

Three branches live in files of the prefix directory, as in Wine: ``system.reg`` holds
``\\REGISTRY\\Machine``, ``user.reg`` ``\\REGISTRY\\User\\<user SID>`` and ``userdef.reg``
``\\REGISTRY\\User\\.Default``.  The text format is Wine's (server/registry.c): a
``WINE REGISTRY Version 2`` header, ``[Key\\\\Path] seconds`` sections with ``#time=``,
``#class=`` and ``#link`` options, and ``"name"=`` values as ``"string"``, ``str(2):``,
``str(7):``, ``dword:``, ``hex:`` and ``hex(N):``, strings escaped as Wine escapes them.

Processes of one prefix share it: a change takes the prefix's registry lock, reloads a branch that
another process saved since, applies the change and saves the branch (write-through); a lookup
reloads a branch whose file changed.  Keys keep their case and compare case-insensitively; subkeys
and values enumerate in Wine's order (sorted case-insensitively).
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import process
from . import status as st

REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_QWORD = 11

#: The user's SID, as Wine gives it (and as tokens report it: see nt/kernel/security.py).
USER_SID = "S-1-5-21-0-0-0-1000"
SYMLINK_VALUE = "SymbolicLinkValue"
ROOT_NAME = "\\REGISTRY"
MACHINE = "\\REGISTRY\\Machine"
USER_ROOT = "\\REGISTRY\\User"
CURRENT_USER = f"{USER_ROOT}\\{USER_SID}"
DEFAULT_USER = f"{USER_ROOT}\\.Default"
#: file name -> the key it holds
BRANCHES = {"system.reg": MACHINE, "user.reg": CURRENT_USER, "userdef.reg": DEFAULT_USER}
#: file name -> the branch as the file's comment names it (Wine's spelling)
_COMMENTS = {
    "system.reg": "REGISTRY\\\\Machine",
    "user.reg": f"REGISTRY\\\\User\\\\{USER_SID}",
    "userdef.reg": "REGISTRY\\\\User\\\\.Default",
}
_TICKS_1601_TO_1970 = process.EPOCH_DELTA


class RegistryError(st.NtStatusError):
    """A registry operation failed; ``status`` is the NTSTATUS it means."""


class RegFormatError(ValueError):
    """A ``.reg`` file is not in Wine's text format."""


# NTSTATUS values of registry failures (the kernel side maps nothing else)
STATUS_OBJECT_NAME_NOT_FOUND = st.STATUS_OBJECT_NAME_NOT_FOUND
STATUS_OBJECT_PATH_NOT_FOUND = st.STATUS_OBJECT_PATH_NOT_FOUND
STATUS_OBJECT_PATH_SYNTAX_BAD = st.STATUS_OBJECT_PATH_SYNTAX_BAD
STATUS_ACCESS_DENIED = st.STATUS_ACCESS_DENIED
STATUS_KEY_DELETED = st.STATUS_KEY_DELETED
STATUS_CHILD_MUST_BE_VOLATILE = st.STATUS_CHILD_MUST_BE_VOLATILE
STATUS_INVALID_PARAMETER = st.STATUS_INVALID_PARAMETER


def now_filetime() -> int:
    return process.system_time()


@dataclass(eq=False)
class Value:
    name: str
    type: int
    data: bytes


@dataclass(eq=False)
class Key:
    """One key: its own name (case kept), its subkeys and values (by lower-case name)."""

    name: str
    parent: Key | None = None
    subkeys: dict[str, Key] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)
    modif: int = 0
    class_name: str | None = None
    symlink: bool = False
    volatile: bool = False
    deleted: bool = False
    #: (event object, subtree) pairs to signal on a change (NtNotifyChangeKey)
    watchers: list[tuple[object, bool]] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The full name, ``\\REGISTRY\\Machine\\...`` (as NtQueryKey's KeyNameInformation gives it)."""
        parts: list[str] = []
        k: Key | None = self
        while k is not None and k.parent is not None:
            parts.append(k.name)
            k = k.parent
        return "\\" + "\\".join(reversed(parts))

    def sorted_subkeys(self) -> list[Key]:
        return [self.subkeys[n] for n in sorted(self.subkeys)]

    def sorted_values(self) -> list[Value]:
        return [self.values[n] for n in sorted(self.values)]

    def child(self, name: str, *, volatile: bool = False) -> Key:
        """The subkey ``name``, created if missing."""
        k = self.subkeys.get(name.lower())
        if k is None:
            k = Key(name=name, parent=self, modif=now_filetime(), volatile=volatile)
            self.subkeys[name.lower()] = k
        return k

    def set(self, name: str, type_: int, data: bytes) -> None:
        old = self.values.get(name.lower())  # a value set again keeps its first name's case (Wine)
        self.values[name.lower()] = Value(old.name if old else name, type_, data)
        self.modif = now_filetime()

    def link_target(self) -> str | None:
        v = self.values.get(SYMLINK_VALUE.lower())
        if not self.symlink or v is None or v.type != REG_LINK:
            return None
        return v.data.decode("utf-16-le", errors="surrogatepass")


# ---------------------------------------------------------------------------------- value text


def sz(text: str) -> bytes:
    """A REG_SZ/REG_EXPAND_SZ payload: UTF-16LE with its terminating NUL."""
    return (text + "\0").encode("utf-16-le", errors="surrogatepass")


def multi_sz(items: list[str]) -> bytes:
    return "".join(s + "\0" for s in items).encode("utf-16-le") + b"\0\0"


def dword(n: int) -> bytes:
    return struct.pack("<I", n & 0xFFFFFFFF)


def qword(n: int) -> bytes:
    return struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF)


_C_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 27: "e"}
_C_UNESCAPES = {v: k for k, v in _C_ESCAPES.items()}


def escape(units: list[int], specials: str) -> str:
    """Wine's dump_strW: UTF-16 code units as text; a final NUL is dropped."""
    out: list[str] = []
    n = len(units)
    for i, c in enumerate(units):
        nxt = units[i + 1] if i + 1 < n else None
        if c > 127:
            if nxt is not None and nxt < 128 and chr(nxt) in "0123456789abcdefABCDEF":
                out.append(f"\\x{c:04x}")
            else:
                out.append(f"\\x{c:x}")
        elif c < 32:
            if c == 0 and nxt is None:
                continue
            if c in _C_ESCAPES:
                out.append("\\" + _C_ESCAPES[c])
            elif nxt is not None and 0x30 <= nxt <= 0x37:
                out.append(f"\\{c:03o}")
            else:
                out.append(f"\\{c:o}")
        else:
            ch = chr(c)
            if ch == "\\" or ch in specials:
                out.append("\\")
            out.append(ch)
    return "".join(out)


_SAFE = {c: re.compile(r"[ !#-\[\]-~]*" if c == '"' else r"[ -Z^-~]*") for c in ('"', "[]")}


def escape_text(text: str, specials: str) -> str:
    """:func:`escape` of a string (a final NUL dropped); printable ASCII without specials as is."""
    if _SAFE[specials].fullmatch(text):
        return text
    return escape(_units(_enc(text)), specials)


def _units(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}H", data[: len(data) // 2 * 2]))


_PLAIN = {c: re.compile(r"[^\\" + re.escape(c) + "]+") for c in ('"', "]")}
_SURROGATE = re.compile("[\ud800-\udfff]")
_HEX4 = re.compile(r"[0-9a-fA-F]{1,4}")
_OCT3 = re.compile(r"[0-7]{1,3}")


def unescape(text: str, pos: int, end: str) -> tuple[str, int]:
    """Wine's parse_strW: the text up to the unescaped ``end`` char; (text, index after it).

    Each escaped code unit becomes one character (lone surrogates included), so
    ``.encode("utf-16-le", "surrogatepass")`` gives back Wine's code units.
    """
    out: list[str] = []
    plain = _PLAIN[end]
    i = pos
    n = len(text)
    while i < n:
        m = plain.match(text, i)
        if m:
            out.append(m.group())
            i = m.end()
            continue
        ch = text[i]
        if ch == end:
            text = "".join(out)
            if _SURROGATE.search(text):  # escaped pairs become one character, as UTF-16 decoding gives
                text = _dec(_enc(text))
            return text, i + 1
        i += 1  # a backslash
        if i >= n:
            break
        ch = text[i]
        if ch in _C_UNESCAPES:
            out.append(chr(_C_UNESCAPES[ch]))
            i += 1
        elif ch == "x" and (h := _HEX4.match(text, i + 1)):
            out.append(chr(int(h.group(), 16)))
            i = h.end()
        elif o := _OCT3.match(text, i):
            out.append(chr(int(o.group(), 8)))
            i = o.end()
        else:
            out.append(ch)
            i += 1
    raise RegFormatError(f"unterminated string (no closing {end!r})")


def _enc(text: str) -> bytes:
    return text.encode("utf-16-le", errors="surrogatepass")


def _dec(data: bytes) -> str:
    return data.decode("utf-16-le", errors="surrogatepass")


def format_value(v: Value) -> str:
    """One value line (with continuation lines for long hex), as Wine's dump_value writes it."""
    if v.name:
        head = '"' + escape_text(v.name, '"') + '"='
    else:
        head = "@="
    data = v.data
    if v.type in (REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ):
        if len(data) >= 2 and len(data) % 2 == 0 and data[-2:] == b"\0\0":
            tag = "" if v.type == REG_SZ else f"str({v.type:x}):"
            return head + tag + '"' + escape_text(_dec(data), '"') + '"'
    elif v.type == REG_DWORD and len(data) == 4:
        return f"{head}dword:{struct.unpack('<I', data)[0]:08x}"
    line = head + ("hex:" if v.type == REG_BINARY else f"hex({v.type:x}):")
    count = len(line)
    parts = [line]
    for i, b in enumerate(data):
        parts.append(f"{b:02x}")
        count += 2
        if i < len(data) - 1:
            parts.append(",")
            count += 1
            if count > 76:
                parts.append("\\\n  ")
                count = 2
    return "".join(parts)


def _parse_hex(lines: Iterator[str], text: str) -> bytes:
    out = bytearray()
    while True:
        body = text.strip()
        cont = body.endswith("\\")
        if cont:
            body = body[:-1]
        for tok in body.split(","):
            tok = tok.strip()
            if not tok:
                continue
            if not re.fullmatch(r"[0-9a-fA-F]{1,2}", tok):
                raise RegFormatError(f"bad hex byte {tok!r}")
            out.append(int(tok, 16))
        if not cont:
            return bytes(out)
        try:
            text = next(lines)
        except StopIteration:
            raise RegFormatError("hex value ends after a continuation") from None


def parse_value(line: str, lines: Iterator[str]) -> Value:
    """A value line (``"name"=...`` or ``@=...``), reading continuation lines from ``lines``."""
    if line.startswith("@"):
        name, i = "", 1
    else:
        name, i = unescape(line, 1, '"')
    rest = line[i:].lstrip()
    if not rest.startswith("="):
        raise RegFormatError(f"no '=' after value name: {line!r}")
    rest = rest[1:].lstrip()
    m = re.match(r'(?:str(?:\(([0-9a-fA-F]+)\))?:)?"', rest)
    if m:
        type_ = int(m.group(1), 16) if m.group(1) else REG_SZ
        text, _ = unescape(rest, m.end(), '"')
        return Value(name, type_, _enc(text + "\0"))
    if rest.startswith("dword:"):
        return Value(name, REG_DWORD, dword(int(rest[6:].strip() or "0", 16)))
    m = re.match(r"hex(?:\(([0-9a-fA-F]+)\))?:", rest)
    if m:
        type_ = int(m.group(1), 16) if m.group(1) else REG_BINARY
        return Value(name, type_, _parse_hex(lines, rest[m.end() :]))
    raise RegFormatError(f"unknown value type: {line!r}")


# ---------------------------------------------------------------------------------- files


def load_text(base: Key, text: str) -> None:
    """Replace ``base``'s subtree with the keys of a ``.reg`` text (keys relative to ``base``).

    Key objects that stay keep their identity (open handles follow them); keys gone from the
    text are marked deleted.  Volatile keys are kept.
    """
    lines = iter(text.splitlines())
    first = next(lines, None)
    if first != "WINE REGISTRY Version 2":
        raise RegFormatError("not a Wine registry file (no 'WINE REGISTRY Version 2' header)")
    seen: set[int] = {id(base)}
    old_values: dict[int, dict[str, Value]] = {}
    current: Key | None = None

    def mark(k: Key) -> None:
        while k is not None and id(k) not in seen:
            seen.add(id(k))
            k = k.parent  # type: ignore[assignment]

    for raw in lines:
        line = raw.lstrip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            path, after = unescape(line, 1, "]")
            k = base
            for part in (p for p in path.split("\\") if p):
                k = k.child(part)
                k.deleted = False
            mark(k)
            if id(k) not in old_values:
                old_values[id(k)] = k.values
                k.values = {}
                k.class_name = None
                k.symlink = False
            m = re.match(r"\s*(\d+)", line[after:])
            k.modif = int(m.group(1)) * 10_000_000 + _TICKS_1601_TO_1970 if m else now_filetime()
            current = k
        elif line.startswith("#"):
            if current is None:
                if line.startswith("#arch=") and line[6:] not in ("win32", "win64"):
                    raise RegFormatError(f"unknown architecture {line[6:]!r}")
                continue
            if line.startswith("#time="):
                current.modif = int(re.match(r"[0-9a-fA-F]*", line[6:]).group() or "0", 16)  # type: ignore[union-attr]
            elif line.startswith('#class="'):
                current.class_name, _ = unescape(line, 8, '"')
            elif line.startswith("#link"):
                current.symlink = True
        elif line.startswith(("@", '"')):
            if current is None:
                raise RegFormatError(f"value without a key: {line!r}")
            v = parse_value(line, lines)
            current.values[v.name.lower()] = v
        else:
            raise RegFormatError(f"unrecognised line: {raw!r}")

    def prune(k: Key) -> None:
        for name, sub in list(k.subkeys.items()):
            if id(sub) in seen or sub.volatile:
                prune(sub)
            else:
                _mark_deleted(sub)
                del k.subkeys[name]
        if id(k) not in old_values and k is not base and not k.volatile:
            k.values = {}  # an implicit key (only subkeys in the file): no values

    prune(base)


def _mark_deleted(k: Key) -> None:
    k.deleted = True
    for sub in k.subkeys.values():
        _mark_deleted(sub)


def dump_text(base: Key, comment: str) -> str:
    """``base``'s subtree as a ``.reg`` text, as Wine's save_branch writes it."""
    out = [
        "WINE REGISTRY Version 2",
        f";; All keys relative to {comment}",
        "",
        "#arch=win64",
    ]

    def walk(k: Key, rel: list[str]) -> None:
        if k.volatile:
            return
        if k.values or not k.subkeys or k.class_name is not None or k.symlink:
            path = "\\\\".join(escape_text(p, "[]") for p in rel)
            secs = max(0, (k.modif - _TICKS_1601_TO_1970) // 10_000_000)
            out.append("")
            out.append(f"[{path}] {secs}")
            out.append(f"#time={k.modif:x}")
            if k.class_name is not None:
                out.append('#class="' + escape_text(k.class_name, '"') + '"')
            if k.symlink:
                out.append("#link")
            out.extend(format_value(v) for v in k.sorted_values())
        for sub in k.sorted_subkeys():
            walk(sub, [*rel, sub.name])

    walk(base, [])
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------- the registry


class Registry:
    """The registry of one prefix directory (created if missing, seeded on first use)."""

    def __init__(
        self,
        directory: str | None = None,
        *,
        seed: bool = True,
        version: tuple[int, int, int] = (10, 0, 22631),
    ) -> None:
        self._tmp: weakref.finalize[..., Registry] | None = None
        if directory is None:  # a registry of its own, removed with the object
            import shutil
            import tempfile

            directory = tempfile.mkdtemp(prefix="pysud-registry-")
            self._tmp = weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.lock = threading.RLock()
        self.root = Key(name="REGISTRY")
        self.root.parent = None
        top = Key(name="", subkeys={"registry": self.root})  # the object namespace's "\"
        self.root.parent = top
        self._top = top
        machine = self.root.child("Machine")  # Wine's spelling, as KeyNameInformation shows it
        users = self.root.child("User")
        self._branch_keys = {
            "system.reg": machine,
            "user.reg": users.child(USER_SID),
            "userdef.reg": users.child(".Default"),
        }
        self._stamps: dict[str, tuple[int, ...] | None] = dict.fromkeys(BRANCHES)
        self._lock_fd = -1  # the lock file (holds the save counters), opened on first use
        self._locked = False
        self._lock_pid = os.getpid()
        self._closer: weakref.finalize[[int], Registry] | None = None
        with self._file_lock():
            fresh = not any(os.path.exists(self._file(n)) for n in BRANCHES)
            self._reload()
            if seed and fresh:
                seed_defaults(self, version)
                for name in BRANCHES:
                    self._save(name)
            elif seed:
                self._follow_version(version)

    def _follow_version(self, version: tuple[int, int, int]) -> None:
        """CurrentVersion's build values say the version the PEB reports (the prefix may have been
        made for another profile); saved only when something changes."""
        try:
            cv = self.resolve(r"\REGISTRY\Machine\Software\Microsoft\Windows NT\CurrentVersion")
        except RegistryError:
            return
        if cv.values.get("currentbuild", Value("", REG_NONE, b"")).data == sz(str(version[2])):
            return
        for name, (type_, data) in version_values(version).items():
            cv.set(name, type_, data)
        self._save("system.reg")

    # ---- files and the prefix lock

    def _file(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """The prefix's registry lock (flock on ``.registry.lock``), re-entrant in this process."""
        with self.lock:
            if self._locked:
                yield
                return
            self._open_lock_file()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._locked = True
            try:
                yield
            finally:
                self._locked = False
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _open_lock_file(self) -> None:
        if self._lock_pid != os.getpid():  # a forked child: its own open file, its own lock
            self._lock_fd, self._lock_pid = -1, os.getpid()
        if self._lock_fd < 0:  # opened once, kept: a lock is one flock call
            self._lock_fd = os.open(
                os.path.join(self.directory, ".registry.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            self._closer = weakref.finalize(self, os.close, self._lock_fd)  # closed with the registry

    def _generations(self) -> dict[str, int]:
        """Save counters kept in the lock file: a change is seen even within the mtime's granularity."""
        text = os.pread(self._lock_fd, 4096, 0).decode("ascii", errors="replace")
        gens: dict[str, int] = {}
        for line in text.splitlines():
            name, _, n = line.partition(" ")
            if name in BRANCHES and n.isdigit():
                gens[name] = int(n)
        return gens

    def _stamp(self, name: str, gens: dict[str, int]) -> tuple[int, ...] | None:
        try:
            s = os.stat(self._file(name))
        except FileNotFoundError:
            return None
        return (s.st_ino, s.st_mtime_ns, s.st_size, gens.get(name, 0))

    def _reload(self) -> None:
        """Load every branch whose file changed since this process last read or wrote it."""
        gens = self._generations()
        for name, key in self._branch_keys.items():
            stamp = self._stamp(name, gens)
            if stamp == self._stamps[name]:
                continue
            self._stamps[name] = stamp
            if stamp is None:
                continue
            with open(self._file(name), encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
            try:
                load_text(key, text)
            except RegFormatError as e:
                raise RegFormatError(f"{self._file(name)}: {e}") from None

    def _save(self, name: str) -> None:
        """Write a branch (to a temporary file renamed over it: a reader never sees half a file)."""
        text = dump_text(self._branch_keys[name], _COMMENTS[name])
        tmp = os.path.join(self.directory, f".{name}.tmp")  # the lock is held: one writer
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        os.replace(tmp, self._file(name))
        gens = self._generations()
        gens[name] = gens.get(name, 0) + 1
        # fixed-width lines: the record is rewritten in place, never shorter
        record = "".join(f"{n} {gens.get(n, 0):020d}\n" for n in sorted(BRANCHES)).encode()
        os.pwrite(self._lock_fd, record, 0)
        self._stamps[name] = self._stamp(name, gens)

    def close(self) -> None:
        """Release the lock file (and a temporary directory of this registry's own)."""
        with self.lock:
            if self._closer is not None:
                self._closer()
                self._closer = None
            self._lock_fd = -1
            if self._tmp is not None:
                self._tmp()
                self._tmp = None

    def _branch_of(self, key: Key) -> str | None:
        k: Key | None = key
        while k is not None:
            for name, b in self._branch_keys.items():
                if b is k:
                    return name
            k = k.parent
        return None

    def refresh(self) -> None:
        """Pick up changes another process saved (one stat per branch and a read of the counters).

        Without the prefix lock: a branch file is only ever replaced whole (rename), so a reader
        sees the old or the new one; a counter read during a save only costs a second reload.
        """
        with self.lock:
            if not self._locked:
                self._open_lock_file()
            self._reload()

    @contextmanager
    def change(self, key: Key) -> Iterator[None]:
        """Modify ``key`` (or its subtree) under the prefix lock, then save its branch and notify."""
        with self._file_lock():
            self._reload()
            if key.deleted:
                raise RegistryError(STATUS_KEY_DELETED)
            yield
            branch = self._branch_of(key)
            if branch is not None and not key.volatile:
                self._save(branch)
        self._notify(key)

    def flush(self) -> None:
        with self._file_lock():
            for name in BRANCHES:
                self._save(name)

    def _notify(self, key: Key) -> None:
        from . import objects

        k: Key | None = key
        first = True
        fired = False
        while k is not None:
            keep: list[tuple[object, bool]] = []
            for ev, subtree in k.watchers:
                if first or subtree:
                    if isinstance(ev, objects.Event):
                        ev.state = True
                        fired = True
                else:
                    keep.append((ev, subtree))
            k.watchers = keep
            first = False
            k = k.parent
        if fired:
            objects.notify()

    # ---- lookups

    def resolve(self, path: str, base: Key | None = None, *, open_link: bool = False) -> Key:
        """The key at ``path`` (absolute ``\\REGISTRY\\...`` or relative to ``base``), links followed."""
        with self.lock:
            self.refresh()
            k, rest = self._walk(path, base, open_link=open_link)
            if rest:
                raise RegistryError(STATUS_OBJECT_NAME_NOT_FOUND)  # a missing parent too, as in Wine
            return k

    def _start(self, path: str, base: Key | None) -> tuple[Key, list[str]]:
        if base is None:
            if not path.startswith("\\"):
                raise RegistryError(STATUS_OBJECT_PATH_SYNTAX_BAD)
            parts = [p for p in path.split("\\") if p]
            if not parts or parts[0].lower() != "registry":
                raise RegistryError(STATUS_OBJECT_PATH_NOT_FOUND)
            return self.root, parts[1:]
        if path.startswith("\\"):
            raise RegistryError(STATUS_OBJECT_PATH_SYNTAX_BAD)
        if base.deleted:
            raise RegistryError(STATUS_KEY_DELETED)
        return base, [p for p in path.split("\\") if p]

    def _walk(self, path: str, base: Key | None, *, open_link: bool, depth: int = 0) -> tuple[Key, list[str]]:
        """Walk as far as ``path`` exists: (deepest key, the names still missing)."""
        if depth > 16:
            raise RegistryError(STATUS_OBJECT_NAME_NOT_FOUND)
        k, parts = self._start(path, base)
        for i, part in enumerate(parts):
            if len(part) > 255:
                raise RegistryError(STATUS_INVALID_PARAMETER)
            sub = k.subkeys.get(part.lower())
            if sub is None:
                return k, parts[i:]
            last = i == len(parts) - 1
            target = sub.link_target()
            if target is not None and not (last and open_link):
                rest = "\\".join(parts[i + 1 :])
                return self._walk(
                    target + ("\\" + rest if rest else ""), None, open_link=open_link, depth=depth + 1
                )
            k = sub
        return k, []

    def create(
        self,
        path: str,
        base: Key | None = None,
        *,
        class_name: str | None = None,
        volatile: bool = False,
        link: bool = False,
        open_link: bool = False,
    ) -> tuple[Key, bool]:
        """Open or create the key at ``path``: (key, created)."""
        with self._file_lock():
            self._reload()
            k, rest = self._walk(path, base, open_link=open_link or link)
            if not rest:
                return k, False
            if k is self.root or k is self._top:
                raise RegistryError(STATUS_ACCESS_DENIED)
            if len(rest) > 1:  # NtCreateKey makes the last name only, its parent must exist
                raise RegistryError(STATUS_OBJECT_NAME_NOT_FOUND)
            if k.volatile and not volatile:
                raise RegistryError(STATUS_CHILD_MUST_BE_VOLATILE)
            if len(rest[0]) > 255:
                raise RegistryError(STATUS_INVALID_PARAMETER)
            k.modif = now_filetime()
            k = k.child(rest[0], volatile=volatile)
            k.class_name = class_name or None
            k.symlink = link
            branch = self._branch_of(k)
            if branch is not None and not volatile:
                self._save(branch)
        if k.parent is not None:
            self._notify(k.parent)
        return k, True

    def delete(self, key: Key) -> None:
        """Delete a key without subkeys (Wine: STATUS_ACCESS_DENIED when it has some)."""
        parent = key.parent
        if parent is None or key in self._branch_keys.values() or key is self.root:
            raise RegistryError(STATUS_ACCESS_DENIED)
        if key.deleted:
            return  # deleting a deleted key succeeds (Wine)
        with self.change(key):
            if key.subkeys:
                raise RegistryError(STATUS_ACCESS_DENIED)
            parent.subkeys.pop(key.name.lower(), None)
            parent.modif = now_filetime()
            key.deleted = True
        self._notify(parent)

    def rename(self, key: Key, name: str) -> None:
        """Give a key another name under the same parent (STATUS_CANNOT_DELETE if taken, as Wine)."""
        parent = key.parent
        if parent is None or key in self._branch_keys.values() or key is self.root:
            raise RegistryError(STATUS_ACCESS_DENIED)
        if not name or "\\" in name or len(name) > 255:
            raise RegistryError(STATUS_INVALID_PARAMETER)
        with self.change(key):
            if name.lower() != key.name.lower() and name.lower() in parent.subkeys:
                raise RegistryError(st.STATUS_CANNOT_DELETE)
            del parent.subkeys[key.name.lower()]
            key.name = name
            parent.subkeys[name.lower()] = key
            parent.modif = key.modif = now_filetime()
        self._notify(parent)

    def set_value(self, key: Key, name: str, type_: int, data: bytes) -> None:
        with self._file_lock():
            self._reload()
            old = key.values.get(name.lower())
            if not key.deleted and old is not None and old.type == type_ and old.data == data:
                return  # as in Wine's server: no new write time, no notification, no save
            with self.change(key):
                key.set(name, type_, data)

    def delete_value(self, key: Key, name: str) -> None:
        with self.change(key):
            if key.values.pop(name.lower(), None) is None:
                raise RegistryError(STATUS_OBJECT_NAME_NOT_FOUND)
            key.modif = now_filetime()


# ---------------------------------------------------------------------------------- defaults

#: (major, minor, build) -> the product name programs read
_PRODUCTS = {10: "Windows 10 Pro"}
_TIME_ZONES = {
    # name: (display, standard name, daylight name, bias minutes)
    "UTC": (
        "(UTC) Coordinated Universal Time",
        "Coordinated Universal Time",
        "Coordinated Universal Time",
        0,
    ),
    "GMT Standard Time": (
        "(UTC+00:00) Dublin, Edinburgh, Lisbon, London",
        "GMT Standard Time",
        "GMT Daylight Time",
        0,
    ),
    "W. Europe Standard Time": (
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        "W. Europe Standard Time",
        "W. Europe Daylight Time",
        -60,
    ),
    "Eastern Standard Time": (
        "(UTC-05:00) Eastern Time (US & Canada)",
        "Eastern Standard Time",
        "Eastern Daylight Time",
        300,
    ),
    "Pacific Standard Time": (
        "(UTC-08:00) Pacific Time (US & Canada)",
        "Pacific Standard Time",
        "Pacific Daylight Time",
        480,
    ),
}


def computer_name() -> str:
    """The host name as Windows shows a NetBIOS name: upper case, at most 15 characters."""
    return (os.uname().nodename.split(".")[0] or "PYSUD").upper()[:15]


def version_values(version: tuple[int, int, int]) -> dict[str, tuple[int, bytes]]:
    """CurrentVersion's values that name the Windows version (major, minor, build)."""
    major, minor, build = version
    display = {22631: "23H2", 22621: "22H2", 19045: "22H2", 19044: "21H2", 19043: "21H1"}.get(build, "")
    return {
        "CurrentBuild": (REG_SZ, sz(str(build))),
        "CurrentBuildNumber": (REG_SZ, sz(str(build))),
        "CurrentMajorVersionNumber": (REG_DWORD, dword(major)),
        "CurrentMinorVersionNumber": (REG_DWORD, dword(minor)),
        # what Windows 8.1 and later report here, for programs that read it as the version
        "CurrentVersion": (REG_SZ, sz("6.3" if (major, minor) >= (6, 3) else f"{major}.{minor}")),
        "DisplayVersion": (REG_SZ, sz(display)),
    }


def seed_defaults(reg: Registry, version: tuple[int, int, int] = (10, 0, 22631)) -> None:
    """The keys and values programs read at start-up, added where missing."""
    major = version[0]
    m = reg._branch_keys["system.reg"]
    u = reg._branch_keys["user.reg"]

    def put(base: Key, path: str, values: dict[str, tuple[int, bytes]]) -> Key:
        k = base
        for part in path.split("\\"):
            k = k.child(part)
        for name, (t, data) in values.items():
            if name.lower() not in k.values:
                k.set(name, t, data)
        return k

    def s(text: str) -> tuple[int, bytes]:
        return REG_SZ, sz(text)

    def x(text: str) -> tuple[int, bytes]:
        return REG_EXPAND_SZ, sz(text)

    def d(n: int) -> tuple[int, bytes]:
        return REG_DWORD, dword(n)

    host = computer_name()
    ccs = "System\\CurrentControlSet"
    put(m, f"{ccs}\\Control\\ComputerName\\ComputerName", {"ComputerName": s(host)})
    put(m, f"{ccs}\\Control\\ComputerName\\ActiveComputerName", {"ComputerName": s(host)})
    put(
        m,
        f"{ccs}\\Services\\Tcpip\\Parameters",
        {"Hostname": s(os.uname().nodename.split(".")[0]), "Domain": s("")},
    )
    ncpu = os.cpu_count() or 1
    put(
        m,
        f"{ccs}\\Control\\Session Manager\\Environment",
        {
            "ComSpec": x("%SystemRoot%\\system32\\cmd.exe"),
            "NUMBER_OF_PROCESSORS": s(str(ncpu)),
            "OS": s("Windows_NT"),
            "PATH": x("%SystemRoot%\\system32;%SystemRoot%;%SystemRoot%\\system32\\wbem"),
            "PATHEXT": s(".com;.exe;.bat;.cmd;.vbs;.vbe;.js;.jse;.wsf;.wsh"),
            "PROCESSOR_ARCHITECTURE": s("AMD64"),
            "TEMP": x("%SystemRoot%\\temp"),
            "TMP": x("%SystemRoot%\\temp"),
            "windir": x("%SystemRoot%"),
        },
    )
    put(m, f"{ccs}\\Control\\Session Manager", {"GlobalFlag": d(0), "SafeDllSearchMode": d(1)})
    put(
        m,
        f"{ccs}\\Control\\Session Manager\\Memory Management",
        {"PagingFiles": (REG_MULTI_SZ, multi_sz([]))},
    )
    put(
        m,
        f"{ccs}\\Control\\TimeZoneInformation",
        {
            "Bias": d(0),
            "StandardName": s("Coordinated Universal Time"),
            "DaylightName": s("Coordinated Universal Time"),
            "TimeZoneKeyName": s("UTC"),
            "StandardBias": d(0),
            "DaylightBias": d(0),
        },
    )
    put(m, f"{ccs}\\Control\\Nls\\CodePage", {"ACP": s("1252"), "OEMCP": s("437"), "MACCP": s("10000")})
    put(m, f"{ccs}\\Control\\Nls\\Language", {"Default": s("0409"), "InstallLanguage": s("0409")})
    put(
        m,
        "Software\\Microsoft\\Windows NT\\CurrentVersion",
        {
            **version_values(version),
            "CurrentType": s("Multiprocessor Free"),
            "EditionID": s("Professional"),
            "InstallationType": s("Client"),
            "ProductName": s(_PRODUCTS.get(major, "Windows")),
            "RegisteredOrganization": s(""),
            "RegisteredOwner": s(""),
            "SystemRoot": s("C:\\windows"),
        },
    )
    tz = "Software\\Microsoft\\Windows NT\\CurrentVersion\\Time Zones"
    for name, (display, std, dlt, bias) in _TIME_ZONES.items():
        tzi = struct.pack("<iii", bias, 0, -60 if std != dlt else 0) + bytes(32)
        put(
            m,
            f"{tz}\\{name}",
            {"Display": s(display), "Std": s(std), "Dlt": s(dlt), "TZI": (REG_BINARY, tzi)},
        )
    put(
        m,
        "Software\\Microsoft\\Windows\\CurrentVersion",
        {
            "CommonFilesDir": s("C:\\Program Files\\Common Files"),
            "ProgramFilesDir": s("C:\\Program Files"),
            "ProgramFilesPath": x("%ProgramFiles%"),
        },
    )
    put(u, "Environment", {"TEMP": s("C:\\users\\pysud\\Temp"), "TMP": s("C:\\users\\pysud\\Temp")})
    put(
        u,
        "Control Panel\\International",
        {
            "Locale": s("00000409"),
            "LocaleName": s("en-US"),
            "sDecimal": s("."),
            "sThousand": s(","),
            "sShortDate": s("M/d/yyyy"),
            "sTimeFormat": s("h:mm:ss tt"),
            "sList": s(","),
            "iCountry": s("1"),
        },
    )
    put(u, "Software\\Microsoft\\Windows\\CurrentVersion", {})
    put(reg._branch_keys["userdef.reg"], "Environment", {})
