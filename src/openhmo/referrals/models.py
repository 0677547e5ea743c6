"""Tables of referrals and prior authorizations.

A row holds the request as the provider made it and its current state; every
transition (requested, approved, denied, expired, exhausted) also goes to the change
history with who made it and why, so the path to the current state can be read back.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openhmo.db import Base
from openhmo.db.types import Json, Timestamp


class Referral(Base):
    """A PCP's referral of a member to a specialist (or a specialty) for a number of visits.

    `referral_number` is what a claim names (REF*9F): "R" and the zero-padded id.
    `specialist_provider_id` names one provider; without it, any in-network provider
    whose NUCC taxonomy code starts with `specialty_prefix` may see the member.
    status: requested, approved, denied, expired, exhausted.
    """

    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_number: Mapped[str] = mapped_column(String(20), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    referring_provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"), index=True)
    specialist_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider.id"), index=True
    )
    specialty_prefix: Mapped[str | None] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(40), default="specialist_visit")
    diagnosis_codes: Mapped[list[str]] = mapped_column(Json, default=list)
    visits: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[Timestamp]
    source: Mapped[str] = mapped_column(String(12), default="api")


class PriorAuthorization(Base):
    """A provider's request that the plan agree in advance to pay for a service.

    `auth_number` is what a claim names (REF*G1): "PA" and the zero-padded id. It
    covers a service category, or the listed procedure codes (CPT/HCPCS), for the
    member on the dates. status: requested, approved, denied, expired.
    """

    __tablename__ = "prior_authorization"

    id: Mapped[int] = mapped_column(primary_key=True)
    auth_number: Mapped[str] = mapped_column(String(20), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    requesting_provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"), index=True)
    servicing_provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), index=True)
    category: Mapped[str] = mapped_column(String(40))
    procedure_codes: Mapped[list[str]] = mapped_column(Json, default=list)
    diagnosis_codes: Mapped[list[str]] = mapped_column(Json, default=list)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    units: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[Timestamp]
    source: Mapped[str] = mapped_column(String(12), default="api")
