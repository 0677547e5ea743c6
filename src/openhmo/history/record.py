"""Write the change history and the access audit: one call per change, one per read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from openhmo.db.types import utcnow
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


def record_changes(session: Session, changes: list[dict[str, Any]]) -> None:
    """Many changes in one statement (a batch run writes thousands): each dict holds the
    keyword arguments of `record_change`."""
    if not changes:
        return
    now = utcnow()
    rows = [
        {
            "occurred_at": now,
            "actor": c["actor"],
            "entity": c["entity"],
            "entity_id": str(c["entity_id"]),
            "action": c["action"],
            "changes": _jsonable(c.get("changes") or {}),
            "reason": c.get("reason", ""),
            "member_id": c.get("member_id"),
            "coverage_id": c.get("coverage_id"),
            "effective_date": c.get("effective_date"),
        }
        for c in changes
    ]
    session.execute(insert(ChangeRecord.__table__), rows)


def record_access(session: Session, *, actor: str, member_id: int, purpose: str, what: str) -> None:
    """Audit a read of a member's personal health data."""
    session.add(PhiAccess(actor=actor, member_id=member_id, purpose=purpose, what=what))
