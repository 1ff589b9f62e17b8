"""`pysud trace`: strace's output, options and fault injection, in-process and scriptable.

``trace_program`` runs a Linux program with every system call traced (the CLI's job);
``Tracer`` plugs into any Dispatcher, so code blobs and wrapped ctypes calls can be traced
too, with each line naming the Python frame that made the native call (``frames=True``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .._dispatch import Dispatcher
from ._spec import CLASSES, Inject, SpecError, parse_inject, parse_when, syscall_set
from ._tracer import TraceOptions, Tracer, format_summary

__all__ = [
    "CLASSES",
    "Inject",
    "SpecError",
    "TraceOptions",
    "Tracer",
    "format_summary",
    "parse_inject",
    "parse_when",
    "syscall_set",
    "trace_program",
    "tracer_for",
]


def trace_program(
    program: str,
    args: list[str] | None = None,
    options: TraceOptions | None = None,
    *,
    env: dict[str, str] | None = None,
    vdso: bool = True,
    setup: Callable[[Dispatcher], object] | None = None,
    die_with_program: bool = False,
    rewrite: bool | None = None,
) -> int:
    """Run a Linux x86-64 program in this process with every system call traced; its exit status.

    ``setup(dispatcher)`` runs after the personality's handlers and before the tracer's: the
    handlers it registers run inside the tracer, so the lines show what the program saw.
    With ``die_with_program`` a program that dies of a signal takes this process with it once
    the trace is written, as strace does (`pysud trace`).  ``rewrite`` as for ``pysud.run``:
    calls from rewritten sites are recorded the same way, without the trap.
    """
    from .._linux import LinuxPersonality, die_of_signal, find_program

    opts = options or TraceOptions()
    path = find_program(program)
    d = Dispatcher(rewrite=rewrite)
    personality = LinuxPersonality(d)
    personality.restore_signals = not die_with_program  # `pysud trace`: held until it exits
    if setup is not None:
        setup(d)
    tracer = Tracer(opts)
    tracer.attach(d, record=True)
    personality.on_end = tracer.ended
    personality.on_start = tracer.exec_line
    if tracer.out is not None:  # a program that closes every descriptor (a daemon, a forkserver)
        out = tracer.out
        personality.keep_fd(out.fd, lambda fd: setattr(out, "fd", fd))
    argv = [os.fsencode(program)] + [os.fsencode(a) for a in (args or [])]
    environ = os.environ if env is None else env
    envp = [os.fsencode(f"{k}={v}") for k, v in environ.items()]
    try:
        status = personality.run(path, argv, envp, vdso=vdso)
    finally:
        tracer.finish()
    if die_with_program and personality.killed_by is not None:
        die_of_signal(personality.killed_by)
    return status


def tracer_for(dispatcher: Dispatcher | None = None, **options: Any) -> tuple[Dispatcher, Tracer]:
    """A Dispatcher with a Tracer attached, for wrapped functions and code blobs.

    ``tracer.records`` collects one dict per call (``line``, ``syscall``, ``result``, ``frame``)
    when ``output`` is not given; pass ``output=path`` or an fd to write lines instead.
    """
    collect = "output" not in options
    d = dispatcher or Dispatcher()
    t = Tracer(TraceOptions(**options))
    if collect:
        t.records = []
        if t.out is not None:
            t.out.close()
            t.out = None
    t.attach(d)
    return d, t
