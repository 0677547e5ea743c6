"""A PCP's referral as a FHIR R4 ServiceRequest, both ways.

In (POST /fhir/ServiceRequest): subject, the member (member number, as for every
resource here); requester, the referring PCP (NPI); performer[0], the specialist (NPI)
or performerType, a specialty (a NUCC taxonomy code or prefix); category, the service
category referred for (our service-category system; default `specialist_visit`);
reasonCode, ICD-10-CM diagnoses; quantityQuantity, the number of visits (a whole
number); occurrencePeriod, the window (start default today, end default the plan's
validity; occurrenceDateTime is a start). status and intent are not read: a POST is a
new referral request, and what becomes of it is the plan's rules' to say.

Out: id and identifier the referral number; status `active` (approved), `draft`
(requested: waiting for staff), `revoked` (denied), `completed` (expired or its visits
used up); our own state in an extension (REFERRAL_STATUS), the visits counted by claims
in another (VISITS_USED), and the reason of the last decision as a note (R4 has no
statusReason). category is "Patient referral" (SNOMED CT 3457005).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from openhmo.categories import ServiceCategory
from openhmo.interop.fhir.claim_response import instant
from openhmo.interop.fhir.common import (
    ICD10_SYSTEM,
    MEMBER_SYSTEM,
    NPI_SYSTEM,
    NUCC_SYSTEM,
    REFERRAL_SYSTEM,
    concept,
)
from openhmo.interop.fhir.reading import (
    ICD10_SYSTEMS,
    FhirInputError,
    Person,
    Request,
    codes,
    npi,
    person,
)

SNOMED = "http://snomed.info/sct"
SERVICE_CATEGORY_SYSTEM = "https://openhmo.org/fhir/CodeSystem/service-category"
REFERRAL_STATUS = "https://openhmo.org/fhir/StructureDefinition/referral-status"
VISITS_USED = "https://openhmo.org/fhir/StructureDefinition/referral-visits-used"
UCUM = "http://unitsofmeasure.org"

# Our referral states as ServiceRequest.status, and back (a search by FHIR status).
STATUS = {
    "requested": "draft",
    "approved": "active",
    "denied": "revoked",
    "expired": "completed",
    "exhausted": "completed",
}
OUR_STATUSES = {
    fhir: tuple(ours for ours, f in STATUS.items() if f == fhir) for fhir in set(STATUS.values())
}


@dataclass
class ReferralAsk:
    """What a ServiceRequest asks for; `defects` are refused once the member is known."""

    patient: Person
    requester_npi: str | None
    specialist_npi: str | None
    specialty: str | None
    category: str
    diagnoses: list[str]
    visits: int | None
    valid_from: date | None
    valid_to: date | None
    paths: dict[str, str]
    defects: list[FhirInputError] = field(default_factory=list)


def _day(value: Any, path: str, defects: list[FhirInputError]) -> date | None:
    if value is None:
        return None
    if len(str(value)) < 10:
        defects.append(FhirInputError(f"a referral's dates need a day, not {value!r}", path))
        return None
    return date.fromisoformat(str(value)[:10])


def _visits(resource: dict, root: str, defects: list[FhirInputError]) -> int | None:
    quantity = resource.get("quantityQuantity")
    if quantity is None:
        if "quantityRatio" in resource or "quantityRange" in resource:
            defects.append(
                FhirInputError("the visits are a quantityQuantity", f"{root}.quantityQuantity")
            )
        return None
    value = quantity.get("value")
    if value is None or Decimal(str(value)) != Decimal(str(value)).to_integral_value():
        defects.append(
            FhirInputError(
                f"the visits are a whole number, not {value!r}", f"{root}.quantityQuantity.value"
            )
        )
        return None
    return int(Decimal(str(value)))


def read_referral(request: Request) -> ReferralAsk:
    resource, root = request.resource, request.root
    defects: list[FhirInputError] = []
    performers = resource.get("performer") or []
    paths = {
        "subject": f"{root}.subject",
        "requester": f"{root}.requester",
        "performer": f"{root}.performer[0]" if performers else f"{root}.performer",
        "performerType": f"{root}.performerType",
        "reasonCode": f"{root}.reasonCode",
        "quantity": f"{root}.quantityQuantity",
        "occurrence": f"{root}.occurrencePeriod",
        "category": f"{root}.category",
    }
    requester = specialist = None
    try:
        requester = npi(request, resource.get("requester"), paths["requester"])
    except FhirInputError as exc:
        defects.append(exc)
    try:
        specialist = npi(request, performers[0], paths["performer"]) if performers else None
    except FhirInputError as exc:
        defects.append(exc)
    categories = [
        c
        for concept_ in resource.get("category") or []
        for c in codes(concept_, (SERVICE_CATEGORY_SYSTEM,))
    ]
    category = categories[0] if categories else ServiceCategory.SPECIALIST_VISIT.value
    if category not in {c.value for c in ServiceCategory}:
        defects.append(
            FhirInputError(f"{category!r} is not a service category of ours", paths["category"])
        )
        category = ServiceCategory.SPECIALIST_VISIT.value
    specialties = codes(resource.get("performerType"), (NUCC_SYSTEM,))
    diagnoses = [
        c for reason in resource.get("reasonCode") or [] for c in codes(reason, ICD10_SYSTEMS)
    ]
    period = resource.get("occurrencePeriod") or {}
    start = period.get("start") or resource.get("occurrenceDateTime")
    if "occurrenceTiming" in resource:
        defects.append(
            FhirInputError("a referral's window is an occurrencePeriod", f"{root}.occurrenceTiming")
        )
    return ReferralAsk(
        patient=person(request, resource.get("subject")),
        requester_npi=requester,
        specialist_npi=specialist,
        specialty=specialties[0] if specialties else None,
        category=category,
        diagnoses=diagnoses,
        visits=_visits(resource, root, defects),
        valid_from=_day(start, paths["occurrence"], defects),
        valid_to=_day(period.get("end"), paths["occurrence"], defects),
        paths=paths,
        defects=defects,
    )


# Where a refusal of the referral rules (ReferralError.message_id) points in the request.
REFUSAL_PATHS = {
    "referral.refused.not_covered": "subject",
    "referral.refused.not_needed": "category",
    "referral.refused.not_pcp": "requester",
    "referral.refused.no_specialist": "performer",
    "referral.refused.specialist_not_in_network": "performer",
    "referral.refused.unknown_specialty": "performerType",
    "referral.refused.no_diagnosis": "reasonCode",
    "referral.refused.invalid_diagnosis": "reasonCode",
    "referral.refused.no_visits": "quantity",
    "referral.refused.dates": "occurrence",
}


@dataclass(frozen=True)
class Party:
    """A provider as a referral names it."""

    npi: str
    name: str
    individual: bool

    def reference(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": f"Practitioner/{self.npi}"} if self.individual else {}
        out["identifier"] = {"system": NPI_SYSTEM, "value": self.npi}
        out["display"] = self.name
        return out


def _dotted(code: str) -> str:
    return code if len(code) <= 3 or "." in code else f"{code[:3]}.{code[3:]}"


def service_request(
    referral: Any,
    *,
    member_number: str,
    requester: Party,
    specialist: Party | None,
    specialty_name: str | None,
    category_name: str,
    used: int | None,
) -> dict[str, Any]:
    """A referral row as a ServiceRequest (the providers and names fetched by the shell)."""
    extension: list[dict[str, Any]] = [{"url": REFERRAL_STATUS, "valueCode": referral.status}]
    if used is not None:
        extension.append({"url": VISITS_USED, "valueUnsignedInt": used})
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": referral.referral_number,
        "extension": extension,
        "identifier": [{"system": REFERRAL_SYSTEM, "value": referral.referral_number}],
        "status": STATUS[referral.status],
        "intent": "order",
        "category": [concept(SNOMED, "3457005", "Patient referral")],
        "code": concept(SERVICE_CATEGORY_SYSTEM, referral.category, text=category_name),
        "subject": {
            "reference": f"Patient/{member_number}",
            "identifier": {"system": MEMBER_SYSTEM, "value": member_number},
        },
        "occurrencePeriod": {
            "start": referral.valid_from.isoformat(),
            "end": referral.valid_to.isoformat(),
        },
        "authoredOn": instant(referral.created_at),
        "requester": requester.reference(),
    }
    if referral.specialty_prefix:
        resource["performerType"] = concept(
            NUCC_SYSTEM, referral.specialty_prefix, text=specialty_name
        )
    if specialist is not None:
        resource["performer"] = [specialist.reference()]
    if referral.diagnosis_codes:
        resource["reasonCode"] = [
            concept(ICD10_SYSTEM, _dotted(code)) for code in referral.diagnosis_codes
        ]
    resource["quantityQuantity"] = {
        "value": referral.visits,
        "unit": "visits",
        "system": UCUM,
        "code": "{visit}",
    }
    if referral.status_reason:
        note: dict[str, Any] = {"text": referral.status_reason}
        if referral.decided_by:
            note["authorString"] = referral.decided_by
        if referral.decided_at is not None:
            note["time"] = instant(referral.decided_at)
        resource["note"] = [note]
    return resource
