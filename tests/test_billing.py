"""Premium billing on SQLite and PostgreSQL: idempotent runs, payments, grace, termination."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from openhmo.billing.models import GracePeriod, Invoice
from openhmo.billing.service import (
    BillingError,
    balance,
    grace_status,
    record_payment,
    run_billing,
)
from openhmo.enrollment.eligibility import eligibility_on
from openhmo.enrollment.models import Member, Notice
from openhmo.enrollment.service import add_dependent
from openhmo.history.models import ChangeRecord
from openhmo.i18n import t
from support import ACTOR, family, load_examples, person

# OpenHMO Silver HMO, 2026 monthly premiums (examples/hmo-silver.yaml)
FAMILY_2026, SELF_2026, SELF_PLUS_CHILDREN_2026 = 139800, 48200, 86800
FAMILY_2027 = 147600


@pytest.fixture
def plans(session):
    load_examples(session)
    return session


def invoices(session, coverage_id):
    return session.scalars(
        select(Invoice).where(Invoice.coverage_id == coverage_id).order_by(Invoice.period_start)
    ).all()


def test_billing_runs_are_idempotent(plans):
    session = plans
    coverage = family(session)
    # paid a year ahead, so no grace period interferes
    record_payment(
        session,
        coverage_id=coverage.id,
        amount_cents=13 * FAMILY_2027,
        received_on=date(2025, 12, 20),
        actor=ACTOR,
        reference="prepaid",
    )
    first = run_billing(session, through=date(2026, 6, 15), actor=ACTOR)
    session.commit()
    assert first.invoices == 6 and first.billed_cents == 6 * FAMILY_2026
    again = run_billing(session, through=date(2026, 6, 15), actor=ACTOR)
    session.commit()
    assert again.invoices == 0 and again.billed_cents == 0
    assert len(invoices(session, coverage.id)) == 6
    later = run_billing(session, through=date(2027, 1, 1), actor=ACTOR)
    session.commit()
    assert later.invoices == 7
    rows = invoices(session, coverage.id)
    assert rows[-1].period_start == date(2027, 1, 1) and rows[-1].amount_cents == FAMILY_2027
    assert [r.period_start.month for r in rows[:12]] == list(range(1, 13))
    assert balance(session, coverage.id) == 12 * FAMILY_2026 + FAMILY_2027 - 13 * FAMILY_2027
    assert session.scalar(select(func.count()).select_from(GracePeriod)) == 0


def test_the_database_refuses_a_second_invoice_for_a_period(plans, engine):
    from sqlalchemy.exc import IntegrityError

    session = plans
    coverage = family(session)
    run_billing(session, through=date(2026, 1, 1), actor=ACTOR)
    session.commit()
    session.add(
        Invoice(
            coverage_id=coverage.id,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
            due_date=date(2026, 1, 1),
            tier="family",
            gross_cents=1,
            discount_cents=0,
            amount_cents=1,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()


def test_annual_billing_bills_the_plan_year_once_with_the_discount(plans):
    session = plans
    coverage = family(
        session, spouse=False, children=0, billing_frequency="annual", effective=date(2026, 4, 1)
    )
    run_billing(session, through=date(2026, 12, 31), actor=ACTOR)
    session.commit()
    (invoice,) = invoices(session, coverage.id)
    assert (invoice.period_start, invoice.period_end) == (date(2026, 4, 1), date(2026, 12, 31))
    assert invoice.gross_cents == 9 * SELF_2026
    assert invoice.discount_cents == round(9 * SELF_2026 * 0.02)
    assert invoice.amount_cents == invoice.gross_cents - invoice.discount_cents


def test_a_tier_change_bills_the_new_tier_from_the_next_period(plans):
    session = plans
    coverage = family(session, spouse=False, children=0)
    record_payment(
        session,
        coverage_id=coverage.id,
        amount_cents=5 * SELF_PLUS_CHILDREN_2026,
        received_on=date(2026, 1, 1),
        actor=ACTOR,
    )
    subscriber = session.get(Member, coverage.subscriber_id)
    add_dependent(
        session,
        subscriber=subscriber,
        effective=date(2026, 3, 10),
        actor=ACTOR,
        person=person("Baby", date(2026, 3, 10), relationship="child"),
    )
    run_billing(session, through=date(2026, 5, 1), actor=ACTOR)
    session.commit()
    assert [(i.tier, i.amount_cents) for i in invoices(session, coverage.id)] == [
        ("self_only", SELF_2026),
        ("self_only", SELF_2026),
        ("self_only", SELF_2026),
        ("self_plus_children", SELF_PLUS_CHILDREN_2026),
        ("self_plus_children", SELF_PLUS_CHILDREN_2026),
    ]


def test_payments_go_to_the_oldest_invoice_and_are_idempotent(plans):
    session = plans
    coverage = family(session)
    run_billing(session, through=date(2026, 1, 1), actor=ACTOR)
    record_payment(
        session,
        coverage_id=coverage.id,
        amount_cents=FAMILY_2026 + 100,
        received_on=date(2026, 1, 1),
        actor=ACTOR,
        reference="ACH-1",
    )
    record_payment(
        session,
        coverage_id=coverage.id,
        amount_cents=FAMILY_2026 + 100,
        received_on=date(2026, 1, 1),
        actor=ACTOR,
        reference="ACH-1",
    )
    run_billing(session, through=date(2026, 3, 1), actor=ACTOR)
    session.commit()
    paid = [sum(a.amount_cents for a in i.allocations) for i in invoices(session, coverage.id)]
    assert paid == [FAMILY_2026, 100, 0]
    assert balance(session, coverage.id) == 3 * FAMILY_2026 - FAMILY_2026 - 100
    with pytest.raises(BillingError, match="already used"):
        record_payment(
            session,
            coverage_id=coverage.id,
            amount_cents=5,
            received_on=date(2026, 1, 2),
            actor=ACTOR,
            reference="ACH-1",
        )
    with pytest.raises(BillingError, match="must be positive"):
        record_payment(
            session,
            coverage_id=coverage.id,
            amount_cents=0,
            received_on=date(2026, 1, 2),
            actor=ACTOR,
        )


def pay_months(session, coverage, months: int, on=date(2026, 1, 1), amount=FAMILY_2026):
    for i in range(months):
        record_payment(
            session,
            coverage_id=coverage.id,
            amount_cents=amount,
            received_on=on,
            actor=ACTOR,
            reference=f"pay-{coverage.id}-{i}",
        )


def test_unpaid_premium_opens_a_31_day_grace_period_then_terminates(plans):
    session = plans
    coverage = family(session)
    run_billing(session, through=date(2026, 1, 1), actor=ACTOR)
    pay_months(session, coverage, 2)  # January and February paid, March is not
    report = run_billing(session, through=date(2026, 3, 2), actor=ACTOR)
    session.commit()
    assert report.grace_periods_started == 1 and report.terminated == 0
    grace = session.scalar(select(GracePeriod))
    assert (grace.starts, grace.ends, grace.status) == (date(2026, 3, 1), date(2026, 3, 31), "open")
    subscriber = session.get(Member, coverage.subscriber_id)
    assert (
        eligibility_on(session, subscriber.member_number, date(2026, 3, 15)).status
        == "grace_period"
    )

    assert run_billing(session, through=date(2026, 3, 31), actor=ACTOR).terminated == 0
    report = run_billing(session, through=date(2026, 4, 1), actor=ACTOR)
    session.commit()
    assert report.terminated == 1 and report.voided == 2  # March and April
    assert coverage.termination_date == date(2026, 2, 28)  # the end of the last month paid for
    assert coverage.termination_reason == "non_payment_of_premium"
    assert (grace.status, grace.paid_through) == ("terminated", date(2026, 2, 28))
    assert (
        eligibility_on(session, subscriber.member_number, date(2026, 3, 15)).status == "terminated"
    )
    assert eligibility_on(session, subscriber.member_number, date(2026, 2, 28)).status == "active"
    assert balance(session, coverage.id) == 0
    notices = session.scalars(
        select(Notice).where(Notice.message_id == "enrollment.notice.terminated_nonpayment")
    ).all()
    assert len(notices) == 4
    assert "2026-02-28" in t(notices[0].message_id, "sv", **notices[0].params)
    # once terminated, further runs bill nothing and change nothing
    assert run_billing(session, through=date(2026, 8, 1), actor=ACTOR).invoices == 0
    assert session.scalar(select(func.count()).select_from(GracePeriod)) == 1


def test_paying_in_the_grace_period_cures_it(plans):
    session = plans
    coverage = family(session)
    run_billing(session, through=date(2026, 1, 1), actor=ACTOR)
    pay_months(session, coverage, 1)
    run_billing(session, through=date(2026, 2, 5), actor=ACTOR)
    session.commit()
    assert session.scalar(select(GracePeriod)).status == "open"
    record_payment(
        session,
        coverage_id=coverage.id,
        amount_cents=FAMILY_2026,
        received_on=date(2026, 2, 20),
        actor=ACTOR,
        reference="late",
    )
    session.commit()
    grace = session.scalar(select(GracePeriod))
    assert (grace.status, grace.resolved_on) == ("cured", date(2026, 2, 20))
    assert run_billing(session, through=date(2026, 3, 1), actor=ACTOR).terminated == 0
    assert session.scalar(select(ChangeRecord).where(ChangeRecord.action == "grace_period_cured"))


def test_a_subsidized_enrollee_has_three_months_and_claims_of_months_two_and_three_pend(plans):
    session = plans
    coverage = family(session, subsidized=True)
    subscriber = session.get(Member, coverage.subscriber_id)
    run_billing(session, through=date(2026, 1, 1), actor=ACTOR)
    pay_months(session, coverage, 1)
    run_billing(session, through=date(2026, 2, 2), actor=ACTOR)
    session.commit()
    grace = session.scalar(select(GracePeriod))
    assert (grace.starts, grace.ends, grace.subsidized) == (
        date(2026, 2, 1),
        date(2026, 4, 30),
        True,
    )
    months = [
        grace_status(session, coverage.id, d).month
        for d in (date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 30))
    ]
    assert months == [1, 2, 3]
    assert grace_status(session, coverage.id, date(2026, 5, 1)) is None
    assert run_billing(session, through=date(2026, 4, 30), actor=ACTOR).terminated == 0
    assert run_billing(session, through=date(2026, 5, 1), actor=ACTOR).terminated == 1
    session.commit()
    assert coverage.termination_date == date(2026, 1, 31)
    assert (
        eligibility_on(session, subscriber.member_number, date(2026, 3, 10)).status == "terminated"
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payments=st.lists(st.integers(min_value=1, max_value=300_000), max_size=6))
def test_balance_is_billed_minus_paid_to_the_cent(plans, payments):
    session = plans
    # Each example adds its own family; the invoice is due on the run date, so not yet late.
    coverage = family(session, children=0, effective=date(2026, 1, 1))
    run_billing(session, through=date(2026, 1, 1), actor=ACTOR)
    billed = int(
        session.scalar(
            select(func.sum(Invoice.amount_cents)).where(Invoice.coverage_id == coverage.id)
        )
    )
    for _i, amount in enumerate(payments):
        record_payment(
            session,
            coverage_id=coverage.id,
            amount_cents=amount,
            received_on=date(2026, 1, 1),
            actor=ACTOR,
        )
    assert balance(session, coverage.id) == billed - sum(payments)
    session.commit()
