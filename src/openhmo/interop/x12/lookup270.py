"""The answer to a 270 inquiry from our database: the member asked about, their coverage
on the day asked, and their benefits.

`lookup` finds the member (`find_patient`: the subscriber by member number, a dependent
by birth date and first name under the subscriber's number), asks `eligibility_on`, and
reads the plan design, the PCP and the family's accumulators of the plan year into an
`answer271.Answer`; a member we do not have is a `Reject`: AAA*Y**75*C (71 when the birth
date differs, 77 when the subscriber is ours but the dependent is not; AAA*N with 72 when
no identifier was sent, 58 for a birth date that is not a date, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from openhmo.claims.models import FAMILY_HOLDER, Accumulator
from openhmo.enrollment.eligibility import Eligibility, eligibility_of, spans_of
from openhmo.enrollment.models import Coverage, Member, MemberCoverage
from openhmo.enrollment.pcp import pcp_provider_of
from openhmo.enrollment.service import current_address, tier_on
from openhmo.interop.x12.answer271 import (
    CATEGORY_SERVICE_TYPE,
    COVERAGE_LEVEL,
    INSURANCE_TYPE,
    NETWORK,
    PER_UNIT,
    Answer,
    Benefits,
    CostLine,
    Limit,
    Outcome,
    Pcp,
    Person,
    Reject,
)
from openhmo.interop.x12.envelope import Problem
from openhmo.interop.x12.inquiry270 import Inquiry, Level
from openhmo.plans.cost_share import CostShare
from openhmo.plans.design import CoverageTier, PlanDesign, PlanYear, TierName
from openhmo.plans.store import design_of_plan, kept_per_design

# AAA03 for a problem in a patient's own segments, by (loop level, segment, element).
_REJECT_CODES = {
    ("22", "NM1", 9): "72",
    ("22", "NM1", 8): "72",
    ("22", "NM1", 3): "73",
    ("22", "NM1", 4): "73",
    ("22", "DMG", 2): "58",
    ("22", "DMG", 3): "74",
    ("23", "NM1", 3): "65",
    ("23", "NM1", 4): "65",
    ("23", "DMG", 2): "58",
    ("23", "DMG", 3): "66",
}


def _level_reject(inquiry: Inquiry) -> Reject | None:
    """The AAA answering an inquiry whose own segments are in error (None when they are not)."""
    for level, where in ((inquiry.subscriber, "C"), (inquiry.dependent, "D")):
        if level is None or not level.problems:
            continue
        first = level.problems[0]
        if first.segment == "DTP":
            code = "56"
        else:
            code = _REJECT_CODES.get((level.code, first.segment, first.element or 0), "15")
        return Reject(where, code, "C", tuple(level.problems))
    return None


def _not_found(level: Level, reason: str, birth: bool = False) -> Problem:
    """A problem at the patient's NM109, or their DMG02 (`birth`)."""
    at = level.birth_at if birth else level.name_at
    position, ordinal, line = at or (level.position, level.ordinal, level.line)
    value = f"{level.birth:%Y%m%d}" if birth and level.birth else level.get(9)[:99] or None
    return Problem(
        reason,
        "DMG" if birth else "NM1",
        position,
        ordinal,
        line,
        "8",
        2 if birth else 9,
        element_code="7",
        value=value,
        loop="2100C" if level.code == "22" else "2100D",
    )


def find_patient(session: Session, inquiry: Inquiry) -> Member | Reject:
    """Our member the inquiry asks about, or the AAA that says why there is none."""
    found = _level_reject(inquiry)
    if found is not None:
        return found
    subscriber = inquiry.subscriber
    sent = inquiry.member_id
    if not sent:
        reason = "NM109: the subscriber's member identifier is missing"
        return Reject("C", "72", "C", (_not_found(subscriber, reason),))
    member = session.scalar(select(Member).where(Member.member_number == sent))
    if member is None:
        reason = f"subscriber {sent!r} is not a member of this plan"
        return Reject("C", "75", "C", (_not_found(subscriber, reason),))
    if subscriber.birth is not None and subscriber.birth != member.birth_date:
        reason = f"DMG02 {subscriber.birth:%Y%m%d}: not the birth date of member {sent}"
        return Reject("C", "71", "C", (_not_found(subscriber, reason, birth=True),))
    dependent = inquiry.dependent
    if dependent is None:
        return member
    family = session.scalars(
        select(Member).where(Member.subscriber_id == member.subscriber_id).order_by(Member.id)
    ).all()
    first = dependent.get(4).strip().upper()
    matches = [
        m
        for m in family
        if (dependent.birth is None or m.birth_date == dependent.birth)
        and (not first or m.first_name.upper() == first)
    ]
    if len(matches) == 1 and (dependent.birth is not None or first):
        return matches[0]
    born = f"{dependent.birth:%Y%m%d}" if dependent.birth else "no birth date"
    reason = f"dependent {first or '(no name)'} ({born}) is not in the family of member {sent}"
    return Reject("D", "77", "C", (_not_found(dependent, reason),))


def _met(session: Session, family_id: int, design: PlanDesign, plan_year: PlanYear) -> dict:
    rows = session.execute(
        select(
            Accumulator.holder, Accumulator.pool, Accumulator.kind, Accumulator.amount_cents
        ).where(
            Accumulator.family_id == family_id,
            Accumulator.plan_key == design.id,
            Accumulator.plan_year == plan_year.year,
        )
    )
    return {(holder, pool, kind): amount for holder, pool, kind, amount in rows}


def _limits(
    met: dict, member_id: int, values, kind: str, pool: str, code: str,
    self_only: bool, network: str, service_type: str = "30",
) -> list[Limit]:  # fmt: skip
    """IND and FAM limits of one accumulator kind, as the adjudication engine applies them.

    Self-only coverage has the individual amount only; an aggregate deductible has the
    family amount only. A member's remaining is also capped by the family's, since
    either one being met meets theirs (DOMAIN.md §4).
    """
    aggregate = getattr(values, "kind", "embedded") == "aggregate"
    mine = met.get((member_id, pool, kind), 0)
    family = met.get((FAMILY_HOLDER, pool, kind), 0)
    out: list[Limit] = []
    family_left = None if self_only else values.family - family
    if self_only or not aggregate:
        left = values.individual - mine
        if family_left is not None:
            left = min(left, family_left)
        out.append(Limit(code, "IND", network, values.individual, left, service_type))
    if not self_only:
        out.append(Limit(code, "FAM", network, values.family, family_left, service_type))
    return out


# The cost lines of a plan year: the same for every member, so made once (kept_per_design).
_lines: dict = {}


def _lines_of(design: PlanDesign, plan_year: PlanYear, period: str) -> tuple[CostLine, ...]:
    return kept_per_design(
        _lines,
        design,
        (plan_year.year, period),
        lambda: tuple(_cost_lines(design, plan_year, period)),
    )


def _cost_lines(design: PlanDesign, plan_year: PlanYear, period: str) -> list[CostLine]:
    lines: list[CostLine] = []
    for category, benefit in plan_year.benefits.items():
        code = CATEGORY_SERVICE_TYPE.get(category)
        if code is None:
            continue
        referral = (
            design.rules.referral_required
            and category in design.referrals.required_for
            and category not in design.referrals.direct_access
        )
        authorization = referral or design.needs_prior_authorization(plan_year, category)
        limit = None
        if benefit.limit is not None:
            unit = "DY" if benefit.limit.unit == "days" else "VS"
            per = {"plan_year": period, "stay": "36", "lifetime": "32"}[benefit.limit.per]
            limit = (unit, benefit.limit.count, per)
        for tier, share in benefit.cost.items():
            lines.append(_cost_line(code, NETWORK[tier], share, authorization, limit))
    return lines


def _cost_line(code: str, network: str, share: CostShare, authorization: bool, limit) -> CostLine:
    if not share.covered:
        return CostLine(code, network, covered=False)
    return CostLine(
        code,
        network,
        copay=share.copay,
        per=PER_UNIT.get(share.copay_unit) if share.copay is not None else None,
        coinsurance=share.coinsurance,
        authorization=authorization,
        visit_limit=limit,
    )


def benefits_of(
    session: Session, member: Member, design: PlanDesign, coverage, day: date
) -> Benefits:
    """The member's benefits on `day` under `coverage` of plan `design` (which covers them)."""
    plan_year = design.plan_year_on(day)
    met = (
        _met(session, member.subscriber_id or member.id, design, plan_year)
        if plan_year is not None
        else {}
    )
    doctor = pcp_provider_of(session, member, day)
    return benefits_from(design, day, member.id, tier_on(session, coverage, day), doctor, met)


def benefits_from(
    design: PlanDesign, day: date, member_id: int, tier: CoverageTier, doctor, met: dict
) -> Benefits:
    """`benefits_of` over what was read: the coverage tier of the day, the PCP (a row as
    enrollment.pcp.pcp_provider_of gives it, or None) and the family's accumulators of the
    plan year ((holder, pool, kind) -> cents). Pure, shared with interop.eligibility_read."""
    plan_year = design.plan_year_on(day)
    pcp = None
    if doctor is not None:
        organization = doctor.entity_type == "organization" or not doctor.last_name
        pcp = Pcp(
            doctor.npi,
            (doctor.organization_name or doctor.npi) if organization else doctor.last_name,
            "" if organization else doctor.first_name or "",
            organization,
        )
    base = Benefits(
        True, COVERAGE_LEVEL.get(tier), INSURANCE_TYPE.get(design.type), design.name, pcp=pcp
    )
    if plan_year is None:
        return base
    calendar = (plan_year.starts.month, plan_year.starts.day) == (1, 1) and (
        plan_year.ends.month,
        plan_year.ends.day,
    ) == (12, 31)
    period = "23" if calendar else "22"
    self_only = tier is CoverageTier.SELF_ONLY
    limits: list[Limit] = []
    for tier_name, network_tier in plan_year.tiers.items():
        # Cross-accumulating tiers share one pool, as the engine keeps them.
        pool = (
            "combined"
            if plan_year.accumulation == "cross"
            and tier_name in (TierName.IN_NETWORK, TierName.OUT_OF_NETWORK)
            else tier_name.value
        )
        network = NETWORK[tier_name]
        args = (met, member_id)
        limits += _limits(
            *args, network_tier.deductible, "deductible", pool, "C", self_only, network
        )
        if network_tier.drug_deductible is not None:
            limits += _limits(
                *args, network_tier.drug_deductible, "drug_deductible", pool, "C",
                self_only, network, "88",
            )  # fmt: skip
        limits += _limits(
            *args, network_tier.out_of_pocket_max, "out_of_pocket", pool, "G", self_only, network
        )
    lines = _lines_of(design, plan_year, period)
    return replace(base, period=period, limits=tuple(limits), lines=lines)


def _person(session: Session, member: Member, plan_key: str | None, day: date) -> Person:
    home = current_address(session, member, day)
    address = (home.line1, home.line2 or "", home.city, home.state, home.zip_code) if home else None
    return Person(
        member.member_number,
        member.last_name,
        member.first_name,
        member.birth_date,
        member.sex,
        plan_key,
        address,
    )


def coverage_of(
    session: Session, member: Member, day: date
) -> tuple[Eligibility, MemberCoverage | None, Coverage | None]:
    """The member's eligibility on `day`, the span that answers for it, and its coverage.

    The span of that day, else the last one before it, else the first after it (the
    FHIR CoverageEligibilityResponse answers from it too).
    """
    # One round trip for the spans, their coverage, and who else each coverage covers
    # (tier_on reads those when the benefits are asked for).
    spans = spans_of(
        session,
        member,
        joinedload(MemberCoverage.coverage)
        .joinedload(Coverage.members)
        .joinedload(MemberCoverage.member),
    )
    eligibility = eligibility_of(session, member, day, spans)
    return eligibility, *answering(eligibility, spans, day)


def answering(eligibility: Eligibility, spans: Sequence, day: date) -> tuple:
    """(span, coverage) that answer for `day`: the span of that day, else the last one
    before it, else the first after it; its coverage unless the eligibility names one.
    `spans` oldest first, as spans_of gives them (or interop.eligibility_read's)."""
    before = [s for s in spans if s.effective_date <= day]
    span = before[-1] if before else (spans[0] if spans else None)
    return span, eligibility.coverage or (span.coverage if span is not None else None)


def lookup(session: Session, inquiry: Inquiry, day: date) -> Outcome:
    """The answer to one inquiry on `day`: the member's coverage and benefits, or an AAA."""
    member = find_patient(session, inquiry)
    if isinstance(member, Reject):
        return member
    eligibility, span, coverage = coverage_of(session, member, day)
    design = design_of_plan(session, coverage.plan_id) if coverage is not None else None
    person = _person(session, member, design.id if design else None, day)
    begin = span.effective_date if span is not None else None
    end = span.termination_date if span is not None else None
    if not eligibility.covered or design is None:
        return Answer(person, Benefits(False), None, begin, end, member.id)
    plan_year = design.plan_year_on(day)
    benefits = benefits_of(session, member, design, coverage, day)
    starts = plan_year.starts if plan_year else None
    return Answer(person, benefits, starts, begin, end, member.id)
