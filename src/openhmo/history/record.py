"""Write the change history and the access audit: one call per change, one per read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from openhmo.history.models import ChangeRecord, PhiAccess


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record_change(
    session: Session,
    *,
    actor: str,
    entity: str,
    entity_id: object,
    action: str,
    changes: dict[str, Any] | None = None,
    reason: str = "",
    member_id: int | None = None,
    coverage_id: int | None = None,
    effective_date: date | None = None,
) -> ChangeRecord:
    record = ChangeRecord(
        actor=actor,
        entity=entity,
        entity_id=str(entity_id),
        action=action,
        changes=_jsonable(changes or {}),
        reason=reason,
        member_id=member_id,
        coverage_id=coverage_id,
        effective_date=effective_date,
    )
    session.add(record)
    return record


def record_access(session: Session, *, actor: str, member_id: int, purpose: str, what: str) -> None:
    """Audit a read of a member's personal health data."""
    session.add(PhiAccess(actor=actor, member_id=member_id, purpose=purpose, what=what))
