"""What the benchmarks share: a step run in a fresh process, the peak memory of a process
tree, the CPU time of processes, and the generator's lines per member (to size a world)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

# Lines per member-year of the generator's mix (about 12 claims of 1.4 lines), used only
# to size a world; the figures use the lines actually generated.
LINES_PER_MEMBER = 16.6


def run_child(script: Path, kind: str, env: dict | None = None, **arguments) -> dict:
    """Run `script --child kind ARGUMENTS` in a new Python process; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(script), "--child", kind, json.dumps(arguments)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if done.returncode:
        sys.exit(f"{kind} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class TreeMemory:
    """The largest resident memory of this process and all its descendants together (the
    JVM and Spark's Python workers), sampled from /proc every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.2):
            parents, rss = {}, {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                pid = int(entry.name)
                parents[pid] = int(fields[1])
                rss[pid] = int(fields[21]) * page
            tree, grew = {os.getpid()}, True
            while grew:
                more = {pid for pid, parent in parents.items() if parent in tree} - tree
                tree |= more
                grew = bool(more)
            self.peak = max(self.peak, sum(rss.get(pid, 0) for pid in tree))


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds so far) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, _, rest = (entry / "stat").read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        name = head.partition("(")[2]
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return found


def cpu_seconds(root: int | None = None, name: str | None = None) -> float:
    """CPU seconds used so far by process `root` and its descendants (their threads
    included; not descendants that have ended), or by every process called `name` (the
    PostgreSQL server's)."""
    found = _processes()
    if name is not None:
        return sum(cpu for _, command, cpu in found.values() if command == name)
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (parent, _, _) in found.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(found[pid][2] for pid in tree if pid in found)
