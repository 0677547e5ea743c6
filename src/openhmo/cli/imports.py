"""`openhmo import`: bring outside data sets in as members and providers.

`openhmo import synthea DIR` loads a Synthea CSV export (see openhmo.interop.synthea) in
one transaction. It exits 0 when every row went in (patients skipped by rule, such as
those who died before coverage, do not count against it), 3 when some rows were
rejected (the rest imported), 1 when the import could not run (nothing written).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.cli.common import actor, console, engine, fail
from openhmo.dates import first_of_next_month
from openhmo.db import transaction
from openhmo.interop.synthea import SyntheaImportError, SyntheaReport, import_synthea
from openhmo.plans.loader import PlanDesignError, example_designs, load_design
from openhmo.plans.models import Plan
from openhmo.plans.store import save_design

app = typer.Typer(
    help="Import outside data sets: Synthea patients and providers.", no_args_is_help=True
)

PARTIAL = 3


def _load_examples_if_missing(session: Session, plan_key: str) -> list[str]:
    """Store the shipped example plans when `plan_key` is not in the database yet, so the
    import works on a fresh database; plans already stored are left as they are."""
    if session.scalar(select(Plan.id).where(Plan.plan_key == plan_key)) is not None:
        return []
    stored = set(session.scalars(select(Plan.plan_key)))
    loaded = []
    for path in example_designs():
        design = load_design(path)
        if design.id not in stored:
            save_design(session, design, source=str(path), actor=actor())
            loaded.append(design.id)
    return loaded


def _show(report: SyntheaReport, network: str) -> None:
    def new(kind: str) -> str:
        return f"{report.added[kind]} new, {report.updated[kind]} updated"

    table = Table("imported", "count", "", title=f"Synthea import of {report.directory}")
    table.add_row("organizations", str(report.organizations), new("organization"))
    table.add_row("providers", str(report.providers), new("provider"))
    table.add_row(f"contracts in {network}", str(report.providers), new("contract"))
    table.add_row("members enrolled", str(report.enrolled), "")
    table.add_row("already enrolled", str(report.already_enrolled), "")
    table.add_row("PCP from encounter history", str(report.pcp_from_encounters), "")
    table.add_row("PCP auto-assigned", str(report.pcp_auto_assigned), "")
    table.add_row("no PCP available", str(report.pcp_none_available), "")
    table.add_row("patients skipped", str(report.skipped), "")
    table.add_row("patients refused", str(report.refused), "")
    console.print(table)
    # One line each, never wrapped, so every file and line can be found and copied.
    for skip in report.skips:
        console.print(f"[yellow]skipped[/] {skip}", highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"[yellow]note[/] {note}", highlight=False, soft_wrap=True)
    for rejection in report.rejections:
        console.print(f"[bold red]rejected[/] {rejection}", highlight=False, soft_wrap=True)
    console.print(f"{len(report.rejections)} rejected", highlight=False)


@app.command()
def synthea(
    directory: Annotated[Path, typer.Argument(help="a Synthea CSV export (patients.csv, ...)")],
    plan: Annotated[str, typer.Option(help="enroll the patients in this plan")] = (
        "openhmo-silver-hmo"
    ),
    effective: Annotated[
        str | None,
        typer.Option(
            help="coverage and contracts start (YYYY-MM-DD; default: the first of next month)"
        ),
    ] = None,
    network: Annotated[str, typer.Option(help="contract the providers in this network")] = (
        "openhmo-core"
    ),
    fee_schedule: Annotated[str | None, typer.Option(help="the contracts' fee schedule")] = None,
) -> None:
    """Load a Synthea export: organizations and providers, patients as members, their PCPs."""
    try:
        day = date.fromisoformat(effective) if effective else first_of_next_month(date.today())
    except ValueError:
        raise fail(f"--effective {effective!r} is not a date (YYYY-MM-DD)") from None
    try:
        with transaction(engine()) as session:
            loaded = _load_examples_if_missing(session, plan)
            report = import_synthea(
                session,
                directory,
                plan_key=plan,
                effective=day,
                network_key=network,
                fee_schedule_key=fee_schedule,
                actor=actor(),
            )
    except (SyntheaImportError, PlanDesignError) as exc:
        raise fail(str(exc)) from None
    if loaded:
        console.print(
            f"loaded the example plans {', '.join(loaded)}", highlight=False, soft_wrap=True
        )
    _show(report, network)
    if report.rejections:
        raise typer.Exit(PARTIAL)
