"""The 834's maintenance types, each applied to OpenHMO's enrollment for one member.

Every change is in the change history with who sent it and why: made through the
enrollment services where they have one (enroll_subscriber, add_dependent,
change_address, terminate_member, choose_pcp), and here, with record_change, for the two
they lack (correcting a member's name, birth date or sex; a reinstatement). `ACTIONS`
gives each maintenance its function.

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
- 030 audit (and every member of a file sent to verify): compared with our records,
  nothing written; the differences are the outcome's notes.

The coverage tier is not taken from HD05: OpenHMO's tier follows who is covered; an
addition notes its HD05 so that the set's end can say where the two disagree.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from openhmo.enrollment.maintenance_context import (
    LEVEL_TIERS,
    MemberOutcome,
    SetContext,
    refusals_at,
    reject,
)
from openhmo.enrollment.maintenance_match import (
    coverage_plans,
    find_dependent,
    find_subscriber,
    member_of,
    subscriber_of,
)
from openhmo.enrollment.models import Member, MemberCoverage
from openhmo.enrollment.pcp import choose_pcp, pcp_of
from openhmo.enrollment.service import (
    AddressIn,
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
from openhmo.interop.x12.enrollment834 import Coverage834, MemberMaintenance, Provider834
from openhmo.interop.x12.rules834 import MAINTENANCE_REASONS
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


# -- building blocks -------------------------------------------------------------------
def _person(record: MemberMaintenance, relationship: str, external_id: str | None) -> PersonIn:
    if not record.first_name:
        raise reject(record, "first_name", "NM104: a first name is needed to enroll a member")
    if record.birth_date is None or not record.sex:
        raise reject(record, "birth_date", "DMG: a birth date and sex are needed to enroll")
    with refusals_at(record, record.sources.get("name")):
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
    with refusals_at(record, record.sources.get("city")):
        return AddressIn(line1=a.line1, line2=a.line2, city=a.city, state=a.state, zip_code=a.zip5)


def _pcps(record, mapped, member: Member, ctx: SetContext, out: MemberOutcome, start: date | None):
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


def _choose(record, p: Provider834, member: Member, ctx: SetContext, out: MemberOutcome, start):
    session = ctx.session
    if p.id_qualifier != "XX":
        raise reject(
            record,
            p.sources.get("id_qualifier"),
            f"NM108 {p.id_qualifier!r}: OpenHMO finds a PCP by NPI (NM108 XX, NM109 the NPI)",
        )
    with refusals_at(record, p.sources.get("id_code")):
        npi = validate_npi(p.id_code)
    provider = session.scalar(select(Provider).where(Provider.npi == npi))
    if provider is None:
        raise reject(record, p.sources.get("id_code"), f"NM109 {npi}: no provider has this NPI")
    # A new member's PCP starts with their coverage (or the 2310 date, if later); a change
    # takes effect as the plan's rule says from the day the sponsor asked: the file's date.
    requested = max(p.effective or start, start) if start else ctx.day
    current = pcp_of(session, member, requested)
    if current is not None and current.provider_id == provider.id:
        out.notes.append(f"PCP of {member.member_number} is already {provider.display_name}")
        return
    with refusals_at(record, p.sources.get("id_code")):
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


def _day(record: MemberMaintenance, ctx: SetContext) -> date:
    return record.maintenance_effective or ctx.day


# -- the maintenance types ----------------------------------------------------------------
def _add(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> None:
    session = ctx.session
    if not record.subscriber:
        return _add_dependent(record, ctx, out)
    existing = find_subscriber(session, record)
    if existing is not None:
        raise reject(
            record,
            "subscriber_id",
            f"REF*0F {record.subscriber_id!r} is already {existing.member_number}: an addition "
            "(021) enrolls someone new; send a change (001) or a reinstatement (025)",
        )
    mapped = coverage_plans(record, ctx, out)
    if not mapped:
        raise reject(record, None, "an addition (021) needs an HD loop naming the plan")
    cov, plan = mapped[0]
    effective = cov.begin or record.eligibility_begin
    if effective is None:
        raise reject(record, cov.sources.get("maintenance_type"), "no DTP*348 or DTP*356 date")
    person = _person(record, "self", record.subscriber_id)
    address = _address(record)
    if address is None:
        raise reject(record, "name", "a subscriber is enrolled at an address: N3/N4 missing")
    with refusals_at(record, cov.sources.get("begin") or cov.sources.get("maintenance_type")):
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
    if cov.coverage_level in LEVEL_TIERS:
        ctx.tier_checks.append((out, coverage.id, cov.coverage_level))


def _add_dependent(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> None:
    session = ctx.session
    subscriber = subscriber_of(session, record)
    found = find_dependent(session, subscriber, record)
    if found is not None:
        raise reject(
            record, "name", f"{record.name} is already {found.member_number}: not added again"
        )
    relationship = _RELATIONSHIPS.get(record.relationship, "other")
    mapped = coverage_plans(record, ctx, out)
    begin = (mapped[0][0].begin if mapped else None) or record.eligibility_begin
    where = mapped[0][0].sources.get("begin") if mapped else record.sources.get("eligibility_begin")
    if begin is None:
        raise reject(record, None, "no DTP*348 (HD) or DTP*356 date for the dependent to join")
    coverage = current_coverage(session, subscriber, begin)
    if mapped and coverage is not None and coverage.plan_id != mapped[0][1].id:
        held = session.get(Plan, coverage.plan_id).plan_key
        raise reject(
            record,
            mapped[0][0].sources.get("insurance_line"),
            f"the HD names {mapped[0][1].plan_key}; {subscriber.member_number} holds {held}",
        )
    person = _person(record, relationship, record.member_identifier)
    address = _address(record)
    with refusals_at(record, where):
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


def _change(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> None:
    session = ctx.session
    member = member_of(session, record)
    out.member_number = member.member_number
    day = _day(record, ctx)
    _details(record, member, day, ctx, out)
    _move(record, member, day, ctx, out)
    mapped = coverage_plans(record, ctx, out)
    for cov, plan in mapped:
        if cov.maintenance_type == "024":
            _end(record, member, cov.end or record.eligibility_end or day, [(cov, plan)], ctx, out)
        elif cov.maintenance_type == "025":
            _reopen(record, member, [(cov, plan)], ctx, out)
        elif cov.maintenance_type in ("001", "021", "030"):
            _same_plan(record, member, cov, plan, cov.begin or day, ctx)
            _pcps(record, [(cov, plan)], member, ctx, out, None)
        else:
            raise reject(
                record,
                cov.sources.get("maintenance_type"),
                f"HD01 {cov.maintenance_type!r} is not applied by OpenHMO (001, 021, 024, 025 are)",
            )
    if not out.applied:
        out.notes.append("nothing to change: the 834 agrees with OpenHMO's records")


def _same_plan(record, member: Member, cov: Coverage834, plan: Plan, day: date, ctx: SetContext):
    coverage = current_coverage(ctx.session, member, day)
    if coverage is None:
        raise reject(record, cov.sources.get("maintenance_type"), f"no coverage on {day}")
    if coverage.plan_id != plan.id:
        held = ctx.session.get(Plan, coverage.plan_id).plan_key
        raise reject(
            record,
            cov.sources.get("insurance_line"),
            f"{member.member_number} holds {held}, the HD names {plan.plan_key}: a change of "
            "plan is not made from an 834 (end this coverage, enroll in the other)",
        )


def _details(record, member: Member, day: date, ctx: SetContext, out: MemberOutcome) -> None:
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


def _move(record, member: Member, day: date, ctx: SetContext, out: MemberOutcome) -> None:
    address = _address(record)
    if address is None:
        return
    home = current_address(ctx.session, member, day)
    given = (address.line1, address.line2 or "", address.city, address.state, address.zip_code)
    if home is not None:
        held = (home.line1, home.line2 or "", home.city, home.state, home.zip_code)
        if [v.upper() for v in held] == [v.upper() for v in given]:
            return
    with refusals_at(record, record.sources.get("address")):
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


def _terminate(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> None:
    member = member_of(ctx.session, record)
    out.member_number = member.member_number
    mapped = coverage_plans(record, ctx, out)
    ends = [cov.end for cov, _ in mapped if cov.end]
    end = record.eligibility_end or (ends[0] if ends else None) or record.maintenance_effective
    if end is None:
        raise reject(record, None, "a termination needs its last day: DTP*357 or HD DTP*349")
    _end(record, member, end, mapped, ctx, out)


def _end(record, member: Member, end: date, mapped, ctx: SetContext, out: MemberOutcome) -> None:
    for cov, plan in mapped:
        _same_plan(record, member, cov, plan, end, ctx)
    where = record.sources.get("eligibility_end") or (
        mapped[0][0].sources.get("end") if mapped else None
    )
    with refusals_at(record, where):
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


def _reinstate(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> None:
    member = member_of(ctx.session, record)
    out.member_number = member.member_number
    _reopen(record, member, coverage_plans(record, ctx, out), ctx, out)


def _reopen(record, member: Member, mapped, ctx: SetContext, out: MemberOutcome) -> None:
    """Undo the 834 termination of the member's last coverage span, continuing it."""
    session = ctx.session
    span = session.scalar(
        select(MemberCoverage)
        .where(MemberCoverage.member_id == member.id)
        .order_by(MemberCoverage.effective_date.desc(), MemberCoverage.id.desc())
    )
    if span is None or span.termination_date is None:
        raise reject(record, None, f"nothing to reinstate: {member.member_number} has no end")
    ended = span.termination_date
    if not (span.termination_reason or "").startswith(SPONSOR):
        raise reject(
            record,
            None,
            f"{member.member_number}'s eligibility ended {ended} for "
            f"{span.termination_reason}: an 834 reinstates only what a sponsor ended",
        )
    begins = [cov.begin for cov, _ in mapped if cov.begin]
    day = (begins[0] if begins else None) or record.eligibility_begin or ended + timedelta(1)
    if day > ended + timedelta(1):
        raise reject(
            record,
            None,
            f"coverage ended {ended}: resuming on {day} leaves a gap; that is a new enrollment",
        )
    coverage = span.coverage
    for cov, plan in mapped:
        if plan.id != coverage.plan_id:
            raise reject(record, cov.sources.get("insurance_line"), f"the HD names {plan.plan_key}")
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
        raise reject(record, None, why)
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


def _reinstated(ctx: SetContext, record, entity: str, entity_id, coverage, member, before) -> None:
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


def _compare(record: MemberMaintenance, ctx: SetContext, out: MemberOutcome) -> None:
    """An audit: the differences between the 834 and our records; nothing is written."""
    session = ctx.session
    out.status = "compared"
    member = member_of(session, record)
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
    for cov, plan in coverage_plans(record, ctx, out):
        coverage = current_coverage(session, member, cov.begin or day)
        if coverage is None:
            seen.append(f"plan {plan.plan_key}: OpenHMO has no coverage on {cov.begin or day}")
        elif coverage.plan_id != plan.id:
            held = session.get(Plan, coverage.plan_id).plan_key
            seen.append(f"plan: the 834 says {plan.plan_key}, OpenHMO {held}")
    out.notes.extend(seen or ["agrees with OpenHMO's records"])


ACTIONS = {
    "addition": _add,
    "change": _change,
    "termination": _terminate,
    "reinstatement": _reinstate,
    "audit": _compare,
}
