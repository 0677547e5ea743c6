"""Patient Access (CMS-9115-F) per CARIN Blue Button STU 2.0.0: the member as C4BB-Patient,
each of their coverage spans as C4BB-Coverage, and the plan itself as a payer Organization.

Ids: a Patient is the member number (e.g. OHM000000001-00); a Coverage is
"<coverage.id>-<member number>", the member's one span under the subscriber's contract
(enrollment never opens a second span for the same member under the same coverage:
a reinstatement reopens it, a plan change is a new coverage). The id names both the
contract and the person, so it stays the same for as long as the span exists.

The payer has no row of its own (it is the deployment, config.plan_identity), so it is
a contained Organization "#payer" in every resource that names it: such resources
stand alone, and validate, without a payer endpoint.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from openhmo.config import PlanIdentity
from openhmo.interop.fhir.common import MEMBER_SYSTEM, PAYER_ID_SYSTEM, coding, concept, reference

CARIN = "http://hl7.org/fhir/us/carin-bb"
CARIN_VERSION = "2.0.0"
PATIENT_PROFILE = f"{CARIN}/StructureDefinition/C4BB-Patient|{CARIN_VERSION}"
COVERAGE_PROFILE = f"{CARIN}/StructureDefinition/C4BB-Coverage|{CARIN_VERSION}"
ORGANIZATION_PROFILE = f"{CARIN}/StructureDefinition/C4BB-Organization|{CARIN_VERSION}"

IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
C4BB_IDENTIFIER_TYPE = f"{CARIN}/CodeSystem/C4BBIdentifierType"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
BCP47 = "urn:ietf:bcp:47"
PAYER_REF = "#payer"

_GENDER = {"F": "female", "M": "male", "U": "unknown"}
_LANGUAGE = {"en": "English", "ja": "Japanese", "sv": "Swedish"}
# HL7 v3 ActCode's managed-care policy codes; EPO has none of its own (it is managed care)
# and indemnity is the plain health insurance plan policy.
_POLICY = {
    "HMO": ("HMO", "health maintenance organization policy"),
    "POS": ("POS", "point of service policy"),
    "PPO": ("PPO", "preferred provider organization policy"),
    "EPO": ("MCPOL", "managed care policy"),
}
_HEALTH_PLAN = ("HIP", "health insurance plan policy")
_RELATIONSHIP = {"self": "self", "spouse": "spouse", "child": "child", "other": "other"}


def instant(moment: datetime) -> str:
    """A FHIR instant; SQLite gives back naive datetimes, which are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def meta(profile: str, last_updated: datetime) -> dict[str, Any]:
    return {"lastUpdated": instant(last_updated), "profile": [profile]}


def member_identifier(member_number: str) -> dict[str, Any]:
    return {
        "type": concept(IDENTIFIER_TYPE, "MB", "Member Number"),
        "system": MEMBER_SYSTEM,
        "value": member_number,
    }


def payer_organization(identity: PlanIdentity) -> dict[str, Any]:
    """The plan as the payer (C4BB-Organization), to be contained as "#payer"."""
    street, city, state, zip_code = identity.address
    address: dict[str, Any] = {"city": city, "state": state, "postalCode": zip_code}
    address = {k: v for k, v in address.items() if v}
    if street:
        address["line"] = [street]
    return {
        "resourceType": "Organization",
        "id": PAYER_REF[1:],
        "meta": {"profile": [ORGANIZATION_PROFILE]},
        "identifier": [
            {
                "type": concept(C4BB_IDENTIFIER_TYPE, "payerid", "Payer ID"),
                "system": PAYER_ID_SYSTEM,
                "value": identity.payer_id,
            }
        ],
        "active": True,
        "type": [concept(ORGANIZATION_TYPE, "pay", "Payer")],
        "name": identity.name,
        "address": [address | {"country": "US"}],
    }


def payer_reference(identity: PlanIdentity) -> dict[str, str]:
    return {"reference": PAYER_REF, "display": identity.name}


def patient(member: Any, address: Any | None, last_updated: datetime) -> dict[str, Any]:
    """A member as C4BB-Patient; `address` is their current (or last) member_address row."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": member.member_number,
        "meta": meta(PATIENT_PROFILE, last_updated),
        "identifier": [member_identifier(member.member_number)],
        "name": [
            {
                "use": "official",
                "text": f"{member.first_name} {member.last_name}",
                "family": member.last_name,
                "given": [member.first_name],
            }
        ],
        "gender": _GENDER.get(member.sex, "unknown"),
        "birthDate": member.birth_date.isoformat(),
    }
    if address is not None:
        resource["address"] = [_address(address)]
    language = member.language or "en"
    resource["communication"] = [
        {
            "language": concept(BCP47, language, _LANGUAGE.get(language)),
            "preferred": True,
        }
    ]
    return resource


def _address(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "use": "home",
        "type": "physical",
        "line": [line for line in (row.line1, row.line2) if line],
        "city": row.city,
        "state": row.state,
        "postalCode": row.zip_code,
        "country": "US",
        "period": {"start": row.effective_from.isoformat()},
    }
    if row.effective_to is not None:
        out["period"]["end"] = row.effective_to.isoformat()
    return out


def coverage_id(coverage_row_id: int, member_number: str) -> str:
    return f"{coverage_row_id}-{member_number}"


def parse_coverage_id(resource_id: str) -> tuple[int, str] | None:
    """(coverage row id, member number) from a Coverage id, or None if it is not one of ours."""
    head, _, number = resource_id.partition("-")
    if not head.isdigit() or not number:
        return None
    return int(head), number


def coverage(
    *,
    span: Any,
    member: Any,
    subscriber_number: str,
    plan: Any,
    identity: PlanIdentity,
    today: date,
    last_updated: datetime,
) -> dict[str, Any]:
    """One member's span under a coverage (member_coverage row `span`) as C4BB-Coverage.

    Ended spans are "cancelled" (FHIR's status for a policy no longer in force); a span
    that begins later, or ends later, is "active".
    """
    ended = span.termination_date is not None and span.termination_date < today
    code, display = _POLICY.get(plan.plan_type, _HEALTH_PLAN)
    period = {"start": span.effective_date.isoformat()}
    if span.termination_date is not None:
        period["end"] = span.termination_date.isoformat()
    return {
        "resourceType": "Coverage",
        "id": coverage_id(span.coverage_id, member.member_number),
        "meta": meta(COVERAGE_PROFILE, last_updated),
        "contained": [payer_organization(identity)],
        "identifier": [member_identifier(member.member_number)],
        "status": "cancelled" if ended else "active",
        "type": {"coding": [coding(ACT_CODE, code, display)], "text": plan.plan_type},
        "subscriber": reference("Patient", subscriber_number),
        "subscriberId": subscriber_number,
        "beneficiary": reference("Patient", member.member_number, member.name),
        "relationship": concept(RELATIONSHIP, _RELATIONSHIP.get(member.relationship_code, "other")),
        "period": period,
        "payor": [payer_reference(identity)],
        "class": [
            {
                "type": concept(COVERAGE_CLASS, "plan", "Plan"),
                "value": plan.plan_key,
                "name": plan.name,
            }
        ],
    }
