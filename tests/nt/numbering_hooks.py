"""Hooks for tests/nt/numbering.c (`pysud run --hooks`): each NtClose/NtCreateTimer the program makes
is logged, with the number and name the handler was reached by and where the call came from, to the
file named by $NUMBERING_LOG; the call then goes on to the personality's handler."""

import os

import pysud


def hooks(nt):
    log = os.environ["NUMBERING_LOG"]

    def site(addr):
        block = nt.block
        if block is not None and block.base <= addr < block.base + block.size:
            return f"block+{(addr - block.base) % 32:#x}"  # 0x14: the stub's syscall; 0x1f: call [0x7ffe1000]
        if nt.wine is not None and nt.wine.base <= addr < nt.wine.base + nt.wine.view.size:
            return "wine-ntdll"
        if nt.ntdll is not None and nt.ntdll.text[0] <= addr < nt.ntdll.text[0] + nt.ntdll.text[1]:
            return "pysud-ntdll"
        return "program"

    def record(call):
        with open(log, "a") as f:
            f.write(f"{call.name} {call.nr:#x} {call.args[0]:#x} {site(call.call_addr)}\n")
        return pysud.NATIVE

    nt.on("NtClose", record)
    nt.on("NtCreateTimer", record)
