#!/usr/bin/env python3
"""Generate src/pysud/nt/_profiles.py (NT system call numbers per Windows build) from a committed table.

Input: tools/data/nt-syscalls-x64.csv, an extract of j00ru's public per-build table (its header
names the repository and commit).  Each column is one build; the script checks that a build's
numbers are unique and contiguous from 0, as the kernel's service table is.
`--check` regenerates in memory and fails if the committed file differs (CI runs it).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tools" / "data" / "nt-syscalls-x64.csv"
OUT = ROOT / "src" / "pysud" / "nt" / "_profiles.py"

#: profile name -> (column title in the input, OS version major, minor, build)
BUILDS = {
    "win10-22h2": ("Windows 10 (22H2)", 10, 0, 19045),
    "win11-23h2": ("Windows 11 and Server (11 23H2)", 10, 0, 22631),
}
DEFAULT = "win11-23h2"


def parse() -> tuple[list[str], dict[str, dict[int, str]]]:
    lines = SRC.read_text().splitlines()
    source = [line[2:] for line in lines if line.startswith("# ")]
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    header, body = rows[0], rows[1:]
    tables: dict[str, dict[int, str]] = {}
    for profile, (title, *_version) in BUILDS.items():
        col = header.index(title)
        table: dict[int, str] = {}
        for row in body:
            if row[col]:
                nr = int(row[col], 16)
                if nr in table:
                    raise SystemExit(f"{title}: {row[0]} and {table[nr]} share number {nr:#x}")
                table[nr] = row[0]
        missing = [nr for nr in range(len(table)) if nr not in table]
        if missing:
            raise SystemExit(f"{title}: numbers are not contiguous, missing {missing[:5]}")
        tables[profile] = table
    return source, tables


def render() -> str:
    source, tables = parse()
    out = [
        "# GENERATED FILE - do not edit.",
        "# Generator: tools/gen_nt_syscalls.py (run it to refresh; CI runs it with --check).",
        f"# Input: {SRC.relative_to(ROOT)}, which says:",
        *(f"#   {line}" for line in source),
        '"""NT system call numbers per Windows build (profile), from a public per-build table."""',
        "",
        f'DEFAULT = "{DEFAULT}"',
        "",
        "#: profile -> (major, minor, build) as PEB/KUSER_SHARED_DATA report it",
        "VERSIONS: dict[str, tuple[int, int, int]] = {",
        *(f'    "{p}": ({major}, {minor}, {build}),' for p, (_t, major, minor, build) in BUILDS.items()),
        "}",
        "",
        "#: profile -> the column of the input it was taken from",
        "SOURCES: dict[str, str] = {",
        *(f'    "{p}": "{title}",' for p, (title, *_v) in BUILDS.items()),
        "}",
        "",
        "TABLES: dict[str, dict[int, str]] = {",
    ]
    for profile, table in tables.items():
        out.append(f'    "{profile}": {{')
        out.extend(f'        0x{nr:03X}: "{name}",' for nr, name in sorted(table.items()))
        out.append("    },")
    out.append("}")
    out.append("")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the committed table is stale")
    args = ap.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run tools/gen_nt_syscalls.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
