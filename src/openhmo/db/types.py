"""Column types shared by the models: money in cents, UTC timestamps, JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from sqlalchemy import JSON, BigInteger, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import mapped_column

# Money is integer cents, always; BigInteger because a plan's yearly totals pass 2**31 cents.
CentsColumn = Annotated[int, mapped_column(BigInteger, nullable=False)]
Json = JSON().with_variant(JSONB(), "postgresql")
Code = Annotated[str, mapped_column(String(32))]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_aware(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime: SQLite gives them back naive."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Timestamp = Annotated[
    datetime, mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
]
