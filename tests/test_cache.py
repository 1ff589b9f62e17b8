"""The persistent start-up cache (pysud._cache): a warm run behaves exactly as a cold one.

Oracles: pyelftools' parse of the same file (the cold path), the planner (capstone) run again on
every decision the cache holds, the program run natively (status and output), and which
modules a run imported.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_sud
from pysud import _cache, _elf, _rewrite

SH = shutil.which("sh") or "/bin/sh"
SCRIPT = "echo cached; exit 3"
DD = shutil.which("dd") or "/bin/dd"
#: dd's read and write sites trap often enough (the core's PLAN_AFTER) for the planner to decide
DD_ARGS = [DD, "if=/dev/zero", "of=/dev/null", "bs=1", "count=50"]


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache directory for this test, and stores that forget what they read."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(_cache.ENV, raising=False)
    for store in (_cache.ELF, _cache.PLAN):
        monkeypatch.setattr(store, "_entries", None)
        monkeypatch.setattr(store, "_new", {})
    return home / "pysud"


def _file(directory: Path, name: str) -> Path:
    """A store's file: ``<name>-v1.<cache tag>.marshal``."""
    return directory / f"{name}-v1.{sys.implementation.cache_tag}.marshal"


def _load(path: Path) -> object:
    return marshal.loads(path.read_bytes())


def _write(path: Path, value: object) -> None:
    path.write_bytes(marshal.dumps(value))


def _parse_file(path: str) -> _elf._Parsed:
    return _elf._parse(path, *_elf._read_file_stat(path))


def test_corrupt_or_foreign_cache_file_is_ignored(cache_home: Path) -> None:
    cache_home.mkdir(parents=True)
    junks = (b"\x00garbage{", b"[1, 2, 3]", b'{"k": ', "\udcff".encode("utf-8", "surrogatepass"))
    # and marshal's own: truncated, a list instead of a dict, a code object, an unknown type code
    good = marshal.dumps({"k": [1, 2]})
    foreign = (good[:-3], marshal.dumps([1, 2, 3]), marshal.dumps(compile("1", "f", "eval")), b"\xff\x00")
    for junk in (*junks, *foreign):
        _file(cache_home, "elf").write_bytes(junk)
        store = _cache.Store("elf", 1, 8)
        assert store.get("k") is None
        store.put("k", [1, 2])
        store.save()
        assert _load(_file(cache_home, "elf")) == {"k": [1, 2]}


def test_bad_entry_is_parsed_again(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry of the wrong shape under the right key: the file is parsed again, as cold."""
    cold = _parse_file(SH)
    _cache.flush()
    data = _load(_file(cache_home, "elf"))
    assert isinstance(data, dict) and len(data) >= 1
    _write(_file(cache_home, "elf"), {k: ["x", None] for k in data})
    monkeypatch.setattr(_cache.ELF, "_entries", None)
    assert _parse_file(SH) == cold
    # the right shape, but a segment that would copy bytes from beyond the file's end
    bad = _elf._to_cache(cold)
    bad[4][0][2] = bad[4][0][3] = 1 << 40
    _write(_file(cache_home, "elf"), dict.fromkeys(data, bad))
    monkeypatch.setattr(_cache.ELF, "_entries", None)
    assert _parse_file(SH) == cold


def test_warm_parse_equals_cold_and_skips_pyelftools(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = _parse_file(SH)
    assert cold.interp is not None  # a dynamic program: its interpreter is cached too
    cold_interp = _parse_file(cold.interp)
    _cache.flush()
    assert _file(cache_home, "elf").exists()
    monkeypatch.setattr(_cache.ELF, "_entries", None)  # as a new process: from the file

    def no_parse(path: str, data: bytearray) -> _elf._Parsed:
        raise AssertionError(f"{path} parsed again although cached")

    monkeypatch.setattr(_elf, "_parse_headers", no_parse)
    assert _parse_file(SH) == cold
    assert _parse_file(cold.interp) == cold_interp


def test_stale_entry_is_not_used(cache_home: Path, tmp_path: Path) -> None:
    """The file changes (same size, mtime put back): the new headers are read, not the old ones."""
    prog = tmp_path / "prog"
    shutil.copy(SH, prog)
    before = _parse_file(str(prog))
    st = prog.stat()
    data = bytearray(prog.read_bytes())
    data[24:32] = (before.entry + 16).to_bytes(8, "little")  # e_entry
    prog.write_bytes(bytes(data))
    os.utime(prog, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _parse_file(str(prog)).entry == before.entry + 16


def test_cache_off_and_unwritable_directory(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(_cache.ENV, "0")
    _parse_file(SH)
    _cache.flush()
    assert not cache_home.exists()
    monkeypatch.delenv(_cache.ENV)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache dir would be under a file
    cold = _parse_file(SH)
    _cache.flush()  # cannot write: no error
    assert _parse_file(SH) == cold


@requires_sud
def test_cache_file_contents_are_the_planner_s_decisions(tmp_path: Path) -> None:
    """After real runs, every cached plan is what the planner says for the same bytes now."""
    runs = _runs(tmp_path, DD_ARGS, rewrite=True)
    assert runs[0]["sites"] == runs[1]["sites"] == runs[2]["sites"]
    assert all(r["rc"] == 0 for r in runs)
    plans = _load(_file(tmp_path / "xdg" / "pysud", "plan"))
    assert isinstance(plans, dict)
    assert plans, "the run consulted the planner: dd has hot sites no C pattern covers"
    for key, value in plans.items():
        mod, before, after = key.split(":")
        end = 0x7F0000000000 + int(mod)
        fresh = _rewrite.plan(end, bytes.fromhex(before), bytes.fromhex(after))
        assert (fresh if isinstance(fresh, int) else list(fresh)) == value, key


_PROBE = """
import json, sys
from pysud.cli import main
from pysud import _rewrite
rc = main(sys.argv[1:])
sites = sorted([s.end % 4096, s.nr, s.patched, s.reason] for s in _rewrite.sites())
mods = sorted(m for m in ("elftools", "capstone") if m in sys.modules)
print("PROBE " + json.dumps({"rc": rc, "sites": sites, "mods": mods}), file=sys.stderr)
"""


def _runs(tmp_path: Path, argv: list[str], *, rewrite: bool) -> list[dict[str, object]]:
    """Cold, warm and cache-off runs of the same program under pysud: what each saw and printed."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop(_cache.ENV, None)
    env[_rewrite.ENV] = "1" if rewrite else "0"  # as asked, also in the suite's PYSUD_REWRITE=0 pass
    args = ["run", *([] if rewrite else ["--no-rewrite"]), *argv]
    out = []
    for off in (False, False, True):
        e = dict(env, **({_cache.ENV: "0"} if off else {}))
        r = subprocess.run(
            [sys.executable, "-c", _PROBE, *args], env=e, capture_output=True, text=True, timeout=120
        )
        probe = [line for line in r.stderr.splitlines() if line.startswith("PROBE ")]
        assert probe, r.stderr
        out.append({**json.loads(probe[0][6:]), "stdout": r.stdout})
    return out


@requires_sud
@pytest.mark.parametrize("rewrite", [True, False], ids=["rewrite", "no-rewrite"])
def test_cold_warm_and_off_runs_behave_alike(rewrite: bool, tmp_path: Path) -> None:
    native = subprocess.run([SH, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    cold, warm, off = _runs(tmp_path, [SH, "-c", SCRIPT], rewrite=rewrite)
    for run in (cold, warm, off):
        assert (run["rc"], run["stdout"]) == (native.returncode, native.stdout) == (3, "cached\n")
    assert cold["sites"] == warm["sites"] == off["sites"]
    if rewrite:
        assert cold["sites"], "the rewrite examined sites"
    assert "elftools" in cold["mods"] and "elftools" in off["mods"]
    assert "elftools" not in warm["mods"]  # the headers came from the cache
    if not rewrite:
        assert "capstone" not in warm["mods"]
    assert _file(tmp_path / "xdg" / "pysud", "elf").exists()


@requires_sud
def test_run_with_an_unwritable_cache_directory(tmp_path: Path) -> None:
    """HOME is a file (no ~/.cache can be made) and no XDG_CACHE_HOME: the program still runs."""
    home = tmp_path / "home"
    home.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    env["HOME"] = str(home)
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "run", SH, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (3, "cached\n"), r.stderr
    assert "Traceback" not in r.stderr


def _identity(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:"


@requires_sud
def test_forked_child_and_death_by_signal_keep_what_they_learned(tmp_path: Path) -> None:
    """The ways out that skip atexit (a forked child's os._exit, dying of the program's signal)
    write the cache too: the program a child exec'd, and the one that died, are in it."""
    true = shutil.which("true") or "/bin/true"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop(_cache.ENV, None)
    script = f"{true}; echo child-done; kill -TERM $$"
    native = subprocess.run([SH, "-c", script], capture_output=True, text=True, timeout=60)
    r = subprocess.run(
        [sys.executable, "-m", "pysud", "run", SH, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (native.returncode, native.stdout) == (-15, "child-done\n"), r.stderr
    keys = _load(_file(tmp_path / "xdg" / "pysud", "elf"))
    assert isinstance(keys, dict)
    for path in (true, SH):
        assert any(k.startswith(_identity(os.path.realpath(path))) for k in keys), path


def test_two_writers_merge_and_the_oldest_entries_go(cache_home: Path) -> None:
    first, second = _cache.Store("t", 1, 3), _cache.Store("t", 1, 3)
    assert first.get("a") is None and second.get("z") is None  # both read the (empty) file
    first.put("a", 1)
    first.save()
    second.put("b", 2)
    second.save()  # merged with what first wrote meanwhile
    assert _load(_file(cache_home, "t")) == {"a": 1, "b": 2}
    for i, key in enumerate("cde"):
        second.put(key, i)
    second.save()
    assert _load(_file(cache_home, "t")) == {"c": 0, "d": 1, "e": 2}
    assert not [p for p in cache_home.iterdir() if p.name.endswith(".tmp")]
