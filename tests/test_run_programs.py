"""`pysud run` on more real programs: tar, gzip, #! scripts, and C/Go test programs built here.

Every program is run natively and under `pysud run` and compared byte for byte (stdout, stderr,
exit status).  The C programs live in tests/programs/ and are compiled once per session (gcc;
musl-gcc for the static musl one; the Go one with CGO_ENABLED=0).  A program killed by a signal
takes `pysud run` with it: both statuses are -signal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import requires_sud

pytestmark = requires_sud

HERE = Path(__file__).parent
SOURCES = HERE / "programs"
CI = bool(os.environ.get("CI"))
BUSYBOX = shutil.which("busybox")
PYSUD_TRACE = (sys.executable, "-m", "pysud", "trace")


def both(
    argv: list[str],
    cwd: str | Path,
    *,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    ours_cwd: str | Path | None = None,
    timeout: float = 60,
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """Run argv natively in cwd and under `pysud run` in ours_cwd (default: the same directory)."""
    full_env = dict(os.environ, LC_ALL="C", **(env or {}))
    native = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, env=full_env, timeout=timeout)
    ours = subprocess.run(
        [sys.executable, "-m", "pysud", "run", *argv],
        cwd=ours_cwd or cwd,
        input=stdin,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )
    return native, ours


def assert_same(native: subprocess.CompletedProcess[bytes], ours: subprocess.CompletedProcess[bytes]) -> None:
    assert ours.stdout == native.stdout
    assert ours.stderr == native.stderr
    assert ours.returncode == native.returncode


def run_script(code: str, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run Python code in a child (argv: out.json, *args); returns the process and the JSON it wrote."""
    out = Path(args[0]) if args else None
    r = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, LC_ALL="C"),
        timeout=timeout,
    )
    data = json.loads(out.read_text()) if out and out.exists() else {}
    return r, data


def is_static(path: str) -> bool:
    with open(path, "rb") as f:
        return not any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(f).iter_segments())


# ---- building the test programs, once per session


class Builder:
    """Compiles tests/programs/* into a session directory; each program once."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.built: dict[str, str] = {}

    def _need(self, tool: str, package: str) -> str:
        path = shutil.which(tool)
        if path is None:
            if CI:
                pytest.fail(f"{tool} missing in CI (tools/run_tests.sh installs {package})")
            pytest.skip(f"{tool} not installed ({package}; tools/run_tests.sh installs it)")
        return path

    def _compile(self, key: str, cmd: list[str], env: dict[str, str] | None = None) -> str:
        if key not in self.built:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
            assert r.returncode == 0, f"building {key} failed:\n{r.stdout}{r.stderr}"
            self.built[key] = cmd[cmd.index("-o") + 1]
        return self.built[key]

    def c(self, name: str, *, musl: bool = False) -> str:
        cc = self._need("musl-gcc", "musl-tools") if musl else self._need("gcc", "gcc")
        exe = str(self.out / name)
        flags = ["-static"] if musl else ["-pthread"]
        return self._compile(
            name, [cc, "-O1", "-Wall", "-Wextra", *flags, "-o", exe, str(SOURCES / f"{name}.c")]
        )

    def go(self, name: str) -> str:
        go = self._need("go", "golang-go")
        cache = self.out / "go-cache"
        env = dict(os.environ, CGO_ENABLED="0", GOCACHE=str(cache), GOPATH=str(cache / "path"), GOFLAGS="")
        exe = str(self.out / name)
        return self._compile(name, [go, "build", "-o", exe, str(SOURCES / f"{name}.go")], env)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(tmp_path_factory.mktemp("programs"))


@pytest.fixture
def two_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Separate scratch directories for the native run and ours."""
    (tmp_path / "native").mkdir()
    (tmp_path / "ours").mkdir()
    return tmp_path / "native", tmp_path / "ours"


# ---- tar and gzip (dynamic Debian programs)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("files")
    src = d / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("banana\napple\n")
    (src / "sub" / "numbers.txt").write_text("".join(f"{i}\n" for i in range(20000)))
    (src / "sub" / "deeper" / "bin.dat").write_bytes(bytes(range(256)) * 64)
    (src / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "script.sh").chmod(0o755)
    os.symlink("a.txt", src / "link")
    for p in [*src.rglob("*"), src]:
        os.utime(p, (1_600_000_000, 1_600_000_000), follow_symlinks=False)
    return d


TAR = shutil.which("tar") or "/bin/tar"
GZIP = shutil.which("gzip") or "/bin/gzip"
GUNZIP = shutil.which("gunzip") or "/bin/gunzip"
REPRO = ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner"]
needs_tar = pytest.mark.skipif(not os.path.exists(TAR) and not CI, reason="tar not installed")
needs_gzip = pytest.mark.skipif(not os.path.exists(GZIP) and not CI, reason="gzip not installed")


def tree_of(root: Path) -> list[tuple[str, int, float, bytes]]:
    """Every entry under root: relative path, mode, mtime, contents (or link target)."""
    out = []
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data = os.readlink(p).encode() if p.is_symlink() else (p.read_bytes() if p.is_file() else b"")
        out.append((str(p.relative_to(root)), st.st_mode, st.st_mtime, data))
    return out


@needs_tar
@pytest.mark.parametrize("flags", ["-cf", "-czf"], ids=["plain", "gzip-child"])
def test_tar_create_matches_native(files, flags):
    """A reproducible archive on stdout; -z makes tar fork and exec gzip (in-process exec)."""
    native, ours = both([TAR, *REPRO, flags, "-", "src"], files)
    assert len(native.stdout) > 10000
    assert_same(native, ours)


@needs_tar
def test_tar_list_matches_native(files, tmp_path):
    archive = tmp_path / "a.tar"
    subprocess.run([TAR, "-cf", str(archive), "src"], cwd=files, check=True)
    native, ours = both([TAR, "-tvf", str(archive)], files)
    assert b"src/sub/numbers.txt" in native.stdout
    assert_same(native, ours)


@needs_tar
@pytest.mark.parametrize("flags", ["-xf", "-xzf"], ids=["plain", "gzip-child"])
def test_tar_extract_matches_native(files, tmp_path, two_dirs, flags):
    archive = tmp_path / "a.tar.gz"
    subprocess.run([TAR, "-czf" if "z" in flags else "-cf", str(archive), "src"], cwd=files, check=True)
    native_dir, ours_dir = two_dirs
    native, ours = both([TAR, flags, str(archive)], native_dir, ours_cwd=ours_dir)
    assert_same(native, ours)
    expected = tree_of(native_dir)
    assert len(expected) == 8
    assert tree_of(ours_dir) == expected


@needs_gzip
@pytest.mark.parametrize("level", ["-1", "-6", "-9"])
def test_gzip_bytes_match_native(files, level):
    native, ours = both([GZIP, level, "-c", "src/sub/numbers.txt"], files)
    assert native.stdout[:2] == b"\x1f\x8b"
    assert_same(native, ours)


@needs_gzip
def test_gzip_gunzip_round_trip(files):
    """gzip under pysud, then gunzip (a #! script that execs gzip) under pysud, from stdin."""
    original = (files / "src" / "sub" / "numbers.txt").read_bytes()
    native, packed = both([GZIP, "-c"], files, stdin=original)
    assert_same(native, packed)
    native, unpacked = both([GUNZIP, "-c"], files, stdin=packed.stdout)
    assert_same(native, unpacked)
    assert unpacked.stdout == original


@needs_gzip
def test_gunzip_of_bad_input_matches_native(files):
    native, ours = both([GUNZIP, "-c"], files, stdin=b"not gzip data\n")
    assert native.returncode == 1 and b"not in gzip format" in native.stderr
    assert_same(native, ours)


# ---- #! scripts: resolved the way the kernel's binfmt_script does


def test_script_with_interpreter_argument_matches_native(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text('#!/bin/sh -e\necho "$0" "$@"\nfalse\necho not reached\n')
    script.chmod(0o755)
    native, ours = both([str(script), "a", "b c"], tmp_path)
    assert native.returncode == 1 and native.stdout.startswith(str(script).encode())
    assert_same(native, ours)


def test_nested_script_interpreters_match_native(tmp_path):
    """A script whose interpreter is itself a script: both levels, with arguments."""
    inner = tmp_path / "inner"
    inner.write_text('#!/bin/sh\necho inner: "$@"\n')
    outer = tmp_path / "outer"
    outer.write_text(f"#!{inner} one-arg\nthis line is never read by sh\n")
    for p in (inner, outer):
        p.chmod(0o755)
    native, ours = both([str(outer), "x"], tmp_path)
    assert native.stdout == f"inner: one-arg {outer} x\n".encode()
    assert_same(native, ours)


@pytest.mark.skipif(BUSYBOX is None and not CI, reason="busybox-static not installed")
def test_shell_runs_scripts_and_plain_files_through_exec(tmp_path):
    """execve inside the program: a #! script runs; a plain text file gets ENOEXEC and the shell runs it."""
    (tmp_path / "s.sh").write_text("#!/bin/sh\necho from script $1\nexit 4\n")
    (tmp_path / "plain").write_text("echo from plain file\n")
    for name in ("s.sh", "plain"):
        (tmp_path / name).chmod(0o755)
    native, ours = both(
        [str(BUSYBOX), "sh", "-c", "./s.sh arg; echo status $?; ./plain; echo status $?"], tmp_path
    )
    assert native.stdout == b"from script arg\nstatus 4\nfrom plain file\nstatus 0\n"
    assert_same(native, ours)


def test_proc_self_exe_is_the_resolved_path(tmp_path):
    """/proc/self/exe names the file with symlinks resolved (/bin/x -> /usr/bin/x on merged /usr)."""
    link = tmp_path / "readlink-link"
    link.symlink_to(shutil.which("readlink") or "/bin/readlink")
    native, ours = both([str(link), "/proc/self/exe"], tmp_path)
    assert native.stdout == os.path.realpath(link).encode() + b"\n"
    assert_same(native, ours)


@pytest.mark.parametrize(
    "argv",
    [
        ["/bin/cat", "/proc/self/cmdline"],
        ["/usr/bin/env", "-i", "A=1", "B=two words", "/bin/cat", "/proc/self/environ"],
        ["/bin/sh", "-c", "exec cat /proc/$$/cmdline /proc/thread-self/cmdline"],
    ],
    ids=["cmdline", "environ-after-exec", "cmdline-by-pid"],
)
def test_proc_self_cmdline_and_environ_are_the_programs(tmp_path, argv):
    """The program reads its own argv and environment there, not the Python host's."""
    native, ours = both(argv, tmp_path)
    assert native.stdout.count(b"\0") >= 2
    for r in (native, ours):  # the shell's pid is in its own argv: differs from run to run
        r.stdout = re.sub(rb"/proc/\d+/", b"/proc/PID/", r.stdout)
    assert_same(native, ours)


# ---- C programs built from tests/programs/


def test_static_musl_program_matches_native(build, two_dirs):
    exe = build.c("musl_static", musl=True)
    assert is_static(exe)
    native_dir, ours_dir = two_dirs
    native, ours = both([exe, "."], native_dir, env={"PYSUD_MUSL_VAR": "set here"}, ours_cwd=ours_dir)
    assert native.returncode == 7 and b"entry file-e.txt" in native.stdout and b"set here" in native.stdout
    assert_same(native, ours)
    assert sorted(os.listdir(ours_dir)) == sorted(os.listdir(native_dir))


N_CALLS = 2000


def test_threads_program_output_matches_native(build, tmp_path):
    exe = build.c("threads")
    native, ours = both([exe, str(N_CALLS)], tmp_path)
    assert f"getppid ok {8 * N_CALLS}\n".encode() in native.stdout
    assert_same(native, ours)


COUNT_THREAD_CALLS = """
import json, sys, threading
import pysud
out, exe, n = sys.argv[1], sys.argv[2], sys.argv[3]
d = pysud.Dispatcher()
getppid_tids = []   # list.append is atomic under the GIL
write_fds = []
@d.on("getppid")
def on_getppid(call):
    getppid_tids.append(call.tid)
    return pysud.NATIVE
@d.on("write")
def on_write(call):
    write_fds.append(call.args[0])
    return pysud.NATIVE
status = pysud.run(exe, [n], dispatcher=d)
sys.stdout.flush()
json.dump({"status": status, "getppid_tids": getppid_tids, "write_fds": write_fds,
           "counts": d.counts(), "main_tid": threading.get_native_id()}, open(out, "w"))
"""


def test_threads_program_every_call_reaches_the_dispatcher(build, tmp_path):
    """8 threads x N calls each: the handlers see exactly 8N of each, from 8 distinct threads."""
    exe = build.c("threads")
    r, data = run_script(COUNT_THREAD_CALLS, str(tmp_path / "out.json"), exe, str(N_CALLS))
    assert data.get("status") == 0, r.stderr
    wfd = int(r.stdout.split("write fd ")[1].split()[0])
    tids = data["getppid_tids"]
    per_thread = {t: tids.count(t) for t in set(tids)}
    assert per_thread.pop(data["main_tid"]) == 1  # main's own getppid() before the threads start
    assert sorted(per_thread.values()) == [N_CALLS] * 8
    assert data["write_fds"].count(wfd) == 8 * N_CALLS
    assert data["counts"]["clock_gettime"] == 8 * N_CALLS  # syscall(): the vDSO is not involved
    assert data["counts"]["getppid"] == 8 * N_CALLS + 1


def test_signals_program_matches_native(build, tmp_path):
    exe = build.c("signals")
    native, ours = both([exe], tmp_path)
    assert native.returncode == -15 and b"SIGSEGV handled: maperr=1 addr=16\n" in native.stdout
    assert_same(native, ours)


def test_sigterm_to_a_child_in_execve_ends_it_as_natively(build, tmp_path):
    """A signal that reaches a child while pysud's execve handler runs or loads the new image is
    pending for the new image, as execve keeps it: every child (forked, vforked, spawned) dies of
    SIGTERM, and `pysud trace -f` shows the parent reaping each one killed by it."""
    exe = build.c("term_exec")
    native, ours = both([exe, "8"], tmp_path)
    assert native.stdout.count(b"8 children, 0 not ended by SIGTERM, 0 ended otherwise") == 3, native.stdout
    assert_same(native, ours)
    out = tmp_path / "trace.txt"
    traced = subprocess.run(
        [*PYSUD_TRACE, "-f", "-e", "trace=execve", "-o", str(out), exe, "8"], capture_output=True, timeout=120
    )
    assert traced.stdout == native.stdout, traced.stderr
    text = out.read_text()
    sleepers = set(re.findall(r'^(\d+) +execve\("/bin/sleep".* = 0$', text, re.M))
    killed = set(re.findall(r"CLD_KILLED, si_pid=(\d+), si_uid=\d+, si_status=SIGTERM", text))
    assert len(killed) == 24 and len(sleepers) >= 12 and sleepers <= killed, text[-2000:]


def test_bad_pointers_with_every_signal_blocked_are_efault(build, tmp_path):
    """pysud reads openat's and execve's paths itself (the core's path filter, the execve
    handler) with a copy whose fault its handler recovers: with SIGSEGV blocked, as musl's
    pthread_exit leaves it, that fault would kill the process; the kernel checks them instead."""
    exe = build.c("blocked_efault")
    native, ours = both([exe], tmp_path)
    assert native.stdout == b"openat -1 Bad address\nexecve -1 Bad address\n"
    assert_same(native, ours)


def test_crashing_program_gives_a_signal_status(build, tmp_path):
    exe = build.c("crash")
    native, ours = both([exe], tmp_path)
    assert native.returncode == -11
    assert ours.stdout == native.stdout == b"about to crash\n"
    assert ours.returncode == -11


HOST_SURVIVES = """
import json, sys
import pysud
out, exe = sys.argv[1], sys.argv[2]
status = pysud.run(exe)
print("host survived")
json.dump({"status": status}, open(out, "w"))
"""


def test_host_survives_a_crashing_program(build, tmp_path):
    exe = build.c("crash")
    r, data = run_script(HOST_SURVIVES, str(tmp_path / "out.json"), exe)
    assert r.stdout == "about to crash\nhost survived\n", (r.returncode, r.stderr)
    assert data["status"] == 128 + 11


@pytest.mark.parametrize(
    "argv",
    [["1", "/bin/true"], ["0.3", "/bin/sleep", "5"]],
    ids=["finishes", "times-out"],
)
def test_coreutils_timeout_matches_native(tmp_path, argv):
    """timeout(1) waits for SIGCHLD or its own SIGALRM in sigsuspend: both must reach its handlers."""
    native, ours = both(["/usr/bin/timeout", *argv], tmp_path)
    assert native.returncode == (0 if argv[1] == "/bin/true" else 124)
    assert_same(native, ours)


def test_fork_and_wait_program_matches_native(build, tmp_path):
    exe = build.c("forkwait")
    native, ours = both([exe], tmp_path)
    assert b"child 0 ppid_ok=1 (17 bytes, pid matches 1): exited 10\n" in native.stdout
    assert b"killed child: killed by signal 9\n" in native.stdout
    assert_same(native, ours)


def test_fork_in_a_thread_matches_native(build, tmp_path):
    exe = build.c("thread_fork")
    native, ours = both([exe], tmp_path)
    assert native.stdout == (
        b"child of a thread runs sh\nthe image again; the old program's page: gone\n"
        b"exit child: 5\nexec child: 3\nself child: 4\n"
    )
    assert_same(native, ours)


MULTIPROCESSING = """
import concurrent.futures as cf, multiprocessing as mp, sys
def square(x):
    return x * x
if __name__ == "__main__":
    for method in ("fork", "spawn", "forkserver"):
        with cf.ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as ex:
            print(method, sum(ex.map(square, range(50))))
    with mp.get_context("spawn").Pool(2, maxtasksperchild=1) as pool:  # workers replaced by a thread
        print("pool", sum(pool.map(square, range(6))))
"""


def test_python_multiprocessing_matches_native_and_stays_under_pysud(tmp_path):
    """Python run as the program: its process pools by fork, spawn (fork + exec of python from a
    pool's thread) and forkserver give what they give natively, and every python3 they exec is
    traced by pysud (`trace -f` shows the execve in a child's pid)."""
    script = tmp_path / "pools.py"
    script.write_text(MULTIPROCESSING)
    python = os.path.realpath("/usr/bin/python3")
    native, ours = both([python, str(script)], tmp_path, timeout=120)
    assert native.stdout == b"fork 40425\nspawn 40425\nforkserver 40425\npool 55\n", native.stderr
    assert_same(native, ours)
    out = tmp_path / "trace.txt"
    traced = subprocess.run(
        [*PYSUD_TRACE, "-f", "-e", "trace=execve", "-o", str(out), python, str(script)],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert traced.stdout == native.stdout and traced.returncode == 0, traced.stderr
    execs = re.findall(r"^(\d+) +execve\(\"([^\"]+)\".* = 0$", out.read_text(), re.M)
    first = execs[0][0]
    children = {pid for pid, path in execs if pid != first and os.path.realpath(path) == python}
    assert len(children) >= 4, execs  # spawn's 2 workers, the forkserver, the pool's 2+ workers


@pytest.mark.parametrize("echo", ["/bin/echo", "busybox"])
def test_exec_program_matches_native(build, tmp_path, echo):
    if echo == "busybox":
        if BUSYBOX is None and not CI:
            pytest.skip("busybox-static not installed")
        echo = str(BUSYBOX)
    exe, target = build.c("execer"), build.c("exec_target")
    native, ours = both([exe, target, echo], tmp_path, env={"EXEC_TEST": "from the caller"})
    assert native.returncode == 2  # the final image's exit status: its argc
    assert b"target EXEC_TEST=from execer\n" in native.stdout
    assert b"target argv[0]=[target-final]\n" in native.stdout
    assert_same(native, ours)


WATCH_WRITES = """
import json, sys
import pysud
out, exe, target, echo = sys.argv[1:5]
d = pysud.Dispatcher()
written = []
@d.on("write")
def on_write(call):
    if call.args[0] == 1:
        written.append(call.read(call.args[1], call.args[2]).decode())
    return pysud.NATIVE
status = pysud.run(exe, [target, echo], dispatcher=d)
json.dump({"status": status, "written": "".join(written)}, open(out, "w"))
"""


def test_exec_keeps_interception(build, tmp_path):
    """The handler sees every write of the process, the image it exec'd into included.

    The forked children's writes happen in other processes, so the handler's list in this
    one holds exactly the native output less the children's lines.
    """
    exe, target = build.c("execer"), build.c("exec_target")
    native = subprocess.run([exe, target, "/bin/echo"], capture_output=True, text=True, timeout=60)
    r, data = run_script(WATCH_WRITES, str(tmp_path / "out.json"), exe, target, "/bin/echo")
    assert r.stdout == native.stdout
    children = {"[target]", "[one]", "[two words]", "[]", "=from execer", "echo says hi"}
    expected = "".join(
        line for line in native.stdout.splitlines(keepends=True) if not any(c in line for c in children)
    )
    assert "target argv[0]=[target-final]\n" in expected
    assert data["written"] == expected
    assert data["status"] == native.returncode == 2


# ---- a static Go program


def test_static_go_program_matches_native(build, two_dirs):
    exe = build.go("goprog")
    assert is_static(exe)
    native_dir, ours_dir = two_dirs
    native, ours = both([exe, "."], native_dir, ours_cwd=ours_dir, timeout=30)
    assert native.returncode == 5 and b"exec /bin/false: exit 1\n" in native.stdout
    assert_same(native, ours)


GO_THEN_HOST = """
import json, os, sys, time
import pysud
out, exe, cwd = sys.argv[1:4]
os.chdir(cwd)
status = pysud.run(exe, ["."])
time.sleep(0.5)  # time for any thread of the program left behind to run into its unmapped image
json.dump({"status": status, "threads": len(os.listdir("/proc/self/task"))}, open(out, "w"))
"""


def test_go_program_threads_end_with_it(build, tmp_path):
    """exit_group ends every thread of the program: the host goes on with only its own thread."""
    exe = build.go("goprog")
    (tmp_path / "scratch").mkdir()
    r, data = run_script(GO_THEN_HOST, str(tmp_path / "out.json"), exe, str(tmp_path / "scratch"), timeout=30)
    assert r.returncode == 0, f"host died: {r.returncode}"
    assert data == {"status": 5, "threads": 1}


# ---- the `pysud bench` rows for programs


def test_bench_program_rows():
    """One run per row: every row measured, the strace row exactly when strace is installed."""
    bench = [sys.executable, "-m", "pysud", "bench", "--iterations", "300", "--rounds", "1"]
    r = subprocess.run(
        [*bench, "--json", "--program-runs", "1", "--trace-runs", "0", "--exe-runs", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    programs = json.loads(r.stdout)["programs"]
    secs = programs["seconds_per_run"]
    want = {
        "true_native",
        "python_floor",
        "python_import",
        "true_pysud",
        "true_pysud_cold",
        "true_inprocess",
        "dd_native",
        "dd_pysud",
        "dd_pysud_trap",
    }
    if shutil.which("strace"):
        want.add("dd_strace")
    else:
        assert any("strace" in n for n in programs["notes"])
    assert set(secs) == want
    assert all(v > 0 for v in secs.values())
    table = subprocess.run(
        [*bench, "--program-runs", "1", "--trace-runs", "0", "--exe-runs", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert table.returncode == 0, table.stderr
    assert "pysud run /" in table.stdout and "per system call over native" in table.stdout
