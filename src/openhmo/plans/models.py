"""Stored plan designs: the plan, its effective-dated plan years, premiums and service area.

The validated design (openhmo.plans.design.PlanDesign) is kept whole as JSON on each
plan year, so the adjudication engine reads exactly what was validated; premiums and
the service area are also kept as rows so that billing and enrollment can query them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openhmo.db import Base
from openhmo.db.types import CentsColumn, Json, Timestamp


class Plan(Base):
    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan_type: Mapped[str] = mapped_column(String(16))
    network_key: Mapped[str | None] = mapped_column(String(64))
    hios_plan_id: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[Timestamp]

    years: Mapped[list[PlanYear]] = relationship(
        back_populates="plan", order_by="PlanYear.starts", cascade="all, delete-orphan"
    )
    service_area: Mapped[list[ServiceAreaEntry]] = relationship(cascade="all, delete-orphan")


class PlanYear(Base):
    __tablename__ = "plan_year"
    __table_args__ = (UniqueConstraint("plan_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    starts: Mapped[date] = mapped_column(Date)
    ends: Mapped[date] = mapped_column(Date)
    design: Mapped[dict[str, Any]] = mapped_column(Json)
    # SHA-256 of the design JSON: readers cache the validated design by it.
    design_digest: Mapped[str] = mapped_column(String(64))

    plan: Mapped[Plan] = relationship(back_populates="years")
    premiums: Mapped[list[PlanPremium]] = relationship(cascade="all, delete-orphan")


class PlanPremium(Base):
    """The monthly premium of one coverage tier in one plan year."""

    __tablename__ = "plan_premium"
    __table_args__ = (UniqueConstraint("plan_year_id", "tier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_year_id: Mapped[int] = mapped_column(ForeignKey("plan_year.id"))
    tier: Mapped[str] = mapped_column(String(32))
    monthly_cents: Mapped[CentsColumn]


class ServiceAreaEntry(Base):
    """A county (5-digit FIPS) or a ZIP code where the plan's members may live."""

    __tablename__ = "plan_service_area"
    __table_args__ = (UniqueConstraint("plan_id", "kind", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(10))
