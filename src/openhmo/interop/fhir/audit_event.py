"""The audit of reads of personal health data as FHIR AuditEvent (R4, DICOM-based codes).

One `phi_access` row is one AuditEvent: who (agent, with their network address), what
(entity: the resource read and the patient it is about), when (recorded), and why
(purposeOfEvent: treatment, payment, operations or the member's own access).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from openhmo.interop.fhir.common import coding, concept, reference

_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_ENTITY_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# HIPAA's purposes of use as HL7 v3 ActReason codes.
PURPOSE_CODES = {
    "treatment": ("TREAT", "treatment"),
    "payment": ("HPAYMT", "healthcare payment"),
    "operations": ("HOPERAT", "healthcare operations"),
    "member access": ("PATRQT", "patient requested"),
}
_SUBTYPES = {"read": "read", "search": "search-type", "create": "create", "operation": "operation"}


def audit_event(row: Any, member_number: str) -> dict[str, Any]:
    """An AuditEvent for one phi_access row (`row` has the PhiAccess columns)."""
    action = row.action or "read"
    recorded = row.accessed_at
    if recorded.tzinfo is None:  # SQLite hands back naive UTC
        recorded = recorded.replace(tzinfo=UTC)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"phi-{row.id}",
        "type": coding(_EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [coding(_INTERACTION, _SUBTYPES.get(action, "read"))],
        "action": "R" if action in ("read", "search") else "E",
        "recorded": recorded.isoformat(timespec="milliseconds"),
        "outcome": "0",
        "agent": [_agent(row)],
        "source": {"observer": {"display": "OpenHMO API"}},
        "entity": _entities(row, member_number),
    }
    purpose = PURPOSE_CODES.get(row.purpose)
    if purpose:
        event["purposeOfEvent"] = [concept(_PURPOSE, purpose[0], purpose[1])]
    return event


def _agent(row: Any) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": concept(_PARTICIPATION, "IRCP", "information recipient"),
        "who": {"display": row.actor},
        "requestor": True,
    }
    if row.source_address:
        agent["network"] = {"address": row.source_address, "type": "2"}  # 2: IP address
    return agent


def _entities(row: Any, member_number: str) -> list[dict[str, Any]]:
    patient = {
        "what": reference("Patient", member_number),
        "type": coding(_ENTITY_TYPE, "1", "Person"),
        "role": coding(_ENTITY_ROLE, "1", "Patient"),
    }
    if not row.resource_type or row.resource_type == "Patient":
        patient["description"] = row.what
        return [patient]
    read = {
        "what": reference(row.resource_type, row.resource_id),
        "type": coding(_ENTITY_TYPE, "2", "System Object"),
        "role": coding(_ENTITY_ROLE, "4", "Domain Resource"),
        "description": row.what,
    }
    return [patient, read]
