"""`openhmo claims`: take claims in, adjudicate them, explain them, work the pended ones.

Claims files are YAML: a list of claims (or `claims:` holding one), each with the
fields of `openhmo.claims.intake.ClaimIn` and an optional `received_at` (ISO 8601 with
a time zone; default: now). A line's `charge` is in dollars. Reads of a member's claims
and accumulators are audited (who read whose record, and why).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openhmo.adjudication.explain import explanation_text
from openhmo.claims.context_db import utc
from openhmo.claims.intake import ClaimError, ClaimIn, submit_claim
from openhmo.claims.models import Accumulator, Claim, VisitUsage
from openhmo.claims.service import (
    adjudicate_waiting,
    approve,
    current_decisions,
    deny,
    get_claim,
    queue,
)
from openhmo.cli import batch
from openhmo.cli.common import actor, console, engine, fail, unit_of_work
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.history.record import record_access
from openhmo.i18n import LANGUAGES
from openhmo.money import MoneyError, format_money, parse_money

app = typer.Typer(
    help="Claims: submit, adjudicate, show, and resolve pended lines.", no_args_is_help=True
)


def _errors(exc: ValidationError) -> list[str]:
    """Each problem as 'field: message', the field as a dotted path (lines.0.charge)."""
    out = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "claim"
        message = error["msg"].removeprefix("Value error, ")
        out.append(f"{where}: {message}")
    return out


def _received_at(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ClaimError(f"{value} has no time zone (e.g. 2026-03-01T09:00:00Z)")
    return moment


@app.command()
def submit(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Take in the claims of a YAML file: good ones stored, bad ones reported by index."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise fail(f"{file}: not YAML: {exc}") from None
    if isinstance(data, dict) and "claims" in data:
        data = data["claims"]
    if not isinstance(data, list):
        raise fail(f"{file}: expected a list of claims (or 'claims:' holding one)")
    problems: list[str] = []
    refused: set[int] = set()
    table = Table("#", "claim", "CLM01", "member", "lines", "charge", "")
    with unit_of_work() as session:
        for index, raw in enumerate(data):
            where = f"{file}: claim {index}"
            if not isinstance(raw, dict):
                problems.append(f"{where}: expected a mapping of claim fields")
                refused.add(index)
                continue
            raw = dict(raw)
            try:
                received_at = _received_at(raw.pop("received_at", None))
                claim_in = ClaimIn.model_validate(raw)
            except ValidationError as exc:
                problems.extend(f"{where}: {e}" for e in _errors(exc))
                refused.add(index)
                continue
            except (ClaimError, ValueError) as exc:
                problems.append(f"{where}: received_at: {exc}")
                refused.add(index)
                continue
            # submit_claim refuses before it writes anything: the good claims stay in
            try:
                before = session.scalar(
                    select(Claim.id).where(Claim.idempotency_key == claim_in.key)
                )
                claim = submit_claim(session, claim_in, received_at=received_at, actor=actor())
            except ClaimError as exc:
                problems.append(f"{where}: {exc}")
                refused.add(index)
                continue
            table.add_row(
                str(index),
                claim.claim_id,
                claim.patient_control_number,
                claim.member_number,
                str(len(claim_in.lines)),
                format_money(claim.total_charge_cents),
                "already received" if before else "received",
            )
    console.print(table)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}", highlight=False)
    console.print(f"{len(data) - len(refused)} of {len(data)} claim(s) in; {len(refused)} refused")
    if problems:
        raise typer.Exit(1)


@app.command()
def adjudicate() -> None:
    """Adjudicate every claim waiting (status received), family by family."""
    factory = session_factory(engine())
    with factory() as session:
        total = session.scalar(
            select(func.count()).select_from(Claim).where(Claim.status == "received")
        )
    with Progress(
        TextColumn("adjudicating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("claims", total=total)
        report = adjudicate_waiting(factory, actor=actor(), progress=lambda n: bar.advance(task, n))
    table = Table("claims", "lines", "paid", "denied", "pended", "voided/replaced", "seconds")
    table.add_row(
        str(report.claims),
        str(report.lines),
        str(report.statuses["paid"]),
        str(report.statuses["denied"]),
        str(report.statuses["pended"]),
        str(report.statuses["voided"] + report.statuses["replaced"] + report.statuses["void"]),
        f"{report.seconds:.2f}",
    )
    console.print(table)
    if report.denials:
        denials = Table("denied lines by CARC", "lines")
        for carc, count in report.denials.most_common():
            denials.add_row(carc, str(count))
        console.print(denials)
    for error in report.errors:
        console.print(f"[yellow]{error}[/]", highlight=False)
    if report.errors:
        raise typer.Exit(1)


def _money(cents: int | None) -> str:
    """An amount, or a dash where the decision carries none (pended, voided, replaced)."""
    return "—" if cents is None else format_money(cents)


def _adjustments(adjustments: list[dict]) -> str:
    return ", ".join(
        f"{a['group']}-{a['carc']}{'/' + a['rarc'] if a.get('rarc') else ''} "
        f"{format_money(a['amount_cents'])}"
        for a in adjustments
    )


def _audit(session: Session, member_id: int | None, purpose: str, what: str) -> None:
    if member_id is not None:
        record_access(session, actor=actor(), member_id=member_id, purpose=purpose, what=what)


@app.command()
def show(
    claim_id: str,
    language: str = typer.Option("en", help="the explanation's language: en, ja or sv"),
    purpose: str = typer.Option("claims review", help="why you read it"),
) -> None:
    """A claim: its lines, amounts, adjustments, the trace, the member's explanation."""
    if language not in LANGUAGES:
        raise fail(f"--language: {language!r} is not one of {', '.join(LANGUAGES)}")
    with unit_of_work() as session:
        try:
            claim = get_claim(session, claim_id)
        except ClaimError as exc:
            raise fail(str(exc)) from None
        _audit(session, claim.member_id, purpose, f"claim {claim.claim_id}")
        header = Table(show_header=False, title=f"claim {claim.claim_id}")
        header.add_row("status", claim.status)
        header.add_row("member", claim.member_number)
        header.add_row("CLM01", claim.patient_control_number)
        header.add_row("billing NPI", claim.billing_npi)
        header.add_row("type", f"{claim.claim_type}, frequency {claim.frequency_code}")
        if claim.replaces_claim_id:
            header.add_row("replaces", claim.replaces_claim_id)
        header.add_row("diagnoses", ", ".join(claim.diagnosis_codes))
        header.add_row("received", utc(claim.received_at).isoformat())
        header.add_row("charge", format_money(claim.total_charge_cents))
        console.print(header)
        decisions = {d.line_number: d for d in current_decisions(session, claim)}
        lines = Table(
            "line",
            "date",
            "code",
            "charge",
            "status",
            "category",
            "allowed",
            "plan paid",
            "member",
            "adjustments",
        )
        for line in claim.lines:
            d = decisions.get(line.line_number)
            code = line.procedure_code or line.revenue_code or ""
            if line.modifiers:
                code += "-" + "-".join(line.modifiers)
            lines.add_row(
                str(line.line_number),
                str(line.service_date),
                code,
                format_money(line.charge_cents),
                d.status if d else "not adjudicated",
                (d.category or "") if d else "",
                _money(d.allowed_cents) if d else "",
                _money(d.plan_paid_cents) if d else "",
                _money(d.member_share_cents) if d else "",
                _adjustments(d.adjustments) if d else "",
            )
        console.print(lines)
        for line in claim.lines:
            d = decisions.get(line.line_number)
            if d is None:
                continue
            console.print(f"[bold]line {line.line_number}[/]", highlight=False)
            for step in d.trace:
                note = f" ({step['note']})" if step.get("note") else ""
                console.print(f"  {step['step']}: {step['clause']}{note}", highlight=False)
            text = explanation_text(d.explanation_id, d.explanation_params, language)
            console.print(f"  → {text}", highlight=False)


@app.command("queue")
def queue_command() -> None:
    """Pended lines waiting for staff, oldest first, with the reason each waits."""
    with unit_of_work() as session:
        items = queue(session)
        table = Table(
            "claim", "line", "member", "name", "reason", "code", "date", "charge", "age (days)"
        )
        for item in items:
            _audit(session, item.member_id, "pended claims queue", f"claim {item.claim_id}")
            table.add_row(
                item.claim_id,
                str(item.line_number),
                item.member_number,
                item.member_name,
                item.pend_reason or "",
                item.procedure_code or "",
                str(item.service_date),
                format_money(item.charge_cents),
                str(item.age_days),
            )
        console.print(table)
        console.print(f"{len(items)} pended line(s)")


def _print_decisions(decisions) -> None:
    for d in decisions:
        console.print(
            f"line {d.line_number}: {d.status} allowed {_money(d.allowed_cents)}, "
            f"plan paid {_money(d.plan_paid_cents)}, member "
            f"{_money(d.member_share_cents)} {_adjustments(d.adjustments)}",
            highlight=False,
        )


@app.command("approve")
def approve_command(
    claim_id: str,
    line: int,
    allowed: str = typer.Option(None, help='the allowed amount, e.g. "$80.00" (pricing pends)'),
    reason: str = typer.Option(..., help="why"),
) -> None:
    """Approve a pended line (at an allowed amount, for a pricing pend); the family is re-run."""
    cents = None
    if allowed is not None:
        try:
            cents = parse_money(allowed)
        except MoneyError as exc:
            raise fail(f"--allowed: {exc}") from None
    with unit_of_work() as session:
        try:
            decisions = approve(
                session, claim_id, line, allowed_cents=cents, reason=reason, actor=actor()
            )
        except ClaimError as exc:
            raise fail(f"{exc.field or 'claim'}: {exc}") from None
        _print_decisions(decisions)


@app.command("deny")
def deny_command(
    claim_id: str,
    line: int,
    carc: str = typer.Option(..., help="the claim adjustment reason code, e.g. 50"),
    reason: str = typer.Option(..., help="why"),
) -> None:
    """Deny a pended line with a CARC (group CO); the family is re-run."""
    with unit_of_work() as session:
        try:
            decisions = deny(session, claim_id, line, carc=carc, reason=reason, actor=actor())
        except ClaimError as exc:
            raise fail(f"{exc.field or 'claim'}: {exc}") from None
        _print_decisions(decisions)


@app.command()
def accumulators(
    member_number: str,
    purpose: str = typer.Option("member services", help="why you read it"),
) -> None:
    """The member's family accumulators and visit counts, per plan year. Audited."""
    with unit_of_work() as session:
        member = session.scalar(
            select(Member).where(Member.member_number == member_number.strip().upper())
        )
        if member is None:
            raise fail(f"no member {member_number}")
        family = member.subscriber_id
        people = {
            m.id: m for m in session.scalars(select(Member).where(Member.subscriber_id == family))
        }
        for person in people.values():
            _audit(session, person.id, purpose, "claims accumulators")
        table = Table("plan", "year", "pool", "kind", "who", "amount")
        for a in session.scalars(
            select(Accumulator)
            .where(Accumulator.family_id == family)
            .order_by(
                Accumulator.plan_year,
                Accumulator.plan_key,
                Accumulator.pool,
                Accumulator.kind,
                Accumulator.holder,
            )
        ):
            who = (
                "family"
                if a.member_id is None
                else f"{people[a.member_id].name} ({people[a.member_id].member_number})"
            )
            table.add_row(
                a.plan_key, str(a.plan_year), a.pool, a.kind, who, format_money(a.amount_cents)
            )
        console.print(table)
        usage = session.scalars(
            select(VisitUsage)
            .where(VisitUsage.family_id == family)
            .order_by(VisitUsage.plan_year, VisitUsage.member_id, VisitUsage.category)
        ).all()
        if usage:
            visits = Table("year", "who", "category", "used")
            for v in usage:
                visits.add_row(str(v.plan_year), people[v.member_id].name, v.category, str(v.used))
            console.print(visits)


# Batch adjudication by the file lives in its own module; it answers under `claims`.
app.command("adjudicate-batch")(batch.adjudicate_batch)
app.command("export")(batch.export)
