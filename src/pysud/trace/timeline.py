"""`pysud trace --timeline FILE`: the run as Chrome/Perfetto trace-event JSON.

One track per thread (pid = the process, tid = the thread), a complete event ("X") per system
call with its arguments and result, instant events ("i") for signals and process exits, and a
counter ("C") of calls per second per process. ui.perfetto.dev and chrome://tracing open it.
Forked children append their events to a side file that the first process merges at the end.
"""

from __future__ import annotations

import json
import os
from typing import Any


class Timeline:
    """Events collected in memory, written as one JSON object by ``write()``."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.events: list[dict[str, Any]] = []
        self.root_pid = os.getpid()
        import tempfile  # (here: pysud trace without --timeline does not need it)

        self._side = tempfile.mkstemp(prefix="pysud-timeline-")[1]
        self._keep = True
        self._threads: set[tuple[int, int]] = set()

    def _thread(self, pid: int, tid: int) -> None:
        if (pid, tid) not in self._threads:
            self._threads.add((pid, tid))
            name = "main" if pid == tid else f"thread {tid}"
            self.events.append(
                {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}}
            )

    def call(self, pid: int, tid: int, name: str, args: str, result: str, when_ns: int, dur_ns: int) -> None:
        if not self._keep:
            return
        self._thread(pid, tid)
        if name == "execve" and result == "0" and args.startswith('"'):
            # the process's track is named after the program it runs (its latest execve)
            program = args[1 : args.find('"', 1)].rsplit("/", 1)[-1]
            self.events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": program}})
        self.events.append(
            {
                "ph": "X",
                "cat": "syscall",
                "name": name,
                "pid": pid,
                "tid": tid,
                "ts": when_ns / 1000,
                "dur": max(dur_ns, 0) / 1000,
                "args": {"args": args, "result": result},
            }
        )

    def instant(self, pid: int, tid: int, name: str, args: dict[str, str], when_ns: int) -> None:
        if not self._keep:
            return
        self._thread(pid, tid)
        cat = "signal" if name.startswith("SIG") else "process"
        self.events.append(
            {
                "ph": "i",
                "s": "t",
                "cat": cat,
                "name": name,
                "pid": pid,
                "tid": tid,
                "ts": when_ns / 1000,
                "args": args,
            }
        )

    def in_child(self, follow: bool) -> None:
        """First thing in a forked child: its own events only (none without -f)."""
        self.events = []
        self._threads = set()
        self._keep = follow

    def save_child(self) -> None:
        """A forked child's events, appended to the side file the first process merges."""
        if not self.events:
            return
        data = "".join(json.dumps(e) + "\n" for e in self.events).encode()
        self.events = []
        fd = os.open(self._side, os.O_WRONLY | os.O_APPEND)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)

    def write(self) -> None:
        """The whole run (this process and the children that saved theirs) to the file."""
        if os.getpid() != self.root_pid:
            self.save_child()
            return
        events = list(self.events)
        try:
            with open(self._side) as f:
                events += [json.loads(line) for line in f if line.strip()]
            os.unlink(self._side)
        except OSError:
            pass
        events += _counters(events)
        with open(self.path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns"}, f)


def _counters(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A "calls per second" counter per process, one sample per second of the run."""
    per: dict[int, dict[int, int]] = {}
    for e in events:
        if e.get("ph") == "X":
            sec = int(e["ts"] // 1_000_000)
            bucket = per.setdefault(e["pid"], {})
            bucket[sec] = bucket.get(sec, 0) + 1
    out = []
    for pid, buckets in per.items():
        first, last = min(buckets), max(buckets)
        for sec in range(first, last + 2):  # the last sample ends the series at 0
            out.append(
                {
                    "ph": "C",
                    "name": "calls/s",
                    "pid": pid,
                    "ts": sec * 1_000_000,
                    "args": {"calls": buckets.get(sec, 0)},
                }
            )
    return out
