"""The Windows NT personality: x64 Windows programs in this process, their NT calls in Python.

``run(path, args)`` loads a PE32+ program that imports from ntdll.dll only, gives it pysud's
ntdll (real stubs, Windows syscall numbers of a chosen build), a PEB/TEB/KUSER_SHARED_DATA, and
emulates its NT system calls; see docs/nt.md.
"""

from __future__ import annotations

from ._profiles import DEFAULT as DEFAULT_PROFILE
from ._profiles import TABLES as PROFILES
from .pe import PELoadError
from .personality import NtPersonality, NtSyscall, run
from .status import name as status_name

__all__ = ["DEFAULT_PROFILE", "PROFILES", "NtPersonality", "NtSyscall", "PELoadError", "run", "status_name"]
