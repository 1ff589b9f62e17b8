"""A corpus of real programs traced by `strace -f` and by `pysud trace -f`, compared whole line
by whole line: the share of strace's lines pysud prints identically, per program, with a floor
measured on the development machine so that a regression fails.

Normalised in both traces (nothing else): addresses (0x...) -> ADDR; pids (line prefixes and
clone/fork/wait results) -> PID; the random bytes of getrandom; ephemeral port numbers; the
random part of temporary file names (mkstemp's XXXXXX); -y's socket and pipe inode numbers;
epoll's u64 data when it holds an address; getppid's result (the parent is strace in one run,
the shell in the other). Lines are matched per process (processes in order of first
appearance) by longest common subsequence; the rate is identical lines over the longer of the two traces.

Run as a script (``python tests/test_trace_corpus.py``) it prints the table in docs/trace.md.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import pytest

from strace_oracle import STRACE, calls, strace_works, trace_both

try:  # run as a pytest module (the script form needs no marker)
    from conftest import requires_sud

    pytestmark = requires_sud
except ImportError:  # pragma: no cover
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, LC_ALL="C", GLIBC_TUNABLES="glibc.pthread.rseq=0", TZ="UTC", HOME="/nonexistent")
for _var in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"):
    ENV.pop(_var, None)
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3") or "python3"

NET_PY = """
import os, select, socket
a, b = socket.socketpair()
ep = select.epoll()
ep.register(a.fileno(), select.EPOLLIN)
b.send(b"hi")
ep.poll(1)
a.sendmsg([b"x", b"yz"])
b.recvmsg(10)
a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(1)
c = socket.socket()
c.connect(s.getsockname())
x, _ = s.accept()
x.sendall(b"ping")
c.recv(10)
select.select([a], [], [], 0)
select.poll().poll(0)
os.writev(a.fileno(), [b"ab", b"c"])
os.readv(b.fileno(), [bytearray(2), bytearray(2)])
"""

MISC_PY = """
import fcntl, os, select, threading
os.getgroups()
fd = os.memfd_create("x", os.MFD_CLOEXEC)
os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
fcntl.flock(fd, fcntl.LOCK_UN)
os.rename("a.txt", "a2.txt")
os.closerange(50, 60)
select.epoll().close()
t = threading.Thread(target=os.getppid)
t.start()
t.join()
"""


@dataclass
class Program:
    name: str
    argv: list[str]
    floor: float  # the rate measured here, less a small margin
    multi: bool = False  # forks children (and they exec other programs)
    masks: list[tuple[str, str]] = field(default_factory=list)
    random_output: bool = False  # prints random bytes: only its exit status is compared
    opts: list[str] = field(default_factory=list)  # options for both tracers (-y)


CORPUS = [
    Program(
        "ls -l", ["ls", "-l", "."], 0.97
    ),  # -l, not -la: ".." is the temporary directory, its time varies
    Program("cat", ["cat", "a.txt", "b.txt"], 0.97),
    Program("sort", ["sort", "a.txt"], 0.97),
    Program("wc", ["wc", "a.txt", "b.txt"], 0.97),
    Program("stat", ["stat", "-c", "%n %s %F %a %h", "a.txt", "sub"], 0.97),
    Program("cp -r", ["cp", "-r", "sub", "sub2"], 0.97),
    Program("du", ["du", "-s", "."], 0.97),
    Program("bash -c", ["bash", "-c", "x=$((1+2)); echo $x; cd sub; pwd; echo *"], 0.97),
    Program("bash subshell", ["bash", "-c", "echo $(echo a) b"], 0.93, multi=True),
    Program("python3 -c", [PY, "-c", "import json, os; print(json.dumps(sorted(os.listdir('.'))))"], 0.97),
    Program("python3 sockets", [PY, "net.py"], 0.97, masks=[(r"u64=\d{10,}", "u64=DATA")]),
    Program("python3 threads", [PY, "misc.py"], 0.93),  # futex order and stack sizes vary with timing
    Program("git status", ["git", "-C", "repo", "status", "--short"], 0.95),
    Program("git log", ["git", "-C", "repo", "log", "--oneline"], 0.97),
    Program("gcc -c", ["gcc", "-c", "-o", "hello.o", "hello.c"], 0.93, multi=True),
    Program(
        "sqlite3",
        ["sqlite3", "db.sqlite", "create table t(x); insert into t values(1),(2); select sum(x) from t;"],
        0.93,
    ),
    Program("openssl dgst", ["openssl", "dgst", "-sha256", "a.txt"], 0.97),
    Program(
        "openssl rand",
        ["openssl", "rand", "-hex", "8"],
        0.97,
        masks=[(r'write\(1, "[0-9a-f]{16}\\n"', 'write(1, "RANDOM\\n"')],
        random_output=True,
    ),
    Program("gzip", ["gzip", "-k", "a.txt"], 0.97),
    Program("tar cf", ["tar", "cf", "out.tar", "sub"], 0.97),
    Program("tar czf", ["tar", "czf", "out.tgz", "sub"], 0.93, multi=True),
    # -y: descriptors with their paths (AT_FDCWD with the directory)
    Program("-y cat", ["cat", "a.txt", "b.txt"], 0.97, opts=["-y"]),
    Program("-y ls -l", ["ls", "-l", "."], 0.97, opts=["-y"]),
    Program("-y python3 sockets", [PY, "net.py"], 0.97, masks=[(r"u64=\d{10,}", "u64=DATA")], opts=["-y"]),
    Program("-y tar czf", ["tar", "czf", "out.tgz", "sub"], 0.9, multi=True, opts=["-y"]),
]


def make_tree(root: str) -> None:
    """The files every corpus program works on (fresh for each run)."""
    os.makedirs(f"{root}/sub/deep")
    with open(f"{root}/a.txt", "w") as f:
        f.write("banana\napple\ncherry\napple\n")
    with open(f"{root}/b.txt", "w") as f:
        f.write("one two three\nfour five\n")
    with open(f"{root}/sub/c.txt", "w") as f:
        f.write("x" * 1000)
    with open(f"{root}/sub/deep/d.txt", "w") as f:
        f.write("deep\n")
    with open(f"{root}/hello.c", "w") as f:
        f.write("int answer(void) { return 42; }\n")
    with open(f"{root}/net.py", "w") as f:
        f.write(NET_PY)
    with open(f"{root}/misc.py", "w") as f:
        f.write(MISC_PY)
    for t in (
        "a.txt",
        "b.txt",
        "sub/c.txt",
        "sub/deep/d.txt",
        "hello.c",
        "net.py",
        "misc.py",
        "sub/deep",
        "sub",
        ".",
    ):
        os.utime(f"{root}/{t}", (1_700_000_000, 1_700_000_000))
    if shutil.which("git"):
        git = ["git", "-C", f"{root}/repo", "-c", "user.name=t", "-c", "user.email=t@t"]
        genv = dict(ENV, GIT_AUTHOR_DATE="2024-01-01T00:00:00Z", GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
        subprocess.run(["git", "init", "-q", f"{root}/repo"], check=True, env=genv)
        with open(f"{root}/repo/f.txt", "w") as f:
            f.write("f\n")
        subprocess.run([*git, "add", "f.txt"], check=True, env=genv)
        subprocess.run([*git, "commit", "-qm", "one"], check=True, env=genv)


_FORK_RESULT = re.compile(r"^(?:clone3?|v?fork|wait4)\(.*\) += (\d+)$")


def _pids(text: str) -> set[int]:
    pids = {int(m) for m in re.findall(r"^(\d+)\s", text, re.M)}
    for line in text.splitlines():
        m = _FORK_RESULT.match(re.sub(r"^\d+\s+", "", line))
        if m:
            pids.add(int(m.group(1)))
    return pids


def normalise(text: str, masks: list[tuple[str, str]]) -> list[list[str]]:
    """Per-process lists of normalised lines, processes in order of first appearance."""
    pids = _pids(text)
    per: dict[int, list[str]] = {}
    for pid, line in calls(text):
        line = re.sub(r"\s+= ", " = ", line)
        line = re.sub(r"0x[0-9a-f]+", "ADDR", line)
        line = re.sub(r'getrandom\("[^"]*"', 'getrandom("RANDOM"', line)
        line = re.sub(r"htons\(\d+\)", "htons(PORT)", line)
        line = re.sub(r"(socket|pipe|anon_inode):\[\d+\]", r"\1:[INODE]", line)
        line = re.sub(r"(/tmp/[\w.-]*?)[A-Za-z0-9]{6}\b", r"\1XXXXXX", line)
        line = re.sub(r"^getppid\(\) = \d+$", "getppid() = PPID", line)  # the tracer's pid or the shell's
        line = re.sub(r"^sysinfo\(\{uptime=.*\}\) = 0$", "sysinfo({LIVE}) = 0", line)
        for pat, rep in masks:
            line = re.sub(pat, rep, line)
        for p in pids:
            line = re.sub(rf"\b{p}\b", "PID", line)
        per.setdefault(pid, []).append(line)
    return list(per.values())


@dataclass
class Result:
    program: Program
    strace_lines: int
    pysud_lines: int
    identical: int
    same_output: bool
    diffs: list[str]

    @property
    def rate(self) -> float:
        return self.identical / max(self.strace_lines, self.pysud_lines, 1)


def run_program(prog: Program, pysud: list[str]) -> Result:
    with tempfile.TemporaryDirectory(prefix="pysud-corpus-") as tmp:
        work = f"{tmp}/w"  # the same path for both runs: paths appear in the traces

        def fresh() -> str:
            shutil.rmtree(work, ignore_errors=True)
            make_tree(work)
            return work

        (s_run, s_text), (p_run, p_text) = trace_both(
            prog.argv, prog.opts, fresh, f"{tmp}/trace.out", ENV, pysud=pysud, timeout=120
        )
    s, p = normalise(s_text, prog.masks), normalise(p_text, prog.masks)
    identical, diffs = 0, []
    for k in range(max(len(s), len(p))):
        a = s[k] if k < len(s) else []
        b = p[k] if k < len(p) else []
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        identical += sum(bl.size for bl in sm.get_matching_blocks())
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag != "equal":
                diffs += [f"- {x}" for x in a[i1:i2]] + [f"+ {x}" for x in b[j1:j2]]
    same = (prog.random_output or s_run.stdout == p_run.stdout) and s_run.returncode == p_run.returncode
    return Result(prog, sum(map(len, s)), sum(map(len, p)), identical, same, diffs)


def _available(prog: Program) -> bool:
    return shutil.which(prog.argv[0]) is not None and STRACE is not None


_strace_works = strace_works


@pytest.mark.slow
@pytest.mark.parametrize("prog", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_lines_match_strace(prog):
    if not _available(prog):
        pytest.skip(f"{prog.argv[0]} or strace not installed (tools/run_tests.sh installs them)")
    if not _strace_works():
        pytest.skip("strace cannot ptrace here (container without CAP_SYS_PTRACE)")
    res = run_program(prog, [sys.executable, "-m", "pysud"])
    assert res.same_output, "the program's output or status differs under pysud trace"
    shown = "\n".join(res.diffs[:40])
    assert res.rate >= prog.floor, f"{res.identical}/{max(res.strace_lines, res.pysud_lines)} lines:\n{shown}"


def main() -> None:
    """The table for docs/trace.md (and, with -v, each program's differing lines)."""
    verbose = "-v" in sys.argv
    rows = []
    for prog in CORPUS:
        if not _available(prog):
            continue
        res = run_program(prog, [sys.executable, "-m", "pysud"])
        rows.append(res)
        if verbose:
            print(f"== {prog.name}", *res.diffs[:60], sep="\n")
    print("| program | strace lines | pysud lines | identical | rate | output |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        kind = " (forks)" if r.program.multi else ""
        same = "same" if r.same_output else "DIFFERS"
        label = " ".join([*r.program.opts, *r.program.argv])[:48]
        print(
            f"| `{label}`{kind} | {r.strace_lines} | {r.pysud_lines} | {r.identical} "
            f"| {100 * r.rate:.1f}% | {same} |"
        )
    tot_s = sum(r.strace_lines for r in rows)
    tot_i = sum(r.identical for r in rows)
    tot_p = sum(r.pysud_lines for r in rows)
    print(f"| all | {tot_s} | {tot_p} | {tot_i} | {100 * tot_i / max(tot_s, tot_p, 1):.1f}% | |")


if __name__ == "__main__":
    main()
