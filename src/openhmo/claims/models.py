"""Tables of claims as an 837 carries them, their decisions, and the family accumulators.

- `Claim` and `ClaimLine`: what the provider submitted, as received. Never edited after
  intake, except the claim's `status`; a correction is a new claim (frequency 7
  replaces, 8 voids) naming the original in `replaces_claim_id`.
- `LineDecision`: one row per adjudication of a line that decided something new. Rows
  are never updated: when a re-adjudication (a void, a replacement, an earlier claim
  received late, a staff override) changes a line's decision, a new row is added and the
  old one gets `superseded_at` / `superseded_by`. The current decision of a line is its
  row with `superseded_at` null.
- `Accumulator`, `VisitUsage`, `ReferralUsage`: the current totals of a family's plan
  year, exactly the engine's output for it (carry-in plus what the family's lines took).
  They are rewritten by every real-time run of the family, which re-runs the whole
  family plan year from the carry-in, so they are never added to by hand.
- `AccumulatorCarryIn`, `VisitUsageCarryIn`: amounts a member or family starts a plan
  year with (a prior carrier's deductible met, visits used elsewhere).
- `ClaimOverride`: staff resolutions of pended lines, an input of the engine.

An accumulator row of the family (member_id null) is unique through `holder`: the
member id, or 0 for the family row, so one plain unique constraint holds on SQLite and
PostgreSQL alike (NULLs would never collide in a unique index).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openhmo.db import Base
from openhmo.db.types import CentsColumn, Json, Timestamp

# Claim statuses: received at intake; then what adjudication made of it.
RECEIVED = "received"
ADJUDICATED = "adjudicated"  # every line decided (paid, denied, or a void's lines)
PENDED = "pended"  # at least one line waits for staff
VOIDED = "voided"  # voided by a later frequency-8 claim
REPLACED = "replaced"  # replaced by a later frequency-7 claim
CLAIM_STATUSES = (RECEIVED, ADJUDICATED, PENDED, VOIDED, REPLACED)

FAMILY_HOLDER = 0  # `holder` of a family's accumulator row


class Claim(Base):
    """One claim (CLM) of an 837P or 837I, as submitted."""

    __tablename__ = "claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The payer's claim control number: "C" and the zero-padded id, assigned at intake.
    claim_id: Mapped[str] = mapped_column(String(20), unique=True)
    patient_control_number: Mapped[str] = mapped_column(String(38))  # CLM01
    member_number: Mapped[str] = mapped_column(String(20), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    # The subscriber's member id (docs/adjudication.md: the family); null for a claim of
    # someone who is not a member.
    family_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    billing_npi: Mapped[str] = mapped_column(String(10), index=True)
    rendering_npi: Mapped[str | None] = mapped_column(String(10))
    claim_type: Mapped[str] = mapped_column(String(16))
    frequency_code: Mapped[str] = mapped_column(String(1))
    replaces_claim_id: Mapped[str | None] = mapped_column(String(20), index=True)
    place_of_service: Mapped[str | None] = mapped_column(String(2))
    diagnosis_code_set: Mapped[str] = mapped_column(
        String(9), default="ICD-10-CM", server_default="ICD-10-CM"
    )
    diagnosis_codes: Mapped[list[str]] = mapped_column(Json, default=list)
    referral_number: Mapped[str | None] = mapped_column(String(20))
    prior_auth_number: Mapped[str | None] = mapped_column(String(20))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    total_charge_cents: Mapped[CentsColumn]
    status: Mapped[str] = mapped_column(String(12), default=RECEIVED, index=True)
    source: Mapped[str] = mapped_column(String(40), default="api")
    submitter: Mapped[str] = mapped_column(String(120), default="")
    # The submitter's own id of the submission; a resubmission with the same key is the
    # same claim. `content_digest` tells a true resubmission from a reused key.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    content_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Timestamp]

    lines: Mapped[list[ClaimLine]] = relationship(
        back_populates="claim", order_by="ClaimLine.line_number", cascade="all, delete-orphan"
    )


class ClaimLine(Base):
    """One service line (LX/SV1 or SV2) of a claim."""

    __tablename__ = "claim_line"
    __table_args__ = (UniqueConstraint("claim_id", "line_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    service_date: Mapped[date] = mapped_column(Date, index=True)
    procedure_code: Mapped[str | None] = mapped_column(String(12))
    modifiers: Mapped[list[str]] = mapped_column(Json, default=list)
    revenue_code: Mapped[str | None] = mapped_column(String(4))
    units: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    charge_cents: Mapped[CentsColumn]
    place_of_service: Mapped[str | None] = mapped_column(String(2))
    rendering_npi: Mapped[str | None] = mapped_column(String(10))
    drug_tier: Mapped[str | None] = mapped_column(String(24))

    claim: Mapped[Claim] = relationship(back_populates="lines")


class LineDecision(Base):
    """What one adjudication run decided for a line; the engine's decision columns."""

    __tablename__ = "line_decision"
    __table_args__ = (
        Index("ix_line_decision_current", "line_id", "superseded_at"),
        Index("ix_line_decision_queue", "status", "superseded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("claim_line.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    family_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    plan_key: Mapped[str | None] = mapped_column(String(64))
    plan_year: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    pend_reason: Mapped[str | None] = mapped_column(String(24))
    category: Mapped[str | None] = mapped_column(String(40))
    category_rule: Mapped[str | None] = mapped_column(String(80))
    network_tier: Mapped[str | None] = mapped_column(String(16))
    cost_share_tier: Mapped[str | None] = mapped_column(String(16))
    emergency: Mapped[bool | None] = mapped_column(Boolean)
    charge_cents: Mapped[CentsColumn]
    # Null where the engine gives no amounts: pended, voided, replaced and void lines.
    allowed_cents: Mapped[int | None] = mapped_column(BigInteger)
    plan_paid_cents: Mapped[int | None] = mapped_column(BigInteger)
    deductible_cents: Mapped[int | None] = mapped_column(BigInteger)
    copay_cents: Mapped[int | None] = mapped_column(BigInteger)
    coinsurance_cents: Mapped[int | None] = mapped_column(BigInteger)
    member_share_cents: Mapped[int | None] = mapped_column(BigInteger)
    # [{group, carc, rarc, amount_cents}], [{step, clause, note}]
    adjustments: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    trace: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    explanation_id: Mapped[str] = mapped_column(String(80))
    explanation_params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    referral_number: Mapped[str | None] = mapped_column(String(20))
    prior_auth_number: Mapped[str | None] = mapped_column(String(20))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("line_decision.id"))

    line: Mapped[ClaimLine] = relationship(foreign_keys=[line_id])


class Accumulator(Base):
    """A family's or member's current total of one kind in one pool of one plan year."""

    __tablename__ = "accumulator"
    __table_args__ = (
        UniqueConstraint(
            "family_id",
            "holder",
            "plan_key",
            "plan_year",
            "pool",
            "kind",
            name="uq_accumulator_key",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    holder: Mapped[int] = mapped_column(BigInteger)  # member_id, or 0 for the family row
    plan_key: Mapped[str] = mapped_column(String(64))
    plan_year: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[CentsColumn]
    updated_at: Mapped[Timestamp]


class AccumulatorCarryIn(Base):
    """An amount a member or family starts a plan year with (e.g. from a prior carrier)."""

    __tablename__ = "accumulator_carry_in"
    __table_args__ = (
        UniqueConstraint(
            "family_id",
            "holder",
            "plan_key",
            "plan_year",
            "pool",
            "kind",
            name="uq_accumulator_carry_in_key",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    holder: Mapped[int] = mapped_column(BigInteger)
    plan_key: Mapped[str] = mapped_column(String(64))
    plan_year: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[CentsColumn]
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[Timestamp]


class VisitUsage(Base):
    """Visits (or days) a member used of a limited benefit in a plan year: current total."""

    __tablename__ = "visit_usage"
    __table_args__ = (UniqueConstraint("member_id", "plan_year", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    plan_year: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(40))
    used: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[Timestamp]


class VisitUsageCarryIn(Base):
    """Visits a member starts a plan year with (used elsewhere, e.g. under a prior carrier)."""

    __tablename__ = "visit_usage_carry_in"
    __table_args__ = (UniqueConstraint("member_id", "plan_year", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    plan_year: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(40))
    used: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[Timestamp]


class ReferralUsage(Base):
    """Visits counted against a referral by the claims: current total."""

    __tablename__ = "referral_usage"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_number: Mapped[str] = mapped_column(String(20), unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    used: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[Timestamp]


class ClaimOverride(Base):
    """A staff resolution of a pended line: approve (with an allowed amount) or deny."""

    __tablename__ = "claim_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))
    carc: Mapped[str | None] = mapped_column(String(8))
    allowed_cents: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[Timestamp]
