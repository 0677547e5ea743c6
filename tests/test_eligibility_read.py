"""interop.eligibility_read answers as the ORM readers do, member by member, day by day.

The eligibility API reads a member's spans, grace period, coverage tier, plan design, PCP
and accumulators in one statement; the 271 reads them with the ORM. On the demo's world
(families that join during the year, pay late, stop paying and fall into grace periods
and terminations, with a year of claims behind their accumulators), every member on days
across the year and beyond must get the same eligibility, the same span and coverage,
and the same benefits both ways.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from openhmo.db import session_factory
from openhmo.demo.generator import DemoConfig, build_demo
from openhmo.enrollment.models import Member
from openhmo.interop.eligibility_read import read_eligibility
from openhmo.interop.x12.lookup270 import benefits_of, coverage_of
from openhmo.plans.store import design_of_plan

DAYS = [
    date(2025, 12, 31),
    date(2026, 1, 1),
    date(2026, 2, 14),
    date(2026, 4, 30),
    date(2026, 6, 1),
    date(2026, 7, 15),
    date(2026, 9, 30),
    date(2026, 11, 2),
    date(2026, 12, 31),
    date(2027, 1, 5),
]


@pytest.fixture(scope="module")
def demo(module_engine, tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    build_demo(module_engine, DemoConfig(seed=5, families=30, workdir=work))
    return session_factory(module_engine)


def _by_orm(session, member, day):
    eligibility, span, coverage = coverage_of(session, member, day)
    design = design_of_plan(session, coverage.plan_id) if coverage is not None else None
    benefits = None
    if eligibility.covered and design is not None:
        benefits = benefits_of(session, member, design, coverage, day)
    return _seen(eligibility, span, coverage, design, benefits)


def _by_one_statement(session, member, day):
    facts = read_eligibility(session, member.member_number, day)
    assert facts is not None
    assert (facts.member.id, facts.member.name, facts.member.birth_date) == (
        member.id,
        member.name,
        member.birth_date,
    )
    eligibility, span, coverage = facts.coverage_of()
    design = facts.design(session, coverage.plan_id) if coverage is not None else None
    benefits = None
    if eligibility.covered and design is not None:
        benefits = facts.benefits(design, coverage)
    return _seen(eligibility, span, coverage, design, benefits)


def _seen(eligibility, span, coverage, design, benefits):
    return (
        eligibility.status,
        eligibility.grace_month,
        eligibility.reason,
        eligibility.coverage.id if eligibility.coverage is not None else None,
        span.id if span is not None else None,
        (coverage.id, coverage.plan_id) if coverage is not None else None,
        design.id if design is not None else None,
        benefits,
    )


def test_one_statement_answers_as_the_orm_readers(demo):
    statuses: Counter = Counter()
    tiers: Counter = Counter()
    used = 0
    with demo() as session:
        members = session.scalars(select(Member).order_by(Member.id)).all()
        assert len(members) > 40
        for member in members:
            for day in DAYS:
                expected = _by_orm(session, member, day)
                assert _by_one_statement(session, member, day) == expected, (member.id, day)
                statuses[expected[0]] += 1
                benefits = expected[-1]
                if benefits is not None:
                    tiers[benefits.coverage_level] += 1
                    used += any(
                        limit.remaining is not None and limit.remaining < limit.amount
                        for limit in benefits.limits
                    )
    # The comparison covered what it is about: every standing, several coverage tiers,
    # and accumulators that are not all zero.
    assert {"active", "grace_period", "terminated", "not_yet_covered"} <= set(statuses), statuses
    assert len(tiers) >= 3, tiers
    assert used > 20


def test_no_member_of_that_number(demo):
    with demo() as session:
        assert read_eligibility(session, "NO-SUCH-MEMBER", date(2026, 6, 1)) is None


def test_cost_items_kept_per_plan_year_and_language_are_the_ones_made_afresh(demo):
    """The API keeps the cost items of a plan year's answer (lines, names and words are
    one object each per plan year and language); what it returns must be what making
    them again gives, for every covered member, in each language and for each ask."""
    from openhmo.api.fhir import eligibility as api
    from openhmo.interop.fhir import eligibility as fhir

    day = date(2026, 6, 1)
    asks = [("30",), ("98", "UC"), ("30", "88")]
    made = 0
    with demo() as session:
        numbers = session.scalars(select(Member.member_number).order_by(Member.id)).all()
        for number in numbers:
            facts = read_eligibility(session, number, day)
            for lang in ("en", "sv", "ja"):
                for categories in asks:
                    ask = fhir.EligibilityAsk(
                        patient=None, day=day, categories=categories, purposes=(), identifier=None
                    )
                    found = api._found(session, facts, ask, lang)
                    if found.benefits is None:
                        continue
                    first, again = fhir._cost_items(found), fhir._cost_items(found)
                    assert first == again == fhir._made_cost_items(found), (number, lang)
                    made += 1
    assert made > 100
    # One plan year, three languages, three asks: a handful of kept items, not one per call.
    assert 0 < len(fhir._items) <= 3 * 3 * 4
    words = {json.dumps(items, default=str) for _, items in fhir._items.values()}
    assert len(words) > 3  # the languages' words differ


def test_kept_per_design_makes_once_per_design_and_key():
    """What is kept per plan year is made once per design and key, and one design's is
    never another's, even when the two are equal in content."""
    from openhmo.plans.loader import example_designs, load_design
    from openhmo.plans.store import kept_per_design

    path = next(iter(example_designs()))
    first, second = load_design(path), load_design(path)
    assert first == second and first is not second
    store: dict = {}
    made: list = []

    def make(design, key):
        made.append((id(design), key))
        return (design, key)

    for _ in range(3):
        for design in (first, second):
            for key in ((2026, "en"), (2026, "sv")):
                kept = kept_per_design(store, design, key, lambda d=design, k=key: make(d, k))
                assert kept[0] is design and kept[1] == key
    assert len(made) == 4
