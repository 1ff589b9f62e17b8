"""A small persistent cache of what start-up would otherwise compute with heavy libraries.

Two stores live here: what the ELF loader needs from a file's headers (so a warm ``pysud run``
does not import pyelftools) and the rewrite planner's decisions per site shape (so it does not
import capstone until a site shape it has not seen appears).  pyelftools and capstone stay the
parsers; the cache only remembers their results.

Where: ``$XDG_CACHE_HOME/pysud`` or ``~/.cache/pysud``, one file per store and Python version
(``<name>-v<version>.<cache tag>.marshal``, e.g. ``elf-v1.cpython-311.marshal``): a dict written
by :mod:`marshal`, whose format may change between Python versions, as the bytecode in
``__pycache__`` is (marshal instead of JSON: reading it needs no import, where ``json`` brings
``re``, ~3 ms of a `pysud run` start-up).  Values are what JSON holds (str keys; lists, str,
int, bool, None); the readers check every value's shape.  The files are the user's own, as
``__pycache__`` is: marshal is not meant for data from someone else.
``PYSUD_CACHE=0`` turns it off; deleting the directory clears it.  A file that cannot be read or
parsed, or holds the wrong shape, counts as empty; a directory that cannot be written leaves the
cache in memory only.  Files are written atomically (a temporary file, then ``os.replace``),
merged with what another process wrote meanwhile, and capped in size (the oldest entries go
first).
"""

from __future__ import annotations

import atexit
import marshal
import os
import sys

#: ``typing`` only for the type checker: its import is a visible part of every start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: The files' Python version: marshal's format is the interpreter's (as in ``__pycache__``).
_TAG = sys.implementation.cache_tag or "python"
#: Environment variable: ``0`` turns the persistent cache off.
ENV = "PYSUD_CACHE"


def enabled() -> bool:
    """The cache is on unless ``PYSUD_CACHE=0`` (read at each call: tests flip it)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "off", "false")


def directory() -> str:
    """``$XDG_CACHE_HOME/pysud``, else ``~/.cache/pysud``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pysud")


class Store:
    """One named mapping of string keys to JSON-like values, read lazily and written by :meth:`save`."""

    def __init__(self, name: str, version: int, limit: int) -> None:
        self.name = name
        self.version = version
        self.limit = limit
        self._entries: dict[str, Any] | None = None
        self._new: dict[str, Any] = {}
        self._path: str | None = None

    @property
    def path(self) -> str:
        return os.path.join(directory(), f"{self.name}-v{self.version}.{_TAG}.marshal")

    def _read(self, path: str) -> dict[str, Any]:
        try:
            with open(path, "rb") as f:
                data = marshal.load(f)
        except (OSError, ValueError, EOFError, TypeError):
            return {}  # none yet, unreadable or corrupt: computed again
        return data if isinstance(data, dict) else {}

    def _load(self) -> dict[str, Any]:
        path = self.path
        if self._entries is None or path != self._path:
            self._path = path
            self._entries = self._read(path)
            self._new = {}
        return self._entries

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None (also when the cache is off)."""
        if not enabled():
            return None
        return self._load().get(key)

    def put(self, key: str, value: Any) -> None:
        """Remember ``value`` (what JSON could hold) under ``key``; written by :meth:`save`/at exit."""
        if not enabled():
            return
        self._load()[key] = value
        if not self._new:
            _pending.append(self)
        self._new[key] = value

    def save(self) -> None:
        """Write the new entries, merged with the file as it is now; errors leave it as it was."""
        if not self._new or self._path is None:
            return
        new, self._new = self._new, {}
        merged = self._read(self._path)
        for key in new:
            merged.pop(key, None)
        merged.update(new)
        if len(merged) > self.limit:
            merged = dict(list(merged.items())[-self.limit :])
        tmp = f"{self._path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            with open(tmp, "wb") as f:
                marshal.dump(merged, f)
            os.replace(tmp, self._path)
        except (OSError, ValueError):  # (ValueError: a value marshal cannot write)
            try:
                os.unlink(tmp)
            except OSError:
                pass


_pending: list[Store] = []


def flush() -> None:
    """Write every store with new entries (also run at interpreter exit)."""
    while _pending:
        _pending.pop().save()


atexit.register(flush)

#: What the ELF loader needs from a file's headers, keyed by the file's identity.
ELF = Store("elf", 1, 512)
#: The rewrite planner's decision per site shape (its alignment and bytes; ~0.5 KB an entry:
#: a full store, ~0.5 MB, takes ~0.5 ms to read: ~0.9 with json here).
PLAN = Store("plan", 1, 1024)
