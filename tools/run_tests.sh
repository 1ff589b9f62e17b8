#!/usr/bin/env bash
# The test command (README, .ci/run): all set-up and every check CI runs, on a fresh Debian
# machine with any Python 3.10+ first on PATH (Debian's own, a pyenv one, an active venv).
# Set-up is tools/venv.sh (the project-local .venv); arguments go to pytest.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use: binutils (as/objcopy assemble test code),
# busybox-static (real programs for `pysud run`, compared with native runs),
# musl-tools (static musl programs built at test time), linux-headers-amd64
# (syscall prototypes for the generated table), strace (the oracle `pysud trace`
# is compared with), gcc-mingw-w64-x86-64 (builds the Windows test programs),
# g++-mingw-w64-x86-64-posix (the C++ exception test program),
# wine64 (their oracle); gcc, golang-go, tar, gzip (tests/programs/ are compiled at
# test time, tar and gzip run under `pysud run`); git, sqlite3, openssl, bash, coreutils
# (the `pysud trace` corpus, tests/test_trace_corpus.py).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    need=()
    for pkg in binutils linux-libc-dev busybox-static musl-tools linux-headers-amd64 strace \
        gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64-posix wine64 gcc golang-go tar gzip git sqlite3 openssl bash coreutils; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
fi

bash tools/venv.sh test,dev
py=.venv/bin/python

echo "== generated tables"
"$py" tools/gen_syscall_table.py --check
"$py" tools/gen_nt_syscalls.py --check
echo "== ruff"
"$py" -m ruff check src tests tools benchmarks examples
"$py" -m ruff format --check src tests tools benchmarks examples
echo "== mypy"
"$py" -m mypy
echo "== machine"
"$py" -m pysud check || true
echo "== pytest"
"$py" -m pytest -q "$@"
if [ $# -eq 0 ]; then
    # Rewritten syscall sites are on by default; the whole suite runs a second time with every
    # site trapping (test_setup.py builds fresh clones and runs no foreign code: once is enough).
    echo "== pytest, PYSUD_REWRITE=0"
    PYSUD_REWRITE=0 "$py" -m pytest -q --ignore=tests/test_setup.py
fi
