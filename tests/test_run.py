"""`pysud run`: whole programs in-process, compared byte for byte with the same program run natively."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import requires_sud

pytestmark = requires_sud

BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.skipif(
    BUSYBOX is None and not os.environ.get("CI"),
    reason="busybox-static not installed (tools/run_tests.sh installs it)",
)


def both(argv: list[str], cwd: str, stdin: bytes = b"") -> tuple[subprocess.CompletedProcess[bytes], ...]:
    env = dict(os.environ, LC_ALL="C")
    native = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, env=env, timeout=60)
    ours = subprocess.run(
        [sys.executable, "-m", "pysud", "run", *argv],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
    )
    return native, ours


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("tree")
    (d / "a.txt").write_text("banana\napple\ncherry\napple\n")
    (d / "b.txt").write_text("one two three\nfour five\n")
    (d / "sub").mkdir()
    (d / "sub" / "c.txt").write_text("x" * 1000)
    return str(d)


APPLETS = [
    ["echo", "hello", "world"],
    ["cat", "a.txt", "b.txt"],
    ["sort", "a.txt"],
    ["sort", "-u", "-r", "a.txt"],
    ["uniq", "-c", "a.txt"],
    ["wc", "a.txt", "b.txt"],
    ["head", "-n", "2", "a.txt"],
    ["tail", "-n", "1", "b.txt"],
    ["grep", "-n", "apple", "a.txt"],
    ["sed", "s/a/A/g", "a.txt"],
    ["tr", "a-z", "A-Z"],
    ["cut", "-d", " ", "-f", "2", "b.txt"],
    ["md5sum", "a.txt", "b.txt"],
    ["sha256sum", "sub/c.txt"],
    ["ls", "-1", "."],
    ["find", ".", "-name", "*.txt"],
    ["du", "-s", "sub"],
    ["stat", "-c", "%s %n", "a.txt"],
    ["basename", "/x/y/z.txt", ".txt"],
    ["dirname", "/x/y/z.txt"],
    ["expr", "6", "*", "7"],
    ["seq", "1", "3", "10"],
    ["printf", "%s-%d\\n", "x", "5"],
    ["od", "-c", "b.txt"],
    ["awk", "{print $2}", "b.txt"],
    ["tar", "-cf", "-", "a.txt"],
    ["false"],
    ["true"],
    ["sh", "-c", "echo a; echo b | tr a-z A-Z; exit 3"],
    ["sh", "-c", "seq 1 5 | sort -r | head -2; for i in 1 2; do echo $i; done"],
    ["sh", "-c", "x=$(echo sub); ls $x; wait"],
]


@needs_busybox
@pytest.mark.parametrize("applet", APPLETS, ids=[" ".join(a)[:40] for a in APPLETS])
def test_busybox_applet_matches_native(applet, tree):
    argv = ["busybox", *applet]
    native, ours = both(argv, tree, stdin=b"to upper\n")
    if applet[0] == "tar":  # tar headers carry mtime/owner: compare the member contents
        assert native.stdout[512:600] == ours.stdout[512:600]
    else:
        assert ours.stdout == native.stdout
    assert ours.stderr == native.stderr
    assert ours.returncode == native.returncode


DYNAMIC = [
    ["/bin/ls", "-1", "."],
    ["/bin/cat", "a.txt"],
    ["/usr/bin/sort", "a.txt"],
    ["/usr/bin/sha256sum", "a.txt", "b.txt"],
    ["/usr/bin/wc", "-l", "a.txt"],
    ["/bin/grep", "-c", "apple", "a.txt"],
    ["/bin/sed", "-n", "2p", "a.txt"],
    ["/bin/sh", "-c", "ls | wc -l"],
    [
        sys.executable,
        "-c",
        "import threading; t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()",
    ],
]


@pytest.mark.parametrize("argv", DYNAMIC, ids=[" ".join(a)[-40:] for a in DYNAMIC])
def test_dynamic_program_matches_native(argv, tree):
    if not os.path.exists(argv[0]):
        pytest.skip(f"{argv[0]} not on this machine")
    native, ours = both(argv, tree)
    assert ours.stdout == native.stdout
    assert ours.stderr == native.stderr
    assert ours.returncode == native.returncode


def test_run_api_returns_status_and_bad_input_is_clear(tmp_path):
    import pysud

    bad = tmp_path / "notelf"
    bad.write_text("echo hi\n")  # neither ELF nor #! script: ENOEXEC
    bad.chmod(0o755)
    r = subprocess.run([sys.executable, "-m", "pysud", "run", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "not an ELF" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "run", "no-such-program-xyz"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "not found" in r.stderr
    assert pysud.run("/bin/true") == 0
    assert pysud.run("/bin/false") == 1


def test_vdso_option_decides_whether_time_calls_are_syscalls():
    """With the vDSO (default) clock_gettime makes no syscall; hidden, handlers see every one."""
    import pysud

    if not os.path.exists("/bin/date"):
        pytest.skip("/bin/date not on this machine")
    seen = {}
    for vdso in (True, False):
        d = pysud.Dispatcher()
        r = pysud.run("/bin/date", ["+%s"], dispatcher=d, vdso=vdso)
        assert r == 0
        seen[vdso] = d.counts().get("clock_gettime", 0)
    assert seen[True] == 0
    assert seen[False] >= 1


def test_host_stdio_survives_a_program_that_closes_it(capfd):
    """coreutils close stdout/stderr at exit; the host's descriptors must still work afterwards."""
    import pysud

    if not os.path.exists("/bin/echo"):
        pytest.skip("/bin/echo not on this machine")
    assert pysud.run("/bin/echo", ["from the guest"]) == 0
    os.write(1, b"host stdout\n")
    os.write(2, b"host stderr\n")
    out, err = capfd.readouterr()
    assert out == "from the guest\nhost stdout\n"
    assert err == "host stderr\n"


@needs_busybox
def test_native_exec_option_lets_the_kernel_replace_the_process():
    # After a real execve the process is the new program alone (its memory holds no Python);
    # after pysud's in-process execve it is still the Python host (the kernel's name for it
    # follows the program either way, as execve sets it), and the program stays intercepted.
    script = "busybox grep -c -m1 bin/python /proc/self/maps; exec busybox grep -m1 ^Name: /proc/self/status"
    inproc = subprocess.run(
        [sys.executable, "-m", "pysud", "run", "busybox", "sh", "-c", script], capture_output=True, timeout=60
    )
    native = subprocess.run(
        [sys.executable, "-m", "pysud", "run", "--native-exec", "busybox", "sh", "-c", script],
        capture_output=True,
        timeout=60,
    )
    assert (inproc.returncode, native.returncode) == (0, 0), (inproc.stderr, native.stderr)
    assert native.stdout.split() == [b"0", b"Name:", b"busybox"]
    assert inproc.stdout.split() == [b"1", b"Name:", b"busybox"]
