"""`openhmo what-if`: re-adjudicate a year of claims under a changed plan design.

Reads the claims and context from the database (the families ever on the plan) or
from files (`--claims` Parquet and a `--context` snapshot), decides the year twice, and
shows the change in plan and member cost, in total and by service category
(openhmo.batch.whatif).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.batch.snapshot import SnapshotError, read_snapshot
from openhmo.batch.whatif import WhatIfError, what_if
from openhmo.claims.export import claims_of, codes_of, context_of
from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.enrollment.models import Coverage
from openhmo.money import format_money
from openhmo.plans.loader import PlanDesignError, load_design
from openhmo.plans.models import Plan
from openhmo.plans.store import UnknownPlan, design_of, get_plan


def what_if_command(
    plan: Path = typer.Option(
        ..., "--plan", exists=True, dir_okay=False, help="the changed plan design (YAML)"
    ),
    year: int = typer.Option(..., "--year", help="the plan year to re-adjudicate"),
    claims: Path | None = typer.Option(
        None, "--claims", exists=True, dir_okay=False, help="claim lines (Parquet)"
    ),
    context: Path | None = typer.Option(
        None, "--context", file_okay=False, help="context snapshot (with --claims)"
    ),
    csv: Path | None = typer.Option(None, "--csv", dir_okay=False, help="write the table here"),
) -> None:
    """What the plan and its members would have paid in YEAR under the design in PLAN."""
    try:
        design = load_design(plan)
    except PlanDesignError as exc:
        raise fail(str(exc)) from None
    if (claims is None) != (context is None):
        raise fail("--claims and --context go together (without both: the database)")
    if claims is not None and context is not None:
        try:
            ctx = read_snapshot(context)
        except (SnapshotError, OSError) as exc:
            raise fail(str(exc)) from None
        lines = pl.read_parquet(claims)
    else:
        with unit_of_work() as session, console.status("reading the plan's claims"):
            try:
                current = design_of(get_plan(session, design.id))
            except UnknownPlan as exc:
                raise fail(str(exc)) from None
            years = [y for y in current.plan_years if y.year == year]
            if not years:
                raise fail(f"plan {design.id!r} has no plan year {year} in the database")
            families = _families_on(session, design.id)
            lines = claims_of(
                session, between=(years[0].starts, years[0].ends), family_ids=families
            )
            ctx = context_of(
                session,
                actor=actor(),
                purpose="what-if",
                family_ids=families,
                codes=codes_of(lines),
            )
    with console.status(f"deciding {lines.height:,} claim lines twice"):
        try:
            result = what_if(lines, ctx, design, year)
        except WhatIfError as exc:
            raise fail(str(exc)) from None
    table = Table(
        "category",
        "lines",
        "plan paid",
        "→ new",
        "change",
        "members paid",
        "→ new",
        "change",
        title=f"{design.id} {year}: {design.name} as in {plan.name}",
    )
    for row in result.by_category.iter_rows(named=True):
        style = "bold" if row["category"] == "total" else None
        table.add_row(
            row["category"],
            f"{row['lines']:,}",
            format_money(row["plan_before"]),
            format_money(row["plan_after"]),
            _change(row["plan_change"]),
            format_money(row["member_before"]),
            format_money(row["member_after"]),
            _change(row["member_change"]),
            style=style,
        )
    console.print(table)
    if result.status_changes.height:
        changes = Table("status before", "after", "lines", title="lines whose status changed")
        for row in result.status_changes.iter_rows(named=True):
            changes.add_row(str(row["before"]), str(row["after"]), f"{row['lines']:,}")
        console.print(changes)
    if csv is not None:
        result.by_category.write_csv(csv)
        console.print(f"table written to {csv}", highlight=False)


def _change(cents: int) -> str:
    if cents == 0:
        return "—"
    text = format_money(cents)
    return f"[red]+{text}[/]" if cents > 0 else f"[green]{text}[/]"


def _families_on(session: Session, plan_key: str) -> list[int]:
    """Every family (subscriber) that ever had coverage on the plan."""
    return list(
        session.scalars(
            select(Coverage.subscriber_id)
            .join(Plan, Plan.id == Coverage.plan_id)
            .where(Plan.plan_key == plan_key)
            .distinct()
        )
    )
