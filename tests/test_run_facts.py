"""Process facts a program sees under `pysud run` are the ones it sees natively.

Its name (/proc/self/comm, PR_GET_NAME), its descriptors (pysud's own copies of the host's
stdio cannot be closed or replaced by it; execve closes close-on-exec descriptors), and the
errno of an execve that cannot load its file.  Each is compared with the program run natively.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_sud

pytestmark = requires_sud

HERE = Path(__file__).parent
BASH = shutil.which("bash")


def both(
    argv: list[str], cwd: Path
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    env = dict(os.environ, LC_ALL="C")
    native = subprocess.run(argv, cwd=cwd, capture_output=True, env=env, timeout=60)
    ours = subprocess.run(
        [sys.executable, "-m", "pysud", "run", *argv], cwd=cwd, capture_output=True, env=env, timeout=60
    )
    return native, ours


def assert_same(native: subprocess.CompletedProcess[bytes], ours: subprocess.CompletedProcess[bytes]) -> None:
    assert (ours.stdout, ours.stderr, ours.returncode) == (native.stdout, native.stderr, native.returncode)


@pytest.mark.parametrize(
    "argv",
    [
        ["/bin/cat", "/proc/self/comm"],
        ["/bin/sh", "-c", "exec /bin/cat /proc/self/comm"],
        ["/bin/sh", "-c", "/bin/cat /proc/self/comm; /bin/cat /proc/$$/comm"],
    ],
    ids=["first-image", "after-exec", "forked-child-and-parent"],
)
def test_process_name_is_the_programs(tmp_path, argv):
    native, ours = both(argv, tmp_path)
    assert native.stdout.split(b"\n")[0] == b"cat"
    assert_same(native, ours)


@pytest.mark.parametrize(
    "script",
    [
        "exec 900<&- 901<&- 902<&-; echo still here >&2; echo out",
        "exec 901>/dev/null 902>&1; echo replaced >&901; echo out",
        "exec 0<&- 1>&- 2>&-",
    ],
    ids=["close", "dup2-onto", "close-stdio"],
)
def test_pysud_descriptors_are_out_of_the_programs_reach(tmp_path, script):
    """Closing or replacing 900-902 (where pysud keeps the host's stdio) acts as on free numbers."""
    if BASH is None:
        pytest.skip("bash not installed (dash has no descriptors above 9)")
    native, ours = both([BASH, "-c", script], tmp_path)
    assert_same(native, ours)


def test_close_range_leaves_pysud_descriptors(tmp_path):
    """close_range over everything (as closefrom() does) closes the program's, not pysud's."""
    src = tmp_path / "cr.c"
    src.write_text(
        "#define _GNU_SOURCE\n#include <stdio.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n"
        "int main(void){ long r = syscall(SYS_close_range, 3, ~0u, 0);"
        ' printf("close_range %ld\\n", r); return 0; }\n'
    )
    exe = tmp_path / "cr"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True, timeout=120)
    native, ours = both([str(exe)], tmp_path)
    assert native.stdout == b"close_range 0\n"
    assert_same(native, ours)


def test_execve_closes_cloexec_descriptors(tmp_path):
    exe = tmp_path / "cloexec"
    subprocess.run(["gcc", "-o", str(exe), str(HERE / "programs" / "cloexec.c")], check=True, timeout=120)
    native, ours = both([str(exe)], tmp_path)
    assert native.stdout == b"cloexec closed\nplain open\n"
    assert_same(native, ours)


@pytest.mark.skipif(BASH is None, reason="bash not installed")
@pytest.mark.parametrize("damage", ["truncated", "wrong-machine", "missing-interpreter"])
def test_execve_of_a_bad_image_fails_as_the_kernel_says(tmp_path, damage):
    """bash reports the kernel's errno for the file (Exec format error: 126; not found: 127)."""
    data = bytearray(Path("/bin/true").read_bytes())
    if damage == "truncated":
        data = data[:40]
    elif damage == "wrong-machine":
        data[18:20] = (3).to_bytes(2, "little")  # EM_386 in a 64-bit file
    else:
        at = data.index(b"/lib64/ld-linux-x86-64.so.2")
        data[at : at + 27] = b"/nonexistent/ld-linux.so.22"
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    bad.chmod(0o755)
    native, ours = both([BASH, "-c", f"{bad}; echo status $?"], tmp_path)
    assert native.stdout.startswith(b"status 12")
    assert_same(native, ours)


KEEP_FD = """
import os, sys
import pysud
from pysud._linux import LinuxPersonality
d = pysud.Dispatcher()
p = LinuxPersonality(d)
fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)  # a low number, as a library user's
moved = []
p.keep_fd(fd, moved.append)
kept = moved[-1]
code = "import os\\ntry:\\n os.close(%d)\\n print('closed')\\n" % kept
code += "except OSError as e:\\n print(e.strerror)"
status = p.run("/usr/bin/python3", [b"python3", b"-c", code.encode()], [b"LC_ALL=C"])
os.write(kept, b"")  # still ours
print(status, kept >= 900, fd != kept)
"""


def test_a_kept_descriptor_is_out_of_the_programs_reach():
    """LinuxPersonality.keep_fd moves a low descriptor into pysud's range, where the program's
    close reaches the personality (which says EBADF) even without a handler on every call."""
    r = subprocess.run([sys.executable, "-c", KEEP_FD], capture_output=True, text=True, timeout=60)
    assert r.stdout == "Bad file descriptor\n0 True True\n", r.stderr
