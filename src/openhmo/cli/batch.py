"""`openhmo claims adjudicate-batch` and `openhmo claims export`: adjudication by the file.

A batch run reads claim lines from Parquet and its context from a snapshot directory
(`--context`) or, without one, from the database; it writes line decisions to Parquet
and the new accumulators beside them (openhmo.batch.runner). `export` writes the
database's claims and context to those files, for a batch run elsewhere (Spark).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from openhmo.adjudication.context import Context
from openhmo.batch.partition import write_in_family_order
from openhmo.batch.runner import PARTITION_LINES, BatchError, run_batch
from openhmo.batch.snapshot import SnapshotError, read_snapshot, write_snapshot
from openhmo.batch.workers import THREADS
from openhmo.claims.export import claims_of, codes_of, context_of
from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.money import format_money


def load_context(context: Path | None, purpose: str, claims: Path) -> Context:
    """The snapshot in `context`, or (None) the database's, audited."""
    if context is not None:
        try:
            return read_snapshot(context)
        except (SnapshotError, OSError) as exc:
            raise fail(str(exc)) from None
    codes = codes_of(pl.scan_parquet(claims))
    with unit_of_work() as session:
        return context_of(session, actor=actor(), purpose=purpose, codes=codes)


def adjudicate_batch(
    claims: Path = typer.Option(
        ..., "--claims", exists=True, dir_okay=False, help="claim lines (Parquet)"
    ),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="line decisions (Parquet)"),
    context: Path | None = typer.Option(
        None, "--context", file_okay=False, help="context snapshot (default: the database)"
    ),
    state: Path | None = typer.Option(
        None, "--state", file_okay=False, help="new accumulators (default: OUT's stem.state/)"
    ),
    partition_lines: int = typer.Option(
        PARTITION_LINES, min=1000, help="about this many lines per family partition"
    ),
    workers: int = typer.Option(
        1,
        min=1,
        help="partitions decided at once, in worker processes (faster on many cores; "
        "each worker holds the context and a partition: about 1 GB)",
    ),
    threads: int = typer.Option(
        THREADS,
        min=1,
        help="partitions decided at once on threads of one process (with one worker)",
    ),
) -> None:
    """Adjudicate a Parquet file of claim lines, family partition by partition."""
    ctx = load_context(context, "batch adjudication", claims)
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        try:
            summary = run_batch(
                claims,
                out,
                ctx,
                state=state,
                partition_lines=partition_lines,
                progress=progress,
                workers=workers,
                threads=threads,
            )
        except BatchError as exc:
            raise fail(str(exc)) from None
    table = Table("batch run", "", title=None)
    table.add_row("lines", f"{summary.lines:,}")
    table.add_row("family partitions", str(summary.partitions))
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("lines per second", f"{summary.lines_per_second:,.0f}")
    for status, n in sorted(summary.by_status.items()):
        table.add_row(f"  {status}", f"{n:,}")
    table.add_row("charged", format_money(summary.charged_cents))
    table.add_row("plan paid", format_money(summary.plan_paid_cents))
    table.add_row("member share", format_money(summary.member_share_cents))
    console.print(table)
    console.print(f"decisions: {summary.decisions}\nnew state: {summary.state}", highlight=False)


def export(
    claims_out: Path = typer.Option(..., "--claims-out", dir_okay=False),
    context_out: Path = typer.Option(..., "--context-out", file_okay=False),
    year: int | None = typer.Option(None, help="only claims with a line of service in YEAR"),
) -> None:
    """Write the database's claims (Parquet) and context (a snapshot) for batch runs."""
    with unit_of_work() as session:
        with console.status("reading claims"):
            lines = claims_of(session, year=year)
        with console.status("reading the context"):
            ctx = context_of(session, actor=actor(), purpose="claims export", codes=codes_of(lines))
    claims_out.parent.mkdir(parents=True, exist_ok=True)
    # In family order, row groups of whole families: a batch run reads it in place.
    write_in_family_order(lines, ctx.eligibility, claims_out)
    write_snapshot(ctx, context_out, note=f"openhmo claims export (year {year or 'all'})")
    console.print(
        f"{lines.height:,} claim lines → {claims_out}; context of "
        f"{ctx.eligibility['member_id'].n_unique():,} members → {context_out}",
        highlight=False,
    )
