"""Handlers from Python files, for `pysud run/trace --hooks FILE`: load the file, call its hooks(d).

The contract (docs/guide.md, "Handlers from the command line"): a hooks file is ordinary Python
that defines ``hooks(d)``.  ``d`` is the program's :class:`~pysud.Dispatcher` (for a Windows
program, its :class:`~pysud.nt.NtPersonality`, whose ``on`` takes NT call names); the function
registers handlers with ``d.on(...)``.  It runs once the personality's own handlers are in
place, so a hook wraps the personality's handler for the same call: returning ``pysud.NATIVE``
hands the call on to what would have handled it without the hook (the personality's handler,
else the kernel).  With several files, the later file's handler runs first.

Errors in a file - a syntax error, an exception while it loads or while its ``hooks(d)`` runs,
no ``hooks`` function - are :class:`HooksError`: one line naming the file and line.
"""

from __future__ import annotations

import sys
import traceback
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._dispatch import Dispatcher, chain
from ._errors import PysudError

#: The function a hooks file defines.
ENTRY = "hooks"


class HooksError(PysudError):
    """A hooks file could not be loaded or applied; the message is one line, ``FILE:LINE: what``."""


class HooksFile:
    """One loaded hooks file: its path and its ``hooks`` function."""

    def __init__(self, path: str, entry: Callable[[Any], object]) -> None:
        self.path = path
        self.entry = entry

    def __repr__(self) -> str:
        return f"HooksFile({self.path!r})"


def _where(path: str, exc: BaseException) -> str:
    """``path:line`` of the innermost frame of ``exc``'s traceback that is in the file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    return f"{path}:{line}" if line is not None else path


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load(path: str, index: int = 0) -> HooksFile:
    """Read, compile and run a hooks file; its ``hooks`` function.  HooksError on any problem."""
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise HooksError(f"{path}: {exc.strerror or exc}") from None
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        # (ValueError: NUL bytes in the source; it has no line)
        raise HooksError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except ValueError as exc:
        raise HooksError(f"{path}: {exc}") from None
    name = f"pysud_hooks_{index}"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # (dataclasses and pickling look their module up)
    try:
        exec(code, module.__dict__)
    except Exception as exc:  # noqa: BLE001 - the file is the user's code: any error becomes one line
        raise HooksError(f"{_where(path, exc)}: {_describe(exc)} (while loading the file)") from None
    except SystemExit as exc:
        raise HooksError(f"{_where(path, exc)}: SystemExit({exc.code!r}) while loading the file") from None
    entry = module.__dict__.get(ENTRY)
    if not callable(entry):
        raise HooksError(f"{path}: defines no function {ENTRY}(d) (it registers the handlers)")
    return HooksFile(path, entry)


def load_all(paths: Iterable[str]) -> list[HooksFile]:
    return [load(p, i) for i, p in enumerate(paths)]


def _unwrapped(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The handler inside the NT personality's --trace wrapper (one level: chains stay whole)."""
    inner: Callable[[Any], Any] = getattr(handler, "__wrapped__", handler)
    return inner


def apply(files: Sequence[HooksFile], target: Any) -> None:
    """Call each file's ``hooks(target)``; chain each handler it replaced behind the new one.

    ``target`` is a Dispatcher, or an object with one in ``.d`` (the NT personality).
    """
    d: Dispatcher = target if isinstance(target, Dispatcher) else target.d
    # The NT personality's own `on` wraps a handler for its --trace lines: the chain goes inside
    # that wrapper (the hook and the personality's handler unwrapped), so each call prints one line
    # with the result the program got.
    nt = target is not d
    numbers = sorted(d.abi.table)
    for f in files:
        before = {nr: d.handler_of(nr) for nr in numbers}
        try:
            f.entry(target)
        except Exception as exc:  # noqa: BLE001 - the user's code: any error becomes one line
            raise HooksError(f"{_where(f.path, exc)}: {_describe(exc)} (in {ENTRY}(d))") from None
        for nr in numbers:
            now, was = d.handler_of(nr), before[nr]
            if now is not None and was is not None and now is not was:
                if nt:
                    target.on(d.abi.name_of(nr), chain(_unwrapped(now), _unwrapped(was)))
                else:
                    d.on(nr, chain(now, was))


def setup_for(paths: Sequence[str]) -> Callable[[Any], None] | None:
    """Load the files now (errors surface before anything runs); the setup callback that applies them."""
    if not paths:
        return None
    files = load_all(paths)
    return lambda target: apply(files, target)
