"""The payment run: pay every adjudicated claim not yet remitted, one 835 per payee.

`run_remittance` finds the claims whose every line is decided (none pended) and whose
current decisions have not been remitted (`models.RemittedClaim.version`, the highest
current decision id, is below theirs), and for each:

- never remitted, with lines paid or denied: a claim payment (CLP02 1, or 4 when every
  line is denied);
- remitted before, and its new decisions (a re-adjudication, a staff override, a
  replacement, a void) pay differently: a reversal of what was remitted (CLP02 22,
  every amount negated, the same lines and adjustments) and, when the claim still pays
  (it was not voided or replaced), the new claim payment after it. A replacement's own
  claim is a new claim: it gets its payment, and the claim it replaced its reversal,
  in the same 835 (same billing provider);
- new decisions that pay exactly what was remitted, or nothing to remit at all (a
  void's own lines, a claim replaced before it was remitted): recorded, nothing sent.

The payee is the billing provider (the claim's billing NPI): its name and TIN come
from the network (an organization with that NPI, else the provider and its
organization's TIN). When a payee's claims net to less than zero, the shortfall is
deferred with a negative PLB WO entry and recovered from its next payments
(`remit835.provider_adjustments`).

One transaction: the caller commits. Runs never interleave: on PostgreSQL an advisory
lock, on SQLite the write lock taken before anything is read; and a claim's rows are
numbered (unique with the claim), so no state of a claim is ever remitted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from sqlalchemy import case, func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from openhmo.claims.intake import sqlite_write_lock
from openhmo.claims.models import ADJUDICATED, REPLACED, VOIDED, Claim, ClaimLine, LineDecision
from openhmo.config import plan_identity
from openhmo.db.types import utcnow
from openhmo.enrollment.models import Member
from openhmo.history.record import record_change
from openhmo.interop.x12 import remit835 as x835
from openhmo.network.models import Location, Organization, Provider, ProviderLocation
from openhmo.remittance.models import (
    IN_FORCE,
    NO_PAYMENT,
    PAYMENT,
    REVERSAL,
    UNCHANGED,
    Remittance,
    RemittanceAdjustment,
    RemittanceRun,
    RemittedClaim,
)


def default_payer() -> x835.Payer:
    """Who pays on every 835: the plan's identity from the configuration (config.plan_identity)."""
    me = plan_identity()
    return x835.Payer(
        name=me.name,
        tin=me.ein,
        address=x835.Address(*me.address),
        technical_contact=x835.Contact(me.edi_contact, phone=me.edi_phone, email=me.edi_email),
        payer_id=me.payer_id,
    )


_PAYABLE = ("paid", "denied")
_CHUNK = 2000  # ids per IN list: well under SQLite's and PostgreSQL's parameter limits


class RemittanceError(ValueError):
    """A claim whose decisions cannot be remitted as they are (they do not balance)."""


@dataclass
class PayeeRemittance:
    """One payee's 835 of the run, as written and stored."""

    remittance_id: int
    remittance: x835.Remittance
    x12: str
    reversals: int = 0


@dataclass
class RunReport:
    run_id: int | None
    payment_date: date
    payees: list[PayeeRemittance] = field(default_factory=list)
    recorded: int = 0  # claims whose new decisions needed no 835 (unchanged, nothing to pay)
    problems: list[str] = field(default_factory=list)

    @property
    def claims(self) -> int:
        return sum(len(p.remittance.claims) for p in self.payees)

    @property
    def total_paid_cents(self) -> int:
        return sum(p.remittance.total_paid_cents for p in self.payees)


@dataclass
class _Entry:
    """One thing the run does with a claim."""

    claim: Claim
    kind: str
    version: int
    decision_ids: list[int]
    payment: x835.ClaimPayment | None = None
    reverses: RemittedClaim | None = None


# --- reading ---------------------------------------------------------------------------------


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted(set(ids))
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _due(session: Session) -> dict[int, int]:
    """Claim id -> version (highest current decision id) of every claim due a remittance."""
    current = (
        select(
            LineDecision.claim_id,
            func.count().label("decided"),
            func.max(LineDecision.id).label("version"),
            func.sum(case((LineDecision.status == "pended", 1), else_=0)).label("pended"),
        )
        .where(LineDecision.superseded_at.is_(None))
        .group_by(LineDecision.claim_id)
        .subquery()
    )
    lines = (
        select(ClaimLine.claim_id, func.count().label("lines"))
        .group_by(ClaimLine.claim_id)
        .subquery()
    )
    remitted = (
        select(RemittedClaim.claim_id, func.max(RemittedClaim.version).label("version"))
        .group_by(RemittedClaim.claim_id)
        .subquery()
    )
    rows = session.execute(
        select(Claim.id, current.c.version)
        .join(current, current.c.claim_id == Claim.id)
        .join(lines, lines.c.claim_id == Claim.id)
        .outerjoin(remitted, remitted.c.claim_id == Claim.id)
        .where(
            Claim.status.in_((ADJUDICATED, VOIDED, REPLACED)),
            current.c.pended == 0,
            current.c.decided == lines.c.lines,
            or_(remitted.c.version.is_(None), current.c.version > remitted.c.version),
        )
    )
    return {claim_id: version for claim_id, version in rows}


_DECISION_COLUMNS = (
    LineDecision.id,
    LineDecision.claim_id,
    LineDecision.line_id,
    LineDecision.status,
    LineDecision.charge_cents,
    LineDecision.allowed_cents,
    LineDecision.plan_paid_cents,
    LineDecision.adjustments,
)


def _decisions(session: Session, where) -> list[Any]:
    # Only the columns an 835 needs: a decision's trace can be long.
    return list(session.execute(select(*_DECISION_COLUMNS).where(where)))


@dataclass
class _World:
    """What the run read: claims, their lines, the people and the payees."""

    claims: dict[int, Claim]
    lines: dict[int, list[ClaimLine]]
    current: dict[int, list[Any]]
    latest: dict[int, RemittedClaim]
    old: dict[int, Any]  # decision id -> decision, of the payments in force
    members: dict[int, Member]
    names: dict[str, tuple[str | None, str | None, bool]]  # NPI -> (last, first, organization)


def _read(session: Session, due: dict[int, int]) -> _World:
    claims: dict[int, Claim] = {}
    lines: dict[int, list[ClaimLine]] = defaultdict(list)
    current: dict[int, list[Any]] = defaultdict(list)
    latest: dict[int, RemittedClaim] = {}
    for ids in _chunks(due):
        claims.update((c.id, c) for c in session.scalars(select(Claim).where(Claim.id.in_(ids))))
        for line in session.scalars(
            select(ClaimLine).where(ClaimLine.claim_id.in_(ids)).order_by(ClaimLine.line_number)
        ):
            lines[line.claim_id].append(line)
        for d in _decisions(
            session, LineDecision.claim_id.in_(ids) & LineDecision.superseded_at.is_(None)
        ):
            current[d.claim_id].append(d)
        for row in session.scalars(
            select(RemittedClaim)
            .where(RemittedClaim.claim_id.in_(ids))
            .order_by(RemittedClaim.sequence)
        ):
            latest[row.claim_id] = row
    wanted = [i for row in latest.values() if row.kind in IN_FORCE for i in row.decision_ids]
    old = {
        d.id: d for ids in _chunks(wanted) for d in _decisions(session, LineDecision.id.in_(ids))
    }
    member_ids = {c.member_id for c in claims.values() if c.member_id is not None}
    members: dict[int, Member] = {}
    for ids in _chunks(member_ids):
        members.update((m.id, m) for m in session.scalars(select(Member).where(Member.id.in_(ids))))
    subscribers = {m.subscriber_id for m in members.values() if m.subscriber_id} - set(members)
    for ids in _chunks(subscribers):
        members.update((m.id, m) for m in session.scalars(select(Member).where(Member.id.in_(ids))))
    npis = {c.rendering_npi for c in claims.values() if c.rendering_npi}
    names: dict[str, tuple[str | None, str | None, bool]] = {}
    for chunk in _chunks(npis):
        for p in session.scalars(select(Provider).where(Provider.npi.in_(chunk))):
            person = p.entity_type != "organization" and bool(p.last_name)
            names[p.npi] = (
                (p.last_name, p.first_name, False) if person else (p.display_name, None, True)
            )
    return _World(claims, lines, current, latest, old, members, names)


def payees(session: Session, npis: Iterable[str]) -> dict[str, x835.Payee]:
    """The payee of each billing NPI: an organization with that NPI, else the provider.

    A provider's TIN is its organization's. An NPI the network does not know is paid
    under its NPI alone (the claim does not keep the 837's billing provider name).
    """
    out: dict[str, x835.Payee] = {}
    for chunk in _chunks(npis):
        orgs = session.scalars(select(Organization).where(Organization.npi.in_(chunk))).all()
        # Each one's first place, in one query for the chunk (not one per payee).
        org_place: dict[int, Location] = {}
        if orgs:
            for place in session.scalars(
                select(Location)
                .where(Location.organization_id.in_([o.id for o in orgs]))
                .order_by(Location.organization_id, Location.id)
            ):
                org_place.setdefault(place.organization_id, place)
        for org in orgs:
            out[org.npi] = x835.Payee(org.name, org.npi, org.tin, _address(org_place.get(org.id)))
        providers = [
            p
            for p in session.scalars(
                select(Provider)
                .where(Provider.npi.in_(chunk))
                .options(selectinload(Provider.organization))
            )
            if p.npi not in out
        ]
        provider_place: dict[int, Location] = {}
        if providers:
            rows = session.execute(
                select(ProviderLocation.provider_id, Location)
                .join(Location, ProviderLocation.location_id == Location.id)
                .where(ProviderLocation.provider_id.in_([p.id for p in providers]))
                .order_by(
                    ProviderLocation.provider_id, ProviderLocation.is_primary.desc(), Location.id
                )
            )
            for provider_id, place in rows:
                provider_place.setdefault(provider_id, place)
        for p in providers:
            tin = p.organization.tin if p.organization is not None else None
            out[p.npi] = x835.Payee(p.display_name, p.npi, tin, _address(provider_place.get(p.id)))
    for npi in npis:
        out.setdefault(npi, x835.Payee(f"NPI {npi}", npi))
    return out


def _address(place: Location | None) -> x835.Address | None:
    if place is None:
        return None
    return x835.Address(place.line1, place.city, place.state, place.zip_code, place.line2)


# --- building the claims' 835 loops ------------------------------------------------------------


def _line(line: ClaimLine, decision: Any) -> x835.ServiceLine:
    adjustments = [
        x835.Adjustment(a["group"], str(a["carc"]), int(a["amount_cents"]))
        for a in decision.adjustments or []
    ]
    paid = decision.status == "paid"
    built = x835.ServiceLine(
        charge_cents=decision.charge_cents,
        paid_cents=(decision.plan_paid_cents or 0) if paid else 0,
        service_date=line.service_date,
        procedure_code=line.procedure_code,
        modifiers=tuple(line.modifiers or ()),
        revenue_code=line.revenue_code,
        paid_units=Decimal(line.units) if paid else Decimal(0),
        submitted_units=Decimal(line.units),
        adjustments=tuple(adjustments),
        remarks=tuple(a["rarc"] for a in decision.adjustments or [] if a.get("rarc")),
        allowed_cents=decision.allowed_cents if paid else None,
    )
    adjusted = sum(a.amount_cents for a in adjustments)
    if built.charge_cents - adjusted != built.paid_cents:
        raise RemittanceError(
            f"line {line.line_number}: charge {built.charge_cents} - adjustments {adjusted} "
            f"!= paid {built.paid_cents} cents (decision {decision.id})"
        )
    return built


def _person(member: Member | None, number: str) -> x835.Person:
    if member is None:
        return x835.Person(None, None, number)
    return x835.Person(member.last_name, member.first_name, member.member_number)


def _payment(world: _World, claim: Claim, decisions: Sequence[Any]) -> x835.ClaimPayment:
    """The claim's CLP loop from these decisions (one per line)."""
    by_line = {d.line_id: d for d in decisions}
    lines = world.lines[claim.id]
    if set(by_line) != {ln.id for ln in lines}:
        raise RemittanceError("its decisions do not cover its lines")
    member = world.members.get(claim.member_id) if claim.member_id else None
    subscriber = (
        world.members.get(member.subscriber_id) if member and member.subscriber_id else None
    )
    rendering = None
    if claim.rendering_npi and claim.rendering_npi != claim.billing_npi:
        last, first, organization = world.names.get(claim.rendering_npi, (None, None, False))
        rendering = x835.Person(last, first, claim.rendering_npi, organization)
    return x835.claim_payment(
        patient_control_number=claim.patient_control_number,
        payer_claim_control_number=claim.claim_id,
        patient=_person(member, claim.member_number),
        insured=_person(subscriber, "") if subscriber and subscriber.id != member.id else None,
        rendering=rendering,
        lines=[_line(ln, by_line[ln.id]) for ln in lines],
        facility_code=claim.place_of_service,
        frequency_code=claim.frequency_code,
        received=claim.received_at.date() if claim.received_at else None,
    )


def _plan(world: _World, claim: Claim, version: int) -> list[_Entry]:
    """What to do with one due claim (see the module's text)."""
    decisions = world.current[claim.id]
    ids = sorted(d.id for d in decisions)
    payable = bool(decisions) and all(d.status in _PAYABLE for d in decisions)
    new = _payment(world, claim, decisions) if payable else None
    last = world.latest.get(claim.id)
    standing = last if last is not None and last.kind in IN_FORCE else None
    if standing is None:
        if new is None:
            return [_Entry(claim, NO_PAYMENT, version, ids)]
        return [_Entry(claim, PAYMENT, version, ids, new)]
    before = _payment(world, claim, [world.old[i] for i in standing.decision_ids])
    if new == before:
        return [_Entry(claim, UNCHANGED, version, ids, new)]
    entries = [
        _Entry(
            claim, REVERSAL, version, list(standing.decision_ids), x835.reversal(before), standing
        )
    ]
    if new is not None:
        entries.append(_Entry(claim, PAYMENT, version, ids, new))
    return entries


# --- the run -----------------------------------------------------------------------------------


def _lock(session: Session) -> None:
    """One payment run at a time (SQLite: the write lock, before anything is read)."""
    if not sqlite_write_lock(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('openhmo-remittance'))"))


def _outstanding(session: Session, npi: str) -> list[tuple[str, int]]:
    """What the payee still owes from deferred recoveries, per claim, oldest first."""
    rows = session.execute(
        select(RemittanceAdjustment.reference, func.sum(RemittanceAdjustment.amount_cents))
        .where(
            RemittanceAdjustment.payee_npi == npi,
            RemittanceAdjustment.reason == x835.OVERPAYMENT_RECOVERY,
        )
        .group_by(RemittanceAdjustment.reference)
        .order_by(func.min(RemittanceAdjustment.id))
    )
    return [(reference, -int(total)) for reference, total in rows if total < 0]


def run_remittance(
    session: Session,
    *,
    payment_date: date,
    actor: str,
    payer: x835.Payer | None = None,
    moment: datetime | None = None,
) -> RunReport:
    """Remit every claim due (see the module's text); the caller commits.

    Returns each payee's 835 as written (also stored in `Remittance.x12`). A claim
    whose decisions do not balance is left out, named in `problems`, and tried again
    by the next run. A run with nothing due writes nothing.
    """
    _lock(session)
    payer = payer or default_payer()
    moment = moment or utcnow()
    report = RunReport(None, payment_date)
    due = _due(session)
    if not due:
        return report
    world = _read(session, due)
    entries: list[_Entry] = []
    for claim_id in sorted(due):
        claim = world.claims[claim_id]
        try:
            entries.extend(_plan(world, claim, due[claim_id]))
        except RemittanceError as exc:
            report.problems.append(f"claim {claim.claim_id} not remitted: {exc}")
    if not entries:
        return report
    run = RemittanceRun(
        payment_date=payment_date,
        produced_at=moment,
        actor=actor,
        payees=0,
        claims=0,
        total_paid_cents=0,
    )
    session.add(run)
    session.flush()
    report.run_id = run.id
    by_payee: dict[str, list[_Entry]] = defaultdict(list)
    for e in entries:
        by_payee[e.claim.billing_npi].append(e)
    who = payees(session, [npi for npi, es in by_payee.items() if any(_sent(e) for e in es)])
    sequence = {cid: row.sequence for cid, row in world.latest.items()}
    for npi in sorted(by_payee):
        sent = [e for e in by_payee[npi] if _sent(e)]
        remittance_id = (
            _remit(session, report, run, payer, who[npi], sent, moment) if sent else None
        )
        for e in by_payee[npi]:
            sequence[e.claim.id] = sequence.get(e.claim.id, 0) + 1
            p = e.payment if _sent(e) else None
            session.add(
                RemittedClaim(
                    run_id=run.id,
                    remittance_id=remittance_id if _sent(e) else None,
                    claim_id=e.claim.id,
                    sequence=sequence[e.claim.id],
                    kind=e.kind,
                    clp_status=p.status if p else None,
                    reverses_id=e.reverses.id if e.reverses else None,
                    version=e.version,
                    decision_ids=e.decision_ids,
                    charge_cents=p.charge_cents if p else 0,
                    paid_cents=p.paid_cents if p else 0,
                    patient_responsibility_cents=p.patient_responsibility_cents if p else 0,
                )
            )
            if not _sent(e):
                report.recorded += 1
    run.payees, run.claims = len(report.payees), report.claims
    run.total_paid_cents = report.total_paid_cents
    record_change(
        session,
        actor=actor,
        entity="remittance_run",
        entity_id=run.id,
        action="remittance_run",
        changes={
            "payment_date": payment_date.isoformat(),
            "payees": run.payees,
            "claims": run.claims,
            "total_paid_cents": run.total_paid_cents,
            "traces": [p.remittance.trace_number for p in report.payees],
        },
        reason="payment run",
    )
    session.flush()
    return report


def _sent(entry: _Entry) -> bool:
    return entry.kind in (PAYMENT, REVERSAL)


def _remit(
    session: Session,
    report: RunReport,
    run: RemittanceRun,
    payer: x835.Payer,
    payee: x835.Payee,
    entries: list[_Entry],
    moment: datetime,
) -> int:
    """One payee's 835: stored with its provider adjustments; its id."""
    claims = tuple(e.payment for e in entries)
    adjustments = x835.provider_adjustments(claims, _outstanding(session, payee.npi))
    row = Remittance(
        run_id=run.id,
        payee_npi=payee.npi,
        payee_name=payee.name[:200],
        payee_tin=payee.tin,
        trace_number=f"pending-{uuid4().hex}",  # the row's id makes the trace number
        payment_method="",
        payment_date=run.payment_date,
        claims_paid_cents=0,
        adjustments_cents=0,
        total_paid_cents=0,
        x12="",
    )
    session.add(row)
    session.flush()
    remittance = x835.Remittance(
        payer=payer,
        payee=payee,
        payment_date=run.payment_date,
        trace_number=f"{row.id:010d}",
        claims=claims,
        adjustments=adjustments,
        production_date=moment.date(),
    )
    x12 = x835.render(remittance, control=row.id, moment=moment)
    row.trace_number = remittance.trace_number
    row.payment_method = remittance.payment_method
    row.claims_paid_cents = remittance.claims_paid_cents
    row.adjustments_cents = remittance.adjustments_cents
    row.total_paid_cents = remittance.total_paid_cents
    row.x12 = x12
    for a in adjustments:
        session.add(
            RemittanceAdjustment(
                remittance_id=row.id,
                payee_npi=payee.npi,
                reason=a.reason,
                reference=a.reference,
                amount_cents=a.amount_cents,
            )
        )
    report.payees.append(
        PayeeRemittance(row.id, remittance, x12, sum(e.kind == REVERSAL for e in entries))
    )
    return row.id
