"""What the benchmarks share: a step run in a fresh process, the peak memory of a process
tree, the CPU time of processes, and the generator's lines per member (to size a world)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
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
        while not self._stop.wait(0.2):
            found = _processes()
            tree = _below(found, os.getpid())
            self.peak = max(self.peak, sum(found[pid].rss for pid in tree if pid in found))


@dataclass(frozen=True)
class _Process:
    parent: int
    name: str
    rss: int  # bytes
    cpu: float  # its own CPU seconds so far, all its threads
    ended_cpu: float  # those of its children that ended and were waited for


def _processes() -> dict[int, _Process]:
    """Every process, from /proc."""
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, _, rest = (entry / "stat").read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        found[int(entry.name)] = _Process(
            parent=int(fields[1]),
            name=head.partition("(")[2],
            rss=int(fields[21]) * page,
            cpu=(int(fields[11]) + int(fields[12])) / tick,
            ended_cpu=(int(fields[13]) + int(fields[14])) / tick,
        )
    return found


def _below(found: dict[int, _Process], root: int) -> set[int]:
    """`root` and every process below it."""
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, p in found.items() if p.parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def cpu_seconds(root: int | None = None, name: str | None = None) -> float:
    """CPU seconds used so far by process `root` and every process below it, or by the
    processes called `name` (PostgreSQL's), their threads and the children that have
    ended (a closed connection's backend) included."""
    found = _processes()
    if name is not None:
        tree = {pid for pid, p in found.items() if p.name == name}
        tops = {pid for pid in tree if found[pid].parent not in tree}
    else:
        tree, tops = _below(found, root), {root}
    own = sum(found[pid].cpu for pid in tree if pid in found)
    # A process that ended was counted in its parent's ended_cpu once waited for; only the
    # tops' are added, as the others' children are still running or already in a top's.
    return own + sum(found[pid].ended_cpu for pid in tops if pid in found)
