"""Premium billing: invoices by period, payments oldest-first, grace periods, termination.

DOMAIN.md §2. `run_billing(through=D)` issues every invoice due by D that does not exist
yet — the unique (coverage, period start) in the database makes a second run bill
nothing twice — applies unallocated payments, and then looks at who is behind as of D:
an unpaid premium opens a grace period (31 days, or 3 months for subsidized
enrollees, as the plan design says); a grace period that ends unpaid terminates the
coverage at the end of the last month paid for, voids the later invoices, and tells
the members; a paid one is cured.

Monthly coverage is billed by calendar month (a coverage that starts mid-month is
billed the whole first month; OpenHMO does not prorate). Annual billing issues one
invoice per plan year for the months covered, less the plan's annual discount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from openhmo.billing.models import GracePeriod, Invoice, Payment, PaymentAllocation
from openhmo.dates import add_months, end_of_month, first_of_month, months_between
from openhmo.enrollment.models import Coverage, Member, MemberCoverage
from openhmo.enrollment.service import add_notice, terminate_coverage, tier_for
from openhmo.history.record import record_change
from openhmo.money import Cents, format_money, percent_of
from openhmo.plans.design import PlanDesign
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of, monthly_premium, plan_year_on

NON_PAYMENT = "non_payment_of_premium"


class BillingError(ValueError):
    pass


@dataclass
class BillingReport:
    invoices: int = 0
    billed_cents: Cents = 0
    grace_periods_started: int = 0
    grace_periods_cured: int = 0
    terminated: int = 0
    voided: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    months: int


def _tier(spans: list[MemberCoverage], subscriber_id: int, day: date) -> str:
    relationships = [
        s.member.relationship_code
        for s in spans
        if s.member_id != subscriber_id
        and s.effective_date <= day
        and (s.termination_date is None or s.termination_date >= day)
    ]
    return tier_for(relationships).value


def billing_periods(coverage: Coverage, design: PlanDesign, through: date) -> list[Period]:
    """The periods of a coverage that are billed by `through`."""
    last = coverage.termination_date or date.max
    if coverage.termination_date and coverage.termination_date < coverage.effective_date:
        return []  # cancelled before it began
    periods = []
    if coverage.billing_frequency == "annual":
        for plan_year in design.plan_years:
            start, end = max(plan_year.starts, coverage.effective_date), min(plan_year.ends, last)
            if start <= end and start <= through:
                periods.append(Period(start, end, len(months_between(start, end))))
    else:
        for month in months_between(coverage.effective_date, min(through, last)):
            start = max(month, coverage.effective_date)
            periods.append(Period(start, min(end_of_month(month), last), 1))
    return periods


def due_date(design: PlanDesign, period: Period) -> date:
    return max(period.start, period.start.replace(day=design.premium_billing.due_day))


def run_billing(session: Session, *, through: date, actor: str) -> BillingReport:
    """Issue what is due by `through`, apply payments, and settle grace periods as of it."""
    report = BillingReport()
    coverages = list(
        session.scalars(
            select(Coverage)
            .where(Coverage.effective_date <= through)
            .options(selectinload(Coverage.members).selectinload(MemberCoverage.member))
            .order_by(Coverage.id)
        )
    )
    plans = {p.id: p for p in session.scalars(select(Plan).options(selectinload(Plan.years)))}
    existing = set(session.execute(select(Invoice.coverage_id, Invoice.period_start)).all())
    for coverage in coverages:
        plan = plans[coverage.plan_id]
        design = design_of(plan)
        for period in billing_periods(coverage, design, through):
            if (coverage.id, period.start) in existing:
                continue
            invoice = _invoice(coverage, plan, design, period, report)
            if invoice is not None:
                session.add(invoice)
                report.invoices += 1
                report.billed_cents += invoice.amount_cents
    session.flush()
    ledgers = load_ledgers(session)
    for item in ledgers.values():
        item.apply_credit(session)
    session.flush()
    settle_delinquency(
        session,
        as_of=through,
        actor=actor,
        report=report,
        coverages=coverages,
        plans=plans,
        ledgers=ledgers,
    )
    return report


def _invoice(
    coverage: Coverage, plan: Plan, design: PlanDesign, period: Period, report: BillingReport
) -> Invoice | None:
    tier = _tier(coverage.members, coverage.subscriber_id, period.start)
    if plan_year_on(plan, period.start) is None:
        report.problems.append(
            f"coverage {coverage.id}: {plan.plan_key} has no plan year on "
            f"{period.start}; not billed"
        )
        return None
    gross = monthly_premium(plan, period.start, tier) * period.months
    discount = 0
    if coverage.billing_frequency == "annual":
        discount = percent_of(gross, design.premium_billing.annual_discount)
    return Invoice(
        coverage_id=coverage.id,
        period_start=period.start,
        period_end=period.end,
        due_date=due_date(design, period),
        tier=tier,
        gross_cents=gross,
        discount_cents=discount,
        amount_cents=gross - discount,
    )


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """What a ledger needs of an invoice (cheaper to load than the ORM object)."""

    id: int
    coverage_id: int
    period_start: date
    due_date: date
    amount_cents: Cents


@dataclass
class Ledger:
    """One coverage's unpaid live invoices (oldest first) and the money not yet applied.

    Paid invoices are left out: billing asks who owes what, and a year of paid months
    need not be read again each time.
    """

    coverage_id: int
    invoices: list[InvoiceLine] = field(default_factory=list)
    paid: dict[int, Cents] = field(default_factory=dict)  # partial payments on `invoices`
    received: Cents = 0
    applied: Cents = 0  # to live invoices, paid ones included
    last_payment_id: int | None = None

    def owed(self, invoice: InvoiceLine) -> Cents:
        return invoice.amount_cents - self.paid.get(invoice.id, 0)

    def open(self) -> list[tuple[InvoiceLine, Cents]]:
        return [(i, self.owed(i)) for i in self.invoices if self.owed(i) > 0]

    def past_due(self, as_of: date) -> list[tuple[InvoiceLine, Cents]]:
        return [(i, o) for i, o in self.open() if i.due_date < as_of]

    @property
    def credit(self) -> Cents:
        """Money received and not applied to a live invoice (overpayments, voided invoices)."""
        return self.received - self.applied

    @property
    def balance(self) -> Cents:
        """What the subscriber owes (negative: a credit)."""
        return sum(o for _, o in self.open()) - self.credit

    def apply_credit(self, session: Session) -> None:
        available = self.credit
        for invoice, owed in self.open():
            if available <= 0:
                break
            amount = min(owed, available)
            # Credit is attributed to the latest payment: which payment funded it changes
            # no balance, and the allocation row keeps the trail.
            session.add(
                PaymentAllocation(
                    payment_id=self.last_payment_id, invoice_id=invoice.id, amount_cents=amount
                )
            )
            self.paid[invoice.id] = self.paid.get(invoice.id, 0) + amount
            self.applied += amount
            available -= amount


def load_ledgers(session: Session, coverage_ids: list[int] | None = None) -> dict[int, Ledger]:
    """The ledgers of some coverages (all when None), in three queries whatever their number."""

    def only(query, column):
        return query if coverage_ids is None else query.where(column.in_(coverage_ids))

    ledgers: dict[int, Ledger] = {}
    if coverage_ids is not None:
        ledgers = {c: Ledger(c) for c in coverage_ids}

    def get(coverage_id: int) -> Ledger:
        return ledgers.setdefault(coverage_id, Ledger(coverage_id))

    paid = (
        select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount_cents).label("paid"))
        .group_by(PaymentAllocation.invoice_id)
        .subquery()
    )
    rows = session.execute(
        only(
            select(
                Invoice.id,
                Invoice.coverage_id,
                Invoice.period_start,
                Invoice.due_date,
                Invoice.amount_cents,
                func.coalesce(paid.c.paid, 0),
            )
            .outerjoin(paid, paid.c.invoice_id == Invoice.id)
            .where(
                Invoice.voided_on.is_(None), Invoice.amount_cents > func.coalesce(paid.c.paid, 0)
            ),
            Invoice.coverage_id,
        ).order_by(Invoice.coverage_id, Invoice.due_date, Invoice.id)
    )
    for *fields, already in rows:
        invoice = InvoiceLine(*fields)
        account = get(invoice.coverage_id)
        account.invoices.append(invoice)
        if already:
            account.paid[invoice.id] = int(already)
    applied = session.execute(
        only(
            select(Invoice.coverage_id, func.sum(PaymentAllocation.amount_cents))
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(Invoice.voided_on.is_(None))
            .group_by(Invoice.coverage_id),
            Invoice.coverage_id,
        )
    )
    for coverage_id, amount in applied:
        get(coverage_id).applied = int(amount)
    payments = session.execute(
        only(
            select(
                Payment.coverage_id, func.sum(Payment.amount_cents), func.max(Payment.id)
            ).group_by(Payment.coverage_id),
            Payment.coverage_id,
        )
    )
    for coverage_id, amount, last in payments:
        account = get(coverage_id)
        account.received, account.last_payment_id = int(amount), last
    return ledgers


def ledger(session: Session, coverage_id: int) -> Ledger:
    return load_ledgers(session, [coverage_id])[coverage_id]


def balance(session: Session, coverage_id: int) -> Cents:
    """What the subscriber owes (negative: a credit)."""
    return ledger(session, coverage_id).balance


@dataclass(frozen=True)
class PaymentIn:
    coverage_id: int
    amount_cents: Cents
    received_on: date
    reference: str | None = None
    method: str = "ach"


def record_payments(session: Session, payments: list[PaymentIn], *, actor: str) -> list[Payment]:
    """Take payments and apply each to its coverage's oldest unpaid invoices.

    Idempotent by reference: a reference seen before returns the payment it made. A
    lockbox file of thousands of payments costs a handful of queries, not thousands.
    """
    for p in payments:
        if p.amount_cents <= 0:
            raise BillingError(f"a payment must be positive (got {format_money(p.amount_cents)})")
    references = [p.reference for p in payments if p.reference is not None]
    known = (
        {
            pay.reference: pay
            for pay in session.scalars(select(Payment).where(Payment.reference.in_(references)))
        }
        if references
        else {}
    )
    coverage_ids = sorted({p.coverage_id for p in payments})
    found = set(session.scalars(select(Coverage.id).where(Coverage.id.in_(coverage_ids))))
    if missing := set(coverage_ids) - found:
        raise BillingError(f"no coverage {', '.join(map(str, sorted(missing)))}")
    out, new = [], []
    for p in payments:
        existing = known.get(p.reference) if p.reference is not None else None
        if existing is not None:
            if (existing.coverage_id, existing.amount_cents) != (p.coverage_id, p.amount_cents):
                raise BillingError(
                    f"payment reference {p.reference} was already used for "
                    f"{format_money(existing.amount_cents)} on coverage "
                    f"{existing.coverage_id}"
                )
            out.append(existing)
            continue
        payment = Payment(
            coverage_id=p.coverage_id,
            received_on=p.received_on,
            amount_cents=p.amount_cents,
            method=p.method,
            reference=p.reference,
        )
        session.add(payment)
        if p.reference is not None:
            known[p.reference] = payment
        out.append(payment)
        new.append(payment)
    session.flush()
    ledgers = load_ledgers(session, coverage_ids)
    graces = {
        g.coverage_id: g
        for g in session.scalars(
            select(GracePeriod).where(
                GracePeriod.status == "open", GracePeriod.coverage_id.in_(coverage_ids)
            )
        )
    }
    for payment in new:
        record_change(
            session,
            actor=actor,
            entity="payment",
            entity_id=payment.id,
            action="premium_payment_received",
            coverage_id=payment.coverage_id,
            effective_date=payment.received_on,
            changes={"amount": format_money(payment.amount_cents), "reference": payment.reference},
            reason=f"{payment.method} payment",
        )
    last_received: dict[int, date] = {}
    for payment in new:
        last_received[payment.coverage_id] = max(
            payment.received_on, last_received.get(payment.coverage_id, payment.received_on)
        )
    for coverage_id in coverage_ids:
        account = ledgers[coverage_id]
        account.apply_credit(session)
        grace, last = graces.get(coverage_id), last_received.get(coverage_id)
        if (
            grace is not None
            and last is not None
            and not account.past_due(last + timedelta(days=1))
        ):
            _cure(session, grace, last, actor)
    session.flush()
    return out


def record_payment(
    session: Session,
    *,
    coverage_id: int,
    amount_cents: Cents,
    received_on: date,
    actor: str,
    reference: str | None = None,
    method: str = "ach",
) -> Payment:
    """Take one payment (see record_payments)."""
    return record_payments(
        session, [PaymentIn(coverage_id, amount_cents, received_on, reference, method)], actor=actor
    )[0]


def open_grace_period(session: Session, coverage_id: int) -> GracePeriod | None:
    return session.scalar(
        select(GracePeriod).where(
            GracePeriod.coverage_id == coverage_id, GracePeriod.status == "open"
        )
    )


def grace_end(design: PlanDesign, start: date, subsidized: bool) -> date:
    if subsidized:
        return add_months(start, design.grace_period.subsidized_months) - timedelta(days=1)
    return start + timedelta(days=design.grace_period.unsubsidized_days - 1)


def _cure(session: Session, grace: GracePeriod, day: date, actor: str) -> None:
    grace.status, grace.resolved_on = "cured", day
    record_change(
        session,
        actor=actor,
        entity="coverage",
        entity_id=grace.coverage_id,
        action="grace_period_cured",
        coverage_id=grace.coverage_id,
        effective_date=day,
        changes={"grace_period": [grace.starts, grace.ends]},
        reason="overdue premium paid",
    )


def settle_delinquency(
    session: Session,
    *,
    as_of: date,
    actor: str,
    report: BillingReport | None = None,
    coverages: list[Coverage] | None = None,
    plans: dict[int, Plan] | None = None,
    ledgers: dict[int, Ledger] | None = None,
) -> BillingReport:
    """Open, cure or end grace periods as of `as_of`."""
    report = report or BillingReport()
    if coverages is None:
        coverages = list(session.scalars(select(Coverage).where(Coverage.effective_date <= as_of)))
    plans = plans or {p.id: p for p in session.scalars(select(Plan))}
    ledgers = ledgers if ledgers is not None else load_ledgers(session)
    open_graces = {
        g.coverage_id: g
        for g in session.scalars(select(GracePeriod).where(GracePeriod.status == "open"))
    }
    for coverage in coverages:
        if coverage.termination_date is not None and coverage.termination_date < as_of:
            continue
        design = design_of(plans[coverage.plan_id])
        account = ledgers.get(coverage.id) or Ledger(coverage.id)
        past_due = account.past_due(as_of)
        grace = open_graces.get(coverage.id)
        if not past_due:
            if grace is not None:
                _cure(session, grace, as_of, actor)
                report.grace_periods_cured += 1
            continue
        oldest, owed = past_due[0]
        if grace is None:
            grace = _start_grace(session, coverage, design, oldest, owed, actor)
            report.grace_periods_started += 1
        if as_of > grace.ends:
            report.voided += _terminate_for_non_payment(
                session, coverage, design, grace, oldest, as_of, actor
            )
            report.terminated += 1
    session.flush()
    return report


def _start_grace(session, coverage, design, oldest: InvoiceLine, owed: Cents, actor) -> GracePeriod:
    grace = GracePeriod(
        coverage_id=coverage.id,
        invoice_id=oldest.id,
        starts=oldest.due_date,
        ends=grace_end(design, oldest.due_date, coverage.subsidized),
        subsidized=coverage.subsidized,
    )
    session.add(grace)
    session.flush()
    record_change(
        session,
        actor=actor,
        entity="coverage",
        entity_id=coverage.id,
        action="grace_period_started",
        coverage_id=coverage.id,
        member_id=coverage.subscriber_id,
        effective_date=grace.starts,
        changes={
            "grace_period": [grace.starts, grace.ends],
            "owed": format_money(owed),
            "subsidized": coverage.subsidized,
        },
        reason=f"premium due {oldest.due_date} unpaid",
    )
    subscriber = session.get(Member, coverage.subscriber_id)
    add_notice(
        session,
        subscriber,
        "enrollment.notice.grace_period_started",
        amount=format_money(owed),
        due_date=oldest.due_date.isoformat(),
        grace_end=grace.ends.isoformat(),
    )
    return grace


def _terminate_for_non_payment(
    session, coverage, design, grace, oldest: InvoiceLine, as_of, actor
) -> int:
    # Everything before the oldest unpaid invoice is paid: the coverage was paid through
    # the day before that invoice's period.
    paid_through = oldest.period_start - timedelta(days=1)
    end = paid_through
    if (
        coverage.subsidized
        and design.grace_period.subsidized_termination == "end_of_first_grace_month"
    ):
        end = end_of_month(grace.starts)
    end = max(end, coverage.effective_date - timedelta(days=1))
    plan_name = design.name
    terminate_coverage(
        session,
        coverage=coverage,
        termination_date=end,
        actor=actor,
        reason=NON_PAYMENT,
        note=f"grace period {grace.starts} to {grace.ends} ended unpaid",
    )
    grace.status, grace.resolved_on, grace.paid_through = "terminated", as_of, paid_through
    voided = 0
    for invoice in session.scalars(
        select(Invoice).where(
            Invoice.coverage_id == coverage.id,
            Invoice.voided_on.is_(None),
            Invoice.period_start > end,
        )
    ):
        invoice.voided_on, invoice.void_reason = as_of, "coverage terminated"
        voided += 1
    for span in coverage.members:
        add_notice(
            session,
            span.member,
            "enrollment.notice.terminated_nonpayment",
            plan=plan_name,
            end_date=end.isoformat(),
            grace_end=grace.ends.isoformat(),
        )
    return voided


@dataclass(frozen=True)
class GraceStatus:
    grace_period: GracePeriod
    month: int  # 1 for the grace period's first month


def grace_status(session: Session, coverage_id: int, day: date) -> GraceStatus | None:
    """The grace period a day falls in, and which of its months, for eligibility and claims."""
    grace = session.scalar(
        select(GracePeriod).where(GracePeriod.coverage_id == coverage_id, *grace_on(day))
    )
    if grace is None:
        return None
    return GraceStatus(grace, grace_month(grace.starts, day))


def grace_on(day) -> tuple:
    """Conditions of a grace period that `day` falls in: within it, and the grace still
    open or resolved only after that day (a date or a bound parameter)."""
    return (
        GracePeriod.starts <= day,
        GracePeriod.ends >= day,
        or_(GracePeriod.status == "open", GracePeriod.resolved_on > day),
    )


def grace_month(starts: date, day: date) -> int:
    """Which month of a grace period that began on `starts` `day` is in (1 for the first)."""
    start = first_of_month(starts)
    return (day.year - start.year) * 12 + day.month - start.month + 1
