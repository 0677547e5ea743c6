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


def _processes() -> dict[int, tuple[int, str, float, float]]:
    """pid -> (parent pid, command name, its CPU seconds so far, and those of its
    children that have ended) of every process."""
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
        own = (int(fields[11]) + int(fields[12])) / tick
        ended = (int(fields[13]) + int(fields[14])) / tick
        found[int(entry.name)] = (int(fields[1]), head.partition("(")[2], own, ended)
    return found


def cpu_seconds(root: int | None = None, name: str | None = None) -> float:
    """CPU seconds used so far by process `root` and every process below it, or by the
    processes called `name` (PostgreSQL's), their threads and the children that have
    ended (a closed connection's backend) included."""
    found = _processes()
    if name is not None:
        tree = {pid for pid, (_, command, _, _) in found.items() if command == name}
        tops = {pid for pid in tree if found[pid][0] not in tree}
    else:
        tree, tops, grew = {root}, {root}, True
        while grew:
            more = {pid for pid, (parent, _, _, _) in found.items() if parent in tree} - tree
            tree |= more
            grew = bool(more)
    own = sum(found[pid][2] for pid in tree if pid in found)
    # A process that ended was counted in its parent's "ended" once waited for; only the
    # tops' are added, as the others' children are still running or already in a top's.
    return own + sum(found[pid][3] for pid in tops if pid in found)
