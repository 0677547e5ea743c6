"""Tables of the provider network and its contracts with the plan's networks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openhmo.db import Base
from openhmo.db.types import CentsColumn, Timestamp, utcnow


class Organization(Base):
    """A practice, group, clinic, hospital or other facility; holds the TIN that gets paid."""

    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    npi: Mapped[str | None] = mapped_column(String(10), unique=True)
    tin: Mapped[str | None] = mapped_column(String(12), index=True)
    kind: Mapped[str] = mapped_column(String(40), default="group")
    taxonomy_code: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(200), default="")
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[Timestamp]


class Provider(Base):
    """A person or a facility that renders care, identified by NPI."""

    __tablename__ = "provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    npi: Mapped[str] = mapped_column(String(10), unique=True)
    entity_type: Mapped[str] = mapped_column(String(12), default="individual")
    first_name: Mapped[str | None] = mapped_column(String(80))
    last_name: Mapped[str | None] = mapped_column(String(80))
    organization_name: Mapped[str | None] = mapped_column(String(200))
    credential: Mapped[str | None] = mapped_column(String(20))
    sex: Mapped[str | None] = mapped_column(String(1))
    taxonomy_code: Mapped[str | None] = mapped_column(String(10), index=True)
    specialty: Mapped[str] = mapped_column(String(120), default="")
    pcp_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    pediatrics: Mapped[bool] = mapped_column(Boolean, default=False)
    ob_gyn: Mapped[bool] = mapped_column(Boolean, default=False)
    accepting_new_patients: Mapped[bool] = mapped_column(Boolean, default=True)
    panel_capacity: Mapped[int | None] = mapped_column(Integer)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    source: Mapped[str] = mapped_column(String(200), default="")
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[Timestamp]

    organization: Mapped[Organization | None] = relationship()
    languages: Mapped[list[ProviderLanguage]] = relationship(cascade="all, delete-orphan")
    locations: Mapped[list[ProviderLocation]] = relationship(cascade="all, delete-orphan")

    @property
    def display_name(self) -> str:
        if self.entity_type == "organization" or not self.last_name:
            return self.organization_name or f"NPI {self.npi}"
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return f"{name}, {self.credential}" if self.credential else name


# The public directory's searches of people (api/fhir/directory_search.py): by name, by
# specialty or by new patients, in name order, one page at a time; and which practice a
# provider is in. Partial: facilities are searched as places, not as people.
_INDIVIDUAL = {
    "postgresql_where": text("entity_type = 'individual'"),
    "sqlite_where": text("entity_type = 'individual'"),
}
_NAME = (func.lower(Provider.last_name), func.lower(Provider.first_name), Provider.id)
Index("ix_provider_directory_name", *_NAME, **_INDIVIDUAL)
Index("ix_provider_directory_given", func.lower(Provider.first_name), **_INDIVIDUAL)
Index("ix_provider_directory_specialty", Provider.taxonomy_code, *_NAME, **_INDIVIDUAL)
Index("ix_provider_directory_accepting", Provider.accepting_new_patients, *_NAME, **_INDIVIDUAL)
Index("ix_provider_directory_organization", Provider.organization_id, Provider.id, **_INDIVIDUAL)


class ProviderLanguage(Base):
    __tablename__ = "provider_language"

    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(40), primary_key=True)


class Location(Base):
    __tablename__ = "location"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    zip_code: Mapped[str] = mapped_column(String(5), index=True)
    county_fips: Mapped[str | None] = mapped_column(String(5))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(20))
    # When the row was written or last changed (the directory's meta.lastUpdated, which
    # Plan-Net requires): importers change addresses and phones in place, without a
    # change record. Null only for rows older than the column (migration 0008 fills them).
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    # The directory's `near` searches: a latitude/longitude box, then the exact distance.
    __table_args__ = (Index("ix_location_position", "latitude", "longitude"),)


class ProviderLocation(Base):
    __tablename__ = "provider_location"

    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"), primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"), primary_key=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=True)

    # Who practises at a place (the directory's location searches), without the table.
    __table_args__ = (Index("ix_provider_location_location", "location_id", "provider_id"),)

    location: Mapped[Location] = relationship()


class Network(Base):
    """A network the plan's designs name (e.g. 'openhmo-core'); contracts put providers in it."""

    __tablename__ = "network"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class FeeSchedule(Base):
    """How a contract prices a line: per-code amounts, a percent of Medicare, or case rates.

    method is 'per_code' (amounts in fee_schedule_rate), 'percent_of_medicare' (percent of
    the Medicare physician fee schedule for medicare_year and medicare_locality, with any
    per-code amounts in fee_schedule_rate taking precedence) or 'case_rate' (a fixed
    amount per case for the codes in fee_schedule_rate).
    """

    __tablename__ = "fee_schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(24))
    percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    medicare_year: Mapped[int | None] = mapped_column(Integer)
    medicare_locality: Mapped[str | None] = mapped_column(String(40))

    rates: Mapped[list[FeeScheduleRate]] = relationship(cascade="all, delete-orphan")


class FeeScheduleRate(Base):
    __tablename__ = "fee_schedule_rate"
    __table_args__ = (
        Index("ix_fee_schedule_rate_lookup", "fee_schedule_id", "procedure_code", "modifier"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fee_schedule_id: Mapped[int] = mapped_column(ForeignKey("fee_schedule.id"))
    procedure_code: Mapped[str] = mapped_column(String(12))
    modifier: Mapped[str] = mapped_column(String(2), default="")
    billing_class: Mapped[str] = mapped_column(String(16), default="")
    place_of_service: Mapped[str] = mapped_column(String(2), default="")
    unit: Mapped[str] = mapped_column(String(16), default="per_unit")
    amount_cents: Mapped[CentsColumn]


class Contract(Base):
    """An effective-dated agreement putting a provider (or a whole organization) in a network."""

    __tablename__ = "contract"

    id: Mapped[int] = mapped_column(primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("network.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    fee_schedule_id: Mapped[int | None] = mapped_column(ForeignKey("fee_schedule.id"))
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    arrangement: Mapped[str] = mapped_column(String(16), default="ffs")
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[Timestamp]

    network: Mapped[Network] = relationship()
    fee_schedule: Mapped[FeeSchedule | None] = relationship()
