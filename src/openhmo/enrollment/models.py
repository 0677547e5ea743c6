"""Tables of members, their addresses, coverage spans, PCP assignments and notices.

Nothing here is overwritten: an address, a coverage span or a PCP assignment that
changes is closed with an end date and a new row begins, and every change also goes
to the change history with who made it and why.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openhmo.db import Base
from openhmo.db.types import Json, Timestamp


class Member(Base):
    """A person covered by the plan: the subscriber who holds the contract, or a dependent."""

    __tablename__ = "member"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_number: Mapped[str] = mapped_column(String(20), unique=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    relationship_code: Mapped[str] = mapped_column(String(8))
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    language: Mapped[str] = mapped_column(String(5), default="en")
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[Timestamp]

    addresses: Mapped[list[MemberAddress]] = relationship(
        order_by="MemberAddress.effective_from", cascade="all, delete-orphan"
    )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


class MemberAddress(Base):
    __tablename__ = "member_address"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    zip_code: Mapped[str] = mapped_column(String(5))
    county_fips: Mapped[str | None] = mapped_column(String(5))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)


class Coverage(Base):
    """The subscriber's contract with the plan: plan, coverage tier, billing, dates."""

    __tablename__ = "coverage"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"), index=True)
    tier: Mapped[str] = mapped_column(String(32))
    billing_frequency: Mapped[str] = mapped_column(String(8), default="monthly")
    subsidized: Mapped[bool] = mapped_column(Boolean, default=False)
    effective_date: Mapped[date] = mapped_column(Date)
    termination_date: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[Timestamp]

    subscriber: Mapped[Member] = relationship(foreign_keys=[subscriber_id])
    members: Mapped[list[MemberCoverage]] = relationship(
        back_populates="coverage", cascade="all, delete-orphan"
    )


class MemberCoverage(Base):
    """One member's span of eligibility under a coverage."""

    __tablename__ = "member_coverage"

    id: Mapped[int] = mapped_column(primary_key=True)
    coverage_id: Mapped[int] = mapped_column(ForeignKey("coverage.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    effective_date: Mapped[date] = mapped_column(Date)
    termination_date: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(String(60))

    coverage: Mapped[Coverage] = relationship(back_populates="members")
    member: Mapped[Member] = relationship()


class PcpAssignment(Base):
    """A member's primary care physician from one date to another, and how it was decided."""

    __tablename__ = "pcp_assignment"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"), index=True)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[Timestamp]


class Notice(Base):
    """A message owed to a member; its text comes from the i18n catalogue in their language."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    message_id: Mapped[str] = mapped_column(String(80))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[Timestamp]
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
