#!/usr/bin/env python3
"""ns per system call on each dispatch path, side by side in one run (same as `pysud bench`).

Usage: python3 benchmarks/bench_dispatch.py [--json] [--iterations N] [--rounds R]
"""

import sys

from pysud.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
