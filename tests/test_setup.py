"""The README's two commands on a fresh clone, typed as a newcomer types them, with Debian's python3."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
NOBODY = 65534

# What a newcomer's shell has: Debian's python3 first on PATH, no venv active, no pyenv.
_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
}
for _keep in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE", "CI"):
    if _keep in os.environ:
        _BASE_ENV[_keep] = os.environ[_keep]


def readme_commands() -> tuple[str, str]:
    """The two commands of the README's set-up section (without their comments)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README: no ```sh block in the set-up section"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 2, lines
    return lines[0], lines[1]


def _system_python_usable() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return "no /usr/bin/python3 (Debian's python3 package)"
    if shutil.which("git") is None:
        return "no git"
    return None


requires_system_python = pytest.mark.skipif(
    _system_python_usable() is not None, reason=str(_system_python_usable())
)


def _clone() -> Iterator[Path]:
    """A clean clone of this repository's committed HEAD (what a newcomer gets), readable by all."""
    top = Path(tempfile.mkdtemp(prefix="pysud-clone-"))
    top.chmod(0o755)
    dest = top / "pysud"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True, timeout=120)
        yield dest
    finally:
        shutil.rmtree(top)


clone = pytest.fixture(_clone)
# the README's two commands, one after the other in one clone, as a newcomer types them
newcomer_clone = pytest.fixture(scope="module")(_clone)


def _sh(command: str, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    p = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env or _BASE_ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return p.returncode, p.stdout


def test_readme_names_two_commands_and_ci_runs_the_second():
    main, tests = readme_commands()
    assert main.startswith("bash tools/")
    assert tests == "bash tools/run_tests.sh"
    assert tests in (ROOT / ".ci" / "run").read_text()
    assert ".venv/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.slow
@requires_system_python
def test_readme_main_job_on_a_clean_clone_with_debians_python(newcomer_clone: Path):
    clone = newcomer_clone
    main, _ = readme_commands()
    assert shutil.which("python3", path=_BASE_ENV["PATH"]) == str(SYSTEM_PYTHON)
    # PEP 668: what the old README said fails on this python; the commands must not depend on it.
    # The main job, its bench cut short (arguments go to `pysud bench`).
    code, out = _sh(
        main + " --iterations 2000 --rounds 1 --program-runs 1 --trace-runs 0 --exe-runs 0",
        clone,
        timeout=600,
    )
    assert code == 0, out[-4000:]
    assert "pysud set-up: creating .venv with /usr/bin/python3" in out
    cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", cfg, re.M), cfg
    assert "syscall user dispatch is usable" in out
    # the traced program's uname call, decoded by pysud's tracer, and the bench tables
    assert re.search(r'^uname\(\{sysname="Linux", nodename="[^"]*", \.\.\.\}\) = 0$', out, re.M), out[-4000:]
    assert re.search(r"^under pysud, faked: pysud-demo$", out, re.M), out[-4000:]
    assert "Python handler returns a value" in out
    assert "pysud run /usr/bin/true" in out


@pytest.mark.slow
@requires_system_python
def test_readme_test_command_after_it(newcomer_clone: Path):
    """The test command reuses the main job's .venv (no second one), adds the test tools and runs
    every check; pytest gets a tiny selection here (the whole suite is what CI runs it for)."""
    clone = newcomer_clone
    _, tests = readme_commands()
    made = (clone / ".venv").exists()  # (not when this test runs alone)
    before = (clone / ".venv" / "pyvenv.cfg").stat().st_ino if made else None
    code, out = _sh(tests + " tests/test_docs.py -p no:cacheprovider", clone, timeout=600)
    assert code == 0, out[-4000:]
    assert ("creating .venv" not in out) == made
    if made:
        assert (clone / ".venv" / "pyvenv.cfg").stat().st_ino == before
    for step in ("== generated tables", "== ruff", "== mypy", "== pytest"):
        assert step in out
    assert re.search(r"^\d+ passed", out, re.M), out[-2000:]

    # Run again: nothing to install, so no set-up line at all.
    code, out = _sh("bash tools/venv.sh test,dev", clone, timeout=60)
    assert (code, out) == (0, "")


@requires_system_python
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the set-up as another user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="no setpriv (util-linux)")
def test_missing_system_package_is_named_in_one_line(clone: Path):
    """Not root, Debian's python without its venv module: one line naming the package, no .venv."""
    shadow = Path(tempfile.mkdtemp(prefix="pysud-noensurepip-"))
    try:
        (shadow / "ensurepip").mkdir()
        (shadow / "ensurepip" / "__init__.py").write_text("raise ImportError('no python3-venv')\n")
        for p in (shadow, shadow / "ensurepip", shadow / "ensurepip" / "__init__.py"):
            p.chmod(0o755)
        env = dict(_BASE_ENV, PYTHONPATH=str(shadow))
        nobody = f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
        code, out = _sh(nobody + "bash tools/venv.sh", clone, timeout=60, env=env)
    finally:
        shutil.rmtree(shadow)
    assert code == 1
    assert out == (
        "pysud set-up: missing system packages: python3-venv "
        "(install them: sudo apt-get install python3-venv)\n"
    )
    assert not (clone / ".venv").exists()


@pytest.mark.slow
@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests do not run in a virtual environment")
@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_set_up_from_inside_an_active_venv(clone: Path):
    """A newcomer with some other venv active (its python3 first on PATH): the project's own .venv
    is made from that python's base interpreter, and pysud runs from it."""
    active = Path(sys.executable).parent
    env = dict(_BASE_ENV, PATH=f"{active}:{_BASE_ENV['PATH']}", VIRTUAL_ENV=sys.prefix)
    assert shutil.which("python3", path=env["PATH"]) == str(active / "python3")
    code, out = _sh("bash tools/venv.sh", clone, timeout=600, env=env)
    assert code == 0, out[-4000:]
    assert f"pysud set-up: creating .venv with {active / 'python3'}" in out
    cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    base = os.path.dirname(sys._base_executable)  # the interpreter the active venv was made from
    assert re.search(rf"^home = {re.escape(base)}$", cfg, re.M), (base, cfg)
    code, out = _sh(".venv/bin/pysud run uname -s", clone, timeout=60)
    assert (code, out) == (0, "Linux\n")
