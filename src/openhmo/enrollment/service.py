"""Enrolling subscribers and dependents, changing addresses, ending coverage.

The rules of DOMAIN.md §2 in one place: the service-area check on enrollment and on
every address change (a move out of the area ends eligibility, with the reason and a
notice, never silently), coverage tiers that follow who is covered, and a history
entry for every change. Functions take a session and leave committing to the caller,
so one request is one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openhmo.dates import end_of_month
from openhmo.enrollment.models import Coverage, Member, MemberAddress, MemberCoverage, Notice
from openhmo.history.record import record_change
from openhmo.plans.design import CoverageTier, PlanDesign
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of, get_plan, plan_year_on
from openhmo.reference.geo import UnknownZip, county_name, lookup_zip

Relationship = Literal["self", "spouse", "child", "other"]


class EnrollmentError(ValueError):
    """A request the enrollment rules refuse.

    `reason` is for staff and logs; `message_id` and `params` give the member's own text
    from the catalogue (`member_text`). A param that is a list holds message ids of the
    catalogue, translated and joined in the member's language.
    """

    def __init__(
        self, reason: str, message_id: str | None = None, params: dict[str, object] | None = None
    ):
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
        self.params = params or {}

    def member_text(self, language: str = "en") -> str:
        from openhmo.i18n import translate

        if self.message_id is None:
            return self.reason
        separator = "、" if language == "ja" else "; "
        params = {
            k: separator.join(translate(i, language) for i in v) if isinstance(v, list) else v
            for k, v in self.params.items()
        }
        return translate(self.message_id, language, **params)


class AddressIn(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    line1: str = Field(min_length=1)
    line2: str | None = None
    city: str = Field(min_length=1)
    state: str = Field(min_length=2, max_length=2)
    zip_code: str

    @field_validator("state")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class PersonIn(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    birth_date: date
    sex: Literal["F", "M", "U"]
    relationship: Relationship = "self"
    language: Literal["en", "ja", "sv"] = "en"
    external_id: str | None = None


@dataclass(frozen=True)
class Geocoded:
    zip_code: str
    county_fips: str | None
    lat: float
    lon: float


def geocode(address: AddressIn) -> Geocoded:
    try:
        z = lookup_zip(address.zip_code)
    except UnknownZip as exc:
        raise EnrollmentError(f"address: {exc}") from None
    if z.state != address.state:
        raise EnrollmentError(
            f"address: ZIP code {z.zip_code} is in {z.state}, not {address.state}"
        )
    return Geocoded(z.zip_code, z.county_fips, z.lat, z.lon)


def in_service_area(design: PlanDesign, place: Geocoded) -> bool:
    return design.service_area.contains(place.zip_code, place.county_fips)


def _check_service_area(design: PlanDesign, place: Geocoded, name: str) -> None:
    if design.rules.service_area_required and not in_service_area(design, place):
        county = county_name(place.county_fips) if place.county_fips else "an unknown county"
        raise EnrollmentError(
            f"{name}: ZIP code {place.zip_code} ({county}) is outside the service area of "
            f"{design.name}",
            "enrollment.refused.outside_service_area",
            {"name": name, "zip_code": place.zip_code, "plan": design.name},
        )


def tier_for(relationships: list[str]) -> CoverageTier:
    """The coverage tier of the people covered together (DOMAIN.md §2)."""
    spouse = "spouse" in relationships
    children = any(r in ("child", "other") for r in relationships)
    if spouse and children:
        return CoverageTier.FAMILY
    if spouse:
        return CoverageTier.SELF_PLUS_SPOUSE
    if children:
        return CoverageTier.SELF_PLUS_CHILDREN
    return CoverageTier.SELF_ONLY


def _new_address(member: Member, address: AddressIn, place: Geocoded, start: date) -> MemberAddress:
    return MemberAddress(
        member_id=member.id,
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        state=address.state,
        zip_code=place.zip_code,
        county_fips=place.county_fips,
        latitude=place.lat,
        longitude=place.lon,
        effective_from=start,
    )


def _add_member(session: Session, person: PersonIn, subscriber: Member | None) -> Member:
    member = Member(
        member_number=f"pending-{uuid.uuid4().hex[:12]}",
        relationship_code=person.relationship,
        first_name=person.first_name,
        last_name=person.last_name,
        birth_date=person.birth_date,
        sex=person.sex,
        language=person.language,
        external_id=person.external_id,
        subscriber_id=subscriber.id if subscriber else None,
    )
    session.add(member)
    session.flush()
    if subscriber is None:
        member.subscriber_id = member.id
        member.member_number = f"OHM{member.id:09d}-00"
    else:
        count = session.scalar(
            select(func.count()).select_from(Member).where(Member.subscriber_id == subscriber.id)
        )
        member.member_number = f"{subscriber.member_number[:-3]}-{count - 1:02d}"
    return member


def _check_dependent(design: PlanDesign, person: PersonIn, effective: date) -> None:
    if person.relationship == "self":
        raise EnrollmentError(
            f"{person.first_name} {person.last_name}: a dependent cannot be 'self'"
        )
    if person.relationship == "child":
        age = _age(person.birth_date, effective)
        if age >= design.eligibility.dependent_child_max_age:
            raise EnrollmentError(
                f"{person.first_name} {person.last_name}: a child dependent must be younger than "
                f"{design.eligibility.dependent_child_max_age} (is {age} on {effective})"
            )
    if person.birth_date > effective:
        raise EnrollmentError(f"{person.first_name} {person.last_name}: born after {effective}")


def _age(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def enroll_subscriber(
    session: Session,
    *,
    plan_key: str,
    subscriber: PersonIn,
    address: AddressIn,
    effective: date,
    actor: str,
    dependents: list[PersonIn] = (),
    billing_frequency: Literal["monthly", "annual"] = "monthly",
    subsidized: bool = False,
    reason: str = "new enrollment",
) -> Coverage:
    """Enroll a subscriber (and dependents at the same address) in a plan from `effective`."""
    plan = get_plan(session, plan_key)
    design = design_of(plan)
    plan_year = plan_year_on(plan, effective)
    if plan_year is None:
        raise EnrollmentError(f"{design.name} has no plan year on {effective}")
    if billing_frequency not in design.premium_billing.frequencies:
        raise EnrollmentError(f"{design.name} is not billed {billing_frequency}")
    if subscriber.relationship != "self":
        raise EnrollmentError("the subscriber's relationship must be 'self'")
    place = geocode(address)
    name = f"{subscriber.first_name} {subscriber.last_name}"
    _check_service_area(design, place, name)
    for person in dependents:
        _check_dependent(design, person, effective)
    tier = tier_for([p.relationship for p in dependents])
    if tier.value not in {p.tier for p in plan_year.premiums}:
        raise EnrollmentError(f"{design.name} has no {tier} premium in {plan_year.year}")

    sub = _add_member(session, subscriber, None)
    coverage = Coverage(
        subscriber_id=sub.id,
        plan_id=plan.id,
        tier=tier.value,
        billing_frequency=billing_frequency,
        subsidized=subsidized,
        effective_date=effective,
    )
    session.add(coverage)
    session.flush()
    _cover(session, coverage, sub, subscriber, address, place, effective, actor, reason)
    for person in dependents:
        member = _add_member(session, person, sub)
        _cover(session, coverage, member, person, address, place, effective, actor, reason)
    session.flush()
    return coverage


def _cover(
    session: Session,
    coverage: Coverage,
    member: Member,
    person: PersonIn,
    address: AddressIn,
    place: Geocoded,
    effective: date,
    actor: str,
    reason: str,
) -> None:
    """Give a new member their address and eligibility under the coverage, and record it."""
    session.add(_new_address(member, address, place, effective))
    session.add(
        MemberCoverage(coverage_id=coverage.id, member_id=member.id, effective_date=effective)
    )
    record_change(
        session,
        actor=actor,
        entity="member",
        entity_id=member.member_number,
        action="enrolled",
        member_id=member.id,
        coverage_id=coverage.id,
        effective_date=effective,
        reason=reason,
        changes={
            "plan": session.get(Plan, coverage.plan_id).plan_key,
            "relationship": person.relationship,
            "name": member.name,
            "zip_code": place.zip_code,
        },
    )


def active_spans(session: Session, coverage: Coverage, day: date) -> list[MemberCoverage]:
    return [
        span
        for span in coverage.members
        if span.effective_date <= day
        and (span.termination_date is None or span.termination_date >= day)
    ]


def tier_on(session: Session, coverage: Coverage, day: date) -> CoverageTier:
    """The coverage tier on a day, from who is covered that day."""
    spans = active_spans(session, coverage, day)
    return tier_for(
        [s.member.relationship_code for s in spans if s.member_id != coverage.subscriber_id]
    )


def _refresh_tier(session: Session, coverage: Coverage, day: date, actor: str, reason: str) -> None:
    tier = tier_on(session, coverage, day)
    if tier.value != coverage.tier:
        record_change(
            session,
            actor=actor,
            entity="coverage",
            entity_id=coverage.id,
            action="tier_changed",
            coverage_id=coverage.id,
            effective_date=day,
            changes={"tier": [coverage.tier, tier.value]},
            reason=reason,
        )
        coverage.tier = tier.value


def add_dependent(
    session: Session,
    *,
    subscriber: Member,
    person: PersonIn,
    effective: date,
    actor: str,
    address: AddressIn | None = None,
    reason: str = "dependent added",
) -> Member:
    coverage = current_coverage(session, subscriber, effective)
    if coverage is None:
        raise EnrollmentError(f"{subscriber.name} has no coverage on {effective}")
    design = design_of(coverage_plan(session, coverage))
    _check_dependent(design, person, effective)
    home = current_address(session, subscriber, effective)
    if address is None:
        if home is None:
            raise EnrollmentError(f"{subscriber.name} has no address on {effective}")
        address = AddressIn(
            line1=home.line1,
            line2=home.line2,
            city=home.city,
            state=home.state,
            zip_code=home.zip_code,
        )
    place = geocode(address)
    _check_service_area(design, place, f"{person.first_name} {person.last_name}")
    member = _add_member(session, person, subscriber)
    _cover(session, coverage, member, person, address, place, effective, actor, reason)
    session.flush()
    session.refresh(coverage)
    _refresh_tier(session, coverage, effective, actor, reason)
    return member


def coverage_plan(session: Session, coverage: Coverage) -> Plan:
    return session.get(Plan, coverage.plan_id)


def current_coverage(session: Session, member: Member, day: date) -> Coverage | None:
    span = session.scalar(
        select(MemberCoverage).where(
            MemberCoverage.member_id == member.id,
            MemberCoverage.effective_date <= day,
            (MemberCoverage.termination_date.is_(None)) | (MemberCoverage.termination_date >= day),
        )
    )
    return span.coverage if span else None


def current_address(session: Session, member: Member, day: date) -> MemberAddress | None:
    return session.scalar(
        select(MemberAddress)
        .where(
            MemberAddress.member_id == member.id,
            MemberAddress.effective_from <= day,
            (MemberAddress.effective_to.is_(None)) | (MemberAddress.effective_to >= day),
        )
        .order_by(MemberAddress.effective_from.desc())
    )


def household(session: Session, member: Member, day: date) -> list[Member]:
    """The member, and if the subscriber, the dependents living at the same address."""
    if member.subscriber_id != member.id:
        return [member]
    home = current_address(session, member, day)
    out = [member]
    for dependent in session.scalars(
        select(Member).where(Member.subscriber_id == member.id, Member.id != member.id)
    ):
        address = current_address(session, dependent, day)
        if home and address and (address.line1, address.zip_code) == (home.line1, home.zip_code):
            out.append(dependent)
    return out


def change_address(
    session: Session,
    *,
    member: Member,
    address: AddressIn,
    effective: date,
    actor: str,
    reason: str = "address change",
    whole_household: bool = True,
) -> list[MemberCoverage]:
    """Record a new address from `effective`; a move out of the area ends eligibility.

    Returns the coverage spans the move terminated (empty when the new address is in
    the service area or the plan does not require one).
    """
    place = geocode(address)
    movers = household(session, member, effective) if whole_household else [member]
    ended: list[MemberCoverage] = []
    for person in movers:
        old = current_address(session, person, effective)
        if old is not None:
            if old.effective_from == effective:
                raise EnrollmentError(f"{person.name} already has an address change on {effective}")
            old.effective_to = effective - timedelta(days=1)
        session.add(_new_address(person, address, place, effective))
        record_change(
            session,
            actor=actor,
            entity="member",
            entity_id=person.member_number,
            action="address_changed",
            member_id=person.id,
            effective_date=effective,
            reason=reason,
            changes={
                "zip_code": [old.zip_code if old else None, place.zip_code],
                "line1": [old.line1 if old else None, address.line1],
                "county_fips": [old.county_fips if old else None, place.county_fips],
            },
        )
        coverage = current_coverage(session, person, effective)
        if coverage is None:
            continue
        design = design_of(coverage_plan(session, coverage))
        if design.rules.service_area_required and not in_service_area(design, place):
            end = (
                end_of_month(effective)
                if design.eligibility.move_out_of_area_ends == "end_of_month_of_move"
                else effective
            )
            span = next(
                s for s in active_spans(session, coverage, effective) if s.member_id == person.id
            )
            # The subscriber's move may already have ended the whole family's coverage.
            if span.termination_date is None or span.termination_date > end:
                ended += terminate_member(
                    session,
                    member=person,
                    termination_date=end,
                    actor=actor,
                    reason="moved_out_of_service_area",
                    note=f"moved to ZIP code {place.zip_code}, outside the service area of "
                    f"{design.name}",
                )
            add_notice(
                session,
                person,
                "enrollment.notice.moved_out_of_area",
                plan=design.name,
                end_date=end.isoformat(),
                zip_code=place.zip_code,
            )
    session.flush()
    return ended


def terminate_member(
    session: Session,
    *,
    member: Member,
    termination_date: date,
    actor: str,
    reason: str,
    note: str = "",
) -> list[MemberCoverage]:
    """End a member's eligibility; ending the subscriber's ends the whole coverage."""
    coverage = current_coverage(session, member, termination_date)
    if coverage is None:
        raise EnrollmentError(f"{member.name} has no coverage on {termination_date} to end")
    if member.id == coverage.subscriber_id:
        return terminate_coverage(
            session,
            coverage=coverage,
            termination_date=termination_date,
            actor=actor,
            reason=reason,
            note=note,
        )
    span = next(
        s for s in active_spans(session, coverage, termination_date) if s.member_id == member.id
    )
    _end_span(session, span, termination_date, actor, reason, note)
    _refresh_tier(session, coverage, termination_date + timedelta(days=1), actor, reason)
    return [span]


def terminate_coverage(
    session: Session,
    *,
    coverage: Coverage,
    termination_date: date,
    actor: str,
    reason: str,
    note: str = "",
) -> list[MemberCoverage]:
    ended = []
    for span in coverage.members:
        if span.termination_date is None or span.termination_date > termination_date:
            _end_span(session, span, termination_date, actor, reason, note)
            ended.append(span)
    before = coverage.termination_date
    coverage.termination_date = termination_date
    coverage.termination_reason = reason
    record_change(
        session,
        actor=actor,
        entity="coverage",
        entity_id=coverage.id,
        action="coverage_terminated",
        coverage_id=coverage.id,
        member_id=coverage.subscriber_id,
        effective_date=termination_date,
        changes={"termination_date": [before, termination_date]},
        reason=f"{reason}: {note}" if note else reason,
    )
    return ended


def _end_span(
    session: Session, span: MemberCoverage, day: date, actor: str, reason: str, note: str
) -> None:
    before = span.termination_date
    span.termination_date = day
    span.termination_reason = reason
    record_change(
        session,
        actor=actor,
        entity="member",
        entity_id=span.member.member_number,
        action="eligibility_ended",
        member_id=span.member_id,
        coverage_id=span.coverage_id,
        effective_date=day,
        changes={"termination_date": [before, day], "termination_reason": reason},
        reason=f"{reason}: {note}" if note else reason,
    )


def add_notice(session: Session, member: Member, message_id: str, **params: object) -> Notice:
    notice = Notice(
        member_id=member.id, message_id=message_id, params={k: str(v) for k, v in params.items()}
    )
    session.add(notice)
    return notice
