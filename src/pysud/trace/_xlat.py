"""Constant tables as data: value -> name, in the order strace prints flag sets.

Values come from Python's own modules (os, mmap, signal, resource, socket, errno) where they
export them, otherwise from the UAPI header named beside the table.
"""

from __future__ import annotations

import _socket  # socket.py's C half: the same constants, as ints (socket.py makes enums of them: slow)
import errno as _errno
import mmap as _mmap
import os as _os
import resource as _resource
import signal as _signal

Flags = tuple[tuple[int, str], ...]

# asm-generic/fcntl.h (x86-64 values); O_ACCMODE is decoded apart.
OPEN_ACCMODE = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}
OPEN_FLAGS: Flags = (
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o4010000, "O_SYNC"),  # __O_SYNC|O_DSYNC
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),  # __O_TMPFILE|O_DIRECTORY
    (0o200000, "O_DIRECTORY"),
)
PROT: Flags = (
    (_mmap.PROT_READ, "PROT_READ"),
    (_mmap.PROT_WRITE, "PROT_WRITE"),
    (_mmap.PROT_EXEC, "PROT_EXEC"),
    (0x8, "PROT_SEM"),
    (0x01000000, "PROT_GROWSDOWN"),
    (0x02000000, "PROT_GROWSUP"),
)
MAP_TYPE = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
MAP_FLAGS: Flags = (  # linux/mman.h, asm-generic/mman*.h, x86 MAP_32BIT
    (0x10, "MAP_FIXED"),
    (_mmap.MAP_ANONYMOUS, "MAP_ANONYMOUS"),
    (0x40, "MAP_32BIT"),
    (0x100, "MAP_GROWSDOWN"),
    (0x800, "MAP_DENYWRITE"),
    (0x1000, "MAP_EXECUTABLE"),
    (0x2000, "MAP_LOCKED"),
    (0x4000, "MAP_NORESERVE"),
    (0x8000, "MAP_POPULATE"),
    (0x10000, "MAP_NONBLOCK"),
    (0x20000, "MAP_STACK"),
    (0x40000, "MAP_HUGETLB"),
    (0x80000, "MAP_SYNC"),
    (0x100000, "MAP_FIXED_NOREPLACE"),
    (0x4000000, "MAP_UNINITIALIZED"),
)
AT_FLAGS: Flags = (  # linux/fcntl.h
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_REMOVEDIR"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
    (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"),
    (0x8000, "AT_RECURSIVE"),
)
STATX_MASK: Flags = (  # linux/stat.h
    (0xFFF, "STATX_ALL"),
    (0x7FF, "STATX_BASIC_STATS"),
    (0x1, "STATX_TYPE"),
    (0x2, "STATX_MODE"),
    (0x4, "STATX_NLINK"),
    (0x8, "STATX_UID"),
    (0x10, "STATX_GID"),
    (0x20, "STATX_ATIME"),
    (0x40, "STATX_MTIME"),
    (0x80, "STATX_CTIME"),
    (0x100, "STATX_INO"),
    (0x200, "STATX_SIZE"),
    (0x400, "STATX_BLOCKS"),
    (0x800, "STATX_BTIME"),
    (0x1000, "STATX_MNT_ID"),
    (0x2000, "STATX_DIOALIGN"),
)
ACCESS: Flags = ((4, "R_OK"), (2, "W_OK"), (1, "X_OK"))
GRND: Flags = ((1, "GRND_NONBLOCK"), (2, "GRND_RANDOM"), (4, "GRND_INSECURE"))
CLONE: Flags = (  # linux/sched.h
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
)
SA_FLAGS: Flags = (  # asm/signal.h (x86), in strace's order (xlat/sigact_flags.in)
    (0x04000000, "SA_RESTORER"),
    (0x08000000, "SA_ONSTACK"),
    (0x10000000, "SA_RESTART"),
    (0x40000000, "SA_NODEFER"),
    (0x80000000, "SA_RESETHAND"),
    (0x4, "SA_SIGINFO"),
    (0x1, "SA_NOCLDSTOP"),
    (0x2, "SA_NOCLDWAIT"),
)
SA_RESTORER = 0x04000000
WAIT_OPTIONS: Flags = (
    (_os.WNOHANG, "WNOHANG"),
    (_os.WUNTRACED, "WSTOPPED"),
    (_os.WEXITED, "WEXITED"),
    (_os.WCONTINUED, "WCONTINUED"),
    (_os.WNOWAIT, "WNOWAIT"),
    (0x20000000, "__WNOTHREAD"),
    (0x40000000, "__WALL"),
    (0x80000000, "__WCLONE"),
)
SOCK_FLAGS: Flags = ((_socket.SOCK_CLOEXEC, "SOCK_CLOEXEC"), (_socket.SOCK_NONBLOCK, "SOCK_NONBLOCK"))
SOCK_TYPE = {
    _socket.SOCK_STREAM: "SOCK_STREAM",
    _socket.SOCK_DGRAM: "SOCK_DGRAM",
    _socket.SOCK_RAW: "SOCK_RAW",
    _socket.SOCK_RDM: "SOCK_RDM",
    _socket.SOCK_SEQPACKET: "SOCK_SEQPACKET",
    10: "SOCK_PACKET",
}
AF = {v: k for k, v in vars(_socket).items() if k.startswith("AF_") and isinstance(v, int)}
AF.update({_socket.AF_UNIX: "AF_UNIX", _socket.AF_INET: "AF_INET", _socket.AF_INET6: "AF_INET6"})
PIPE_FLAGS: Flags = ((0o2000000, "O_CLOEXEC"), (0o4000, "O_NONBLOCK"), (0o40000, "O_DIRECT"))
DUP3_FLAGS: Flags = ((0o2000000, "O_CLOEXEC"),)

SEEK = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
FADV = {
    0: "POSIX_FADV_NORMAL",
    1: "POSIX_FADV_RANDOM",
    2: "POSIX_FADV_SEQUENTIAL",
    3: "POSIX_FADV_WILLNEED",
    4: "POSIX_FADV_DONTNEED",
    5: "POSIX_FADV_NOREUSE",
}
ARCH_PRCTL = {
    0x1001: "ARCH_SET_GS",
    0x1002: "ARCH_SET_FS",
    0x1003: "ARCH_GET_FS",
    0x1004: "ARCH_GET_GS",
    0x1011: "ARCH_GET_CPUID",
    0x1012: "ARCH_SET_CPUID",
}
SIGPROCMASK_HOW = {0: "SIG_BLOCK", 1: "SIG_UNBLOCK", 2: "SIG_SETMASK"}
PRCTL = {
    15: "PR_SET_NAME",
    16: "PR_GET_NAME",
    1: "PR_SET_PDEATHSIG",
    2: "PR_GET_PDEATHSIG",
    3: "PR_GET_DUMPABLE",
    4: "PR_SET_DUMPABLE",
    38: "PR_SET_NO_NEW_PRIVS",
    39: "PR_GET_NO_NEW_PRIVS",
    59: "PR_SET_SYSCALL_USER_DISPATCH",
    8: "PR_SET_TIMING",
    22: "PR_SET_SECCOMP",
}
FCNTL = {
    0: "F_DUPFD",
    1: "F_GETFD",
    2: "F_SETFD",
    3: "F_GETFL",
    4: "F_SETFL",
    5: "F_GETLK",
    6: "F_SETLK",
    7: "F_SETLKW",
    8: "F_SETOWN",
    9: "F_GETOWN",
    1030: "F_DUPFD_CLOEXEC",
    1031: "F_SETPIPE_SZ",
    1032: "F_GETPIPE_SZ",
    1033: "F_ADD_SEALS",
    1034: "F_GET_SEALS",
}
IOCTL = {
    0x5401: "TCGETS",
    0x5402: "TCSETS",
    0x5403: "TCSETSW",
    0x5404: "TCSETSF",
    0x540F: "TIOCGPGRP",
    0x5410: "TIOCSPGRP",
    0x5413: "TIOCGWINSZ",
    0x5414: "TIOCSWINSZ",
    0x541B: "FIONREAD",
    0x5421: "FIONBIO",
    0x5451: "FIOCLEX",
    0x40049409: "BTRFS_IOC_CLONE or FICLONE",
    0x4020940D: "BTRFS_IOC_CLONE_RANGE or FICLONERANGE",
    0x5450: "FIONCLEX",
}
CLOCKS = {
    0: "CLOCK_REALTIME",
    1: "CLOCK_MONOTONIC",
    2: "CLOCK_PROCESS_CPUTIME_ID",
    3: "CLOCK_THREAD_CPUTIME_ID",
    4: "CLOCK_MONOTONIC_RAW",
    5: "CLOCK_REALTIME_COARSE",
    6: "CLOCK_MONOTONIC_COARSE",
    7: "CLOCK_BOOTTIME",
}
RLIMIT = {v: k for k, v in vars(_resource).items() if k.startswith("RLIMIT_") and isinstance(v, int)}
RLIMIT.update({_resource.RLIMIT_NOFILE: "RLIMIT_NOFILE", _resource.RLIMIT_AS: "RLIMIT_AS"})
S_IFMT = {
    0o140000: "S_IFSOCK",
    0o120000: "S_IFLNK",
    0o100000: "S_IFREG",
    0o60000: "S_IFBLK",
    0o40000: "S_IFDIR",
    0o20000: "S_IFCHR",
    0o10000: "S_IFIFO",
}
AT_FDCWD = -100

SIGNALS: dict[int, str] = {s.value: s.name for s in _signal.Signals if not s.name.startswith("SIG_")}
SIGNALS.update({_signal.SIGIOT: "SIGABRT", _signal.SIGCHLD: "SIGCHLD", _signal.SIGIO: "SIGIO"})
ERRNO_NAMES: dict[int, str] = dict(_errno.errorcode)
# where two names share a number, the one strace prints
ERRNO_NAMES.update({_errno.EOPNOTSUPP: "EOPNOTSUPP", _errno.EDEADLK: "EDEADLK", _errno.EAGAIN: "EAGAIN"})
# kernel-internal restart codes (include/linux/errno.h); strace prints them with these texts
KERNEL_ERRNO = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}
POLL: Flags = (
    (0x1, "POLLIN"),
    (0x2, "POLLPRI"),
    (0x4, "POLLOUT"),
    (0x8, "POLLERR"),
    (0x10, "POLLHUP"),
    (0x20, "POLLNVAL"),
    (0x40, "POLLRDNORM"),
    (0x80, "POLLRDBAND"),
    (0x100, "POLLWRNORM"),
    (0x200, "POLLWRBAND"),
    (0x400, "POLLMSG"),
    (0x2000, "POLLRDHUP"),
)

# si_code values (include/uapi/asm-generic/siginfo.h): general, then per signal.
SI_CODES: dict[int, str] = {
    0: "SI_USER",
    0x80: "SI_KERNEL",
    -1: "SI_QUEUE",
    -2: "SI_TIMER",
    -3: "SI_MESGQ",
    -4: "SI_ASYNCIO",
    -5: "SI_SIGIO",
    -6: "SI_TKILL",
    -7: "SI_DETHREAD",
    -60: "SI_ASYNCNL",
}
SIG_CODES: dict[int, dict[int, str]] = {
    _signal.SIGCHLD: {
        1: "CLD_EXITED",
        2: "CLD_KILLED",
        3: "CLD_DUMPED",
        4: "CLD_TRAPPED",
        5: "CLD_STOPPED",
        6: "CLD_CONTINUED",
    },
    _signal.SIGSEGV: {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"},
    _signal.SIGBUS: {
        1: "BUS_ADRALN",
        2: "BUS_ADRERR",
        3: "BUS_OBJERR",
        4: "BUS_MCEERR_AR",
        5: "BUS_MCEERR_AO",
    },
    _signal.SIGILL: {
        1: "ILL_ILLOPC",
        2: "ILL_ILLOPN",
        3: "ILL_ILLADR",
        4: "ILL_ILLTRP",
        5: "ILL_PRVOPC",
        6: "ILL_PRVREG",
        7: "ILL_COPROC",
        8: "ILL_BADSTK",
    },
    _signal.SIGFPE: {
        1: "FPE_INTDIV",
        2: "FPE_INTOVF",
        3: "FPE_FLTDIV",
        4: "FPE_FLTOVF",
        5: "FPE_FLTUND",
        6: "FPE_FLTRES",
        7: "FPE_FLTINV",
        8: "FPE_FLTSUB",
    },
    _signal.SIGTRAP: {1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT"},
}


def xlat_or(table: dict[int, str], v: int, unknown: str) -> str:
    """strace's printxval: the name, or the value in hex with a /* UNKNOWN */ comment."""
    name = table.get(v)
    return name if name is not None else f"{v:#x} /* {unknown} */"
