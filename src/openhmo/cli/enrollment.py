"""`openhmo enrollment`: enroll families, move them, choose and assign PCPs, read history.

Reads of a member's record are audited (who read whose record, and why).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy import select

from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.enrollment.eligibility import eligibility_on
from openhmo.enrollment.models import Member, Notice, PcpAssignment
from openhmo.enrollment.pcp import auto_assign as run_auto_assign
from openhmo.enrollment.pcp import choose_pcp as choose
from openhmo.enrollment.service import (
    AddressIn,
    EnrollmentError,
    PersonIn,
    change_address,
    current_address,
    enroll_subscriber,
)
from openhmo.history.models import ChangeRecord
from openhmo.history.record import record_access
from openhmo.i18n import translate
from openhmo.network.models import Provider

app = typer.Typer(help="Members: enrollment, addresses, PCPs, history.", no_args_is_help=True)


def _member(session, member_number: str) -> Member:
    member = session.scalar(select(Member).where(Member.member_number == member_number))
    if member is None:
        raise fail(f"no member {member_number}")
    return member


@app.command()
def enroll(file: Path = typer.Argument(..., help="YAML: a list of families to enroll")) -> None:
    """Enroll the families of a file; each family is all or nothing, bad ones are reported.

    Each entry: plan, effective, subscriber {first_name, last_name, birth_date, sex},
    address {line1, city, state, zip_code}, dependents [...with relationship],
    billing_frequency, subsidized.
    """
    try:
        entries = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"{file}: {exc}") from None
    if not isinstance(entries, list):
        raise fail(f"{file}: expected a list of families")
    done, refused = 0, 0
    for i, entry in enumerate(entries):
        where = f"{file} family [{i}]"
        try:
            with unit_of_work() as session:
                coverage = enroll_subscriber(
                    session,
                    plan_key=entry["plan"],
                    effective=date.fromisoformat(str(entry["effective"])),
                    subscriber=PersonIn(**entry["subscriber"]),
                    address=AddressIn(**entry["address"]),
                    dependents=[PersonIn(**d) for d in entry.get("dependents", [])],
                    billing_frequency=entry.get("billing_frequency", "monthly"),
                    subsidized=bool(entry.get("subsidized", False)),
                    actor=actor(),
                )
                number = session.get(Member, coverage.subscriber_id).member_number
            done += 1
            console.print(f"[green]✓[/] {where}: enrolled {number} ({coverage.tier})")
        except (EnrollmentError, ValidationError, KeyError, TypeError, ValueError) as exc:
            refused += 1
            console.print(f"[red]✗[/] {where}: {_why(exc)}", highlight=False)
    console.print(f"{done} enrolled, {refused} refused")
    if refused:
        raise typer.Exit(1)


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc)


@app.command()
def show(
    member_number: str, purpose: str = typer.Option("member services", help="why you read it")
) -> None:
    """A member's record: coverage, address, PCP. The read is audited."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        record_access(
            session, actor=actor(), member_id=member.id, purpose=purpose, what="enrollment record"
        )
        today = date.today()
        status = eligibility_on(session, member_number, today)
        address = current_address(session, member, today)
        pcp = session.scalar(
            select(PcpAssignment)
            .where(PcpAssignment.member_id == member.id)
            .order_by(PcpAssignment.effective_from.desc())
        )
        table = Table(show_header=False, title=f"{member.name} ({member.member_number})")
        table.add_row("born", str(member.birth_date))
        table.add_row("relationship", member.relationship_code)
        table.add_row("status today", f"{status.status} {status.reason or ''}")
        if address:
            table.add_row(
                "address", f"{address.line1}, {address.city} {address.state} {address.zip_code}"
            )
        if pcp:
            doctor = session.get(Provider, pcp.provider_id)
            table.add_row("PCP", f"{doctor.display_name} from {pcp.effective_from} ({pcp.method})")
        console.print(table)


@app.command()
def history(member_number: str, purpose: str = typer.Option("member services")) -> None:
    """Every change to a member's record: who, when, what, why. The read is audited."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        record_access(session, actor=actor(), member_id=member.id, purpose=purpose, what="history")
        table = Table("when", "who", "what", "effective", "changes", "why")
        for r in session.scalars(
            select(ChangeRecord)
            .where(ChangeRecord.member_id == member.id)
            .order_by(ChangeRecord.id)
        ):
            table.add_row(
                r.occurred_at.strftime("%Y-%m-%d %H:%M"),
                r.actor,
                r.action,
                str(r.effective_date or ""),
                str(r.changes),
                r.reason,
            )
        console.print(table)


@app.command()
def move(
    member_number: str,
    line1: str = typer.Option(...),
    city: str = typer.Option(...),
    state: str = typer.Option(...),
    zip_code: str = typer.Option(..., "--zip"),
    effective: str = typer.Option(..., help="YYYY-MM-DD"),
    reason: str = "address change",
) -> None:
    """Record a new address; a move out of the service area ends eligibility (with notice)."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        try:
            ended = change_address(
                session,
                member=member,
                effective=date.fromisoformat(effective),
                address=AddressIn(line1=line1, city=city, state=state, zip_code=zip_code),
                actor=actor(),
                reason=reason,
            )
        except EnrollmentError as exc:
            raise fail(exc.reason) from None
    for span in ended:
        console.print(
            f"[yellow]eligibility ends[/] {span.member.member_number} on "
            f"{span.termination_date}: {span.termination_reason}"
        )
    console.print("[green]✓[/] address recorded")


@app.command("choose-pcp")
def choose_pcp(
    member_number: str, npi: str, on: str = typer.Option(None, help="request date")
) -> None:
    """Choose a PCP; it takes effect on the first of the next month."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        doctor = session.scalar(select(Provider).where(Provider.npi == npi))
        if doctor is None:
            raise fail(f"no provider with NPI {npi}")
        try:
            assignment = choose(
                session,
                member=member,
                provider=doctor,
                actor=actor(),
                requested_on=date.fromisoformat(on) if on else date.today(),
            )
        except EnrollmentError as exc:
            raise fail(exc.reason) from None
        console.print(
            f"[green]✓[/] {doctor.display_name} is {member.name}'s PCP from "
            f"{assignment.effective_from}"
        )


@app.command("auto-assign")
def auto_assign(as_of: str = typer.Option(..., help="YYYY-MM-DD"), plan: str | None = None) -> None:
    """Assign the nearest available PCP to members who need one and have not chosen."""
    with unit_of_work() as session:
        report = run_auto_assign(
            session, as_of=date.fromisoformat(as_of), actor=actor(), plan_key=plan
        )
    console.print(
        f"assigned {report.assigned}; families kept together "
        f"{report.families_kept_together}, split {report.families_split}"
    )
    for line in report.unassigned:
        console.print(f"[yellow]not assigned[/] {line}")


@app.command()
def eligibility(member_number: str, on: str = typer.Option(..., help="YYYY-MM-DD")) -> None:
    """Is the member covered on a date?"""
    with unit_of_work() as session:
        answer = eligibility_on(session, member_number, date.fromisoformat(on))
        if answer.member is not None:
            record_access(
                session,
                actor=actor(),
                member_id=answer.member.id,
                purpose="eligibility inquiry",
                what=f"eligibility on {on}",
            )
    grace = f", grace month {answer.grace_month}" if answer.grace_month else ""
    console.print(f"{member_number} on {on}: {answer.status}{grace} {answer.reason or ''}")


@app.command()
def notices(member_number: str, language: str = typer.Option(None, help="en, ja or sv")) -> None:
    """The notices owed to a member, in their language."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        record_access(
            session, actor=actor(), member_id=member.id, purpose="member services", what="notices"
        )
        for notice in session.scalars(
            select(Notice).where(Notice.member_id == member.id).order_by(Notice.id)
        ):
            console.print(
                f"• {translate(notice.message_id, language or member.language, **notice.params)}"
            )
