"""Deciding a batch run's partitions, one after another or side by side.

Polars spreads one engine call over the cores poorly (its steps are many and short:
two cores decide a partition only about 1.3 times as fast as one), so a batch run on a
machine of several cores decides several partitions at once instead: a pool of worker
processes, each holding the context and running the engine with Polars on one thread.
Partitions are independent (openhmo.batch.partition), so this changes no decision;
results come back in partition order, so the output is the same file.

A worker reads its partition's lines itself (a slice of the claims file, or the split's
files) and sends back only the decisions and the new state. At most one partition per
worker waits, decided, for the caller, so memory stays bounded.

In one process, two partitions are decided at once on two threads (THREADS): Polars
lets go of the GIL while it works, so one partition's Python steps run while the
other's Polars work fills the cores. On this project's two cores that is up to 17% more
lines a second than one partition at a time (most on long runs), for a second
partition's working set (docs/batch.md); a worker process decides one at a time.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import polars as pl

from openhmo.adjudication import plan_tables
from openhmo.adjudication.context import Context
from openhmo.adjudication.decisions import Decided
from openhmo.adjudication.engine import decide
from openhmo.batch.partition import Part
from openhmo.batch.snapshot import only_families


@dataclass
class PartDecided:
    """One partition's outcome: the engine's, and which families and members it decided
    (their starting state is replaced by the engine's)."""

    lines: int
    result: Decided | None
    families: pl.Series
    members: pl.Series


def decide_part(part: Part, context: Context, tables: dict) -> PartDecided:
    """Read `part`, free what it took on disk, and decide its lines."""
    lines = part.read()
    part.discard()
    return decide_lines(lines, context, tables)


def decide_lines(lines: pl.DataFrame, context: Context, tables: dict) -> PartDecided:
    """Decide a partition's lines (whole family groups) against the context narrowed to
    their families: what a run does with each partition, here and on Spark."""
    if not lines.height:
        empty = pl.Series(dtype=pl.Int64)
        return PartDecided(0, None, empty, empty)
    families = context.eligibility.filter(
        pl.col("member_number").is_in(lines["member_number"].unique().implode())
    )["family_id"].unique()
    narrowed = only_families(context, families)
    result = decide(lines, narrowed, tables)
    return PartDecided(lines.height, result, families, narrowed.eligibility["member_id"].unique())


# Partitions decided at once, each on a thread of its own, in one process.
THREADS = 2


def decide_parts(
    parts: Iterable[Part],
    context: Context,
    tables: dict,
    *,
    workers: int = 1,
    threads: int = THREADS,
) -> Iterator[PartDecided]:
    """Each partition decided, in order: here on `threads` threads, or (workers > 1) in
    that many processes."""
    parts = list(parts)
    if workers <= 1:
        if threads <= 1 or len(parts) <= 1:
            for part in parts:
                yield decide_part(part, context, tables)
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="openhmo-decide") as pool:
            yield from _in_order(
                pool, partial(decide_part, context=context, tables=tables), parts, threads
            )
        return
    workers = min(workers, len(parts))
    # spawn, not fork: a forked Polars inherits a thread pool it cannot use. The workers
    # start with Polars on one thread (read when Polars is first imported).
    with (
        _environment(POLARS_MAX_THREADS="1"),
        ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(context, os.getpid()),
        ) as pool,
    ):
        yield from _in_order(pool, _decide_in_worker, parts, workers + 1)


def _in_order(pool: Executor, decide_one, parts: list[Part], ahead: int) -> Iterator[PartDecided]:
    """`decide_one` of each part on `pool`, yielded in order, with at most `ahead`
    partitions submitted and not yet taken."""
    waiting: deque[Future] = deque()
    queue = iter(parts)
    for part in queue:
        waiting.append(pool.submit(decide_one, part))
        if len(waiting) >= ahead:
            break
    while waiting:
        done = waiting.popleft().result()
        part = next(queue, None)
        if part is not None:
            waiting.append(pool.submit(decide_one, part))
        yield done


_WORKER: dict = {}


def _start_worker(context: Context, parent: int) -> None:
    _die_with(parent)
    _WORKER["context"] = context
    _WORKER["tables"] = plan_tables.build(context.designs)


def _decide_in_worker(part: Part) -> PartDecided:
    return decide_part(part, _WORKER["context"], _WORKER["tables"])


def _die_with(parent: int) -> None:
    """End this worker when the run's process ends, however it ends: a run killed midway
    (a crash, SIGKILL) must not leave workers deciding for nobody, holding its memory and
    its output pipes. Linux tells a child of its parent's death (PR_SET_PDEATHSIG);
    elsewhere, or if the parent died first, a thread watches the parent's id."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
