"""The prefix: the directory holding a Windows program's C: drive and registry, laid out as Wine's.

``<prefix>/drive_c`` is C:, ``<prefix>/dosdevices/c:`` links to it and ``z:`` to ``/`` (as in
Wine), and ``C:\\windows\\system32`` serves the DLL set in use (Wine's PE DLLs, or a directory
given with ``--dlls``) on top of whatever the prefix's own system32 holds.  The default prefix is
``$PYSUD_PREFIX``, else ``$XDG_DATA_HOME/pysud/prefix`` (``~/.local/share/pysud/prefix``); it is
created on first use.  Registry files (system.reg, user.reg, userdef.reg) live in ``path``.
"""

from __future__ import annotations

import os

#: Where Debian/Ubuntu (and Wine's own default build) install the x64 PE DLLs and the NLS files.
WINE_DLL_DIRS = (
    "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows",
    "/usr/lib/wine/x86_64-windows",
    "/usr/lib64/wine/x86_64-windows",
    "/usr/local/lib/wine/x86_64-windows",
    "/opt/wine-stable/lib/wine/x86_64-windows",
)
WINE_NLS_DIRS = ("/usr/share/wine/nls", "/usr/local/share/wine/nls", "/opt/wine-stable/share/wine/nls")


def default_path() -> str:
    env = os.environ.get("PYSUD_PREFIX")
    if env:
        return os.path.abspath(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "pysud", "prefix")


def find_wine_dlls() -> str | None:
    """The directory of an installed Wine's x64 PE DLLs (holding ntdll.dll), or None."""
    for d in WINE_DLL_DIRS:
        if os.path.isfile(os.path.join(d, "ntdll.dll")) and os.path.isfile(os.path.join(d, "kernel32.dll")):
            return d
    return None


def find_nls(dll_dir: str) -> str | None:
    """Wine's nls directory (l_intl.nls, c_*.nls, locale.nls, ...) for a DLL directory."""
    here = os.path.normpath(os.path.join(dll_dir, "..", "..", "..", "..", "share", "wine", "nls"))
    for d in (here, *WINE_NLS_DIRS):
        if os.path.isfile(os.path.join(d, "l_intl.nls")):
            return d
    return None


class Prefix:
    """A prefix directory and the path translation between NT names and host paths."""

    def __init__(self, path: str | None = None, dlls: str | None = None) -> None:
        self.path = os.path.abspath(path or default_path())
        self.dlls = os.path.abspath(dlls) if dlls else None
        self.drive_c = os.path.join(self.path, "drive_c")
        self.system32 = os.path.join(self.drive_c, "windows", "system32")
        self.nls = find_nls(self.dlls) if self.dlls else None
        self._dll_names: dict[str, str] | None = None
        self.create()

    def create(self) -> None:
        """Create the layout if it is missing (idempotent; existing files are left alone)."""
        for d in (
            self.system32,
            os.path.join(self.drive_c, "users", "Public"),
            os.path.join(self.path, "dosdevices"),
        ):
            os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.join(self.drive_c, "windows", "temp"), exist_ok=True)
        for name, target in (("c:", "../drive_c"), ("z:", "/")):
            link = os.path.join(self.path, "dosdevices", name)
            if not os.path.lexists(link):
                try:
                    os.symlink(target, link)
                except FileExistsError:
                    pass

    @property
    def drives(self) -> dict[str, str]:
        return {"C": self.drive_c, "Z": "/"}

    def dll_names(self) -> dict[str, str]:
        """Lower-case file name -> host path of every file in the DLL set."""
        if self._dll_names is None:
            names: dict[str, str] = {}
            if self.dlls:
                try:
                    for entry in os.listdir(self.dlls):
                        names.setdefault(entry.lower(), os.path.join(self.dlls, entry))
                except OSError:
                    pass
            self._dll_names = names
        return self._dll_names

    def overlay(self, host: str) -> str:
        """A host path under the prefix's system32 that the DLL set provides: the DLL set's file."""
        if not self.dlls or os.path.dirname(host) != self.system32:
            return host
        if os.path.lexists(host):
            return host
        return self.dll_names().get(os.path.basename(host).lower(), host)


def windows_environment(host: dict[str, str]) -> dict[str, str]:
    """A top-level program's environment as Wine builds it: the host's variables (but HOME, PWD and
    the Unix PATH) and the Windows ones (PATH to system32, SystemRoot, ComSpec, user folders, ...)."""
    user = host.get("USER") or host.get("LOGNAME") or "user"
    computer = os.uname().nodename.split(".")[0].upper() or "PYSUD"
    env = {k: v for k, v in host.items() if k not in ("HOME", "PWD", "PATH", "TEMP", "TMP")}
    profile = f"C:\\users\\{user}"
    env.update(
        {
            "ALLUSERSPROFILE": "C:\\ProgramData",
            "APPDATA": f"{profile}\\AppData\\Roaming",
            "CommonProgramFiles": "C:\\Program Files\\Common Files",
            "CommonProgramFiles(x86)": "C:\\Program Files (x86)\\Common Files",
            "CommonProgramW6432": "C:\\Program Files\\Common Files",
            "COMPUTERNAME": computer,
            "ComSpec": "C:\\windows\\system32\\cmd.exe",
            "HOMEDRIVE": "C:",
            "HOMEPATH": f"\\users\\{user}",
            "LOCALAPPDATA": f"{profile}\\AppData\\Local",
            "LOGONSERVER": f"\\\\{computer}",
            "NUMBER_OF_PROCESSORS": str(os.cpu_count() or 1),
            "OS": "Windows_NT",
            "PATH": "C:\\windows\\system32;C:\\windows;C:\\windows\\system32\\wbem;"
            "C:\\windows\\system32\\WindowsPowershell\\v1.0",
            "PATHEXT": ".com;.exe;.bat;.cmd;.vbs;.vbe;.js;.jse;.wsf;.wsh",
            "PROCESSOR_ARCHITECTURE": "AMD64",
            "ProgramData": "C:\\ProgramData",
            "ProgramFiles": "C:\\Program Files",
            "ProgramFiles(x86)": "C:\\Program Files (x86)",
            "ProgramW6432": "C:\\Program Files",
            "PROMPT": "$P$G",
            "PUBLIC": "C:\\users\\Public",
            "SystemDrive": "C:",
            "SystemRoot": "C:\\windows",
            "TEMP": f"{profile}\\Temp",
            "TMP": f"{profile}\\Temp",
            "USERDOMAIN": computer,
            "USERNAME": user,
            "USERPROFILE": profile,
            "windir": "C:\\windows",
            "winsysdir": "C:\\windows\\system32",
        }
    )
    return env
