"""`pysud run/trace --hooks FILE`: handlers from a Python file, on real programs, against native runs.

Each hook logs "<pid> <what>" lines to $HOOK_LOG, so a test asserts that the handler ran, in the
process pysud ran in, besides what the program printed.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_sud

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fake_uname.py"

pytestmark = requires_sud

LOG_HEADER = (
    "import os, errno, pysud\n\n"
    "def log(what):\n"
    "    with open(os.environ['HOOK_LOG'], 'a') as f:\n"
    "        f.write(f'{os.getpid()} {what}\\n')\n\n"
)


def pysud(*args: str, log: Path | None = None, cwd: Path | None = None) -> tuple[int, str, str, int]:
    """Run the CLI; (status, stdout, stderr, pid)."""
    env = dict(os.environ, LC_ALL="C")
    if log is not None:
        env["HOOK_LOG"] = str(log)
    p = subprocess.Popen(
        [sys.executable, "-m", "pysud", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err, p.pid


def native(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=dict(os.environ, LC_ALL="C"))


def hooks_file(tmp_path: Path, body: str, name: str = "hooks.py") -> Path:
    p = tmp_path / name
    p.write_text(LOG_HEADER + body)
    return p


def logged(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(pid), what) for pid, what in (line.split(" ", 1) for line in log.read_text().splitlines())]


# ---- faking one call of a real program


def test_example_fakes_unames_nodename():
    """The README's example, as shipped: `uname -n` prints the faked name; `uname -s` is untouched."""
    assert native("uname", "-n").stdout.strip() == socket.gethostname() != "pysud-demo"
    code, out, err, _ = pysud("run", "--hooks", str(EXAMPLE), "uname", "-n")
    assert (code, out, err) == (0, "pysud-demo\n", "")
    code, out, err, _ = pysud("run", "--hooks", str(EXAMPLE), "uname", "-srm")
    assert (code, out, err) == (0, native("uname", "-srm").stdout, "")


def test_readme_shows_the_example_file():
    assert EXAMPLE.read_text().strip() in (ROOT / "README.md").read_text()


def test_handler_is_called_in_the_process_pysud_runs(tmp_path: Path):
    log = tmp_path / "log"
    hooks = hooks_file(
        tmp_path,
        "def hooks(d):\n"
        "    @d.on('uname')\n"
        "    def uname(call):\n"
        "        log('uname')\n"
        "        return pysud.NATIVE\n",
    )
    code, out, err, pid = pysud("run", "--hooks", str(hooks), "uname", "-n", log=log)
    assert (code, out, err) == (0, native("uname", "-n").stdout, "")
    assert logged(log) == [(pid, "uname")]


def test_cat_of_one_file_fails_with_eacces(tmp_path: Path):
    """The hook fails one path's openat; cat reports it as it reports the kernel's EACCES."""
    secret = tmp_path / "secret"
    secret.write_text("top secret\n")
    other = tmp_path / "other"
    other.write_text("hello\n")
    log = tmp_path / "log"
    hooks = hooks_file(
        tmp_path,
        "def hooks(d):\n"
        "    @d.on('openat')\n"
        "    def openat(call):\n"
        "        path = call.read_cstring(call.args[1])\n"
        f"        if path == {str(secret).encode()!r}:\n"
        "            log('denied ' + path.decode())\n"
        "            return -errno.EACCES\n"
        "        return pysud.NATIVE\n",
    )
    code, out, err, pid = pysud("run", "--hooks", str(hooks), "cat", str(other), str(secret), log=log)
    assert code == 1  # cat's status for a file it could not open
    assert out == "hello\n"
    assert err == f"cat: {secret}: {os.strerror(errno.EACCES)}\n"
    assert logged(log) == [(pid, f"denied {secret}")]


def test_native_passes_the_call_on_to_the_personality(tmp_path: Path):
    """A hook on openat returning NATIVE keeps the personality's /proc/self/cmdline (the program's)."""
    log = tmp_path / "log"
    hooks = hooks_file(
        tmp_path,
        "def hooks(d):\n"
        "    @d.on('openat')\n"
        "    def openat(call):\n"
        "        log(call.read_cstring(call.args[1]).decode())\n"
        "        return pysud.NATIVE\n",
    )
    code, out, err, pid = pysud("run", "--hooks", str(hooks), "cat", "/proc/self/cmdline", log=log)
    assert (code, err) == (0, "")
    assert out == "cat\0/proc/self/cmdline\0"  # the program's argv, not the Python host's
    assert (pid, "/proc/self/cmdline") in logged(log)


def test_several_files_the_later_runs_first(tmp_path: Path):
    log = tmp_path / "log"
    first = hooks_file(
        tmp_path,
        "def hooks(d):\n    d.on('uname', lambda call: (log('first'), pysud.NATIVE)[1])\n",
        "first.py",
    )
    second = hooks_file(
        tmp_path,
        "def hooks(d):\n    d.on('uname', lambda call: (log('second'), pysud.NATIVE)[1])\n",
        "second.py",
    )
    code, out, _, pid = pysud("run", "--hooks", str(first), "--hooks", str(second), "uname", "-n", log=log)
    assert (code, out) == (0, native("uname", "-n").stdout)
    assert logged(log) == [(pid, "second"), (pid, "first")]


def test_trace_shows_what_the_hook_made_the_program_see():
    code, out, err, _ = pysud("trace", "-e", "trace=uname", "--hooks", str(EXAMPLE), "uname", "-n")
    assert (code, out) == (0, "pysud-demo\n")
    assert err.splitlines() == [
        'uname({sysname="Linux", nodename="pysud-demo", ...}) = 0',
        "+++ exited with 0 +++",
    ]


# ---- errors in the file: one line with the file and line, status 2


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import os\n\ndef hooks(d)\n    pass\n", r"{f}:3: SyntaxError: expected ':'"),
        ("x = 1\ny = undefined + 1\n", r"{f}:2: NameError: name 'undefined' is not defined \(while loading"),
        ("def hook(d):\n    pass\n", r"{f}: defines no function hooks\(d\)"),
        (
            "def hooks(d):\n    d.on('no_such_call', lambda call: 0)\n",
            r"{f}:2: UnknownSyscall: unknown x86_64 syscall 'no_such_call' \(in hooks\(d\)\)",
        ),
        ("import sys\nsys.exit(3)\n", r"{f}:2: SystemExit\(3\) while loading"),
    ],
    ids=["syntax", "load", "missing", "in-hooks", "exit"],
)
def test_error_in_the_file_is_one_line(tmp_path: Path, source: str, message: str):
    f = tmp_path / "bad.py"
    f.write_text(source)
    for command in ("run", "trace"):
        code, out, err, _ = pysud(command, "--hooks", str(f), "uname", "-n")
        assert code == 2
        assert out == ""  # the program never ran
        assert len(err.splitlines()) == 1, err
        assert re.fullmatch("pysud: " + message.format(f=re.escape(str(f))) + ".*\n", err), err


def test_missing_file(tmp_path: Path):
    code, out, err, _ = pysud("run", "--hooks", str(tmp_path / "nope.py"), "uname")
    assert (code, out, err) == (2, "", f"pysud: {tmp_path / 'nope.py'}: No such file or directory\n")


def test_handler_error_at_run_time_is_reported_as_for_any_handler(tmp_path: Path):
    """The program gets ENOSYS (handler_error) for that call, pysud reports the error, status 2."""
    log = tmp_path / "log"
    hooks = hooks_file(
        tmp_path,
        "def hooks(d):\n"
        "    @d.on('uname')\n"
        "    def uname(call):\n"
        "        log('raising')\n"
        "        raise KeyError('boom')\n",
    )
    raise_line = hooks.read_text().splitlines().index("        raise KeyError('boom')") + 1
    code, out, err, pid = pysud("run", "--hooks", str(hooks), "uname", "-n", log=log)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"uname: cannot get system name: {os.strerror(errno.ENOSYS)}"
    assert re.fullmatch(
        r"pysud: handler for uname\(0x[0-9a-f]+, .*\) \[nr 63, x86_64, .*\] raised KeyError: 'boom' "
        + re.escape(f"({hooks}:{raise_line})"),
        lines[1],
    ), lines[1]
    assert len(lines) == 2
    assert logged(log) == [(pid, "raising")]


def test_guide_example_denies_one_file(tmp_path: Path):
    """docs/guide.md's deny.py, as printed there, on cat: EACCES for one file, the other printed."""
    guide = (ROOT / "docs" / "guide.md").read_text()
    source = re.search(r"```python\n(# deny\.py.*?)```", guide, re.S)
    assert source
    (tmp_path / "deny.py").write_text(source.group(1))
    (tmp_path / "notes.txt").write_text("notes\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    code, out, err, _ = pysud("run", "--hooks", "deny.py", "cat", "notes.txt", "secret.txt", cwd=tmp_path)
    assert (code, out, err) == (1, "notes\n", f"cat: secret.txt: {os.strerror(errno.EACCES)}\n")


# ---- a Windows program: hooks(d) gets the NT personality


@pytest.fixture(scope="module")
def hello_exe(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/nt/hello.c built with mingw-w64: two NtWriteFile calls, exit status 7."""
    from test_nt import CC, build

    if CC is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed (gcc-mingw-w64-x86-64)")
    return build(str(tmp_path_factory.mktemp("nt-hooks")), "hello")


def test_nt_hook_sees_the_calls_and_passes_them_on(tmp_path: Path, hello_exe: str):
    log = tmp_path / "log"
    hooks = hooks_file(
        tmp_path,
        "def hooks(nt):\n"
        "    def write(call):\n"
        "        log('NtWriteFile')\n"
        "        return pysud.NATIVE\n"
        "    nt.on('NtWriteFile', write)\n",
    )
    code, out, err, pid = pysud("run", "--hooks", str(hooks), hello_exe, log=log)
    # exactly what the program does without the hook (the personality's own notes on stderr included)
    assert (code, out, err) == pysud("run", hello_exe)[:3]
    assert (code, out) == (7, "hello, world\nfrom an NT program\n")
    assert logged(log) == [(pid, "NtWriteFile")] * 2


def test_nt_hook_fails_one_write_and_trace_prints_one_line_per_call(tmp_path: Path, hello_exe: str):
    """A hook answers the second NtWriteFile with STATUS_ACCESS_DENIED: that line is never written,
    and --trace prints each call once, with the status the program got (the hook's or the
    personality's)."""
    log = tmp_path / "log"
    hooks = hooks_file(
        tmp_path,
        "def hooks(nt):\n"
        "    def write(call):\n"
        "        if call.args[6] == len('from an NT program\\n'):\n"
        "            log('denied')\n"
        "            return 0xC0000022  # STATUS_ACCESS_DENIED\n"
        "        return pysud.NATIVE\n"
        "    nt.on('NtWriteFile', write)\n",
    )
    code, out, err, pid = pysud("run", "--trace", "--hooks", str(hooks), hello_exe, log=log)
    assert (code, out) == (7, "hello, world\n")
    writes = [line for line in err.splitlines() if line.startswith("[nt] NtWriteFile(")]
    assert [w.rsplit(" = ", 1)[1] for w in writes] == ["STATUS_SUCCESS", "STATUS_ACCESS_DENIED"], err
    assert logged(log) == [(pid, "denied")]
