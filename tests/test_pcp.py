"""PCP choice and auto-assignment (DOMAIN.md §2) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from openhmo.enrollment.models import Member, Notice, PcpAssignment
from openhmo.enrollment.pcp import (
    NOT_ACCEPTING,
    NOT_IN_NETWORK,
    NOT_PCP_ELIGIBLE,
    PANEL_FULL,
    PEDIATRICS_ONLY,
    auto_assign,
    choose_pcp,
    pcp_of,
    unavailable_reasons,
)
from openhmo.enrollment.service import EnrollmentError
from openhmo.history.models import ChangeRecord
from openhmo.i18n import t
from openhmo.plans.loader import example_designs, load_design
from support import ACTOR, family, load_examples, provider

HMO = next(load_design(p) for p in example_designs() if p.stem == "hmo-silver")


@pytest.fixture
def enrolled(session):
    load_examples(session)
    coverage = family(session)  # Ada (subscriber), Sam (spouse), Kid0 (born 2016), Kid1 (2017)
    members = {
        m.first_name: m
        for m in session.scalars(
            select(Member).where(Member.subscriber_id == coverage.subscriber_id)
        )
    }
    return session, members


def test_availability_rules(enrolled):
    session, m = enrolled
    day = date(2026, 2, 1)
    ok = provider(session, last_name="Family")
    out = provider(session, last_name="Elsewhere", network_key="other-network")
    ended = provider(session, last_name="Ended", contract_to=date(2026, 1, 31))
    cardiologist = provider(session, last_name="Heart", taxonomy="207RC0000X", pcp=False)
    closed = provider(session, last_name="Closed", accepting=False)
    full = provider(session, last_name="Full", capacity=1)
    pediatrician = provider(session, last_name="Peds", taxonomy="208000000X", pediatrics=True)
    session.add(
        PcpAssignment(
            member_id=m["Sam"].id,
            provider_id=full.id,
            effective_from=date(2026, 1, 1),
            method="chosen",
        )
    )
    session.flush()
    assert unavailable_reasons(session, ok, m["Ada"], HMO, day) == []
    assert unavailable_reasons(session, out, m["Ada"], HMO, day) == [NOT_IN_NETWORK]
    assert unavailable_reasons(session, ended, m["Ada"], HMO, day) == [NOT_IN_NETWORK]
    assert unavailable_reasons(session, ended, m["Ada"], HMO, date(2026, 1, 31)) == []
    assert unavailable_reasons(session, cardiologist, m["Ada"], HMO, day) == [NOT_PCP_ELIGIBLE]
    assert unavailable_reasons(session, closed, m["Ada"], HMO, day) == [NOT_ACCEPTING]
    assert unavailable_reasons(session, full, m["Ada"], HMO, day) == [PANEL_FULL]
    # Sam is already on the full panel: staying there needs no new place
    assert unavailable_reasons(session, full, m["Sam"], HMO, day) == []
    assert unavailable_reasons(session, pediatrician, m["Ada"], HMO, day) == [PEDIATRICS_ONLY]
    assert unavailable_reasons(session, pediatrician, m["Kid0"], HMO, day) == []


def test_a_choice_takes_effect_on_the_first_of_the_next_month(enrolled):
    session, m = enrolled
    first = provider(session, last_name="First")
    second = provider(session, last_name="Second")
    choose_pcp(
        session,
        member=m["Ada"],
        provider=first,
        requested_on=date(2026, 1, 1),
        actor=ACTOR,
        initial=True,
    )
    choose_pcp(
        session, member=m["Ada"], provider=second, requested_on=date(2026, 3, 17), actor=ACTOR
    )
    session.commit()
    assert pcp_of(session, m["Ada"], date(2026, 3, 31)).provider_id == first.id
    assert pcp_of(session, m["Ada"], date(2026, 4, 1)).provider_id == second.id
    rows = session.scalars(
        select(PcpAssignment)
        .where(PcpAssignment.member_id == m["Ada"].id)
        .order_by(PcpAssignment.id)
    ).all()
    assert [(r.effective_from, r.effective_to, r.method) for r in rows] == [
        (date(2026, 1, 1), date(2026, 3, 31), "chosen"),
        (date(2026, 4, 1), None, "chosen"),
    ]
    notice = session.scalars(
        select(Notice).where(Notice.member_id == m["Ada"].id).order_by(Notice.id)
    ).all()[-1]
    assert notice.params["effective_date"] == "2026-04-01"
    assert "2026-04-01" in t(notice.message_id, "ja", **notice.params)


def test_a_second_change_in_the_same_month_replaces_the_pending_one(enrolled):
    session, m = enrolled
    a, b, c = (provider(session, last_name=n) for n in ("A", "B", "C"))
    choose_pcp(
        session,
        member=m["Ada"],
        provider=a,
        requested_on=date(2026, 1, 1),
        actor=ACTOR,
        initial=True,
    )
    choose_pcp(session, member=m["Ada"], provider=b, requested_on=date(2026, 3, 3), actor=ACTOR)
    choose_pcp(session, member=m["Ada"], provider=c, requested_on=date(2026, 3, 20), actor=ACTOR)
    session.commit()
    assert pcp_of(session, m["Ada"], date(2026, 4, 1)).provider_id == c.id
    pending = session.scalar(select(PcpAssignment).where(PcpAssignment.provider_id == b.id))
    assert pending.effective_to < pending.effective_from  # cancelled before it began, still kept
    assert pcp_of(session, m["Ada"], date(2026, 3, 31)).provider_id == a.id


def test_an_unavailable_choice_is_refused_with_the_reasons(enrolled):
    session, m = enrolled
    closed = provider(session, last_name="Closed", accepting=False, capacity=0)
    with pytest.raises(EnrollmentError) as caught:
        choose_pcp(
            session, member=m["Ada"], provider=closed, requested_on=date(2026, 2, 2), actor=ACTOR
        )
    assert "not accepting new patients" in caught.value.reason
    assert "panel is full" in caught.value.reason
    assert "2026-03-01" in caught.value.reason
    assert caught.value.message_id == "enrollment.refusal.pcp_not_available"
    japanese = caught.value.member_text("ja")
    assert "新規の患者を受け付けていません" in japanese and "2026-03-01" in japanese


def test_a_child_may_choose_a_pediatrician_and_an_adult_may_not(enrolled):
    session, m = enrolled
    peds = provider(session, last_name="Peds", taxonomy="208000000X", pediatrics=True)
    choose_pcp(
        session,
        member=m["Kid1"],
        provider=peds,
        requested_on=date(2026, 1, 1),
        actor=ACTOR,
        initial=True,
    )
    with pytest.raises(EnrollmentError, match="sees children only"):
        choose_pcp(
            session,
            member=m["Sam"],
            provider=peds,
            requested_on=date(2026, 1, 1),
            actor=ACTOR,
            initial=True,
        )


def test_auto_assignment_keeps_the_family_together_at_the_nearest_pcp_with_room(enrolled):
    session, _m = enrolled
    provider(session, last_name="NearButSmall", capacity=2, lat_offset=0.001)
    middle = provider(session, last_name="Middle", capacity=10, lat_offset=0.05)
    provider(session, last_name="Far", lat_offset=0.5)
    provider(session, last_name="PedsNear", taxonomy="208000000X", pediatrics=True)
    report = auto_assign(session, as_of=date(2026, 1, 1), actor=ACTOR)
    session.commit()
    assert report.assigned == 4 and report.families_kept_together == 1
    rows = session.scalars(select(PcpAssignment)).all()
    assert {r.provider_id for r in rows} == {middle.id}
    assert all(r.method == "auto_assigned" and "whole family" in r.reason for r in rows)
    assert all(r.effective_from == date(2026, 1, 1) for r in rows)
    notices = session.scalars(
        select(Notice).where(Notice.message_id == "enrollment.notice.pcp_auto_assigned")
    ).all()
    assert len(notices) == 4
    assert "Pat Middle" in t(notices[0].message_id, "en", **notices[0].params)
    assert session.scalar(select(ChangeRecord).where(ChangeRecord.action == "pcp_assigned"))
    # nobody is left without one, so a second run assigns nobody
    assert auto_assign(session, as_of=date(2026, 1, 1), actor=ACTOR).assigned == 0


def test_auto_assignment_splits_a_family_when_no_one_pcp_can_take_all(enrolled):
    session, m = enrolled
    near = provider(session, last_name="Near", capacity=2, lat_offset=0.001)
    peds = provider(
        session,
        last_name="Peds",
        taxonomy="208000000X",
        pediatrics=True,
        capacity=5,
        lat_offset=0.2,
    )
    report = auto_assign(session, as_of=date(2026, 1, 1), actor=ACTOR)
    session.commit()
    assert report.families_split == 1 and report.assigned == 4
    by_member = {r.member_id: r for r in session.scalars(select(PcpAssignment))}
    assert by_member[m["Ada"].id].provider_id == near.id
    assert by_member[m["Sam"].id].provider_id == near.id
    assert by_member[m["Kid0"].id].provider_id == peds.id
    assert "pediatrician" in by_member[m["Kid0"].id].reason


def test_members_who_chose_are_not_auto_assigned_and_no_room_is_reported(enrolled):
    session, m = enrolled
    chosen = provider(session, last_name="Chosen")
    choose_pcp(
        session,
        member=m["Ada"],
        provider=chosen,
        requested_on=date(2026, 1, 1),
        actor=ACTOR,
        initial=True,
    )
    session.execute(select(1))
    chosen.accepting_new_patients = False
    session.flush()
    report = auto_assign(session, as_of=date(2026, 1, 1), actor=ACTOR)
    assert report.assigned == 0
    assert len(report.unassigned) == 3
    assert all("no available PCP" in u for u in report.unassigned)
    assert pcp_of(session, m["Ada"], date(2026, 1, 1)).method == "chosen"


def test_ppo_members_need_no_pcp(session):
    load_examples(session)
    family(session, plan_key="openhmo-gold-ppo")
    provider(session, last_name="Family")
    assert auto_assign(session, as_of=date(2026, 1, 1), actor=ACTOR).assigned == 0
