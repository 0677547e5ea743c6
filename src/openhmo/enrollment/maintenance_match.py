"""Who and which plan an 834 member loop names, found in OpenHMO's records.

Who is who. A subscriber is the member whose member number is REF*0F, else the subscriber
whose external_id is REF*0F (what an 834 addition stores, as the Synthea import stores
Synthea's id). A dependent is under the subscriber REF*0F names (the guide has every
member of a family carry the subscriber's identifier): the dependent whose member
number or external_id is the member's own identifier (REF*23, REF*ZZ, REF*17, or NM109
when NM108 is ZZ; stored as external_id when an 834 adds them), else the one of that
first name and birth date (for a corrected name, the name of 2100B NM1*70). A social
security number (NM108 34) is neither stored nor matched.

Which plan an HD names, tried in this order, the first answer winning: REF*CE (class of
contract) and then HD04 (plan coverage description), each as a key of the caller's
`plan_map`, else as a plan key (in any case), else as a plan's HIOS plan id (the
marketplace 834 carries the QHP id in REF*CE); then HD03 (the insurance line: HMO, PPO,
HLT ...) as a key of `plan_map`. A `plan_map` value of None means "not a line of ours":
that HD is skipped with a note (a sponsor's dental or vision line). An HD naming no plan
is the member's error, as is an HD03 plan type (HMO, PPO, EPO, POS) that is not the type
of the plan found, or two plans for one member (OpenHMO holds one medical coverage per
subscriber).

What is not found is refused (`maintenance_context.Rejected`), naming the segment.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.enrollment.maintenance_context import MemberOutcome, SetContext, reject
from openhmo.enrollment.models import Member
from openhmo.interop.x12.enrollment834 import Coverage834, MemberMaintenance
from openhmo.plans.models import Plan

# HD03 codes that are plan types: the plan an HD names must be of its type.
_PLAN_TYPES = ("HMO", "PPO", "EPO", "POS")


# -- who is who -----------------------------------------------------------------
def find_subscriber(session: Session, record: MemberMaintenance) -> Member | None:
    """The member REF*0F names (by member number, else a subscriber's external id)."""
    ident = record.subscriber_id
    found = session.scalar(select(Member).where(Member.member_number == ident))
    if found is not None:
        return found
    rows = session.scalars(
        select(Member).where(Member.external_id == ident, Member.subscriber_id == Member.id)
    ).all()
    if len(rows) > 1:
        numbers = ", ".join(m.member_number for m in rows)
        raise reject(record, "subscriber_id", f"REF*0F {ident!r} is the id of {numbers}")
    return rows[0] if rows else None


def subscriber_of(session: Session, record: MemberMaintenance) -> Member:
    """The subscriber REF*0F names; refused when it names none, or a dependent."""
    found = find_subscriber(session, record)
    ident = record.subscriber_id
    if found is None:
        raise reject(
            record,
            "subscriber_id",
            f"REF*0F {ident!r} names no subscriber of OpenHMO (neither a member number nor the "
            "external id of a subscriber)",
        )
    if found.subscriber_id != found.id:
        raise reject(
            record,
            "subscriber_id",
            f"REF*0F {ident!r} is {found.member_number}, a dependent: REF*0F names the subscriber",
        )
    return found


def find_dependent(
    session: Session, subscriber: Member, record: MemberMaintenance
) -> Member | None:
    """The subscriber's dependent the record is about, by identifier, else name and birth."""
    family = session.scalars(
        select(Member)
        .where(Member.subscriber_id == subscriber.id, Member.id != subscriber.id)
        .order_by(Member.id)
    ).all()
    ident = record.member_identifier
    if ident:
        for member in family:
            if ident in (member.external_id, member.member_number):
                return member
    tries = (
        (record.previous_first_name, record.previous_birth_date or record.birth_date),
        (record.first_name, record.birth_date),
    )
    for first, born in tries:
        if not first:
            continue
        named = [m for m in family if m.first_name.upper() == first.upper()]
        named = [m for m in named if born is None or m.birth_date == born]
        if len(named) > 1:
            numbers = ", ".join(m.member_number for m in named)
            raise reject(record, "name", f"{first} matches several dependents: {numbers}")
        if named:
            return named[0]
    return None


def member_of(session: Session, record: MemberMaintenance) -> Member:
    """The existing member a change, termination, reinstatement or audit is about."""
    subscriber = subscriber_of(session, record)
    if record.subscriber:
        return subscriber
    found = find_dependent(session, subscriber, record)
    if found is None:
        born = f", born {record.birth_date}" if record.birth_date else ""
        raise reject(
            record,
            "name",
            f"{record.name}{born} is not a dependent of {subscriber.member_number}",
        )
    return found


# -- which plan --------------------------------------------------------------------
def _plan_named(session: Session, text: str, plan_map: Mapping[str, str | None]):
    """The plan `text` names (via plan_map, a plan key, or a HIOS plan id); False if none."""
    if text in plan_map:
        target = plan_map[text]
        if target is None:
            return None
        plan = session.scalar(select(Plan).where(Plan.plan_key == target))
        if plan is None:
            raise LookupError(f"the plan map sends {text!r} to {target!r}, which is no plan")
        return plan
    # X12 senders often write everything in capitals; plan keys are lower case.
    plan = session.scalar(select(Plan).where(Plan.plan_key == text.lower()))
    if plan is not None:
        return plan
    bare = text.replace("-", "")
    hios = session.scalars(select(Plan).where(Plan.hios_plan_id.is_not(None))).all()
    return next((p for p in hios if p.hios_plan_id.replace("-", "") == bare), False)


def _plan_for(session: Session, record: MemberMaintenance, cov: Coverage834, plan_map) -> Plan:
    """The plan an HD loop names, None when the plan map says the line is not ours."""
    tried = []
    for key, value in (
        ("class_of_contract", cov.class_of_contract),
        ("plan_description", cov.plan_description),
    ):
        if not value:
            continue
        tried.append(f"{'REF*CE' if key == 'class_of_contract' else 'HD04'} {value!r}")
        try:
            plan = _plan_named(session, value, plan_map)
        except LookupError as exc:
            raise reject(record, cov.sources.get(key), str(exc)) from None
        if plan is not False:
            break
    else:
        line = cov.insurance_line
        tried.append(f"HD03 {line!r}")
        if line not in plan_map:
            raise reject(
                record,
                cov.sources.get("plan_description" if cov.plan_description else "insurance_line"),
                f"no plan of OpenHMO for this coverage: {', '.join(tried)} name no plan key, HIOS "
                "plan id or entry of the plan map",
            )
        try:
            plan = _plan_named(session, line, plan_map)
        except LookupError as exc:
            raise reject(record, cov.sources.get("insurance_line"), str(exc)) from None
    if plan and cov.insurance_line in _PLAN_TYPES and plan.plan_type != cov.insurance_line:
        raise reject(
            record,
            cov.sources.get("insurance_line"),
            f"HD03 {cov.insurance_line} but {', '.join(tried)} is plan {plan.plan_key}, "
            f"a {plan.plan_type}",
        )
    return plan


def coverage_plans(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> list:
    """Each HD loop with its plan; lines that are not ours are left out, with a note."""
    mapped = []
    for cov in record.coverages:
        plan = _plan_for(ctx.session, record, cov, ctx.plan_map)
        if plan is None:
            what = " ".join(v for v in (cov.insurance_line, cov.plan_description) if v)
            out.notes.append(
                f"HD at position {cov.position} ({what}) is not a line of ours: skipped"
            )
            continue
        mapped.append((cov, plan))
    keys = sorted({plan.plan_key for _, plan in mapped})
    if len(keys) > 1:
        raise reject(
            record,
            mapped[1][0].sources.get("insurance_line"),
            f"the HD loops name {' and '.join(keys)}: OpenHMO holds one plan per member",
        )
    return mapped
