"""Tables of the payment runs: what was remitted to whom, in which run, from which decisions.

- `RemittanceRun`: one payment run (`openhmo x12 remit`) and its payment date.
- `Remittance`: one payee's payment (or notice of none) in a run: its trace number
  (TRN02, the check or EFT number), method, totals and the interchange as written, so
  what was sent can always be shown again.
- `RemittedClaim`: what a run did with one claim, one row per thing done, numbered per
  claim by `sequence` (unique with the claim: two runs can never both remit the same
  state of a claim). `kind` is `payment` (a CLP, status 1 or 4, with the current
  decisions), `reversal` (a CLP with status 22 taking back the row it `reverses`),
  `unchanged` (new decisions that pay exactly what was remitted: nothing sent, the
  payment stays in force) or `no_payment` (decided, with nothing to remit: the lines
  of a void, or a claim replaced or voided before it was ever remitted). `version` is
  the highest id of the claim's current decisions at the time: decision ids only grow
  and a new decision supersedes an older one, so a claim has changed since it was
  remitted exactly when its current decisions' highest id is above its last `version`.
  Its amounts are those of the CLP it sent (negative for a reversal), 0 when it sent none.
- `RemittanceAdjustment`: a PLB entry of a remittance. Overpayment recovery (WO) with
  a negative amount defers what a payee owes (a reversal took back more than the 835
  paid); a positive one recovers it later. What a payee owes is minus the sum of them.

Rows are only added, never changed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openhmo.db import Base
from openhmo.db.types import CentsColumn, Json, Timestamp

PAYMENT = "payment"
REVERSAL = "reversal"
UNCHANGED = "unchanged"
NO_PAYMENT = "no_payment"
KINDS = (PAYMENT, REVERSAL, UNCHANGED, NO_PAYMENT)
IN_FORCE = (PAYMENT, UNCHANGED)  # the kinds after which a payment of the claim stands


class RemittanceRun(Base):
    """One payment run."""

    __tablename__ = "remittance_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_date: Mapped[date] = mapped_column(Date)
    produced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    payees: Mapped[int] = mapped_column(Integer)
    claims: Mapped[int] = mapped_column(Integer)
    total_paid_cents: Mapped[CentsColumn]
    created_at: Mapped[Timestamp]


class Remittance(Base):
    """One payee's 835 of a run."""

    __tablename__ = "remittance"
    __table_args__ = (UniqueConstraint("run_id", "payee_npi"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("remittance_run.id"), index=True)
    payee_npi: Mapped[str] = mapped_column(String(10), index=True)
    payee_name: Mapped[str] = mapped_column(String(200))
    payee_tin: Mapped[str | None] = mapped_column(String(12))
    trace_number: Mapped[str] = mapped_column(String(50), unique=True)
    payment_method: Mapped[str] = mapped_column(String(3))
    payment_date: Mapped[date] = mapped_column(Date)
    claims_paid_cents: Mapped[CentsColumn]  # sum of CLP04
    adjustments_cents: Mapped[CentsColumn]  # sum of the PLB amounts
    total_paid_cents: Mapped[CentsColumn]  # BPR02
    x12: Mapped[str] = mapped_column(Text)
    created_at: Mapped[Timestamp]


class RemittedClaim(Base):
    """What one run did with one claim (see the module's text for the kinds)."""

    __tablename__ = "remitted_claim"
    __table_args__ = (UniqueConstraint("claim_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("remittance_run.id"), index=True)
    remittance_id: Mapped[int | None] = mapped_column(ForeignKey("remittance.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    clp_status: Mapped[str | None] = mapped_column(String(2))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("remitted_claim.id"))
    version: Mapped[int] = mapped_column(BigInteger)
    # The LineDecision ids whose amounts this row remits (or, for a reversal, takes back).
    decision_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    charge_cents: Mapped[CentsColumn]  # CLP03
    paid_cents: Mapped[CentsColumn]  # CLP04
    patient_responsibility_cents: Mapped[CentsColumn]  # CLP05
    created_at: Mapped[Timestamp]


class RemittanceAdjustment(Base):
    """One PLB entry of a remittance; positive amounts reduce the payment."""

    __tablename__ = "remittance_adjustment"

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittance.id"), index=True)
    payee_npi: Mapped[str] = mapped_column(String(10), index=True)
    reason: Mapped[str] = mapped_column(String(2))
    reference: Mapped[str | None] = mapped_column(String(50))
    amount_cents: Mapped[CentsColumn]
    created_at: Mapped[Timestamp]
