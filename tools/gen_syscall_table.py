#!/usr/bin/env python3
"""Generate src/pysud/_syscall_table.py from the kernel UAPI headers on this machine.

Inputs (local, from Debian's linux-libc-dev): asm/unistd_64.h and asm/unistd_32.h.
`--check` regenerates in memory and fails if the committed file differs (CI runs it).
"""

from __future__ import annotations

import argparse
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


def parse(path: Path) -> dict[int, str]:
    table: dict[int, str] = {}
    for line in path.read_text().splitlines():
        m = DEFINE.match(line)
        if m:
            table[int(m.group(2))] = m.group(1)
    if not table:
        raise SystemExit(f"no __NR_ definitions in {path}")
    return table


def source_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}", "linux-libc-dev"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render() -> str:
    lines = [
        "# GENERATED FILE - do not edit.",
        "# Generator: tools/gen_syscall_table.py (run it to refresh; CI runs it with --check).",
        f"# Source: {', '.join(str(p) for p in HEADERS.values())} ({source_version()}).",
        '"""Linux syscall numbers and names, per ABI, from the kernel UAPI headers."""',
        "",
    ]
    for name, path in HEADERS.items():
        table = parse(path)
        lines.append(f"{name}: dict[int, str] = {{")
        lines.extend(f'    {nr}: "{sym}",' for nr, sym in sorted(table.items()))
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the committed table is stale")
    args = ap.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run tools/gen_syscall_table.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
