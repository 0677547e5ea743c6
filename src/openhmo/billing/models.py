"""Tables of premium invoices, payments, their allocation, and grace periods."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openhmo.db import Base
from openhmo.db.types import CentsColumn, Timestamp


class Invoice(Base):
    """The premium of one coverage for one billing period.

    (coverage_id, period_start) is unique: that is what makes a billing run
    idempotent, in the database and not only in the code.
    """

    __tablename__ = "invoice"
    __table_args__ = (UniqueConstraint("coverage_id", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coverage_id: Mapped[int] = mapped_column(ForeignKey("coverage.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    tier: Mapped[str] = mapped_column(String(32))
    gross_cents: Mapped[CentsColumn]
    discount_cents: Mapped[CentsColumn]
    amount_cents: Mapped[CentsColumn]
    issued_at: Mapped[Timestamp]
    # An invoice for a period after coverage ended is voided, never deleted.
    voided_on: Mapped[date | None] = mapped_column(Date)
    void_reason: Mapped[str | None] = mapped_column(String(60))

    allocations: Mapped[list[PaymentAllocation]] = relationship(back_populates="invoice")


class Payment(Base):
    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    coverage_id: Mapped[int] = mapped_column(ForeignKey("coverage.id"), index=True)
    received_on: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[CentsColumn]
    method: Mapped[str] = mapped_column(String(20), default="ach")
    reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[Timestamp]


class PaymentAllocation(Base):
    """The part of a payment applied to one invoice (oldest invoice first)."""

    __tablename__ = "payment_allocation"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    amount_cents: Mapped[CentsColumn]

    invoice: Mapped[Invoice] = relationship(back_populates="allocations")


class GracePeriod(Base):
    """Time allowed to pay an overdue premium before coverage terminates.

    status: 'open' while it runs, 'cured' when the overdue premium was paid, and
    'terminated' when it ran out and the coverage ended for non-payment.
    """

    __tablename__ = "grace_period"

    id: Mapped[int] = mapped_column(primary_key=True)
    coverage_id: Mapped[int] = mapped_column(ForeignKey("coverage.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"))
    starts: Mapped[date] = mapped_column(Date)
    ends: Mapped[date] = mapped_column(Date)
    subsidized: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="open")
    resolved_on: Mapped[date | None] = mapped_column(Date)
    paid_through: Mapped[date | None] = mapped_column(Date)
