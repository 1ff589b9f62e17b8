"""strace's option languages as data: `-e trace=` classes and `-e inject=` specs with `when=`."""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass

from .._abi import X86_64

# Classes strace names (its syscall flags TP, TN, TM, TS); %file and %desc are derived from the
# kernel prototypes below: a call is in %file if it takes a path name, in %desc if it takes an fd.
PROCESS = frozenset(
    {
        "clone",
        "clone3",
        "fork",
        "vfork",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "wait4",
        "waitid",
        "kill",
        "tkill",
        "tgkill",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "pidfd_send_signal",
        "arch_prctl",
        "unshare",
    }
)
NETWORK = frozenset(
    {
        "socket",
        "socketpair",
        "bind",
        "listen",
        "accept",
        "accept4",
        "connect",
        "getsockname",
        "getpeername",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "shutdown",
        "setsockopt",
        "getsockopt",
    }
)
MEMORY = frozenset(
    {
        "brk",
        "mmap",
        "munmap",
        "mremap",
        "mprotect",
        "madvise",
        "mlock",
        "munlock",
        "mlockall",
        "munlockall",
        "mincore",
        "msync",
        "remap_file_pages",
        "mbind",
        "get_mempolicy",
        "set_mempolicy",
        "migrate_pages",
        "move_pages",
        "pkey_mprotect",
        "mlock2",
        "process_madvise",
        "set_mempolicy_home_node",
        "shmat",
        "shmdt",
    }
)
SIGNAL = frozenset(
    {
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigsuspend",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "sigaltstack",
        "kill",
        "tkill",
        "tgkill",
        "pause",
        "signalfd",
        "signalfd4",
        "pidfd_send_signal",
    }
)
_PATH_NAMES = {"filename", "pathname", "path", "oldname", "newname", "dir_name", "specialfile", "library"}
_FD_NAMES = {"fd", "dfd", "oldfd", "newfd", "out_fd", "in_fd", "fd_in", "fd_out", "epfd", "olddfd", "newdfd"}


def _by_prototype(names: set[str], pointer: bool) -> frozenset[str]:
    out = set()
    for nr, proto in X86_64.prototypes.items():
        for typ, name in proto:
            if name in names and ("*" in typ) == pointer:
                out.add(X86_64.name_of(nr))
    return frozenset(out)


FILE = _by_prototype(_PATH_NAMES, True) | {"execve", "execveat", "statfs", "getxattr", "lgetxattr"}
DESC = _by_prototype(_FD_NAMES, False) | {
    "pipe",
    "pipe2",
    "epoll_create",
    "epoll_create1",
    "mmap",
    "poll",
    "select",
    "pselect6",
    "ppoll",
    "eventfd",
    "eventfd2",
}
STAT = frozenset({"stat", "statx", "newfstatat", "fstatat64"})
LSTAT = frozenset({"lstat", "statx", "newfstatat"})
FSTAT = frozenset({"fstat", "statx", "newfstatat"})
ANY_STAT = frozenset({"stat", "lstat", "fstat", "newfstatat", "statx"})
STATFS = frozenset({"statfs"})
FSTATFS = frozenset({"fstatfs"})
CREDS = frozenset(
    {
        "getuid", "geteuid", "getgid", "getegid", "setuid", "setgid", "setreuid", "setregid",
        "getresuid", "setresuid", "getresgid", "setresgid", "setfsuid", "setfsgid", "getgroups",
        "setgroups", "capget", "capset", "prctl",
    }
)  # fmt: skip
CLOCK = frozenset(
    {
        "clock_gettime", "clock_settime", "clock_getres", "clock_adjtime", "gettimeofday",
        "settimeofday", "time", "adjtimex",
    }
)  # fmt: skip
IPC = frozenset(
    {
        "msgget",
        "msgsnd",
        "msgrcv",
        "msgctl",
        "semget",
        "semop",
        "semtimedop",
        "semctl",
        "shmget",
        "shmat",
        "shmdt",
        "shmctl",
    }
)
PURE = frozenset(
    {
        "getpid",
        "getppid",
        "gettid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getpgrp",
        "getpgid",
        "getsid",
        "sched_yield",
    }
)
CLASSES = {
    "%stat": STAT,
    "%lstat": LSTAT,
    "%fstat": FSTAT,
    "%%stat": ANY_STAT,
    "%statfs": STATFS,
    "%fstatfs": FSTATFS,
    "%%statfs": STATFS | FSTATFS,
    "%creds": CREDS,
    "%clock": CLOCK,
    "%ipc": IPC,
    "%pure": PURE,
    "%file": FILE,
    "file": FILE,
    "%desc": DESC,
    "desc": DESC,
    "%process": PROCESS,
    "process": PROCESS,
    "%network": NETWORK,
    "%net": NETWORK,
    "network": NETWORK,
    "%memory": MEMORY,
    "memory": MEMORY,
    "%signal": SIGNAL,
    "signal": SIGNAL,
}


class SpecError(ValueError):
    """A malformed -e expression."""


def syscall_set(text: str) -> frozenset[int]:
    """`-e trace=` values: names, classes, `/regex`, `all`, `none`, `?name` (no error when unknown);
    a leading `!` negates the whole set."""
    import re

    negate = text.startswith("!")
    if negate:
        text = text[1:]
    nrs: set[int] = set()
    for item in filter(None, text.split(",")):
        optional = item.startswith("?")
        item = item.lstrip("?")
        if item.startswith("/"):
            try:
                pat = re.compile(item[1:])
            except re.error as e:
                raise SpecError(f"invalid regular expression {item[1:]!r}: {e}") from None
            nrs.update(nr for nr in X86_64.table if pat.search(X86_64.name_of(nr)))
        elif item == "all":
            nrs.update(X86_64.table)
        elif item == "none":
            continue
        elif item in CLASSES:
            nrs.update(X86_64.numbers[n] for n in CLASSES[item] if n in X86_64.numbers)
        else:
            try:
                nrs.add(X86_64.number_of(item))
            except KeyError:
                if not optional:
                    raise SpecError(f"invalid system call {item!r}") from None
    if negate:
        return frozenset(set(X86_64.table) - nrs)
    return frozenset(nrs)


@dataclass(frozen=True)
class Inject:
    """One `-e inject=` rule: the calls it applies to, what they return, and when."""

    nrs: frozenset[int]
    error: int | None
    retval: int | None
    first: int = 1
    last: int | None = None  # inclusive; None: no end
    step: int = 0  # 0: only `first` (and up to `last` in steps of 1 if a range was given)

    def hits(self, n: int) -> bool:
        """Whether the n-th matching call (1-based) is injected."""
        if n < self.first or (self.last is not None and n > self.last):
            return False
        if self.step == 0:
            return n == self.first or self.last is not None
        return (n - self.first) % self.step == 0

    def result(self) -> int:
        return -self.error if self.error is not None else int(self.retval or 0)


def parse_when(expr: str) -> tuple[int, int | None, int]:
    """strace's when=: first, first+ (step 1), first+step, first..last, first..last+step."""
    try:
        step = 0
        rng, plus, st = expr.partition("+")
        if plus:
            step = int(st) if st else 1
        first_s, dots, last_s = rng.partition("..")
        first = int(first_s)
        last = int(last_s) if dots else None
        if last is not None and step == 0:
            step = 1
    except ValueError:
        raise SpecError(
            f"invalid when={expr!r}: use first, first+, first+step or first..last[+step]"
        ) from None
    if first < 1 or (last is not None and last < first) or step < 0 or first > 65535:
        raise SpecError(f"invalid when={expr!r}: 1 <= first <= last <= 65535")
    return first, last, step


def parse_inject(text: str) -> Inject:
    """`SET:error=ERRNO|retval=N[:when=EXPR]` as strace takes it."""
    parts = text.split(":")
    nrs = syscall_set(parts[0])
    if not nrs:
        raise SpecError(f"inject: no system call in {parts[0]!r}")
    error = retval = None
    first, last, step = 1, None, 1  # strace's default: every call
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if not eq:
            raise SpecError(f"inject: expected key=value, got {part!r}")
        if key == "error":
            if value.isdigit():
                error = int(value)
            elif value in _errno.__dict__ and isinstance(getattr(_errno, value), int):
                error = getattr(_errno, value)
            else:
                raise SpecError(f"inject: unknown error {value!r}")
            if not 0 < error < 4096:
                raise SpecError(f"inject: error {value!r} out of range 1..4095")
        elif key == "retval":
            try:
                retval = int(value, 0)
            except ValueError:
                raise SpecError(f"inject: retval must be an integer, not {value!r}") from None
        elif key == "when":
            first, last, step = parse_when(value)
        else:
            raise SpecError(f"inject: unsupported {key!r} (error=, retval=, when= are)")
    if (error is None) == (retval is None):
        raise SpecError("inject: give exactly one of error= and retval=")
    return Inject(nrs, error, retval, first, last, step)
