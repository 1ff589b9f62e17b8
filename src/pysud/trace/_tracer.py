"""The Tracer: a handler for every syscall of a Dispatcher that runs the call and prints it as strace does."""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import _core
from .._abi import X86_64
from .._dispatch import NATIVE, Dispatcher, Errno, Return
from . import _fast as F
from . import _xlat as X
from . import decoders as D
from ._spec import Inject
from .records import (
    CAP,
    CAP_FAULT,
    CAP_NULL,
    CAP_OK,
    CAP_TRUNC,
    REC,
    REC_CALL,
    REC_EXIT,
    REC_FULL,
    REC_SIGNAL,
)
from .records import SIGINFO_SIZE as _SIGINFO
from .timeline import Timeline

_REC, _CAP = REC, CAP
_REC_TID = struct.Struct("<i")  # struct sud_rec's tid, at offset 8
_STOP_TID = 2  # format_records stopped at a thread that has no prefix yet
_CORE_NSYSCALLS = 512  # the core's table of syscall numbers (SUD_NSYSCALLS)
RING_BYTES = 1 << 19
_EMPTY: dict[int, bytes | bool] = {}

_FORKS = frozenset({"clone", "clone3", "fork", "vfork"})
_CLONE_THREAD = 0x10000
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class TraceOptions:
    """What strace's options say, as data (see `pysud trace --help`)."""

    output: str | int | None = None  # a path, an fd, or None for stderr
    follow: bool = False  # -f
    strsize: int = 32  # -s
    fd_paths: bool = False  # -y
    durations: bool = False  # -T
    timestamps: int = 0  # 1: -t (seconds), 2: -tt (microseconds), 3: -ttt (since the epoch)
    relative: bool = False  # -r: time since the previous line
    json: bool = False  # --json
    summary: str = ""  # "c": summary only, "C": lines and summary
    summary_wall: bool = False  # -w (pysud measures wall-clock latency in either case)
    sort_by: str = "time"  # -S: time, calls, name, errors, avg-time, min-time, max-time, nothing
    trace: frozenset[int] | None = None  # -e trace=; None: all
    status: frozenset[str] | None = None  # -e status= (-z: successful, -Z: failed); None: all
    signals: frozenset[int] | None = None  # -e signal=; None: all
    paths: tuple[str, ...] = ()  # -P: only calls that touch these paths
    inject: list[Inject] = field(default_factory=list)
    frames: bool = False  # name the Python frame that made the native call
    lines: bool = True  # False: count and inject only (bench stages)
    timeline: str | None = None  # --timeline FILE: Chrome/Perfetto trace-event JSON
    # decode recorded calls on a thread of their own while the program runs (off the program's
    # per-call path); None: when the process may run on more than one CPU
    background: bool | None = None


class _Output:
    """Lines to a descriptor of our own (the program may close or reuse its stdio)."""

    def __init__(self, target: str | int | None, buffered: bool) -> None:
        if target is None:
            fd = 2
        elif isinstance(target, int):
            fd = target
        else:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        # far above the numbers programs use, so the program's own fds number as they would natively
        self.fd = _high_dup(fd)
        if isinstance(target, str):
            os.close(fd)
        self.buffered = buffered
        self.parts: list[bytes] = []
        self.size = 0
        self._lock = threading.Lock()  # the decoder thread and the program's threads write

    def write(self, text: str) -> None:
        self.write_bytes(text.encode(errors="surrogateescape"))

    def write_bytes(self, data: bytes) -> None:
        if not self.buffered:
            with self._lock:
                while data:
                    data = data[os.write(self.fd, data) :]
            return
        with self._lock:
            self.parts.append(data)
            self.size += len(data)
            if self.size > 65536:
                self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.parts.clear()
            self.size = 0
            while data:
                data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def _high_dup(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 700)


class _Decoders(dict[int, D.CallDecoder]):
    """CallDecoder per number, made on first use (a run uses a few dozen of ~360)."""

    def __missing__(self, nr: int) -> D.CallDecoder:
        dec = self[nr] = D.CallDecoder(nr)
        return dec


class _Call:
    """A call whose entry has been seen and whose exit has not (its line is open or unfinished)."""

    __slots__ = ("args", "dec", "pre", "when")

    def __init__(self, dec: D.CallDecoder, args: tuple[int, ...], pre: list[str], when: int) -> None:
        self.dec = dec
        self.args = args
        self.pre = pre
        self.when = when


class Tracer:
    """Traces every system call of a Dispatcher: strace's lines, JSON, summary, fault injection.

    ``attach(d)`` puts a handler on every syscall number; handlers already registered
    (a personality's) run inside it, so the line shows what the program saw.  Without
    an inner handler the call runs natively.  With ``record=True`` calls that need no
    Python (no inner handler, no injection, decodable from captured bytes) are recorded
    by the core and run natively without entering Python; their lines are decoded in
    batches, when the ring fills, when a call comes through Python, and at the end.
    """

    def __init__(self, options: TraceOptions | None = None, **kw: Any) -> None:
        self.opts = options or TraceOptions(**kw)
        o = self.opts
        self.ctx = D.Ctx(o.strsize, o.fd_paths)
        self.print_lines = o.lines and o.summary != "c"
        self.timeline = Timeline(o.timeline) if o.timeline else None
        self.timed = bool(o.durations or o.timestamps or o.relative or o.summary or self.timeline is not None)
        self._last_when = 0  # -r: the previous line's time
        self._paths = _path_set(o.paths)
        self._exec_shown = False
        self._cputime = False  # -c without -w: the thread's CPU time, not the clock
        self._tids: set[int] = set()  # threads of this process that printed lines
        self._dead: set[int] = set()  # threads exit_group ended: their later records are dropped
        self._gone: set[int] = set()  # threads that ended by exit
        self._bg: threading.Thread | None = None  # the decoder thread (background decoding)
        self._bg_stop = threading.Event()
        self.out = (
            _Output(o.output, buffered=o.output is not None) if (self.print_lines or o.summary) else None
        )
        self.root_pid = os.getpid()
        self.pid = self.root_pid
        self.prefix_all = o.follow and o.output is not None
        self.stats: dict[int, list[int]] = {}  # nr -> [calls, errors, ns, min ns, max ns]
        self.counters: dict[tuple[int, int], int] = {}
        self.records: list[dict[str, Any]] | None = None
        self._stats_file = _temp_file() if o.summary else None
        self.exited: int | None = None
        self._lock = threading.RLock()  # output order, and the decoders' snapshot
        self._d: Dispatcher | None = None
        self._recording = False
        self._decs = _Decoders()
        self._fmts: dict[int, Callable[..., str]] = {}
        # recorded numbers whose formatter and template are made when a record first needs them
        self._todo: dict[int, list[D.CapOp]] = {}
        # the same lines as templates the core runs over whole batches (_core.format_records)
        self._programs: list[F.Program | None] = []
        self._prefixes: dict[int, str] = {}
        self._bprefixes: dict[int, bytes] = {}
        self._errors: dict[int, bytes] = {}  # the core's cache of error texts
        self._open: tuple[int, _Call] | None = None  # a call whose entry line is not yet closed
        self._unfinished: dict[int, _Call] = {}  # calls printed as <unfinished ...>, by tid
        self.recorded_calls = 0  # calls decoded from records (the rest came through Python)

    # ---- installing

    def attach(self, d: Dispatcher, numbers: Iterable[int] | None = None, record: bool = False) -> None:
        """Trace the given syscall numbers (default: every known x86-64 number) of ``d``."""
        o = self.opts
        self._d = d
        # the ring brings signals and rt_sigreturn (which never come through Python) in any
        # case; calls are recorded in it only when their lines need nothing of the live process
        ring = record and self.records is None
        record = ring and not o.fd_paths and not o.frames and not o.paths
        if ring:
            # strace -c without -w sums system time: the thread's CPU time is the nearest
            # (only when no line needs the clock)
            cpu = bool(o.summary) and not o.summary_wall and self.timed == bool(o.summary)
            d.start_recording(RING_BYTES, timing=self.timed, cputime=cpu)
            self._cputime = cpu
            self._recording = True
            # the decoder thread starts with the program (exec_line): before it, only the
            # loader runs, in Python, and there is nothing to decode
        plain_lines = not o.json and o.status is None and self.timeline is None
        injected = {nr for rule in o.inject for nr in rule.nrs}
        if record and plain_lines:
            self._programs = [None] * _CORE_NSYSCALLS  # filled as numbers are first seen
        for nr in numbers if numbers is not None else sorted(X86_64.table):
            inner = d.handler_of(nr)
            d.on(nr, self._handler(nr, inner))
            if not record or inner is not None or nr in injected:
                continue
            name = X86_64.name_of(nr)
            if name in _FORKS or name in ("exit", "exit_group", "execve"):
                continue
            caps = D.captures_of(nr, o.strsize)
            if caps is not None:
                room = 2 * (_REC.size + _SIGINFO) + sum(_CAP.size + ((c[6] + 8) & ~7) for c in caps)
                d.record(nr, caps, room)
                if plain_lines and (o.trace is None or nr in o.trace):
                    self._todo[nr] = caps

    def _compile(self, nr: int) -> None:
        """The formatter and the core's template of a recorded number (its first record)."""
        caps = self._todo.pop(nr)
        dec = self._decs[nr]
        fmt = F.formatter(dec, caps, self.opts.strsize, self.opts.durations)
        if fmt is None:
            return
        self._fmts[nr] = fmt
        if 0 <= nr < len(self._programs):
            self._programs[nr] = F.program(dec, caps, self.opts.strsize)

    def _handler(self, nr: int, inner: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
        decs = self._decs
        o = self.opts
        shown = o.trace is None or nr in o.trace
        injects = [r for r in o.inject if nr in r.nrs]
        name = X86_64.name_of(nr)
        is_fork = name in _FORKS
        is_exit = name == "exit_group" or name == "exit"
        is_exec = name == "execve"
        timed = self.timed
        paths = self._paths
        stats = self.stats if o.summary else None
        counters = self.counters
        emit = self._emit
        ctx = self.ctx
        native_token = NATIVE
        lock = self._lock

        def handler(call: Any) -> Any:
            if self._recording:
                self.drain()
            dec = decs[nr]
            args = call.args
            deferred = call.deferred
            injected = False
            if injects and not deferred:
                key = (os.getpid(), nr)
                n = counters.get(key, 0) + 1
                counters[key] = n
                for rule in injects:
                    if rule.hits(n):
                        injected = True
                        res = rule.result()
                        break
            pre = None
            if self.print_lines and shown and (not paths or self._touches(dec, args, paths)):
                with lock:
                    pre = dec.decode_entry(ctx, call, args)
            clock = time.thread_time_ns if self._cputime else time.time_ns
            t0 = clock() if timed else 0
            ret: Any
            if injected:
                ret = res
            elif deferred:
                ret = res = call.result
            else:
                if is_exit:
                    # Never returns to the program: strace prints `= ?` for it, and the
                    # core ends the thread or the program when the call runs.
                    self._on_exit(dec, call, args, pre, s32(args[0]), t0)
                    return native_token if inner is None else inner(call)
                held = False
                if is_fork or is_exec:
                    # a fork's child starts with our buffer; an execve that replaces the
                    # process natively would lose it
                    self._before_fork(args)
                    # the decoder thread must not hold the lock across a fork (the child
                    # would wait for it for ever)
                    held = is_fork and self._bg is not None and lock.acquire()
                try:
                    if inner is None:
                        ret = res = call.native()
                    else:
                        ret = inner(call)
                        if ret is native_token:
                            ret = res = call.native()
                        else:
                            res = _result_of(ret)  # type: ignore[assignment]
                        if res is None:
                            if is_exit:
                                return ret
                            res = 0 if is_exec else call.rax
                finally:
                    if held:
                        try:
                            lock.release()
                        except RuntimeError:  # a new thread of the program, not the caller
                            pass
                if is_fork and res == 0 and os.getpid() != self.pid:
                    self._in_child()
                    return ret
            dt = clock() - t0 if timed else 0
            if stats is not None:
                self._count(nr, res, dt)
            if pre is not None:
                emit(dec, call.tid, args, pre, res, dt, injected, call, t0)
            return ret

        return handler

    def _count(self, nr: int, res: int, dt: int) -> None:
        s = self.stats.get(nr)
        if s is None:
            s = self.stats[nr] = [0, 0, 0, dt, dt]
        s[0] += 1
        s[2] += dt
        if -4096 < res < 0:
            s[1] += 1
        if dt < s[3]:
            s[3] = dt
        if dt > s[4]:
            s[4] = dt

    def _touches(self, dec: D.CallDecoder, args: tuple[int, ...], paths: frozenset[str]) -> bool:
        """-P: a path argument names one of the paths, or a descriptor argument refers to one."""
        for i, k in enumerate(dec.kinds):
            if k.name == "path":
                got = self.ctx.cstring(args[i], 4096) if args[i] else None
                if got is not None and os.fsdecode(got[0]) in paths:
                    return True
            elif k.name in ("fd", "dirfd") and s32(args[i]) >= 0:
                try:
                    if os.readlink(f"/proc/self/fd/{s32(args[i])}") in paths:
                        return True
                except OSError:
                    pass
        return False

    def exec_line(self, path: str, argv: list[bytes], nenv: int, envp: int) -> None:
        """The first program's execve, which pysud's loader did instead of the kernel: as strace
        prints the kernel's (the program's arguments and environment as it got them)."""
        o = self.opts
        nr = X86_64.numbers["execve"]
        if self._exec_shown:
            return
        self._exec_shown = True
        self._start_decoder()
        if o.summary:
            self._count(nr, 0, 0)
        if not self.print_lines or (o.trace is not None and nr not in o.trace):
            return
        if self._paths and path not in self._paths and os.path.realpath(path) not in self._paths:
            return
        dec = self._decs[nr]
        shown = [D.quote(a) if len(a) <= o.strsize else D.quote(a[: o.strsize]) + "..." for a in argv]
        if len(shown) > o.strsize:
            shown = [*shown[: o.strsize], "..."]
        pre = [D.quote(os.fsencode(path)), "[" + ", ".join(shown) + "]", f"{D.ptr(envp)} /* {nenv} vars */"]
        when = time.time_ns() if self.timed else 0
        self._emit(dec, self.pid, (0,) * 6, pre, 0, 0, False, None, when, raw=True)

    # ---- the decoder thread

    def _start_decoder(self) -> None:
        """Decode records while the program runs, on another CPU when there is one."""
        bg = self.opts.background
        if bg is None:
            bg = _cpus() > 1
        if not bg or not self._recording or self._bg is not None:
            return
        self._bg_stop.clear()
        t = threading.Thread(target=self._decoder_loop, name="pysud-trace-decoder", daemon=True)
        self._bg = t
        t.start()

    def _decoder_loop(self) -> None:
        stop = self._bg_stop
        while not stop.wait(_DECODE_EVERY):
            try:
                self.drain()
            except Exception as e:  # noqa: BLE001 - never take the program down; say it once
                print(f"pysud trace: decoder thread stopped: {e!r}", file=sys.stderr)
                return

    def _stop_decoder(self) -> None:
        t = self._bg
        if t is None:
            return
        self._bg_stop.set()
        if t is not threading.current_thread():
            t.join()
        self._bg = None

    # ---- records (calls the core recorded without entering Python)

    def drain(self) -> None:
        """Decode and print what the core recorded so far."""
        if self._d is None or not self._recording:
            return
        with self._lock:
            data = self._d.take_records()
            if data:
                self._consume(data)

    def _consume(self, data: bytes) -> None:
        unpack = _REC.unpack_from
        cap = _CAP.unpack_from
        decs = self._decs
        fmts = self._fmts
        ctx = self.ctx
        lines = self.print_lines
        trace = self.opts.trace
        stamps = self.opts.timestamps or self.opts.relative
        stats = self.stats if self.opts.summary else None
        prefixes = self._prefixes
        acc: list[str] = []  # lines of the compiled formatters, written in one go
        fast = 0
        out = self.out
        off, end = 0, len(data)
        opened: Any = self._open
        if not lines or out is None:
            fmts = {}  # only counting: the general path below does it
        # the core prints runs of completed calls that have a template, in order, and stops at
        # a record Python prints (or a thread it has no prefix for yet)
        todo = self._todo if fmts is self._fmts else {}
        programs = self._programs if todo is self._todo and not stamps and stats is None else None
        bprefixes = self._bprefixes
        errors = self._errors
        strsize = self.opts.strsize
        durations = self.opts.durations
        try:
            while off < end:
                if programs and (opened is None or (opened := self._open) is None):
                    if acc:
                        out.write("".join(acc))  # type: ignore[union-attr]
                        acc.clear()
                    text, off, n, stop = _core.format_records(
                        data, off, programs, bprefixes, errors, F.error_text, strsize, durations
                    )
                    if text:
                        out.write_bytes(text)  # type: ignore[union-attr]
                    fast += n
                    if stop == _STOP_TID:
                        tid = _REC_TID.unpack_from(data, off + 8)[0]
                        pfx = prefixes.get(tid)
                        if pfx is None:
                            pfx = prefixes[tid] = self._prefix(tid)
                        bprefixes[tid] = pfx.encode()
                        continue
                    if off >= end:
                        break
                size, kind, nr, tid, ncap, t0, t1, a0, a1, a2, a3, a4, a5, ret = unpack(data, off)
                fmt = fmts.get(nr)
                if fmt is None and nr in todo:
                    self._compile(nr)  # this number's first record: the next turn prints it
                    continue
                if (
                    fmt is not None
                    and kind == REC_FULL
                    and (opened is None or (opened := self._open) is None)
                ):
                    # the common case: a completed call with a compiled formatter
                    c: Any = ()
                    if ncap == 1:
                        _arg, _phase, status, ln, _addr = cap(data, off + 88)
                        if status == CAP_OK or status == CAP_TRUNC:
                            c = (data[off + 104 : off + 104 + ln],)  # a complete C string keeps its NUL
                        else:
                            c = (None if status == CAP_NULL else False,)
                    elif ncap:
                        c = []
                        p = off + 88
                        for _ in range(ncap):
                            _arg, _phase, status, ln, _addr = cap(data, p)
                            p += 16
                            if status == CAP_OK or status == CAP_TRUNC:
                                c.append(data[p : p + ln])
                            else:
                                c.append(None if status == CAP_NULL else False)
                            p += (ln + 7) & ~7
                    off += size
                    fast += 1
                    if stats is not None:
                        self._count(nr, ret, t1 - t0)
                    if stamps:
                        prefix = self._prefix(tid, t0)
                    else:
                        prefix = prefixes.get(tid)  # type: ignore[assignment]
                        if prefix is None:
                            prefix = prefixes[tid] = self._prefix(tid)
                    acc.append(fmt(prefix, a0, a1, a2, a3, a4, a5, ret, c, t1 - t0))
                    continue
                if acc:
                    out.write("".join(acc))  # type: ignore[union-attr]
                    acc.clear()
                opened = True  # looked at again once the general path has run
                if tid in self._dead:  # a call exit_group interrupted: its line is written
                    off += size
                    continue
                if kind == REC_SIGNAL:
                    if lines and (self.opts.signals is None or nr in self.opts.signals):
                        base = off + _REC.size
                        self._signal_line(tid, nr, data[base : base + _SIGINFO], t0)
                    off += size
                    continue
                entry_snap = exit_snap = _EMPTY
                if ncap:
                    entry_snap, exit_snap = {}, {}
                    p = off + _REC.size
                    for _ in range(ncap):
                        _arg, phase, status, ln, addr = cap(data, p)
                        p += 16
                        if status != CAP_NULL:
                            v: bytes | bool = False if status == CAP_FAULT else data[p : p + ln]
                            (entry_snap if phase == 1 else exit_snap)[addr] = v
                        p += (ln + 7) & ~7
                off += size
                dec = decs[nr]
                args = (a0, a1, a2, a3, a4, a5)
                self.recorded_calls += kind != REC_EXIT
                # with -P only what the core alone sees comes from the ring (rt_sigreturn): no path
                shown = lines and (trace is None or nr in trace) and not self._paths
                if kind == REC_FULL:
                    if stats is not None:
                        self._count(nr, ret, t1 - t0)
                    if shown:
                        ctx.snapshot = entry_snap
                        pre = dec.decode_entry(ctx, None, args)
                        ctx.snapshot = exit_snap
                        self._emit(dec, tid, args, pre, ret, t1 - t0, False, None, t0)
                elif kind == REC_CALL:
                    if shown:
                        ctx.snapshot = entry_snap
                        call = _Call(dec, args, dec.decode_entry(ctx, None, args), t0)
                        if self.opts.json or self.opts.status is not None:
                            self._unfinished[tid] = call
                        else:
                            self._close_open(tid)
                            self._open = (tid, call)
                    elif stats is not None:
                        self._unfinished[tid] = _Call(dec, args, [], t0)
                else:  # REC_EXIT
                    o = self._open
                    pending: _Call | None
                    if o is not None and o[0] == tid:
                        self._open = None
                        pending = o[1]
                    else:
                        pending = self._unfinished.pop(tid, None)
                    if stats is not None:
                        self._count(nr, ret, t1 - pending.when if pending is not None else 0)
                    if not shown:
                        continue
                    ctx.snapshot = exit_snap
                    if pending is None or pending.dec is not dec:  # its entry was not seen
                        pending = _Call(dec, args, [""] * dec.nargs, t1)
                        resumed = True
                    else:
                        # with -e status= a line waits for its result (strace's way): never split
                        resumed = (o is None or o[0] != tid) and self.opts.status is None
                    self._emit(
                        dec,
                        tid,
                        args,
                        pending.pre,
                        ret,
                        t1 - pending.when,
                        False,
                        None,
                        pending.when,
                        resumed,
                    )
        finally:
            ctx.snapshot = None
            self.recorded_calls += fast
            if acc:
                out.write("".join(acc))  # type: ignore[union-attr]

    def _close_open(self, tid: int) -> None:
        """Another event comes before the open call's exit: strace's `<unfinished ...>`."""
        o = self._open
        if o is None or o[0] == tid:
            return
        otid, c = o
        self._open = None
        self._unfinished[otid] = c
        if self.out is not None and self.opts.status is None:
            self.out.write(
                self._prefix(otid, c.when) + c.dec.entry_text(c.pre, c.args) + " <unfinished ...>\n"
            )

    def _signal_line(self, tid: int, sig: int, info: bytes, when: int) -> None:
        if self.timeline is not None:
            self.timeline.instant(os.getpid(), tid, D.signame(sig), {"siginfo": D.siginfo(info)}, when)
        if self.opts.json:
            rec = {"pid": os.getpid(), "tid": tid, "signal": D.signame(sig), "siginfo": D.siginfo(info)}
            if self.out is not None:
                self.out.write(json.dumps(rec) + "\n")
            return
        self._close_open(tid)
        self._close_open(-1)
        self._write_line(tid, f"--- {D.signame(sig)} {D.siginfo(info)} ---\n", when)

    # ---- events

    def _before_fork(self, args: tuple[int, ...]) -> None:
        if self.out is not None:
            self.out.flush()

    def _in_child(self) -> None:
        """First thing in a forked child of the program."""
        self.pid = os.getpid()
        if self._recording and self._d is not None:
            self._d.forget_records()  # the parent's, printed by the parent
        self._open = None
        self._unfinished.clear()
        self._tids = {self.pid}
        self._dead = set()
        self._gone = set()
        if self.timeline is not None:
            self.timeline.in_child(self.opts.follow)
        self._bg = None  # the parent's decoder thread is not in the child
        self._bg_stop = threading.Event()
        if self.opts.follow:
            self._start_decoder()
        if not self.opts.follow:
            self.print_lines = False
            self.out = None
        # the child counts its own calls; the parent's were counted in the parent
        for s in self.stats.values():
            s[0] = s[1] = s[2] = 0

    def _on_exit(
        self,
        dec: D.CallDecoder,
        call: Any,
        args: tuple[int, ...],
        pre: list[str] | None,
        status: int,
        when: int,
    ) -> None:
        if pre is not None and self.out is not None:
            self._emit(dec, call.tid, args, pre, None, 0, False, call, when)
        if self.timeline is not None:
            self.timeline.instant(
                os.getpid(), call.tid, f"exited with {status & 0xFF}", {}, when or time.time_ns()
            )
        if dec.name == "exit_group":
            self._others_exit(call.tid, status & 0xFF)
        else:  # exit: this thread only
            self._gone.add(call.tid)
        if self.out is not None and self.print_lines:
            # strace says how every thread ends, whatever -e trace= shows
            self._write_line(call.tid, f"+++ exited with {status & 0xFF} +++\n")
        self.exited = status & 0xFF
        if os.getpid() != self.root_pid:
            self._save_child_stats()
            if self.timeline is not None:
                self.timeline.save_child()
        if self.out is not None:
            self.out.flush()

    def _others_exit(self, tid: int, status: int) -> None:
        """exit_group ends the process's other threads: strace ends a call one of them is in
        (`<... read resumed> <unfinished ...>) = ?`) and says how each one ended."""
        with self._lock:
            self._close_open(tid)
            others = sorted(
                t for t in self._tids - self._gone if t != tid and os.path.exists(f"/proc/self/task/{t}")
            )
            for t in others:
                self._dead.add(t)
                c = self._unfinished.pop(t, None)
                if self.out is None or not self.print_lines or self.opts.json:
                    continue
                if c is not None and self.opts.status is None:
                    self.out.write(f"{self._prefix(t)}<... {c.dec.name} resumed> <unfinished ...>) = ?\n")
                self.out.write(f"{self._prefix(t)}+++ exited with {status} +++\n")
                if self.timeline is not None:
                    self.timeline.instant(os.getpid(), t, f"exited with {status}", {}, time.time_ns())

    def ended(self, status: int, fault: tuple[Any, ...] | None) -> None:
        """The program (or a forked child of it) ended without exit_group: say how, as strace does."""
        self._stop_decoder()
        self.drain()
        with self._lock:
            self._close_open(-1)
            if fault is not None and status == 128 + fault[0] and self.timeline is not None:
                self.timeline.instant(
                    os.getpid(), self.pid, f"killed by {D.signame(fault[0])}", {}, time.time_ns()
                )
            sigs = self.opts.signals
            shown = sigs is None or (fault is not None and fault[0] in sigs)
            if (
                fault is not None
                and status == 128 + fault[0]
                and self.out is not None
                and self.print_lines
                and shown
            ):
                if not self.opts.json:
                    self.out.write(self._prefix(self.pid) + f"+++ killed by {D.signame(fault[0])} +++\n")
        if os.getpid() != self.root_pid:
            if self.exited is None:
                self._save_child_stats()
            if self.timeline is not None:
                self.timeline.save_child()
            if self.out is not None:
                self.out.flush()

    # ---- output

    def _prefix(self, tid: int, when: int = 0) -> str:
        o = self.opts
        self._tids.add(tid)  # every thread that printed a line (exit_group ends the others)
        p = ""
        if self.prefix_all:
            p = f"{tid:<5} "
        elif o.follow and tid != self.root_pid:
            p = f"[pid {tid:>5}] "
        if o.relative:
            when = when or time.time_ns()
            last = self._last_when or when
            self._last_when = when
            delta = max(when - last, 0) // 1000
            p += f"{delta // 1000000:6d}.{delta % 1000000:06d} "
        elif o.timestamps:
            us = (when or time.time_ns()) // 1000
            sec, frac = divmod(us, 1000000)
            if o.timestamps >= 3:
                p += f"{sec}.{frac:06d} "
            else:
                p += time.strftime("%H:%M:%S", time.localtime(sec)) + (
                    f".{frac:06d} " if o.timestamps == 2 else " "
                )
        return p

    def _write_line(self, tid: int, text: str, when: int = 0) -> None:
        if self.out is not None and not self.opts.json:
            with self._lock:
                self._close_open(tid)
                self.out.write(self._prefix(tid, when) + text)

    def _emit(
        self,
        dec: D.CallDecoder,
        tid: int,
        args: tuple[int, ...],
        pre: list[str],
        res: int | None,
        dt: int,
        injected: bool,
        call: Any,
        when: int = 0,
        resumed: bool = False,
        raw: bool = False,
    ) -> None:
        with self._lock:  # output order, and the decoders' snapshot
            if tid in self._dead:
                return
            ctx = self.ctx
            status = self.opts.status
            if status is not None and _status(res) not in status:
                return
            if raw:  # already the arguments' text (exec_line)
                text = ", ".join(pre)
            else:
                text = dec.decode_exit(ctx, call, args, 0 if res is None else res, pre)
            rtext = dec.result_text(ctx, args, res)
            if injected:
                rtext += " (INJECTED)"
            frame = _python_frame() if self.opts.frames else None
            if self.timeline is not None:
                self.timeline.call(os.getpid(), tid, dec.name, text, rtext, when or time.time_ns(), dt)
            if self.opts.json:
                rec: dict[str, Any] = {
                    "pid": os.getpid(),
                    "tid": tid,
                    "time": when / 1e9 if when else time.time(),
                    "syscall": dec.name,
                    "args": [] if raw else dec.json_args(args),
                    "text": f"{dec.name}({text})",
                    "result": res,
                    "error": X.ERRNO_NAMES.get(-res) if res is not None and -4096 < res < 0 else None,
                    "injected": injected,
                }
                if self.opts.durations or self.opts.summary:
                    rec["duration"] = dt / 1e9
                if frame is not None:
                    rec["frame"] = frame
                if self.records is not None:
                    self.records.append(rec)
                if self.out is not None:
                    self.out.write(json.dumps(rec) + "\n")
                return
            self._close_open(tid)
            prefix = self._prefix(tid, when)
            if resumed:
                head = dec.entry_text(pre, args)
                line = f"{prefix}<... {dec.name} resumed>{f'{dec.name}({text}'[len(head) :]})"
            else:
                line = f"{prefix}{dec.name}({text})"
            if len(line) < 39:
                line += " " * (39 - len(line))
            line = f"{line} = {rtext}"
            if self.opts.durations and res is not None:
                line += f" <{dt / 1e9:.6f}>"
            if frame is not None:
                line += f"  # {frame}"
            if self.records is not None:
                self.records.append({"line": line, "syscall": dec.name, "result": res, "frame": frame})
            if self.out is not None:
                self.out.write(line + "\n")

    # ---- summary

    def _save_child_stats(self) -> None:
        if self._stats_file is None:
            return
        line = json.dumps({str(k): v for k, v in self.stats.items() if v[0]}) + "\n"
        fd = os.open(self._stats_file, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def summary(self) -> str:
        """strace -c's table, over this process and its traced children."""
        total: dict[int, list[int]] = {k: list(v) for k, v in self.stats.items() if v[0]}
        if self._stats_file is not None and os.path.exists(self._stats_file):
            with open(self._stats_file) as f:
                for line in f:
                    for k, v in json.loads(line).items():
                        t = total.get(int(k))
                        if t is None:
                            total[int(k)] = list(v)
                            continue
                        for i in range(3):
                            t[i] += v[i]
                        t[3], t[4] = min(t[3], v[3]), max(t[4], v[4])
        return format_summary(total, self.opts.trace, self.opts.sort_by)

    def finish(self) -> None:
        """End of the traced run (in the process that started it): summary, flush, close."""
        if os.getpid() != self.root_pid:
            return
        self._stop_decoder()
        self.drain()
        with self._lock:
            self._close_open(-1)
        lost = self._d.records_lost() if self._recording and self._d is not None else 0
        if lost:
            print(f"pysud trace: {lost} calls were not recorded (ring full)", file=sys.stderr)
        if self.opts.summary and self.out is not None:
            self.out.flush()
            self.out.write(self.summary())
        if self.timeline is not None:
            self.timeline.write()
        if self._stats_file is not None:
            try:
                os.unlink(self._stats_file)
            except OSError:
                pass
        if self.out is not None:
            self.out.close()
            self.out = None


SORT_KEYS: dict[str, Callable[[tuple[int, list[int]]], Any]] = {
    "time": lambda r: -r[1][2],
    "calls": lambda r: -r[1][0],
    "errors": lambda r: -r[1][1],
    "name": lambda r: X86_64.name_of(r[0]),
    "avg-time": lambda r: -(r[1][2] / max(r[1][0], 1)),
    "min-time": lambda r: -r[1][3],
    "max-time": lambda r: -r[1][4],
    "nothing": lambda r: 0,
}


def format_summary(
    stats: dict[int, list[int]], only: frozenset[int] | None = None, sort_by: str = "time"
) -> str:
    """strace -c's table: rows in syscall-number order, then sorted (stably) as -S says."""
    rows = sorted((nr, v) for nr, v in stats.items() if only is None or nr in only)
    rows.sort(key=SORT_KEYS[sort_by])
    total_ns = sum(v[2] for _, v in rows) or 1
    sep = "------ ----------- ----------- --------- --------- ----------------"
    out = ["% time     seconds  usecs/call     calls    errors syscall", sep]
    calls = errors = 0
    for nr, (n, err, ns, *_mm) in rows:
        calls += n
        errors += err
        e = str(err) if err else ""
        out.append(
            f"{100 * ns / total_ns:6.2f} {ns / 1e9:11.6f} {ns // 1000 // max(n, 1):11d} {n:9d} {e:>9} "
            f"{X86_64.name_of(nr)}"
        )
    out.append(sep)
    t = sum(v[2] for _, v in rows)
    e = str(errors) if errors else ""
    pct = 100.0 if rows else 0.0
    out.append(f"{pct:6.2f} {t / 1e9:11.6f} {t // 1000 // max(calls, 1):11d} {calls:9d} {e:>9} total")
    return "\n".join(out) + "\n"


_DECODE_EVERY = 0.002  # seconds between the decoder thread's looks at the ring


def _temp_file() -> str:
    import tempfile  # (here: only -c needs it, and its import is a visible part of start-up)

    fd, path = tempfile.mkstemp(prefix="pysud-trace-")
    os.close(fd)
    return path


def _cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def _status(res: int | None) -> str:
    """-e status=: what kind of result a call had."""
    if res is None:
        return "unfinished"
    return "failed" if -4096 < res < 0 else "successful"


def _path_set(paths: tuple[str, ...]) -> frozenset[str]:
    """-P: each path as given and, as strace does, where it leads when it is a symlink."""
    out = set(paths)
    for p in paths:
        out.add(os.path.realpath(p))
        out.add(os.path.abspath(p))
    return frozenset(out)


def s32(v: int) -> int:
    return D.s32(v)


def _result_of(ret: Any) -> int | None:
    """What the program sees for a handler's answer (None: registers set by the handler)."""
    if ret is None:
        return None
    if isinstance(ret, Errno):
        return -ret.errno
    if isinstance(ret, Return):
        return ret.value
    return int(ret)


def _python_frame() -> str | None:
    """The innermost Python frame outside pysud: the code that made the native call."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back  # type: ignore[assignment]
    if f is None:
        return None
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno} in {f.f_code.co_name}"


_ = _core  # the core is what runs the calls; imported for its side effect of being loaded
