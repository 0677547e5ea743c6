"""`openhmo referrals`: PCP referrals and (under `auth`) prior authorizations.

Request one, read the staff queue, approve or deny with a reason, expire the old ones.
Reads of a member's referrals are audited (who read whose record, and why).
"""

from __future__ import annotations

from datetime import date

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.categories import ServiceCategory
from openhmo.cli.common import actor, console, fail, unit_of_work
from openhmo.enrollment.models import Member
from openhmo.history.models import ChangeRecord
from openhmo.history.record import record_access
from openhmo.network.models import Provider
from openhmo.referrals.models import PriorAuthorization
from openhmo.referrals.service import (
    APPROVED,
    ReferralError,
    approve_prior_auth,
    approve_referral,
    deny_prior_auth,
    deny_referral,
    expire_prior_auths,
    expire_referrals,
    get_prior_auth,
    get_referral,
    prior_auth_queue,
    referral_queue,
    request_prior_auth,
    request_referral,
    specialty_name,
)

app = typer.Typer(
    help="Referrals and prior authorizations: request, review, approve, deny, expire.",
    no_args_is_help=True,
)
auth = typer.Typer(help="Prior authorizations.", no_args_is_help=True)
app.add_typer(auth, name="auth")


def _member(session: Session, member_number: str) -> Member:
    member = session.scalar(select(Member).where(Member.member_number == member_number))
    if member is None:
        raise fail(f"no member {member_number}")
    return member


def _provider(session: Session, npi: str) -> Provider:
    provider = session.scalar(select(Provider).where(Provider.npi == npi.strip()))
    if provider is None:
        raise fail(f"no provider with NPI {npi}")
    return provider


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def _category(text: str) -> ServiceCategory:
    try:
        return ServiceCategory(text)
    except ValueError:
        known = ", ".join(c.value for c in ServiceCategory)
        raise fail(f"--category: {text!r} is not a service category ({known})") from None


def _name(session: Session, provider_id: int | None) -> str:
    if provider_id is None:
        return ""
    provider = session.get(Provider, provider_id)
    return f"{provider.display_name} (NPI {provider.npi})"


def _history(session: Session, entity: str, number: str) -> Table:
    table = Table("when", "who", "what", "why", title="history")
    for r in session.scalars(
        select(ChangeRecord)
        .where(ChangeRecord.entity == entity, ChangeRecord.entity_id == number)
        .order_by(ChangeRecord.id)
    ):
        table.add_row(r.occurred_at.strftime("%Y-%m-%d %H:%M"), r.actor, r.action, r.reason)
    return table


def _decided(status: str) -> str:
    return f"[green]{status}[/]" if status == APPROVED else f"[yellow]{status}[/]"


# --- referrals ----------------------------------------------------------------------------


@app.command()
def request(
    member_number: str = typer.Argument(..., help="the member referred"),
    pcp_npi: str = typer.Argument(..., help="NPI of the member's PCP, who refers"),
    specialist: str | None = typer.Option(None, "--specialist", help="NPI of the specialist"),
    specialty: str | None = typer.Option(
        None, "--specialty", help="NUCC taxonomy prefix instead of one specialist, e.g. 207RC"
    ),
    category: str = typer.Option(ServiceCategory.SPECIALIST_VISIT.value, help="service category"),
    visits: int = typer.Option(..., help="visits authorized"),
    valid_from: str = typer.Option(..., "--from", help="YYYY-MM-DD"),
    valid_to: str | None = typer.Option(None, "--to", help="YYYY-MM-DD (default: plan's)"),
    diagnosis: list[str] = typer.Option(..., "--diagnosis", help="ICD-10-CM; repeat for more"),
) -> None:
    """A PCP's referral: approved at once by the plan's rules, or left for staff review."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        try:
            referral = request_referral(
                session,
                member=member,
                referring_provider=_provider(session, pcp_npi),
                specialist=_provider(session, specialist) if specialist else None,
                specialty_prefix=specialty,
                category=_category(category),
                visits=visits,
                valid_from=_date(valid_from, "--from"),
                valid_to=_date(valid_to, "--to") if valid_to else None,
                diagnosis_codes=diagnosis,
                actor=actor(),
                source="cli",
            )
        except ReferralError as exc:
            raise fail(exc.reason) from None
        console.print(
            f"[green]✓[/] referral {referral.referral_number} {_decided(referral.status)}: "
            f"{referral.status_reason}",
            highlight=False,
        )


@app.command()
def show(
    number: str, purpose: str = typer.Option("referral review", help="why you read it")
) -> None:
    """A referral and its history. The read is audited."""
    with unit_of_work() as session:
        try:
            referral = get_referral(session, number)
        except ReferralError as exc:
            raise fail(exc.reason) from None
        member = session.get(Member, referral.member_id)
        record_access(
            session,
            actor=actor(),
            member_id=member.id,
            purpose=purpose,
            what=f"referral {referral.referral_number}",
        )
        table = Table(show_header=False, title=f"referral {referral.referral_number}")
        table.add_row("member", f"{member.name} ({member.member_number})")
        table.add_row("status", f"{referral.status}: {referral.status_reason}")
        table.add_row("referred by", _name(session, referral.referring_provider_id))
        if referral.specialist_provider_id is not None:
            table.add_row("specialist", _name(session, referral.specialist_provider_id))
        if referral.specialty_prefix:
            prefix = referral.specialty_prefix
            table.add_row("specialty", f"{specialty_name(prefix)} ({prefix})")
        table.add_row("category", referral.category)
        table.add_row("visits", str(referral.visits))
        table.add_row("valid", f"{referral.valid_from} to {referral.valid_to}")
        table.add_row("diagnoses", ", ".join(referral.diagnosis_codes))
        if referral.decided_by:
            table.add_row("decided", f"by {referral.decided_by} at {referral.decided_at:%Y-%m-%d}")
        table.add_row("source", referral.source)
        console.print(table)
        console.print(_history(session, "referral", referral.referral_number))


@app.command()
def queue() -> None:
    """Referrals waiting for staff, oldest first, with the reason each waits."""
    with unit_of_work() as session:
        waiting = referral_queue(session)
        table = Table("referral", "member", "to", "visits", "valid", "why it waits")
        for r in waiting:
            member = session.get(Member, r.member_id)
            record_access(
                session,
                actor=actor(),
                member_id=member.id,
                purpose="referral review queue",
                what=f"referral {r.referral_number}",
            )
            to = (
                _name(session, r.specialist_provider_id)
                if r.specialist_provider_id
                else f"{specialty_name(r.specialty_prefix or '')} ({r.specialty_prefix})"
            )
            table.add_row(
                r.referral_number,
                member.member_number,
                to,
                str(r.visits),
                f"{r.valid_from} to {r.valid_to}",
                r.status_reason,
            )
        console.print(table)
        console.print(f"{len(waiting)} waiting")


@app.command()
def approve(number: str, reason: str = typer.Option(..., help="why (goes to the history)")) -> None:
    """Approve a referral waiting for staff."""
    with unit_of_work() as session:
        try:
            referral = approve_referral(session, number, actor=actor(), reason=reason)
        except ReferralError as exc:
            raise fail(exc.reason) from None
        console.print(f"[green]✓[/] referral {referral.referral_number} approved")


@app.command()
def deny(number: str, reason: str = typer.Option(..., help="why (the member is told)")) -> None:
    """Deny a referral waiting for staff."""
    with unit_of_work() as session:
        try:
            referral = deny_referral(session, number, actor=actor(), reason=reason)
        except ReferralError as exc:
            raise fail(exc.reason) from None
        console.print(f"[green]✓[/] referral {referral.referral_number} denied")


@app.command()
def expire(as_of: str = typer.Option(None, "--as-of", help="YYYY-MM-DD (default: today)")) -> None:
    """Approved referrals whose window has ended become expired."""
    day = _date(as_of, "--as-of") if as_of else date.today()
    with unit_of_work() as session:
        expired = expire_referrals(session, day, actor=actor())
        numbers = [r.referral_number for r in expired]
    console.print(f"{len(numbers)} referral(s) expired {' '.join(numbers)}".rstrip())


# --- prior authorizations -----------------------------------------------------------------


@auth.command("request")
def auth_request(
    member_number: str = typer.Argument(..., help="the member"),
    requesting_npi: str = typer.Argument(..., help="NPI of the provider asking"),
    servicing: str | None = typer.Option(None, "--servicing", help="NPI of who renders it"),
    category: str = typer.Option(..., help="service category, e.g. advanced_imaging"),
    procedure: list[str] = typer.Option([], "--procedure", help="CPT/HCPCS code; repeat for more"),
    diagnosis: list[str] = typer.Option(..., "--diagnosis", help="ICD-10-CM; repeat for more"),
    valid_from: str = typer.Option(..., "--from", help="YYYY-MM-DD"),
    valid_to: str = typer.Option(..., "--to", help="YYYY-MM-DD"),
    units: int | None = typer.Option(None, help="units authorized"),
) -> None:
    """A prior authorization request; it waits for staff review."""
    with unit_of_work() as session:
        member = _member(session, member_number)
        try:
            pa = request_prior_auth(
                session,
                member=member,
                requesting_provider=_provider(session, requesting_npi),
                servicing_provider=_provider(session, servicing) if servicing else None,
                category=_category(category),
                procedure_codes=procedure,
                diagnosis_codes=diagnosis,
                valid_from=_date(valid_from, "--from"),
                valid_to=_date(valid_to, "--to"),
                units=units,
                actor=actor(),
                source="cli",
            )
        except ReferralError as exc:
            raise fail(exc.reason) from None
        console.print(
            f"[green]✓[/] prior authorization {pa.auth_number} {_decided(pa.status)}: "
            f"{pa.status_reason}",
            highlight=False,
        )


@auth.command("show")
def auth_show(
    number: str, purpose: str = typer.Option("prior authorization review", help="why")
) -> None:
    """A prior authorization and its history. The read is audited."""
    with unit_of_work() as session:
        try:
            pa = get_prior_auth(session, number)
        except ReferralError as exc:
            raise fail(exc.reason) from None
        member = session.get(Member, pa.member_id)
        record_access(
            session,
            actor=actor(),
            member_id=member.id,
            purpose=purpose,
            what=f"prior authorization {pa.auth_number}",
        )
        table = Table(show_header=False, title=f"prior authorization {pa.auth_number}")
        table.add_row("member", f"{member.name} ({member.member_number})")
        table.add_row("status", f"{pa.status}: {pa.status_reason}")
        table.add_row("requested by", _name(session, pa.requesting_provider_id))
        if pa.servicing_provider_id is not None:
            table.add_row("servicing", _name(session, pa.servicing_provider_id))
        table.add_row("category", pa.category)
        table.add_row("procedures", ", ".join(pa.procedure_codes))
        table.add_row("diagnoses", ", ".join(pa.diagnosis_codes))
        table.add_row("units", "" if pa.units is None else str(pa.units))
        table.add_row("valid", f"{pa.valid_from} to {pa.valid_to}")
        if pa.decided_by:
            table.add_row("decided", f"by {pa.decided_by} at {pa.decided_at:%Y-%m-%d}")
        table.add_row("source", pa.source)
        console.print(table)
        console.print(_history(session, "prior_authorization", pa.auth_number))


@auth.command("queue")
def auth_queue() -> None:
    """Prior authorizations waiting for staff, oldest first."""
    with unit_of_work() as session:
        waiting: list[PriorAuthorization] = prior_auth_queue(session)
        table = Table("authorization", "member", "category", "procedures", "valid", "why")
        for pa in waiting:
            member = session.get(Member, pa.member_id)
            record_access(
                session,
                actor=actor(),
                member_id=member.id,
                purpose="prior authorization review queue",
                what=f"prior authorization {pa.auth_number}",
            )
            table.add_row(
                pa.auth_number,
                member.member_number,
                pa.category,
                ", ".join(pa.procedure_codes),
                f"{pa.valid_from} to {pa.valid_to}",
                pa.status_reason,
            )
        console.print(table)
        console.print(f"{len(waiting)} waiting")


@auth.command("approve")
def auth_approve(number: str, reason: str = typer.Option(..., help="why")) -> None:
    """Approve a prior authorization waiting for staff."""
    with unit_of_work() as session:
        try:
            pa = approve_prior_auth(session, number, actor=actor(), reason=reason)
        except ReferralError as exc:
            raise fail(exc.reason) from None
        console.print(f"[green]✓[/] prior authorization {pa.auth_number} approved")


@auth.command("deny")
def auth_deny(
    number: str, reason: str = typer.Option(..., help="why (the member is told)")
) -> None:
    """Deny a prior authorization waiting for staff."""
    with unit_of_work() as session:
        try:
            pa = deny_prior_auth(session, number, actor=actor(), reason=reason)
        except ReferralError as exc:
            raise fail(exc.reason) from None
        console.print(f"[green]✓[/] prior authorization {pa.auth_number} denied")


@auth.command("expire")
def auth_expire(
    as_of: str = typer.Option(None, "--as-of", help="YYYY-MM-DD (default: today)"),
) -> None:
    """Approved prior authorizations whose window has ended become expired."""
    day = _date(as_of, "--as-of") if as_of else date.today()
    with unit_of_work() as session:
        expired = expire_prior_auths(session, day, actor=actor())
        numbers = [a.auth_number for a in expired]
    console.print(f"{len(numbers)} prior authorization(s) expired {' '.join(numbers)}".rstrip())
