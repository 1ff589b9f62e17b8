#!/usr/bin/env bash
# The main job (README): set-up, then what pysud is for - real programs run in this Python
# process, their system calls traced and handled in Python - then what that costs (`pysud bench`).
# Arguments go to `pysud bench` (e.g. --program-runs 3).  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/venv.sh
pysud() { .venv/bin/python -m pysud "$@"; }

echo "== pysud check: what this machine supports"
pysud check
echo
echo "== pysud trace: a real program's system calls, seen in-process (no ptrace)"
LC_ALL=C pysud trace -e trace=%file,uname,write uname -a
echo
echo "== pysud run --hooks examples/fake_uname.py: a Python handler answers uname's system call"
echo "native:             $(uname -n)"
echo "under pysud, faked: $(pysud run --hooks examples/fake_uname.py uname -n)"
echo
echo "== pysud bench: what each path costs"
pysud bench "$@"
