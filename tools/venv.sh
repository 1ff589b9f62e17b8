#!/usr/bin/env bash
# Set-up: the project-local virtual environment .venv, with pysud installed in it (editable).
#
#   bash tools/venv.sh [EXTRAS]        e.g. `bash tools/venv.sh test,dev`
#
# Creates .venv with the python3 first on PATH (or $PYTHON) when it is missing, reuses it when it
# is present, and reinstalls pysud when its build inputs (pyproject.toml, setup.py, the C core)
# changed since the last install or more extras are asked for.  A virtual environment is what
# PEP 668 asks for: Debian's own python3 refuses `pip install` into the system
# ("externally-managed-environment"), and a venv works the same with a pyenv python or inside an
# active venv.  What the venv and the C build need from the system (the venv module, Python.h, a
# C compiler and libc headers) is checked first: installed with apt-get when running as root on
# Debian/Ubuntu, otherwise named in one line.  Used by tools/demo.sh and tools/run_tests.sh.
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/.."

extras=${1:-}
venv=.venv
stamp=$venv/.pysud-installed
say() { echo "pysud set-up: $*" >&2; }

# ---- the interpreter and the system packages it needs

base_ok() { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; }

missing_packages() {
    # What is missing for the interpreter "$1" (empty: none found), as Debian package names; for a
    # python outside /usr (pyenv, a python built by hand) its own parts are named instead
    # ("its-venv-module", "its-Python.h"): no package adds them to that python.
    local py=$1 pkg_py=python3 need=()
    if [ -z "$py" ]; then
        echo "python3 python3-venv python3-dev gcc libc6-dev"
        return
    fi
    local real
    real=$(readlink -f "$py")
    if [[ "$real" != /usr/* ]]; then
        pkg_py=its
    elif [ "$real" != "$(readlink -f /usr/bin/python3 2>/dev/null || true)" ]; then
        # python3-venv/-dev are for Debian's default python3; /usr/bin/python3.X has python3.X-venv/-dev
        pkg_py=$("$py" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
    fi
    local venv_part=$pkg_py-venv dev_part=$pkg_py-dev
    [ "$pkg_py" = its ] && venv_part=its-venv-module dev_part=its-Python.h
    "$py" -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=("$venv_part")
    "$py" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        >/dev/null 2>&1 || need+=("$dev_part")
    command -v gcc >/dev/null 2>&1 || need+=(gcc)
    [ -e /usr/include/stdio.h ] || need+=(libc6-dev)
    echo "${need[@]}"
}

find_python() {
    local py
    py=$(command -v "${PYTHON:-python3}" 2>/dev/null) || return 0
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        say "$py is Python $("$py" -c 'import platform; print(platform.python_version())'), pysud needs 3.10+" \
            "(set PYTHON=/path/to/python3.10+)"
        exit 1
    fi
    echo "$py"
}

# ---- is there anything to do?

# What the installed pysud was built from: reinstall when it changed (Python sources are
# live in an editable install; the C core and the build configuration are not).
inputs=$(cat pyproject.toml setup.py scripts/pysud src/pysud/_core/*.[chS] | sha256sum)
inputs=${inputs%% *}
have_extras() {
    # the stamp's extras include every one asked for
    local e
    for e in ${extras//,/ }; do
        grep -qx "extra $e" "$stamp" || return 1
    done
}
# Bytecode for the editable sources, written now: where PYTHONDONTWRITEBYTECODE is set, Python
# would otherwise compile every module at every start (tens of ms of each `pysud` command).
compile_sources() { "$venv/bin/python" -m compileall -q src/pysud >/dev/null; }
if base_ok && [ -f "$stamp" ] && grep -qx "inputs $inputs" "$stamp" && have_extras &&
    "$venv/bin/python" -c 'import pysud._core' >/dev/null 2>&1; then
    compile_sources
    exit 0 # up to date
fi

# ---- the system packages

# What the venv's python (or, to make one, the python on PATH) needs from the system.
if base_ok; then py=$venv/bin/python; else py=$(find_python); fi
need=$(missing_packages "$py")
apt_need=${need//its-*([^ ])/}
apt_need=$(echo $apt_need) # (word-split: trims the blanks left)
if [ -n "$apt_need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: $apt_need"
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $apt_need >/dev/null
    if ! base_ok; then py=$(find_python); fi
    need=$(missing_packages "$py")
fi
if [ -n "$need" ]; then
    if [[ "$need" == *its-* ]]; then
        say "$py lacks: ${need//its-/} (a python without them: rebuild it, or use PYTHON=/usr/bin/python3)"
    else
        say "missing system packages: $need (install them: sudo apt-get install $need)"
    fi
    exit 1
fi

# ---- the virtual environment

if ! base_ok; then
    [ -e "$venv" ] && say "$venv does not run (its python is gone?): making it again" && rm -rf "$venv"
    say "creating $venv with $py ($("$py" -c 'import platform; print(platform.python_version())'))"
    "$py" -m venv "$venv"
fi

target=.
[ -n "$extras" ] && target=".[$extras]"
say "installing pysud$([ -n "$extras" ] && echo " with $extras") into $venv (editable: builds the C core)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
{
    echo "inputs $inputs"
    for e in ${extras//,/ }; do echo "extra $e"; done
} >"$stamp"
compile_sources
