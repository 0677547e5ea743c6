"""Tables that are only ever appended to: the change history and the access audit."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openhmo.db import Base
from openhmo.db.types import Json, Timestamp


class ChangeRecord(Base):
    """One change to the plan's records: who made it, when, to what, and why.

    Rows are never updated or deleted; the state of a record at any time can be
    read back from them.
    """

    __tablename__ = "change_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[Timestamp]
    actor: Mapped[str] = mapped_column(String(120))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    coverage_id: Mapped[int | None] = mapped_column(ForeignKey("coverage.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    changes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    effective_date: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_change_history_entity", "entity", "entity_id"),)


class PhiAccess(Base):
    """A read of a member's personal health data: by whom, of whom, for what."""

    __tablename__ = "phi_access"

    id: Mapped[int] = mapped_column(primary_key=True)
    accessed_at: Mapped[Timestamp]
    actor: Mapped[str] = mapped_column(String(120))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(120))
    what: Mapped[str] = mapped_column(String(200))
    # Where the read came from and what it touched (the API's reads; null for older rows).
    source_address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(16))
    resource_type: Mapped[str | None] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index("ix_phi_access_accessed_at", "accessed_at"),)
