"""A vfork's promises under pysud, which runs it as a fork: the parent waits until the child has
exec'd or ended, and sees what the child wrote to its stack meanwhile. So posix_spawn of a program
that cannot run fails in the parent with the exec's errno (glibc: the child writes it into its
parent's frame; musl: through a close-on-exec pipe), and a vfork child's report in its caller's
local arrives.

Oracles: the same programs run natively (output and raw wait status); the execve calls reach the
handler in a process that is not the host.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_sud
from test_guest_threads import COMPILERS, build

pytestmark = requires_sud

HERE = Path(__file__).parent
REWRITE = [pytest.param("1", id="rewrite"), pytest.param("0", id="no-rewrite")]

# Every execve (in whichever process of the program) is noted with the pid it ran in.
HOOKS = """
import os, pysud
def hooks(d):
    os.write(2, b"host %d\\n" % os.getpid())
    @d.on("execve")
    def execve(call):
        os.write(2, b"execve %d\\n" % os.getpid())
        return pysud.NATIVE
"""


def wait_status(returncode: int) -> int:
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8


def run_both(tmp_path: Path, argv: list[str], rewrite: str) -> tuple[bytes, bytes, bytes, int]:
    """Native and pysud output must match, raw status included: native stdout, stderr, pysud's
    stderr, the raw status."""
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS)
    native = subprocess.run(argv, capture_output=True, timeout=60)
    env = dict(os.environ, PYSUD_REWRITE=rewrite)
    ours = subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--hooks", str(hooks), *argv],
        capture_output=True,
        timeout=120,
        env=env,
    )
    assert ours.stdout == native.stdout, ours.stderr.decode(errors="replace")
    assert wait_status(ours.returncode) == wait_status(native.returncode)
    return native.stdout, native.stderr, ours.stderr, wait_status(native.returncode)


def execs_in_children(err: bytes) -> int:
    lines = err.decode().splitlines()
    host = next(line.split()[1] for line in lines if line.startswith("host "))
    return sum(1 for line in lines if line.startswith("execve ") and line.split()[1] != host)


@pytest.fixture
def unrunnable(tmp_path: Path) -> list[str]:
    plain = tmp_path / "plain-file"
    plain.write_text("not a program\n")
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return [str(tmp_path / "missing"), str(plain), str(tmp_path)]


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("libc", "cc", "flags"), COMPILERS, ids=[c[0] for c in COMPILERS])
def test_posix_spawn_of_what_cannot_run_fails_in_the_parent(tmp_path, unrunnable, libc, cc, flags, rewrite):
    exe = build(str(tmp_path), "spawn_errors", (HERE / "programs" / "spawn_errors.c").read_text(), cc, flags)
    out, _, err, _ = run_both(tmp_path, [exe, *unrunnable, "/bin/echo"], rewrite)
    assert out.count(b": posix_spawn No such file or directory, status -1\n") == 1
    assert out.count(b": posix_spawn Permission denied, status -1\n") == 2
    assert out.endswith(b"spawned\n/bin/echo: posix_spawn 0, status 0\n")
    # the program's own execve plus one per spawn, each in the spawned child
    assert execs_in_children(err) == 4, err.decode(errors="replace")


@pytest.mark.parametrize("rewrite", REWRITE)
@pytest.mark.parametrize(("libc", "cc", "flags"), [COMPILERS[0], COMPILERS[2]], ids=["glibc", "musl-static"])
def test_a_vfork_childs_report_in_its_parents_local_arrives(tmp_path, unrunnable, libc, cc, flags, rewrite):
    exe = build(str(tmp_path), "vfork_errno", (HERE / "programs" / "vfork_errno.c").read_text(), cc, flags)
    out, _, err, _ = run_both(tmp_path, [exe, *unrunnable[:2], "/bin/true"], rewrite)
    assert out.splitlines()[0].endswith(b": err No such file or directory, status 32512")
    assert out.splitlines()[1].endswith(b": err Permission denied, status 32512")
    assert out.splitlines()[2] == b"/bin/true: err 0, status 0"
    assert execs_in_children(err) == 3, err.decode(errors="replace")


@pytest.mark.parametrize("shell", [["/bin/sh"], ["busybox", "sh"]], ids=["sh", "busybox-sh"])
def test_a_shell_running_a_missing_program_says_so_with_127(tmp_path, shell):
    _, native_err, err, status = run_both(tmp_path, [*shell, "-c", "nonexistent-program-xyz"], "1")
    assert status == 127 << 8
    assert b"nonexistent-program-xyz: not found" in native_err
    assert native_err in err  # the shell's own message, as natively


SPAWNS = """
import os, subprocess
try:
    subprocess.run(["/nonexistent-program-xyz"])
except FileNotFoundError as e:
    print("subprocess FileNotFoundError", e.errno)
try:
    os.posix_spawn("/nonexistent-program-xyz", ["x"], dict(os.environ))
except FileNotFoundError as e:
    print("posix_spawn FileNotFoundError", e.errno)
try:
    subprocess.run(["/"])
except PermissionError as e:
    print("subprocess PermissionError", e.errno)
print(subprocess.run(["/bin/echo", "hi"], capture_output=True).stdout)
"""


@pytest.mark.parametrize("rewrite", REWRITE)
def test_python_under_pysud_catches_what_cannot_run(tmp_path, rewrite):
    # the system's python3 (its subprocess uses vfork; os.posix_spawn is glibc's posix_spawn)
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        pytest.skip("no /usr/bin/python3")
    script = tmp_path / "spawns.py"
    script.write_text(SPAWNS)
    out, _, _, _ = run_both(tmp_path, [python, "-I", str(script)], rewrite)
    assert out == (
        b"subprocess FileNotFoundError 2\nposix_spawn FileNotFoundError 2\n"
        b"subprocess PermissionError 13\nb'hi\\n'\n"
    )
