"""`openhmo billing`: premium invoices, payments, balances and grace periods."""

from __future__ import annotations

from datetime import date

import typer
from rich.table import Table
from sqlalchemy import select

from openhmo.billing.models import GracePeriod
from openhmo.billing.service import BillingError, balance, record_payment, run_billing
from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.enrollment.models import Coverage, Member
from openhmo.money import MoneyError, format_money, parse_money

app = typer.Typer(help="Premium billing.", no_args_is_help=True)


@app.command()
def run(
    through: str = typer.Option(..., help="bill every period that starts by this date"),
) -> None:
    """Issue the invoices due by a date and settle grace periods. Safe to run twice."""
    with unit_of_work() as session:
        report = run_billing(session, through=date.fromisoformat(through), actor=actor())
    table = Table("invoices", "billed", "grace periods started", "cured", "terminated", "voided")
    table.add_row(
        str(report.invoices),
        format_money(report.billed_cents),
        str(report.grace_periods_started),
        str(report.grace_periods_cured),
        str(report.terminated),
        str(report.voided),
    )
    console.print(table)
    for problem in report.problems:
        console.print(f"[yellow]{problem}[/]")


@app.command()
def pay(
    member_number: str,
    amount: str = typer.Option(..., help='e.g. "$482.00"'),
    on: str = typer.Option(..., help="YYYY-MM-DD"),
    reference: str = typer.Option(None),
    method: str = "ach",
) -> None:
    """Record a premium payment from a subscriber; it pays the oldest invoices first."""
    try:
        cents = parse_money(amount)
    except MoneyError as exc:
        raise fail(f"--amount: {exc}") from None
    with unit_of_work() as session:
        coverage = _coverage(session, member_number)
        try:
            record_payment(
                session,
                coverage_id=coverage.id,
                amount_cents=cents,
                method=method,
                received_on=date.fromisoformat(on),
                reference=reference,
                actor=actor(),
            )
        except BillingError as exc:
            raise fail(str(exc)) from None
        console.print(
            f"[green]✓[/] {format_money(cents)} received; balance now "
            f"{format_money(balance(session, coverage.id))}"
        )


def _coverage(session, member_number: str) -> Coverage:
    member = session.scalar(select(Member).where(Member.member_number == member_number))
    if member is None:
        raise fail(f"no member {member_number}")
    coverage = session.scalar(
        select(Coverage)
        .where(Coverage.subscriber_id == member.subscriber_id)
        .order_by(Coverage.effective_date.desc())
    )
    if coverage is None:
        raise fail(f"{member_number} has no coverage")
    return coverage


@app.command()
def status(member_number: str) -> None:
    """A subscriber's balance and grace periods."""
    with unit_of_work() as session:
        coverage = _coverage(session, member_number)
        console.print(f"balance: {format_money(balance(session, coverage.id))}")
        table = Table("grace period", "status", "resolved", "paid through")
        for grace in session.scalars(
            select(GracePeriod).where(GracePeriod.coverage_id == coverage.id)
        ):
            table.add_row(
                f"{grace.starts} to {grace.ends}",
                grace.status,
                str(grace.resolved_on or ""),
                str(grace.paid_through or ""),
            )
        console.print(table)
