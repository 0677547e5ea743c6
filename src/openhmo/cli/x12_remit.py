"""`openhmo x12 remit`: the payment run, one 835 (005010X221A1) file per payee.

The run is one transaction (`openhmo.remittance.service.run_remittance`); each payee's
interchange is stored with it, written to --out only after the commit (so a file on
disk is always a payment on record), and read back to check that it balances.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.interop.x12.remit835 import check_balance
from openhmo.money import format_money
from openhmo.remittance.service import run_remittance


def _write(path: Path, content: str) -> None:
    # Written whole or not at all: a reader never sees half an interchange.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(content, encoding="ascii", errors="replace")
    os.replace(partial, path)


def remit(
    out: Path = typer.Option(..., "--out", file_okay=False, help="directory for the 835 files"),
    payment_date: str = typer.Option(
        None, "--payment-date", help="check or EFT date, YYYY-MM-DD (default: today)"
    ),
    database: str | None = typer.Option(
        None, "--database", help="database URL (default: OPENHMO_DATABASE_URL or ./openhmo.db)"
    ),
) -> None:
    """Pay every adjudicated claim not yet remitted: one 835 per payee into --out.

    Claims remitted before whose decisions changed since (a replacement, a void, a
    staff decision, a re-adjudication) are reversed and paid again. Running it twice
    pays nothing twice: the second run finds nothing new.
    """
    try:
        day = date.fromisoformat(payment_date) if payment_date else date.today()
    except ValueError:
        raise fail(f"--payment-date {payment_date!r} is not a date (YYYY-MM-DD)") from None
    out.mkdir(parents=True, exist_ok=True)
    with unit_of_work(database) as session:
        report = run_remittance(session, payment_date=day, actor=actor())
    table = Table(
        "payee NPI",
        "payee",
        "trace",
        "method",
        "claims",
        "reversals",
        "claims paid",
        "adjustments",
        "payment",
        "file",
        title=f"Remittance, paid {day.isoformat()}",
    )
    unbalanced: list[str] = []
    for p in report.payees:
        r = p.remittance
        path = out / f"835-{r.trace_number}-{r.payee.npi}.x12"
        _write(path, p.x12)
        unbalanced.extend(f"{path.name}: {problem}" for problem in check_balance(path))
        table.add_row(
            r.payee.npi,
            r.payee.name,
            r.trace_number,
            r.payment_method,
            str(len(r.claims)),
            str(p.reversals),
            format_money(r.claims_paid_cents),
            format_money(-r.adjustments_cents),
            format_money(r.total_paid_cents),
            path.name,
        )
    if report.payees:
        console.print(table)
        console.print(
            f"{len(report.payees)} payees, {report.claims} claims, "
            f"{format_money(report.total_paid_cents)} paid; files in {out}"
        )
    else:
        console.print("Nothing to remit: every adjudicated claim has been remitted.")
    if report.recorded:
        console.print(f"{report.recorded} claims with new decisions that change no payment")
    for problem in report.problems:
        console.print(f"[yellow]{problem}[/]", highlight=False)
    for problem in unbalanced:
        console.print(f"[red]{problem}[/]", highlight=False)
    if unbalanced:
        raise fail("an 835 written does not balance (see above)")
