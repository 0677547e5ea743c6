"""Apply an 834's member maintenance to OpenHMO's enrollment, and say what became of each member.

The database shell around openhmo.interop.x12.enrollment834 (which reads; nothing there
writes). Members are applied in the order received, each in its own savepoint: a member
the rules refuse is rolled back and reported with the segment position, element and
reason, and the members after it still go through. Every change is in the change
history with who sent it and why: made through the enrollment services where they have
one (enroll_subscriber, add_dependent, change_address, terminate_member, choose_pcp), and
here, with record_change, for the two they lack (correcting a member's name, birth date
or sex; a reinstatement). The caller commits. `ingest_834` reads a file and applies it;
`EnrollmentSets` is the same as a processor of openhmo.interop.x12.ingest.

What each maintenance type does:

- 021 addition: a subscriber (INS01 Y) is enrolled with the plan its HD names, from HD
  DTP*348 (else DTP*356), at its N3/N4 address; a dependent joins the coverage of the
  subscriber REF*0F names, at its own address or the subscriber's. A 2310 NM1*P3 becomes
  the member's PCP from the coverage's start (or its 2310 DTP*348); OpenHMO knows
  providers by NPI, so a PCP named otherwise (NM108 SV, 34, FI) refuses the member.
- 001 change: name, birth date and sex (NM1/DMG), address (N3/N4) and PCP (2310), from
  DTP*303 (else the file's date, BGN03); a PCP change takes effect as the plan's rule
  says (the first of the next month, by default) from the day the sponsor asked, BGN03,
  and a 2310 DTP*348 asking for another day is noted. The HD must name the plan the
  member holds (a change of plan is not made from an 834); an HD whose HD01 is 024 or 025
  ends or reinstates that coverage.
- 024 termination: eligibility ends on DTP*357 (else HD DTP*349, else DTP*303), the last
  day covered; ending the subscriber's ends the whole coverage.
- 025 reinstatement: undoes a termination an 834 made (a termination for non-payment or a
  move out of the service area follows the plan's own rules and is not undone by a
  sponsor's file); coverage resumes without a gap, else it is reported as needing a new
  enrollment. The enrollment services have no reinstatement, so it is done here, in the
  history as `eligibility_reinstated` / `coverage_reinstated`.
- 030 audit, and every member of a file whose BGN08 is 4 (verify) or BGN01 22
  (information copy): compared with our records, nothing written; the differences are
  the outcome's notes.

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
subscriber). The coverage tier is not taken from HD05: OpenHMO's tier follows who is
covered; when an HD05 of EMP, IND, ESP, ECH or FAM disagrees with the tier at the end of
the set, the subscriber's outcome says so in a note.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from openhmo.enrollment.models import Coverage, Member, MemberCoverage
from openhmo.enrollment.pcp import choose_pcp, pcp_of
from openhmo.enrollment.service import (
    AddressIn,
    EnrollmentError,
    PersonIn,
    _refresh_tier,
    add_dependent,
    change_address,
    current_address,
    current_coverage,
    enroll_subscriber,
    terminate_member,
)
from openhmo.history.record import record_change
from openhmo.interop.x12.claims837 import Source
from openhmo.interop.x12.enrollment834 import (
    MAINTENANCE_REASONS,
    Coverage834,
    EnrollmentReader,
    Header834,
    MemberMaintenance,
    Provider834,
)
from openhmo.interop.x12.envelope import FileRead, Problem, TransactionSet, read_file
from openhmo.network.models import Provider
from openhmo.network.npi import validate_npi
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of

# What a sponsor's 834 termination writes as the termination reason: only these are
# reinstated by an 834.
SPONSOR = "sponsor: "
# INS02 -> our relationship: spouse and life partner; child, adopted, foster and stepchild.
# Every other dependent (a ward, a sponsored dependent ...) is "other".
_RELATIONSHIPS = {"01": "spouse", "53": "spouse", "19": "child", "09": "child", "10": "child"}
_RELATIONSHIPS |= {"17": "child"}
_PLAN_TYPES = ("HMO", "PPO", "EPO", "POS")
_LEVEL_TIERS = {
    "EMP": "self_only",
    "IND": "self_only",
    "ESP": "self_plus_spouse",
    "ECH": "self_plus_children",
    "FAM": "family",
}


@dataclass(slots=True)
class MemberOutcome:
    """What became of one member loop: applied (what), compared, or rejected (why, where)."""

    set_control: str
    position: int  # INS's position in its transaction set
    line: int
    maintenance: str
    subscriber_id: str
    name: str
    status: str = "applied"  # applied | compared | rejected
    member_number: str | None = None
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self, source: str) -> dict[str, Any]:
        return {
            "member": self.member_number or f"REF*0F {self.subscriber_id} {self.name}".strip(),
            "set": self.set_control,
            "position": self.position,
            "maintenance": self.maintenance,
            "status": self.status,
            "applied": self.applied,
            "notes": self.notes,
            "reasons": [p.describe(source) for p in self.problems],
        }


@dataclass(slots=True)
class MaintenanceReport:
    source: str
    outcomes: list[MemberOutcome] = field(default_factory=list)
    set_problems: list[str] = field(default_factory=list)  # sets not applied, and why

    def with_status(self, status: str) -> list[MemberOutcome]:
        return [o for o in self.outcomes if o.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "set_problems": self.set_problems,
            "members": [o.as_dict(self.source) for o in self.outcomes],
        }


class _Rejected(Exception):
    """A member refused: carries the Problem that says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


@dataclass
class _Set:
    """One transaction set being applied: who sent it and how to apply it."""

    session: Session
    actor: str
    plan_map: Mapping[str, str | None]
    header: Header834
    day: date  # BGN03: the default effective date of a change
    compare_only: bool
    tier_checks: list[tuple[MemberOutcome, int, str]] = field(default_factory=list)

    def reason(self, record: MemberMaintenance) -> str:
        h = self.header
        sponsor = h.sponsor_name or h.sponsor_id or "the sponsor"
        why = MAINTENANCE_REASONS.get(record.reason)
        return f"834 {record.maintenance} from {sponsor} ({h.reference})" + (
            f": {why}" if why else ""
        )


def _problem(record: MemberMaintenance, where: Source | str | None, reason: str) -> Problem:
    src = record.sources.get(where) if isinstance(where, str) else where
    if src is None:
        return Problem(
            reason, "INS", record.position, record.ordinal, record.line, "8", loop="2000"
        )
    return Problem(
        reason, src.segment, src.position, src.ordinal, src.line, "8", src.element, src.component
    )


def _reject(record: MemberMaintenance, where: Source | str | None, reason: str) -> _Rejected:
    return _Rejected(_problem(record, where, reason))


def _why(exc: Exception) -> str:
    if isinstance(exc, EnrollmentError):
        return exc.reason
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


@contextmanager
def _at(record: MemberMaintenance, where: Source | None) -> Iterator[None]:
    """Turn the services' refusals into the member's problem at the segment that caused it."""
    try:
        yield
    except (ValueError, LookupError) as exc:  # EnrollmentError, UnknownPlan, InvalidNpi, pydantic
        reason = _why(exc)
        if any(word in reason for word in ("ZIP", "address", "service area")):
            where = record.sources.get("zip_code") or record.sources.get("address") or where
        elif "younger than" in reason or "born after" in reason:
            where = record.sources.get("birth_date") or where
        raise _reject(record, where, reason) from None


# -- who is who -----------------------------------------------------------------
def _subscriber(session: Session, record: MemberMaintenance) -> Member | None:
    ident = record.subscriber_id
    found = session.scalar(select(Member).where(Member.member_number == ident))
    if found is not None:
        return found
    rows = session.scalars(
        select(Member).where(Member.external_id == ident, Member.subscriber_id == Member.id)
    ).all()
    if len(rows) > 1:
        numbers = ", ".join(m.member_number for m in rows)
        raise _reject(record, "subscriber_id", f"REF*0F {ident!r} is the id of {numbers}")
    return rows[0] if rows else None


def _subscriber_of(session: Session, record: MemberMaintenance) -> Member:
    found = _subscriber(session, record)
    ident = record.subscriber_id
    if found is None:
        raise _reject(
            record,
            "subscriber_id",
            f"REF*0F {ident!r} names no subscriber of OpenHMO (neither a member number nor the "
            "external id of a subscriber)",
        )
    if found.subscriber_id != found.id:
        raise _reject(
            record,
            "subscriber_id",
            f"REF*0F {ident!r} is {found.member_number}, a dependent: REF*0F names the subscriber",
        )
    return found


def _dependent(session: Session, subscriber: Member, record: MemberMaintenance) -> Member | None:
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
            raise _reject(record, "name", f"{first} matches several dependents: {numbers}")
        if named:
            return named[0]
    return None


def _member(session: Session, record: MemberMaintenance) -> Member:
    """The existing member a change, termination, reinstatement or audit is about."""
    subscriber = _subscriber_of(session, record)
    if record.subscriber:
        return subscriber
    found = _dependent(session, subscriber, record)
    if found is None:
        born = f", born {record.birth_date}" if record.birth_date else ""
        raise _reject(
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
            raise _reject(record, cov.sources.get(key), str(exc)) from None
        if plan is not False:
            break
    else:
        line = cov.insurance_line
        tried.append(f"HD03 {line!r}")
        if line not in plan_map:
            raise _reject(
                record,
                cov.sources.get("plan_description" if cov.plan_description else "insurance_line"),
                f"no plan of OpenHMO for this coverage: {', '.join(tried)} name no plan key, HIOS "
                "plan id or entry of the plan map",
            )
        try:
            plan = _plan_named(session, line, plan_map)
        except LookupError as exc:
            raise _reject(record, cov.sources.get("insurance_line"), str(exc)) from None
    if plan and cov.insurance_line in _PLAN_TYPES and plan.plan_type != cov.insurance_line:
        raise _reject(
            record,
            cov.sources.get("insurance_line"),
            f"HD03 {cov.insurance_line} but {', '.join(tried)} is plan {plan.plan_key}, "
            f"a {plan.plan_type}",
        )
    return plan


def _coverages(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> list:
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
        raise _reject(
            record,
            mapped[1][0].sources.get("insurance_line"),
            f"the HD loops name {' and '.join(keys)}: OpenHMO holds one plan per member",
        )
    return mapped


# -- building blocks -------------------------------------------------------------------
def _person(record: MemberMaintenance, relationship: str, external_id: str | None) -> PersonIn:
    if not record.first_name:
        raise _reject(record, "first_name", "NM104: a first name is needed to enroll a member")
    if record.birth_date is None or not record.sex:
        raise _reject(record, "birth_date", "DMG: a birth date and sex are needed to enroll")
    with _at(record, record.sources.get("name")):
        return PersonIn(
            first_name=record.first_name,
            last_name=record.last_name,
            birth_date=record.birth_date,
            sex=record.sex,
            relationship=relationship,
            external_id=external_id,
        )


def _address(record: MemberMaintenance) -> AddressIn | None:
    a = record.address
    if a is None or not a.line1:
        return None
    with _at(record, record.sources.get("city")):
        return AddressIn(line1=a.line1, line2=a.line2, city=a.city, state=a.state, zip_code=a.zip5)


def _pcps(record, mapped, member: Member, ctx: _Set, out: MemberOutcome, start: date | None):
    """The 2310 primary care providers of the member's coverage; `start` for a new member."""
    for cov, _plan in mapped:
        for provider in cov.providers:
            if provider.entity != "P3":
                out.notes.append(
                    f"2310 NM1*{provider.entity} at position {provider.position}: only the "
                    "primary care provider (P3) is kept"
                )
                continue
            _choose(record, provider, member, ctx, out, start)


def _choose(record, p: Provider834, member: Member, ctx: _Set, out: MemberOutcome, start):
    session = ctx.session
    if p.id_qualifier != "XX":
        raise _reject(
            record,
            p.sources.get("id_qualifier"),
            f"NM108 {p.id_qualifier!r}: OpenHMO finds a PCP by NPI (NM108 XX, NM109 the NPI)",
        )
    with _at(record, p.sources.get("id_code")):
        npi = validate_npi(p.id_code)
    provider = session.scalar(select(Provider).where(Provider.npi == npi))
    if provider is None:
        raise _reject(record, p.sources.get("id_code"), f"NM109 {npi}: no provider has this NPI")
    # A new member's PCP starts with their coverage (or the 2310 date, if later); a change
    # takes effect as the plan's rule says from the day the sponsor asked: the file's date.
    requested = max(p.effective or start, start) if start else ctx.day
    current = pcp_of(session, member, requested)
    if current is not None and current.provider_id == provider.id:
        out.notes.append(f"PCP of {member.member_number} is already {provider.display_name}")
        return
    with _at(record, p.sources.get("id_code")):
        assignment = choose_pcp(
            session,
            member=member,
            provider=provider,
            requested_on=requested,
            actor=ctx.actor,
            initial=start is not None,
            reason=ctx.reason(record),
        )
    if p.effective and p.effective != assignment.effective_from:
        out.notes.append(
            f"2310 DTP*348 asks for {p.effective}; the plan's rule starts the PCP on "
            f"{assignment.effective_from}"
        )
    out.applied.append(
        f"PCP of {member.member_number}: {provider.display_name} (NPI {npi}) from "
        f"{assignment.effective_from}"
    )


def _day(record: MemberMaintenance, ctx: _Set) -> date:
    return record.maintenance_effective or ctx.day


# -- the maintenance types ----------------------------------------------------------------
def _add(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> None:
    session = ctx.session
    if not record.subscriber:
        return _add_dependent(record, ctx, out)
    existing = _subscriber(session, record)
    if existing is not None:
        raise _reject(
            record,
            "subscriber_id",
            f"REF*0F {record.subscriber_id!r} is already {existing.member_number}: an addition "
            "(021) enrolls someone new; send a change (001) or a reinstatement (025)",
        )
    mapped = _coverages(record, ctx, out)
    if not mapped:
        raise _reject(record, None, "an addition (021) needs an HD loop naming the plan")
    cov, plan = mapped[0]
    effective = cov.begin or record.eligibility_begin
    if effective is None:
        raise _reject(record, cov.sources.get("maintenance_type"), "no DTP*348 or DTP*356 date")
    person = _person(record, "self", record.subscriber_id)
    address = _address(record)
    if address is None:
        raise _reject(record, "name", "a subscriber is enrolled at an address: N3/N4 missing")
    with _at(record, cov.sources.get("begin") or cov.sources.get("maintenance_type")):
        coverage = enroll_subscriber(
            session,
            plan_key=plan.plan_key,
            subscriber=person,
            address=address,
            effective=effective,
            actor=ctx.actor,
            reason=ctx.reason(record),
        )
    member = session.get(Member, coverage.subscriber_id)
    out.member_number = member.member_number
    out.applied.append(f"enrolled {member.member_number} in {plan.plan_key} from {effective}")
    _pcps(record, mapped, member, ctx, out, effective)
    _pcp_note(mapped, member, out)
    if cov.coverage_level in _LEVEL_TIERS:
        ctx.tier_checks.append((out, coverage.id, cov.coverage_level))


def _add_dependent(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> None:
    session = ctx.session
    subscriber = _subscriber_of(session, record)
    found = _dependent(session, subscriber, record)
    if found is not None:
        raise _reject(
            record, "name", f"{record.name} is already {found.member_number}: not added again"
        )
    relationship = _RELATIONSHIPS.get(record.relationship, "other")
    mapped = _coverages(record, ctx, out)
    begin = (mapped[0][0].begin if mapped else None) or record.eligibility_begin
    where = mapped[0][0].sources.get("begin") if mapped else record.sources.get("eligibility_begin")
    if begin is None:
        raise _reject(record, None, "no DTP*348 (HD) or DTP*356 date for the dependent to join")
    coverage = current_coverage(session, subscriber, begin)
    if mapped and coverage is not None and coverage.plan_id != mapped[0][1].id:
        held = session.get(Plan, coverage.plan_id).plan_key
        raise _reject(
            record,
            mapped[0][0].sources.get("insurance_line"),
            f"the HD names {mapped[0][1].plan_key}; {subscriber.member_number} holds {held}",
        )
    person = _person(record, relationship, record.member_identifier)
    address = _address(record)
    with _at(record, where):
        member = add_dependent(
            session,
            subscriber=subscriber,
            person=person,
            effective=begin,
            actor=ctx.actor,
            address=address,
            reason=ctx.reason(record),
        )
    out.member_number = member.member_number
    out.applied.append(
        f"added {member.member_number} ({relationship}) to {subscriber.member_number}'s "
        f"coverage from {begin}"
    )
    _pcps(record, mapped, member, ctx, out, begin)
    _pcp_note(mapped, member, out)


def _pcp_note(mapped, member: Member, out: MemberOutcome) -> None:
    """Say so when a new member of a plan that requires a PCP was given none."""
    named = any(p.entity == "P3" for cov, _ in mapped for p in cov.providers)
    plans = [plan for _, plan in mapped]
    if not named and plans and design_of(plans[0]).rules.pcp_required:
        out.notes.append(f"{member.member_number} has no PCP yet: auto-assignment will choose")


def _change(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> None:
    session = ctx.session
    member = _member(session, record)
    out.member_number = member.member_number
    day = _day(record, ctx)
    _details(record, member, day, ctx, out)
    _move(record, member, day, ctx, out)
    mapped = _coverages(record, ctx, out)
    for cov, plan in mapped:
        if cov.maintenance_type == "024":
            _end(record, member, cov.end or record.eligibility_end or day, [(cov, plan)], ctx, out)
        elif cov.maintenance_type == "025":
            _reopen(record, member, [(cov, plan)], ctx, out)
        elif cov.maintenance_type in ("001", "021", "030"):
            _same_plan(record, member, cov, plan, cov.begin or day, ctx)
            _pcps(record, [(cov, plan)], member, ctx, out, None)
        else:
            raise _reject(
                record,
                cov.sources.get("maintenance_type"),
                f"HD01 {cov.maintenance_type!r} is not applied by OpenHMO (001, 021, 024, 025 are)",
            )
    if not out.applied:
        out.notes.append("nothing to change: the 834 agrees with OpenHMO's records")


def _same_plan(record, member: Member, cov: Coverage834, plan: Plan, day: date, ctx: _Set):
    coverage = current_coverage(ctx.session, member, day)
    if coverage is None:
        raise _reject(record, cov.sources.get("maintenance_type"), f"no coverage on {day}")
    if coverage.plan_id != plan.id:
        held = ctx.session.get(Plan, coverage.plan_id).plan_key
        raise _reject(
            record,
            cov.sources.get("insurance_line"),
            f"{member.member_number} holds {held}, the HD names {plan.plan_key}: a change of "
            "plan is not made from an 834 (end this coverage, enroll in the other)",
        )


def _details(record, member: Member, day: date, ctx: _Set, out: MemberOutcome) -> None:
    """Name, birth date and sex as the 834 now gives them (a correction, a marriage ...)."""
    changes: dict[str, list] = {}
    for attr in ("first_name", "last_name"):
        new, old = getattr(record, attr), getattr(member, attr)
        if new and new.upper() != old.upper():
            changes[attr] = [old, new]
    if record.birth_date and record.birth_date != member.birth_date:
        changes["birth_date"] = [member.birth_date, record.birth_date]
    if record.sex in ("F", "M", "U") and record.sex != member.sex:
        changes["sex"] = [member.sex, record.sex]
    if not changes:
        return
    for attr, (_old, new) in changes.items():
        setattr(member, attr, new)
    record_change(
        ctx.session,
        actor=ctx.actor,
        entity="member",
        entity_id=member.member_number,
        action="member_details_changed",
        member_id=member.id,
        effective_date=day,
        changes=changes,
        reason=ctx.reason(record),
    )
    said = ", ".join(f"{k} {old} → {new}" for k, (old, new) in changes.items())
    out.applied.append(f"{member.member_number}: {said}")


def _move(record, member: Member, day: date, ctx: _Set, out: MemberOutcome) -> None:
    address = _address(record)
    if address is None:
        return
    home = current_address(ctx.session, member, day)
    given = (address.line1, address.line2 or "", address.city, address.state, address.zip_code)
    if home is not None:
        held = (home.line1, home.line2 or "", home.city, home.state, home.zip_code)
        if [v.upper() for v in held] == [v.upper() for v in given]:
            return
    with _at(record, record.sources.get("address")):
        ended = change_address(
            ctx.session,
            member=member,
            address=address,
            effective=day,
            actor=ctx.actor,
            reason=ctx.reason(record),
        )
    out.applied.append(
        f"address of {member.member_number} from {day}: {address.line1}, {address.city} "
        f"{address.state} {address.zip_code}"
    )
    if ended:
        numbers = ", ".join(sorted(s.member.member_number for s in ended))
        out.applied.append(
            f"outside the service area: eligibility ends {ended[0].termination_date} ({numbers})"
        )


def _terminate(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> None:
    member = _member(ctx.session, record)
    out.member_number = member.member_number
    mapped = _coverages(record, ctx, out)
    ends = [cov.end for cov, _ in mapped if cov.end]
    end = record.eligibility_end or (ends[0] if ends else None) or record.maintenance_effective
    if end is None:
        raise _reject(record, None, "a termination needs its last day: DTP*357 or HD DTP*349")
    _end(record, member, end, mapped, ctx, out)


def _end(record, member: Member, end: date, mapped, ctx: _Set, out: MemberOutcome) -> None:
    for cov, plan in mapped:
        _same_plan(record, member, cov, plan, end, ctx)
    where = record.sources.get("eligibility_end") or (
        mapped[0][0].sources.get("end") if mapped else None
    )
    with _at(record, where):
        ended = terminate_member(
            ctx.session,
            member=member,
            termination_date=end,
            actor=ctx.actor,
            reason=(SPONSOR + MAINTENANCE_REASONS.get(record.reason, "termination"))[:60],
            note=ctx.reason(record),
        )
    numbers = ", ".join(sorted(s.member.member_number for s in ended))
    out.applied.append(f"eligibility ends {end} ({numbers})")


def _reinstate(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> None:
    member = _member(ctx.session, record)
    out.member_number = member.member_number
    _reopen(record, member, _coverages(record, ctx, out), ctx, out)


def _reopen(record, member: Member, mapped, ctx: _Set, out: MemberOutcome) -> None:
    """Undo the 834 termination of the member's last coverage span, continuing it."""
    session = ctx.session
    span = session.scalar(
        select(MemberCoverage)
        .where(MemberCoverage.member_id == member.id)
        .order_by(MemberCoverage.effective_date.desc(), MemberCoverage.id.desc())
    )
    if span is None or span.termination_date is None:
        raise _reject(record, None, f"nothing to reinstate: {member.member_number} has no end")
    ended = span.termination_date
    if not (span.termination_reason or "").startswith(SPONSOR):
        raise _reject(
            record,
            None,
            f"{member.member_number}'s eligibility ended {ended} for "
            f"{span.termination_reason}: an 834 reinstates only what a sponsor ended",
        )
    begins = [cov.begin for cov, _ in mapped if cov.begin]
    day = (begins[0] if begins else None) or record.eligibility_begin or ended + timedelta(1)
    if day > ended + timedelta(1):
        raise _reject(
            record,
            None,
            f"coverage ended {ended}: resuming on {day} leaves a gap; that is a new enrollment",
        )
    coverage = span.coverage
    for cov, plan in mapped:
        if plan.id != coverage.plan_id:
            raise _reject(
                record, cov.sources.get("insurance_line"), f"the HD names {plan.plan_key}"
            )
    if member.id == coverage.subscriber_id:
        spans = [
            s
            for s in coverage.members
            if (s.termination_date, s.termination_reason) == (ended, span.termination_reason)
        ]
        before = coverage.termination_date
        coverage.termination_date = coverage.termination_reason = None
        _reinstated(ctx, record, "coverage", coverage.id, coverage, member, before)
    elif coverage.termination_date is not None and coverage.termination_date <= ended:
        why = f"the subscriber's coverage ended {coverage.termination_date}: reinstate them first"
        raise _reject(record, None, why)
    else:
        spans = [span]
    for s in spans:
        # A dependent's span runs on as long as the coverage it is under (to its end, if set).
        s.termination_date = coverage.termination_date
        s.termination_reason = coverage.termination_reason
        _reinstated(ctx, record, "member", s.member.member_number, coverage, s.member, ended)
    session.flush()
    _refresh_tier(session, coverage, ended + timedelta(1), ctx.actor, ctx.reason(record))
    numbers = ", ".join(sorted(s.member.member_number for s in spans))
    out.applied.append(f"reinstated from {ended + timedelta(1)}: {numbers}")


def _reinstated(ctx: _Set, record, entity: str, entity_id, coverage, member, before) -> None:
    after = coverage.termination_date if entity == "member" else None
    record_change(
        ctx.session,
        actor=ctx.actor,
        entity=entity,
        entity_id=entity_id,
        action="coverage_reinstated" if entity == "coverage" else "eligibility_reinstated",
        member_id=member.id,
        coverage_id=coverage.id,
        effective_date=before + timedelta(1) if before else None,
        changes={"termination_date": [before, after]},
        reason=ctx.reason(record),
    )


def _compare(record: MemberMaintenance, ctx: _Set, out: MemberOutcome) -> None:
    """An audit: the differences between the 834 and our records; nothing is written."""
    session = ctx.session
    out.status = "compared"
    member = _member(session, record)
    out.member_number = member.member_number
    day = record.eligibility_begin or _day(record, ctx)
    seen = []
    if record.name.upper() != member.name.upper():
        seen.append(f"name: the 834 says {record.name}, OpenHMO {member.name}")
    if record.birth_date and record.birth_date != member.birth_date:
        seen.append(f"birth date: the 834 says {record.birth_date}, OpenHMO {member.birth_date}")
    home = current_address(session, member, day)
    if record.address and home and record.address.zip5 != home.zip_code:
        seen.append(f"ZIP code: the 834 says {record.address.zip5}, OpenHMO {home.zip_code}")
    for cov, plan in _coverages(record, ctx, out):
        coverage = current_coverage(session, member, cov.begin or day)
        if coverage is None:
            seen.append(f"plan {plan.plan_key}: OpenHMO has no coverage on {cov.begin or day}")
        elif coverage.plan_id != plan.id:
            held = session.get(Plan, coverage.plan_id).plan_key
            seen.append(f"plan: the 834 says {plan.plan_key}, OpenHMO {held}")
    out.notes.extend(seen or ["agrees with OpenHMO's records"])


_ACTIONS = {
    "addition": _add,
    "change": _change,
    "termination": _terminate,
    "reinstatement": _reinstate,
    "audit": _compare,
}


# -- applying sets and files ------------------------------------------------------------
def _apply_member(session: Session, record: MemberMaintenance, ctx: _Set) -> MemberOutcome:
    """One member, in its own savepoint: applied, compared, or rejected and rolled back."""
    out = MemberOutcome(
        record.set_control,
        record.position,
        record.line,
        record.maintenance,
        record.subscriber_id,
        record.name,
    )
    if record.problems:
        out.status, out.problems = "rejected", list(record.problems)
        return out
    action = _ACTIONS["audit" if ctx.compare_only else record.maintenance]
    try:
        with session.begin_nested():
            action(record, ctx, out)
    except _Rejected as exc:
        out.status, out.problems, out.applied = "rejected", [exc.problem], []
    except (ValueError, LookupError) as exc:  # a refusal from outside `_at`: at the INS
        out.status, out.problems, out.applied = "rejected", [_problem(record, None, _why(exc))], []
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        out.problems = [_problem(record, None, f"the database refused the change: {detail}")]
        out.status, out.applied = "rejected", []
    return out


def apply_set(
    session: Session,
    ts: TransactionSet,
    records: list[MemberMaintenance],
    *,
    actor: str,
    plan_map: Mapping[str, str | None] | None = None,
) -> list[MemberOutcome]:
    """Apply one accepted 834 set's members, in order; the caller commits."""
    header = ts.result.header if ts.result is not None else Header834()
    ctx = _Set(
        session,
        actor,
        plan_map or {},
        header,
        header.created or date.today(),
        compare_only=header.action == "4" or header.purpose == "22",
    )
    outcomes = [_apply_member(session, record, ctx) for record in records]
    for out, coverage_id, level in ctx.tier_checks:
        coverage = session.get(Coverage, coverage_id)
        if (
            coverage is not None
            and out.status == "applied"
            and coverage.tier != _LEVEL_TIERS[level]
        ):
            out.notes.append(
                f"HD05 {level} is {_LEVEL_TIERS[level]}; OpenHMO's tier, from who is covered, "
                f"is {coverage.tier}"
            )
    return outcomes


class EnrollmentSets:
    """The 834 processor of openhmo.interop.x12.ingest (its `SetProcessor`): a reader for
    each set as it starts, and `apply` once the set ended with a sound envelope."""

    code = "834"
    answer_code: str | None = None  # an 834 is answered by the 999 alone
    answer_version: str | None = None
    answer_functional_id: str | None = None

    def __init__(self, plan_map: Mapping[str, str | None] | None = None) -> None:
        self.plan_map = plan_map
        self.records: list[MemberMaintenance] = []

    def reader(self, ts: TransactionSet, delimiters) -> EnrollmentReader:
        self.records = []
        return EnrollmentReader(ts, delimiters, self.records.append)

    def apply(
        self,
        session: Session,
        ts: TransactionSet,
        report: Any,
        answer: Any = None,
        *,
        actor: str,
        now: Any = None,
        source: str = "",
    ) -> None:
        """Apply the set's members; each outcome goes to `report.applied` or `.rejected`."""
        for out in apply_set(session, ts, self.records, actor=actor, plan_map=self.plan_map):
            target = report.rejected if out.status == "rejected" else report.applied
            target.append(out.as_dict(source))


def ingest_834(
    session: Session,
    source: str | Path | IO[bytes],
    *,
    actor: str,
    plan_map: Mapping[str, str | None] | None = None,
    name: str | None = None,
) -> tuple[FileRead, MaintenanceReport]:
    """Read an 834 file and apply its accepted sets in the caller's transaction."""
    label = name or (
        str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")
    )
    report = MaintenanceReport(label)
    sets = EnrollmentSets()

    def on_set(ts: TransactionSet) -> None:
        if ts.status == "R" or ts.code != "834":
            problems = [r for _, r in ts.set_problems] + [p.describe(label) for p in ts.problems]
            report.set_problems.append(
                f"transaction set {ts.code} {ts.control}: not applied: {'; '.join(problems)}"
            )
            return
        report.outcomes += apply_set(session, ts, sets.records, actor=actor, plan_map=plan_map)

    read = read_file(source, {"834": sets.reader}, on_set=on_set, name=name)
    return read, report


def load_plan_map(path: str | Path) -> dict[str, str | None]:
    """A plan map from YAML: `sponsor code: plan key`, or `code: null` for a line not ours.

    Everything is read as text (YAML's base loader): a code such as 064703 stays 064703,
    where the usual loader would read an octal number.
    """
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}
    if not isinstance(data, dict) or any(not isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: a plan map is a mapping of 834 codes to plan keys")
    return {k: None if v in ("", "~", "null", "Null", "NULL") else v for k, v in data.items()}
