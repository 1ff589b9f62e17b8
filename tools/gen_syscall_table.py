#!/usr/bin/env python3
"""Generate src/pysud/_syscall_table.py from the kernel headers on this machine.

Inputs (all local, from Debian packages):
- numbers: asm/unistd_64.h and asm/unistd_32.h (linux-libc-dev);
- x86-64 entry points: arch/x86/include/generated/asm/syscalls_64.h (linux-headers-*-amd64),
  which says which kernel function each number calls (4 -> sys_newstat);
- argument names and types: the `asmlinkage long sys_*(...)` prototypes in include/linux/syscalls.h
  (linux-headers-*-common), its #if blocks evaluated with the amd64 flavour's generated autoconf.h;
- the few x86-64 entry points that file has no prototype for (arch/x86 SYSCALL_DEFINEs), listed
  below in ARCH_PROTOTYPES with the kernel source file each comes from.

`--check` regenerates in memory and fails if the committed file differs (CI runs it). Only the
comment line naming the input package versions is exempt, so a newer point release of the
headers on a CI machine does not fail the check unless the data changed.
"""

from __future__ import annotations

import argparse
import glob
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "pysud" / "_syscall_table.py"
HEADERS = {
    "X86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "I386": Path("/usr/include/x86_64-linux-gnu/asm/unistd_32.h"),
}
DEFINE = re.compile(r"^#define __NR_(\w+)\s+(\d+)\s*$")
ENTRY = re.compile(r"^__SYSCALL\((\d+),\s*(\w+)\)")
PROTO = re.compile(r"asmlinkage\s+long\s+(sys_\w+)\s*\(([^)]*)\)\s*;", re.S)
VERSION_LINE = "# Input versions: "

# x86-64 entry points defined under arch/x86 (SYSCALL_DEFINEx there), absent from syscalls.h.
ARCH_PROTOTYPES = {
    # arch/x86/kernel/sys_x86_64.c
    "sys_mmap": "unsigned long addr, unsigned long len, unsigned long prot, unsigned long flags, "
    "unsigned long fd, unsigned long off",
    # arch/x86/kernel/process_64.c
    "sys_arch_prctl": "int option, unsigned long arg2",
    # arch/x86/kernel/signal.c
    "sys_rt_sigreturn": "void",
    # arch/x86/kernel/ioport.c
    "sys_iopl": "unsigned int level",
    "sys_ioperm": "unsigned long from, unsigned long num, int turn_on",
    # arch/x86/kernel/ldt.c
    "sys_modify_ldt": "int func, void __user *ptr, unsigned long bytecount",
}


def parse_numbers(path: Path) -> dict[int, str]:
    table: dict[int, str] = {}
    for line in path.read_text().splitlines():
        m = DEFINE.match(line)
        if m:
            table[int(m.group(2))] = m.group(1)
    if not table:
        raise SystemExit(f"no __NR_ definitions in {path}")
    return table


def headers_dirs() -> tuple[Path, Path]:
    """The newest installed linux-headers-*-common and its -amd64 flavour."""
    flavours = sorted(glob.glob("/usr/src/linux-headers-*-amd64"), key=_version_key)
    flavours = [f for f in flavours if "-rt-" not in f and "-cloud-" not in f]
    if not flavours:
        raise SystemExit(
            "no /usr/src/linux-headers-*-amd64: install linux-headers-amd64 (tools/run_tests.sh does)"
        )
    flavour = Path(flavours[-1])
    common = Path(str(flavour).removesuffix("-amd64") + "-common")
    if not (common / "include/linux/syscalls.h").exists():
        raise SystemExit(f"{common}/include/linux/syscalls.h missing")
    return common, flavour


def _version_key(path: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", path)]


def _config(common: Path, flavour: Path) -> set[str]:
    defined = set()
    for line in (flavour / "include/generated/autoconf.h").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define":
            defined.add(parts[1])
    # The prototypes sit inside `#ifndef CONFIG_ARCH_HAS_SYSCALL_WRAPPER` (x86 calls through
    # pt_regs wrappers instead); the prototypes themselves are what we want, so read that block.
    defined.discard("CONFIG_ARCH_HAS_SYSCALL_WRAPPER")
    defined.add("__LITTLE_ENDIAN")
    # What the x86 syscall layer wants (__ARCH_WANT_SYS_UTIME, ...) from arch/x86/include/asm/unistd.h.
    unistd = preprocess((common / "arch/x86/include/asm/unistd.h").read_text(), defined)
    defined.update(re.findall(r"^\s*#\s*define\s+(__ARCH_WANT_\w+)", unistd, re.M))
    return defined


def _eval_if(expr: str, defined: set[str]) -> bool:
    expr = re.sub(r"/\*.*?\*/", "", expr)
    expr = re.sub(r"defined\s*\(?\s*(\w+)\s*\)?", lambda m: " 1 " if m.group(1) in defined else " 0 ", expr)
    expr = expr.replace("BITS_PER_LONG", "64").replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    expr = re.sub(
        r"\b[A-Za-z_]\w*\b", lambda m: m.group(0) if m.group(0) in ("and", "or", "not") else "0", expr
    )
    return bool(eval(expr, {"__builtins__": {}}))


def preprocess(text: str, defined: set[str]) -> str:
    """Keep the lines whose #if/#ifdef/#else conditions hold (no macro expansion)."""
    out: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (this branch active, some branch taken)
    active = True
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            words = s[1:].split(None, 1)
            d = words[0] if words else ""
            arg = words[1] if len(words) > 1 else ""
            if d in ("ifdef", "ifndef", "if"):
                if d == "if":
                    cond = _eval_if(arg, defined)
                else:
                    cond = (arg.split()[0] in defined) == (d == "ifdef")
                stack.append((active, cond))
                active = active and cond
            elif d == "elif":
                parent, taken = stack[-1]
                cond = not taken and _eval_if(arg, defined)
                stack[-1] = (parent, taken or cond)
                active = parent and cond
            elif d == "else":
                parent, taken = stack[-1]
                stack[-1] = (parent, True)
                active = parent and not taken
            elif d == "endif":
                parent, _ = stack.pop()
                active = parent
            elif d == "define" and active:
                out.append(line)  # kept for _config's __ARCH_WANT_ scan
            continue
        if active:
            out.append(line)
    return "\n".join(out)


def parse_params(params: str) -> tuple[tuple[str, str], ...]:
    params = " ".join(params.replace("__user", "").split())
    if params in ("", "void"):
        return ()
    out = []
    for i, p in enumerate(x.strip() for x in params.split(",")):
        m = re.match(r"^(.*?)(\w+)$", p)
        words = p.replace("*", " * ").split()
        # A lone type ("unsigned long", "int *") has no name: the last word is a type word.
        type_words = {"int", "long", "short", "char", "unsigned", "signed", "*", "void", "const"}
        if m is None or len(words) == 1 or words[-1] in type_words or p.endswith("*"):
            typ, name = p, f"arg{i}"
        else:
            typ, name = m.group(1), m.group(2)
        typ = " ".join(typ.replace("*", " *").split()).replace("* *", "**")
        out.append((typ, name))
    return tuple(out)


def prototypes(common: Path, flavour: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    text = preprocess((common / "include/linux/syscalls.h").read_text(), _config(common, flavour))
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    protos: dict[str, tuple[tuple[str, str], ...]] = {}
    for m in PROTO.finditer(text):
        protos.setdefault(m.group(1), parse_params(m.group(2)))
    for name, params in ARCH_PROTOTYPES.items():
        protos.setdefault(name, parse_params(params))
    return protos


def entries(flavour: Path) -> dict[int, str]:
    path = flavour / "arch/x86/include/generated/asm/syscalls_64.h"
    out = {}
    for line in path.read_text().splitlines():
        m = ENTRY.match(line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def package_version(pkg: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}", pkg],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out or f"{pkg} unknown"
    except (OSError, subprocess.CalledProcessError):
        return f"{pkg} unknown"


def render() -> str:
    common, flavour = headers_dirs()
    protos = prototypes(common, flavour)
    entry = entries(flavour)
    numbers = parse_numbers(HEADERS["X86_64"])
    versions = ", ".join(package_version(p) for p in ("linux-libc-dev", common.name, flavour.name))
    lines = [
        "# GENERATED FILE - do not edit.",
        "# Generator: tools/gen_syscall_table.py (run it to refresh; CI runs it with --check).",
        f"# Numbers: {', '.join(str(p) for p in HEADERS.values())}.",
        "# x86-64 entry points: linux-headers-*-amd64 arch/x86/include/generated/asm/syscalls_64.h;",
        "# prototypes: linux-headers-*-common include/linux/syscalls.h (+ ARCH_PROTOTYPES in the generator).",
        VERSION_LINE + versions + ".",
        '"""Linux syscall numbers and names per ABI; x86-64 argument types and names."""',
        "",
    ]
    for name, path in HEADERS.items():
        table = parse_numbers(path)
        lines.append(f"{name}: dict[int, str] = {{")
        lines.extend(f'    {nr}: "{sym}",' for nr, sym in sorted(table.items()))
        lines.append("}")
        lines.append("")
    lines.append("# Kernel entry point of each x86-64 number (sys_ni_syscall: not implemented).")
    lines.append("X86_64_ENTRY: dict[int, str] = {")
    lines.extend(f'    {nr}: "{fn}",' for nr, fn in sorted(entry.items()) if nr in numbers)
    lines.append("}")
    lines.append("")
    lines.append("# (type, name) of each argument of each x86-64 syscall whose prototype is known.")
    lines.append("X86_64_ARGS: dict[int, tuple[tuple[str, str], ...]] = {")
    for nr, fn in sorted(entry.items()):
        if nr not in numbers or fn not in protos:
            continue
        params = protos[fn]
        body = "".join(f'("{t}", "{n}"), ' for t, n in params).rstrip(" ")
        lines.append(f"    {nr}: ({body}),")
    lines.append("}")
    lines.append("")
    return _ruff_format("\n".join(lines))


def _ruff_format(text: str) -> str:
    """The generated file as `ruff format` leaves it, so the format check and --check agree."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def _data(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(VERSION_LINE)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the committed table is stale")
    ap.add_argument("--missing", action="store_true", help="list x86-64 numbers without a prototype")
    args = ap.parse_args()
    text = render()
    if args.missing:
        common, flavour = headers_dirs()
        protos = prototypes(common, flavour)
        for nr, fn in sorted(entries(flavour).items()):
            if fn not in protos:
                print(nr, fn)
        return 0
    if args.check:
        if not OUT.exists() or _data(OUT.read_text()) != _data(text):
            print(f"{OUT} is stale: run tools/gen_syscall_table.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
