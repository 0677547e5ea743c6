"""The audit of reads of personal health data: one row per member whose data a call showed.

Rows go to `phi_access` (history.models), in the same transaction as the read, so no
data leaves without its record; staff read them back as FHIR AuditEvent.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from openhmo.access.visibility import Caller
from openhmo.db.types import utcnow
from openhmo.history.models import PhiAccess

# Why each role reads (HIPAA's treatment, payment and operations; a member's own access).
PURPOSES = {
    "member": "member access",
    "provider": "treatment",
    "staff": "operations",
    "system": "payment",
}


# Built once, as it is used on every read of personal health data.
_INSERT = insert(PhiAccess.__table__)


def record_reads(
    session: Session,
    caller: Caller,
    reads: Iterable[tuple[int, str, str]],
    *,
    action: str,
    what: str,
) -> int:
    """Audit reads: (member id, resource type, resource id) each; returns rows written."""
    now = utcnow()
    # An app a member connected reads in the member's name: the audit says which app
    # (the column holds 120 characters).
    actor = f"{caller.username} via app {caller.app}"[:120] if caller.app else caller.username
    seen: set[tuple[int, str, str]] = set()
    rows = []
    for member_id, resource_type, resource_id in reads:
        key = (member_id, resource_type, resource_id)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "accessed_at": now,
                "actor": actor,
                "member_id": member_id,
                "purpose": PURPOSES.get(caller.role, caller.role),
                "what": what[:200],
                "source_address": caller.address[:64] or None,
                "action": action,
                "resource_type": resource_type,
                "resource_id": str(resource_id)[:64],
            }
        )
    if rows:
        # A member added in this transaction must be written before the row naming them.
        session.flush()
        session.connection().execute(_INSERT, rows)
    return len(rows)
