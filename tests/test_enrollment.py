"""Enrollment on a real database: service area, tiers, moves, history (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from openhmo.db import transaction
from openhmo.enrollment.eligibility import eligibility_on
from openhmo.enrollment.models import Coverage, Member, MemberAddress, MemberCoverage, Notice
from openhmo.enrollment.service import (
    AddressIn,
    EnrollmentError,
    add_dependent,
    change_address,
    enroll_subscriber,
    tier_on,
)
from openhmo.history.models import ChangeRecord
from openhmo.i18n import t
from support import ACTOR, BOSTON, CAMBRIDGE, NEW_YORK, family, load_examples, person


@pytest.fixture
def plans(session):
    load_examples(session)
    return session


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_family_enrolls_with_member_numbers_tier_and_history(plans):
    session = plans
    coverage = family(session)
    members = session.scalars(select(Member).order_by(Member.id)).all()
    assert [m.relationship_code for m in members] == ["self", "spouse", "child", "child"]
    subscriber = members[0]
    assert subscriber.member_number.startswith("OHM") and subscriber.member_number.endswith("-00")
    assert [m.member_number[-3:] for m in members] == ["-00", "-01", "-02", "-03"]
    assert {m.subscriber_id for m in members} == {subscriber.id}
    assert coverage.tier == "family"
    assert count(session, MemberCoverage) == 4
    assert {a.county_fips for a in session.scalars(select(MemberAddress))} == {"25025"}
    enrolled = session.scalars(select(ChangeRecord).where(ChangeRecord.action == "enrolled")).all()
    assert len(enrolled) == 4
    assert all(r.actor == ACTOR and r.reason == "new enrollment" for r in enrolled)
    assert eligibility_on(session, subscriber.member_number, date(2026, 3, 1)).status == "active"
    assert eligibility_on(session, subscriber.member_number, date(2025, 12, 31)).status == (
        "not_yet_covered"
    )
    assert eligibility_on(session, "OHM999", date(2026, 3, 1)).status == "not_a_member"


def test_enrollment_outside_the_service_area_is_refused_and_nothing_is_written(engine, plans):
    with pytest.raises(EnrollmentError) as caught, transaction(engine) as session:
        enroll_subscriber(
            session,
            plan_key="openhmo-silver-hmo",
            subscriber=person("Ada", date(1985, 1, 1)),
            address=NEW_YORK,
            effective=date(2026, 1, 1),
            actor=ACTOR,
        )
    error = caught.value
    assert "ZIP code 10118" in error.reason and "outside the service area" in error.reason
    assert "New York County, NY" in error.reason
    assert error.message_id == "enrollment.refused.outside_service_area"
    assert "10118" in error.member_text("ja")
    with transaction(engine) as session:
        assert count(session, Member) == 0
        assert count(session, Coverage) == 0


def test_a_ppo_has_no_service_area_requirement(plans):
    coverage = family(plans, plan_key="openhmo-gold-ppo", address=NEW_YORK, children=0)
    assert coverage.tier == "self_plus_spouse"


def test_bad_addresses_and_dependents_are_refused_with_the_reason(plans):
    session = plans
    with pytest.raises(EnrollmentError, match="ZIP code 02108 is in MA, not NY"):
        enroll_subscriber(
            session,
            plan_key="openhmo-silver-hmo",
            subscriber=person("A", date(1990, 1, 1)),
            address=AddressIn(line1="x", city="y", state="NY", zip_code="02108"),
            effective=date(2026, 1, 1),
            actor=ACTOR,
        )
    with pytest.raises(EnrollmentError, match="not a known US ZIP code"):
        enroll_subscriber(
            session,
            plan_key="openhmo-silver-hmo",
            subscriber=person("A", date(1990, 1, 1)),
            address=AddressIn(line1="x", city="y", state="MA", zip_code="00000"),
            effective=date(2026, 1, 1),
            actor=ACTOR,
        )
    with pytest.raises(EnrollmentError, match="younger than 26"):
        enroll_subscriber(
            session,
            plan_key="openhmo-silver-hmo",
            subscriber=person("A", date(1960, 1, 1)),
            address=BOSTON,
            effective=date(2026, 1, 1),
            actor=ACTOR,
            dependents=[person("Old", date(1995, 1, 1), relationship="child")],
        )
    with pytest.raises(EnrollmentError, match="no plan year on 2030-01-01"):
        enroll_subscriber(
            session,
            plan_key="openhmo-silver-hmo",
            subscriber=person("A", date(1990, 1, 1)),
            address=BOSTON,
            effective=date(2030, 1, 1),
            actor=ACTOR,
        )


def test_moving_out_of_the_area_ends_eligibility_with_reason_and_notice(plans):
    session = plans
    coverage = family(session)
    subscriber = session.get(Member, coverage.subscriber_id)
    ended = change_address(
        session,
        member=subscriber,
        address=NEW_YORK,
        effective=date(2026, 5, 12),
        actor=ACTOR,
        reason="member called",
    )
    session.commit()
    assert len(ended) == 4
    assert {s.termination_date for s in ended} == {date(2026, 5, 31)}
    assert {s.termination_reason for s in ended} == {"moved_out_of_service_area"}
    assert coverage.termination_date == date(2026, 5, 31)
    number = subscriber.member_number
    assert eligibility_on(session, number, date(2026, 5, 31)).status == "active"
    after = eligibility_on(session, number, date(2026, 6, 1))
    assert after.status == "terminated" and "moved_out_of_service_area" in after.reason
    notices = session.scalars(
        select(Notice).where(Notice.message_id == "enrollment.notice.moved_out_of_area")
    ).all()
    assert len(notices) == 4
    assert t(notices[0].message_id, "sv", **notices[0].params).startswith("Din försäkring")
    # the old address is kept and closed, not overwritten
    addresses = session.scalars(
        select(MemberAddress)
        .where(MemberAddress.member_id == subscriber.id)
        .order_by(MemberAddress.effective_from)
    ).all()
    assert [(a.zip_code, a.effective_from, a.effective_to) for a in addresses] == [
        ("02108", date(2026, 1, 1), date(2026, 5, 11)),
        ("10118", date(2026, 5, 12), None),
    ]
    actions = session.scalars(
        select(ChangeRecord.action)
        .where(ChangeRecord.member_id == subscriber.id)
        .order_by(ChangeRecord.id)
    ).all()
    assert actions == ["enrolled", "address_changed", "eligibility_ended", "coverage_terminated"]
    moved = session.scalar(
        select(ChangeRecord).where(
            ChangeRecord.action == "address_changed", ChangeRecord.member_id == subscriber.id
        )
    )
    assert moved.changes["zip_code"] == ["02108", "10118"] and moved.reason == "member called"


def test_a_move_within_the_area_changes_nothing_else(plans):
    session = plans
    coverage = family(session)
    subscriber = session.get(Member, coverage.subscriber_id)
    assert (
        change_address(
            session, member=subscriber, address=CAMBRIDGE, effective=date(2026, 3, 1), actor=ACTOR
        )
        == []
    )
    session.commit()
    assert coverage.termination_date is None
    assert count(session, MemberAddress) == 8


def test_a_dependent_moving_alone_ends_only_their_eligibility_and_changes_the_tier(plans):
    session = plans
    coverage = family(session, children=1)
    spouse = session.scalar(select(Member).where(Member.relationship_code == "spouse"))
    change_address(
        session,
        member=spouse,
        address=NEW_YORK,
        effective=date(2026, 2, 10),
        actor=ACTOR,
        reason="moved for work",
    )
    session.commit()
    assert coverage.termination_date is None
    assert coverage.tier == "self_plus_children"
    assert tier_on(session, coverage, date(2026, 2, 28)).value == "family"
    assert tier_on(session, coverage, date(2026, 3, 1)).value == "self_plus_children"
    change = session.scalar(select(ChangeRecord).where(ChangeRecord.action == "tier_changed"))
    assert change.changes == {"tier": ["family", "self_plus_children"]}


def test_adding_a_newborn_changes_the_tier_from_the_birth(plans):
    session = plans
    coverage = family(session, spouse=False, children=0)
    assert coverage.tier == "self_only"
    subscriber = session.get(Member, coverage.subscriber_id)
    baby = add_dependent(
        session,
        subscriber=subscriber,
        effective=date(2026, 4, 17),
        actor=ACTOR,
        person=person("Baby", date(2026, 4, 17), relationship="child"),
        reason="birth",
    )
    session.commit()
    assert baby.member_number == subscriber.member_number[:-3] + "-01"
    assert coverage.tier == "self_plus_children"
    assert tier_on(session, coverage, date(2026, 4, 16)).value == "self_only"


def test_history_is_only_ever_appended(plans):
    session = plans
    coverage = family(session)
    subscriber = session.get(Member, coverage.subscriber_id)
    first = [(r.id, r.action, r.changes) for r in session.scalars(select(ChangeRecord))]
    change_address(
        session, member=subscriber, address=CAMBRIDGE, effective=date(2026, 2, 1), actor=ACTOR
    )
    change_address(
        session, member=subscriber, address=BOSTON, effective=date(2026, 3, 1), actor=ACTOR
    )
    session.commit()
    again = [(r.id, r.action, r.changes) for r in session.scalars(select(ChangeRecord))]
    assert again[: len(first)] == first
    assert len(again) == len(first) + 8
    assert all(
        r.actor == ACTOR and r.occurred_at is not None
        for r in session.scalars(select(ChangeRecord))
    )
