"""Native code under dispatch: wrapped library functions and code blobs.

A wrapped function is called through a thunk (made by the core) that sets the
selector to BLOCK right before the target runs and back right after it
returns, so only the foreign code's calls are dispatched: ctypes' own work
(argument conversion, releasing the GIL) happens with the selector at ALLOW.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _core

if TYPE_CHECKING:
    from ._dispatch import Dispatcher


class InterceptedFunction:
    """A native function whose system calls go to a dispatcher while it runs."""

    __slots__ = ("__wrapped__", "_call", "_dispatcher", "_owner", "address")

    def __init__(self, dispatcher: Dispatcher, call: Any, original: Any, address: int) -> None:
        self._owner: Any = None  # what must live as long as the function (a CodeBlob's memory)
        self._dispatcher = dispatcher
        self._call = call
        self.__wrapped__ = original
        self.address = address

    def __call__(self, *args: Any) -> Any:
        d = self._dispatcher
        d.arm_thread()
        try:
            result = self._call(*args)
        finally:
            d.check()
        return result

    def __repr__(self) -> str:
        return f"<InterceptedFunction {self.__wrapped__!r} at {self.address:#x}>"


def _ctypes_wrap(dispatcher: Dispatcher, func: Any) -> InterceptedFunction:
    address = ctypes.cast(func, ctypes.c_void_p).value
    if not address:
        raise ValueError(f"{func!r} has no address")
    thunk = _core.thunk(address, dispatcher.policy)
    twin = type(func)(thunk)  # same class: same calling convention and flags
    twin.restype = func.restype
    if func.argtypes is not None:
        twin.argtypes = func.argtypes
    if getattr(func, "errcheck", None) is not None:
        twin.errcheck = func.errcheck
    return InterceptedFunction(dispatcher, twin, func, address)


def _cffi_wrap(dispatcher: Dispatcher, func: Any, ffi: Any) -> InterceptedFunction:
    ctype = ffi.typeof(func)
    address = int(ffi.cast("uintptr_t", func))
    thunk = _core.thunk(address, dispatcher.policy)
    twin = ffi.cast(ctype, thunk)
    return InterceptedFunction(dispatcher, twin, func, address)


def wrap(dispatcher: Dispatcher, func: Any, ffi: Any = None) -> InterceptedFunction:
    if isinstance(func, InterceptedFunction):
        func = func.__wrapped__
    if ffi is not None:
        return _cffi_wrap(dispatcher, func, ffi)
    if isinstance(func, ctypes._CFuncPtr):  # type: ignore[attr-defined]
        return _ctypes_wrap(dispatcher, func)
    raise TypeError(f"cannot wrap {func!r}: pass a ctypes function, or a cffi one with ffi=")


class CodeBlob:
    """x86-64 machine code mapped executable, callable under a dispatcher.

    The code is called with the System V ABI: up to six integer arguments in
    registers (more go on the stack), result in RAX.  Its ``syscall``
    instructions go to the dispatcher's handlers.
    """

    def __init__(self, code: bytes, *, nargs: int = 6) -> None:
        if not isinstance(code, bytes | bytearray | memoryview):
            raise TypeError("code must be bytes")
        if not code:
            raise ValueError("code is empty")
        self.code = bytes(code)
        self.address, self.size = _core.map_code(self.code)
        # unmapped by close(), or when the blob is garbage (never while a call runs: it holds self)
        self._unmap = weakref.finalize(self, _core.unmap, self.address, self.size)
        self.nargs = nargs
        self._functype = ctypes.CFUNCTYPE(ctypes.c_int64, *([ctypes.c_uint64] * nargs))
        self._funcs: dict[tuple[int, int], InterceptedFunction] = {}

    @property
    def region(self) -> tuple[int, int]:
        """(start, length) of the mapped code, for an inclusive-mode dispatcher."""
        return (self.address, len(self.code))

    def function(self, dispatcher: Dispatcher, offset: int = 0) -> InterceptedFunction:
        """The code at ``offset`` as a function whose calls go to ``dispatcher``."""
        if not 0 <= offset < len(self.code):
            raise ValueError(f"offset {offset} is outside the blob")
        # The cached function holds the dispatcher, so its id stays unique while cached.
        key = (id(dispatcher), offset)
        f = self._funcs.get(key)
        if f is None:
            f = wrap(dispatcher, self._functype(self.address + offset))
            f._owner = self  # the code stays mapped while the function can be called
            self._funcs[key] = f
        return f

    def __call__(self, dispatcher: Dispatcher, *args: int) -> int:
        return self.run(dispatcher, args)

    def run(self, dispatcher: Dispatcher, args: Sequence[int] = (), offset: int = 0) -> int:
        """Call the code with integer arguments under ``dispatcher``; returns RAX as a signed int."""
        if not self.size:
            raise ValueError("this blob has been closed")
        if len(args) > self.nargs:
            raise TypeError(f"this blob takes at most {self.nargs} arguments")
        full = [a & 0xFFFFFFFFFFFFFFFF for a in args] + [0] * (self.nargs - len(args))
        return int(self.function(dispatcher, offset)(*full))

    def close(self) -> None:
        """Unmap the code.  Calling it afterwards is an error."""
        if self.size:
            self._unmap()
            self.size = 0
            self._funcs.clear()

    def __repr__(self) -> str:
        return f"<CodeBlob {len(self.code)} bytes at {self.address:#x}>"
