"""Batch adjudication: a Parquet file of claim lines in, a Parquet file of decisions out.

`run_batch` takes the claim lines in partitions of whole families
(openhmo.batch.partition: runs of row groups of a file written in family order, or a
split by a hash of the family), decides one partition at a time with the engine's batch path
(openhmo.adjudication.engine.decide), and writes the line decisions and the new state
(accumulators, visit counts, referral visits) once every partition is decided. Memory
holds the context and one partition, whatever the size of the file.

Outputs are replaced atomically. Everything is written under a work directory beside
the decisions file first; then a commit journal names the renames that publish it, and
the renames run. A crash before the journal leaves the previous outputs as they were
(the next run removes the orphaned work directory); a crash after it is finished by the
next run (or `recover`) before it does anything else, so a reader never finds new
decisions with old state for longer than it takes to run again. Runs on the same
outputs take a lock, so two of them cannot interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from openhmo.adjudication import plan_tables
from openhmo.adjudication.context import CLAIM_LINES, SCHEMAS, Context
from openhmo.adjudication.decisions import LINE_DECISIONS
from openhmo.batch.partition import partitions_of
from openhmo.batch.snapshot import replace_directory
from openhmo.batch.workers import THREADS, decide_parts

STATE_TABLES = ("accumulators", "visit_usage", "referral_usage")
# The order the new state tables are written in (here and on Spark).
STATE_ORDER = {
    "accumulators": ["family_id", "member_id", "plan_key", "plan_year", "pool", "kind"],
    "visit_usage": ["member_id", "plan_year", "category"],
    "referral_usage": ["referral_number"],
}
# A partition of about this many lines keeps a run's memory near 1 GB (see bench/).
PARTITION_LINES = 250_000


class BatchError(ValueError):
    pass


@dataclass(kw_only=True)
class RunTotals:
    """What a batch run decided, in sum (here and on Spark)."""

    lines: int = 0
    partitions: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)
    charged_cents: int = 0
    plan_paid_cents: int = 0
    member_share_cents: int = 0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def add(self, status: str | None, lines: int, charged: int, paid: int, share: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + lines
        self.lines += lines
        self.charged_cents += charged or 0
        self.plan_paid_cents += paid or 0
        self.member_share_cents += share or 0


@dataclass(kw_only=True)
class BatchSummary(RunTotals):
    decisions: Path
    state: Path


def default_state_dir(decisions: str | Path) -> Path:
    """Where the new state goes beside `decisions`: DECISIONS.parquet → DECISIONS.state/."""
    decisions = Path(decisions)
    return decisions.with_name(f"{decisions.stem}.state")


def run_batch(
    claims: str | Path,
    decisions: str | Path,
    context: Context,
    *,
    state: str | Path | None = None,
    partition_lines: int = PARTITION_LINES,
    progress: Callable[[str, int, int], None] | None = None,
    after_partition: Callable[[int], None] | None = None,
    workers: int = 1,
    threads: int = THREADS,
) -> BatchSummary:
    """Decide every line of the Parquet file `claims` under `context`.

    Writes the line decisions (LINE_DECISIONS) to `decisions` and the new accumulators,
    visit counts and referral visits, as Parquet, to the directory `state` (default:
    beside `decisions`). `progress(phase, done, total)` is told the lines split and
    decided. `after_partition(n)` is called after the n-th partition is decided.
    `workers` > 1 decides that many partitions at once, in worker processes, and
    otherwise `threads` partitions at once on threads (openhmo.batch.workers); the
    outputs are the same.
    """
    claims, decisions = Path(claims), Path(decisions)
    state = Path(state) if state else default_state_dir(decisions)
    _check_claims(claims)
    started = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    with _locked(decisions):
        recover(decisions)
        _remove_orphans(decisions)
        work = decisions.with_name(f".{decisions.name}.run-{uuid.uuid4().hex[:12]}")
        work.mkdir(parents=True)
        total = pq.ParquetFile(claims).metadata.num_rows
        report("split", 0, total)
        parts = partitions_of(
            claims, context.eligibility, work / "parts", partition_lines=partition_lines
        )
        report("split", total, total)
        tables = plan_tables.build(context.designs)
        summary = BatchSummary(decisions=decisions, state=state, partitions=len(parts))
        results: dict[str, list[pl.DataFrame]] = {name: [] for name in STATE_TABLES}
        decided_families: list[pl.Series] = []
        decided_members: list[pl.Series] = []
        schema = pa.schema(pl.DataFrame(schema=LINE_DECISIONS).to_arrow().schema)
        with _Writer(work / "decisions.parquet", schema) as writer:
            decided = decide_parts(parts, context, tables, workers=workers, threads=threads)
            for n, part in enumerate(decided, start=1):
                if part.result is not None:
                    writer.write_table(part.result.decisions.to_arrow().cast(schema))
                    for name in STATE_TABLES:
                        results[name].append(getattr(part.result, name))
                    decided_families.append(part.families)
                    decided_members.append(part.members)
                    _count(summary, part.result.decisions)
                report("decide", summary.lines, total)
                _crash_point(f"partition:{n}")
                if after_partition is not None:
                    after_partition(n)
        _write_state(work / "state", context, results, decided_families, decided_members)
        shutil.rmtree(work / "parts", ignore_errors=True)
        _commit(work, decisions, state)
    summary.seconds = time.perf_counter() - started
    return summary


# The decisions' columns whose minimum and maximum each row group records, for readers
# that look for a claim, member, family, plan, status or category. Statistics of every
# column were a sixth of the writer's time (texts such as the explanation parameters).
STATISTICS = ["claim_id", "member_id", "family_id", "plan_key", "plan_year", "status", "category"]


class _Writer:
    """A Parquet writer on a thread of its own: a partition's decisions are encoded and
    written while the next partition is decided (pyarrow lets go of the GIL). At most one
    table waits, so memory stays bounded; an error of the writer is raised here."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema, write_statistics=STATISTICS)
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_table(table)
                except BaseException as exc:  # kept, and raised in the run's thread
                    self._error = exc

    def write_table(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None and exc[0] is None:
            raise self._error


def _check_claims(path: Path) -> None:
    if not path.exists():
        raise BatchError(f"{path}: no such claims file")
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # pyarrow and polars raise several kinds for a bad file
        raise BatchError(f"{path}: not a Parquet file ({exc})") from None
    missing = [c for c in CLAIM_LINES if c not in schema]
    if missing:
        raise BatchError(f"{path}: claim lines lack the column(s) {', '.join(missing)}")
    wrong = [f"{c} is {schema[c]}, expected {t}" for c, t in CLAIM_LINES.items() if schema[c] != t]
    if wrong:
        raise BatchError(f"{path}: " + "; ".join(wrong))


def _count(summary: RunTotals, decisions: pl.DataFrame) -> None:
    by_status = decisions.group_by("status").agg(
        pl.len(),
        pl.col("charge_cents").sum(),
        pl.col("plan_paid_cents").sum(),
        pl.col("member_share_cents").sum(),
    )
    for row in by_status.iter_rows():
        summary.add(*row)


def _write_state(
    directory: Path,
    context: Context,
    results: dict[str, list[pl.DataFrame]],
    families: list[pl.Series],
    members: list[pl.Series],
) -> None:
    """The new state: each decided family's from its partition, the rest as it was."""
    directory.mkdir()
    decided_families = pl.concat(families) if families else pl.Series([], dtype=pl.Int64)
    decided_members = pl.concat(members) if members else pl.Series([], dtype=pl.Int64)
    numbers = (
        pl.concat([r["referral_number"] for r in results["referral_usage"]])
        if families
        else (pl.Series([], dtype=pl.String))
    )
    untouched = {
        "accumulators": context.accumulators.filter(
            ~pl.col("family_id").is_in(decided_families.implode())
        ),
        "visit_usage": context.visit_usage.filter(
            ~pl.col("member_id").is_in(decided_members.implode())
        ),
        "referral_usage": context.referral_usage.filter(
            ~pl.col("referral_number").is_in(numbers.implode())
        ),
    }
    for name in STATE_TABLES:
        table = pl.concat([untouched[name], *results[name]]).sort(
            STATE_ORDER[name], nulls_last=False
        )
        table.select([pl.col(c).cast(t) for c, t in SCHEMAS[name].items()]).write_parquet(
            directory / f"{name}.parquet"
        )
    (directory / "MANIFEST.json").write_text(
        json.dumps({"tables": list(STATE_TABLES)}, indent=1), encoding="utf-8"
    )


def _journal(decisions: Path) -> Path:
    return decisions.with_name(f".{decisions.name}.commit")


def _commit(work: Path, decisions: Path, state: Path) -> None:
    moves = [[str(work / "decisions.parquet"), str(decisions)], [str(work / "state"), str(state)]]
    journal = _journal(decisions)
    staging = journal.with_name(journal.name + ".tmp")
    with open(staging, "w", encoding="utf-8") as f:
        json.dump({"work": str(work), "moves": moves}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, journal)  # from here on, the run is done: recovery rolls forward
    _crash_point("commit")
    _roll_forward(journal)


def _roll_forward(journal: Path) -> None:
    plan = json.loads(journal.read_text("utf-8"))
    for source, target in plan["moves"]:
        source, target = Path(source), Path(target)
        if source.exists():  # not yet moved (a crash between the moves)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                replace_directory(source, target)
            else:
                os.replace(source, target)
            _crash_point("move")
    os.remove(journal)
    shutil.rmtree(plan["work"], ignore_errors=True)


def recover(decisions: str | Path) -> bool:
    """Finish a commit that a crash interrupted; whether there was one to finish."""
    journal = _journal(Path(decisions))
    if journal.exists():
        _roll_forward(journal)
        return True
    return False


def _remove_orphans(decisions: Path) -> None:
    """Work directories of runs that died before their commit (the lock is ours)."""
    for orphan in decisions.parent.glob(f".{decisions.name}.run-*"):
        shutil.rmtree(orphan, ignore_errors=True)


@contextmanager
def _locked(decisions: Path) -> Iterator[None]:
    decisions.parent.mkdir(parents=True, exist_ok=True)
    with open(decisions.with_name(f".{decisions.name}.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(f"another batch run is writing {decisions}") from None
        yield


def _crash_point(name: str) -> None:
    """Fault injection for the crash-safety tests: OPENHMO_BATCH_CRASH_AT=<name> kills
    the process here, as a power cut would (no cleanup, no exception handlers)."""
    if os.environ.get("OPENHMO_BATCH_CRASH_AT") == name:
        os.kill(os.getpid(), 9)
