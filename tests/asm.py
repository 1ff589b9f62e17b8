"""Assemble x86-64 code for tests with the system assembler (binutils, installed with gcc)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def assemble(source: str, *, intel: bool = True) -> bytes:
    """Machine code of ``source`` (Intel syntax by default), as a flat .text section."""
    prefix = ".intel_syntax noprefix\n" if intel else ""
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, raw = Path(tmp, "a.s"), Path(tmp, "a.o"), Path(tmp, "a.bin")
        src.write_text(prefix + ".text\n" + source + "\n")
        subprocess.run(["as", "--64", "-o", str(obj), str(src)], check=True, capture_output=True)
        subprocess.run(
            ["objcopy", "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True, capture_output=True
        )
        return raw.read_bytes()
