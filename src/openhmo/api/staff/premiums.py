"""Premiums for staff: a coverage's invoices, payments and grace periods; taking a payment.

Balances come from billing.service's ledger, and a payment goes through
`record_payment` (oldest invoice first, idempotent by reference, a grace period cured
when the overdue premium is paid): nothing here decides what is owed. A subscriber's
invoices are personal data: every read is audited against the subscriber.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller
from openhmo.api.deps import AuditedDB, WriteDB
from openhmo.api.errors import ApiError
from openhmo.api.staff.common import (
    MAX_CENTS,
    CoverageId,
    In,
    MemberNumber,
    Out,
    actor,
    errors,
    member_by_number,
    short_text,
    staff,
)
from openhmo.billing.models import GracePeriod, Invoice, Payment, PaymentAllocation
from openhmo.billing.service import BillingError, ledger, record_payment
from openhmo.claims.context_db import utc
from openhmo.enrollment.models import Coverage, Member
from openhmo.plans.models import Plan

router = APIRouter()

PaymentReference = short_text(64, "the payer's reference: the same reference twice is one payment")
PaymentMethod = short_text(20, "how it was paid: ach, check, card, ...")


class InvoiceOut(Out):
    id: int
    period_start: date
    period_end: date
    due_date: date
    tier: str
    gross_cents: int
    discount_cents: int = Field(description="the annual-billing discount, in cents")
    amount_cents: int = Field(description="what is billed: gross less discount")
    paid_cents: int = Field(description="payments applied to this invoice so far")
    issued_at: datetime
    voided_on: date | None
    void_reason: str | None


class Allocation(Out):
    invoice_id: int
    amount_cents: int


class PaymentOut(Out):
    id: int
    received_on: date
    amount_cents: int
    method: str
    reference: str | None
    applied: list[Allocation] = Field(description="the invoices it paid, oldest first")


class GracePeriodOut(Out):
    id: int
    invoice_id: int = Field(description="the oldest unpaid invoice that opened it")
    starts: date
    ends: date
    subsidized: bool
    status: str = Field(description="open, cured or terminated")
    resolved_on: date | None
    paid_through: date | None


class CoverageBilling(Out):
    coverage_id: int
    subscriber_number: str
    subscriber_name: str
    plan_key: str
    tier: str
    billing_frequency: str
    subsidized: bool
    effective_date: date
    termination_date: date | None
    termination_reason: str | None
    balance_cents: int = Field(description="what the subscriber owes now (negative: a credit)")
    credit_cents: int = Field(description="money received and not applied to an invoice")
    invoices: list[InvoiceOut]
    payments: list[PaymentOut]
    grace_periods: list[GracePeriodOut]


class PaymentIn(In):
    amount_cents: int = Field(
        ge=1, le=MAX_CENTS, strict=True, description="the amount received, in cents"
    )
    received_on: date
    reference: PaymentReference | None = None
    method: PaymentMethod = "ach"


class PaymentReceipt(Out):
    payment: PaymentOut
    balance_cents: int = Field(description="the coverage's balance after the payment")
    created: bool = Field(description="false when the reference was seen before")


def _coverage(session: Session, coverage_id: int) -> Coverage:
    coverage = session.get(Coverage, coverage_id)
    if coverage is None:
        raise ApiError(404, f"there is no coverage {coverage_id}", expression=["coverage_id"])
    return coverage


def _payment(session: Session, payment: Payment) -> dict[str, Any]:
    applied = session.execute(
        select(PaymentAllocation.invoice_id, PaymentAllocation.amount_cents)
        .where(PaymentAllocation.payment_id == payment.id)
        .order_by(PaymentAllocation.id)
    ).all()
    return {
        "id": payment.id,
        "received_on": payment.received_on,
        "amount_cents": payment.amount_cents,
        "method": payment.method,
        "reference": payment.reference,
        "applied": [{"invoice_id": i, "amount_cents": a} for i, a in applied],
    }


def _billing(session: Session, coverage: Coverage) -> dict[str, Any]:
    subscriber = session.get(Member, coverage.subscriber_id)
    account = ledger(session, coverage.id)
    paid = dict(
        session.execute(
            select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount_cents))
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(Invoice.coverage_id == coverage.id)
            .group_by(PaymentAllocation.invoice_id)
        ).all()
    )
    invoices = session.scalars(
        select(Invoice)
        .where(Invoice.coverage_id == coverage.id)
        .order_by(Invoice.period_start, Invoice.id)
    ).all()
    payments = session.scalars(
        select(Payment)
        .where(Payment.coverage_id == coverage.id)
        .order_by(Payment.received_on, Payment.id)
    ).all()
    graces = session.scalars(
        select(GracePeriod)
        .where(GracePeriod.coverage_id == coverage.id)
        .order_by(GracePeriod.starts, GracePeriod.id)
    ).all()
    return {
        "coverage_id": coverage.id,
        "subscriber_number": subscriber.member_number,
        "subscriber_name": subscriber.name,
        "plan_key": session.scalar(select(Plan.plan_key).where(Plan.id == coverage.plan_id)),
        "tier": coverage.tier,
        "billing_frequency": coverage.billing_frequency,
        "subsidized": coverage.subsidized,
        "effective_date": coverage.effective_date,
        "termination_date": coverage.termination_date,
        "termination_reason": coverage.termination_reason,
        "balance_cents": account.balance,
        "credit_cents": account.credit,
        "invoices": [
            {
                "id": i.id,
                "period_start": i.period_start,
                "period_end": i.period_end,
                "due_date": i.due_date,
                "tier": i.tier,
                "gross_cents": i.gross_cents,
                "discount_cents": i.discount_cents,
                "amount_cents": i.amount_cents,
                "paid_cents": int(paid.get(i.id, 0)),
                "issued_at": utc(i.issued_at),
                "voided_on": i.voided_on,
                "void_reason": i.void_reason,
            }
            for i in invoices
        ],
        "payments": [_payment(session, p) for p in payments],
        "grace_periods": graces,
    }


def _audit(session: Session, caller: Caller, coverages: list[Coverage], what: str) -> None:
    numbers = dict(
        session.execute(
            select(Member.id, Member.member_number).where(
                Member.id.in_({c.subscriber_id for c in coverages})
            )
        ).all()
    )
    record_reads(
        session,
        caller,
        [(c.subscriber_id, "Coverage", f"{c.id}-{numbers[c.subscriber_id]}") for c in coverages],
        action="read",
        what=what,
    )


@router.get(
    "/coverages/{coverage_id}/billing",
    response_model=CoverageBilling,
    summary="A coverage's invoices, payments, balance and grace periods",
    responses=errors(_404="no coverage with this id"),
)
def coverage_billing(
    coverage_id: CoverageId, session: AuditedDB, caller: Annotated[Caller, staff("Premium", "read")]
) -> Any:
    coverage = _coverage(session, coverage_id)
    _audit(session, caller, [coverage], f"GET /staff/coverages/{coverage_id}/billing")
    return _billing(session, coverage)


@router.get(
    "/members/{member_number}/billing",
    response_model=list[CoverageBilling],
    summary="The premium billing of a member's family: every coverage of its subscriber",
    responses=errors(_404="no member with this number"),
)
def member_billing(
    member_number: MemberNumber,
    session: AuditedDB,
    caller: Annotated[Caller, staff("Premium", "read")],
) -> Any:
    member = member_by_number(session, member_number)
    number = member.member_number
    coverages = session.scalars(
        select(Coverage)
        .where(Coverage.subscriber_id == (member.subscriber_id or member.id))
        .order_by(Coverage.effective_date.desc(), Coverage.id.desc())
    ).all()
    if coverages:
        _audit(session, caller, list(coverages), f"GET /staff/members/{number}/billing")
    return [_billing(session, c) for c in coverages]


@router.post(
    "/coverages/{coverage_id}/payments",
    response_model=PaymentReceipt,
    status_code=201,
    summary="Take a premium payment: it pays the oldest unpaid invoices first",
    responses={
        200: {
            "model": PaymentReceipt,
            "description": "the reference was used before for this payment: nothing new taken",
        },
        **errors(
            _404="no coverage with this id",
            _409="the reference was used before for another amount or coverage",
        ),
    },
)
def take_payment(
    coverage_id: CoverageId,
    body: PaymentIn,
    response: Response,
    session: WriteDB,
    caller: Annotated[Caller, staff("Premium", "write")],
) -> Any:
    coverage = _coverage(session, coverage_id)
    seen = body.reference is not None and (
        session.scalar(select(Payment.id).where(Payment.reference == body.reference)) is not None
    )
    try:
        payment = record_payment(
            session,
            coverage_id=coverage.id,
            amount_cents=body.amount_cents,
            received_on=body.received_on,
            reference=body.reference,
            method=body.method,
            actor=actor(caller),
        )
    except BillingError as exc:
        raise ApiError(409, str(exc), code="conflict", expression=["reference"]) from None
    if seen:
        response.status_code = 200
    return {
        "payment": _payment(session, payment),
        "balance_cents": ledger(session, coverage.id).balance,
        "created": not seen,
    }
