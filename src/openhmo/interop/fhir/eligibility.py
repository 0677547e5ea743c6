"""CoverageEligibilityRequest in, CoverageEligibilityResponse out (FHIR R4), as a 270/271 does.

In: the patient by member number (our identifier on the reference or on the Patient it
points to, or `Patient/<member number>`; else the focal insurance's
`Coverage/<coverage>-<member number>`) and the birth date of a Patient the request
carries (contained or in a Bundle); servicedDate or servicedPeriod.start (default:
today); the benefit categories asked (item.category: X12 service type codes, in
https://x12.org/codes/service-type-codes or HL7's ex-benefitcategory, whose codes are
the same; none asked, or one we do not price, is answered with all of them, as a 271
answers 30); purpose (validation: coverage only; benefits and auth-requirements: the
benefits too).

Out, from `interop.x12.lookup270.benefits_of` (the plan design and the family's
accumulators; nothing re-derived here): insurance.coverage (Coverage/<coverage>-<member
number>), inforce, benefitPeriod (the plan year); an item per deductible and
out-of-pocket maximum (category 30, or 88 for a separate drug deductible; network in/out;
unit individual/family; term annual; allowedMoney the plan year's amount, usedMoney what
has counted towards it), and per service category asked its copay (`copay`), coinsurance
(`copay-percent`), visit or day limit (`visit`), whether it is covered (`excluded`), and
`authorizationRequired` (a referral or prior authorization), with the plan's own words
for it (the SBC phrase) as description. The member's PCP is an item of its own: category
98 (professional physician visit, office), network in, `provider` the PCP (chosen over an
extension: item.provider is R4's "practitioner who is eligible for the provision of the
service", which is what an HMO's PCP is).

Someone we cannot match (no such member number, a birth date that differs or is
missing where one is needed) gets outcome `error` and one `error`, the same for each, so
an answer never tells whether a member number exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openhmo.config import PlanIdentity
from openhmo.i18n import translate
from openhmo.interop.fhir.claim_response import instant, insurer
from openhmo.interop.fhir.common import MEMBER_SYSTEM, NPI_SYSTEM, concept, money
from openhmo.interop.fhir.reading import (
    Person,
    Request,
    codes,
    identifier_value,
    literal_id,
    person,
    service_day,
)
from openhmo.interop.x12.answer271 import Benefits

SERVICE_TYPE = "https://x12.org/codes/service-type-codes"
SERVICE_TYPES = (
    SERVICE_TYPE,
    "https://codesystem.x12.org/005010/1365",
    "http://terminology.hl7.org/CodeSystem/ex-benefitcategory",
)
NETWORK = "http://terminology.hl7.org/CodeSystem/benefit-network"
UNIT = "http://terminology.hl7.org/CodeSystem/benefit-unit"
TERM = "http://terminology.hl7.org/CodeSystem/benefit-term"
BENEFIT_TYPE = "http://terminology.hl7.org/CodeSystem/benefit-type"
OUR_BENEFIT_TYPE = "https://openhmo.org/fhir/CodeSystem/benefit-type"
ELIGIBILITY_ERROR = "https://openhmo.org/fhir/CodeSystem/eligibility-error"
PURPOSES = ("auth-requirements", "benefits", "discovery", "validation")

_NETWORKS = {"Y": ("in", "In Network"), "N": ("out", "Out of Network")}
_UNITS = {"IND": ("individual", "Individual"), "FAM": ("family", "Family")}
_TERMS = {"23": "annual", "22": "annual", "32": "lifetime"}


@dataclass(frozen=True)
class EligibilityAsk:
    """What a CoverageEligibilityRequest asks."""

    patient: Person
    day: date | None  # None: today
    categories: tuple[str, ...]  # X12 service type codes asked
    purposes: tuple[str, ...]
    identifier: dict[str, Any] | None  # the request's first identifier, echoed


def read_request(request: Request) -> EligibilityAsk:
    resource, root = request.resource, request.root
    patient = person(request, resource.get("patient"))
    if patient.member_number is None:
        for ins in sorted(resource.get("insurance") or [], key=lambda i: not i.get("focal")):
            ref = ins.get("coverage") or {}
            found = request.resolve(ref) or {}
            number = identifier_value(found.get("identifier"), (MEMBER_SYSTEM,))
            coverage_id = literal_id(ref, "Coverage") or ""
            head, _, tail = coverage_id.partition("-")
            if number is None and head.isdigit() and tail:
                number = tail
            if number:
                patient = Person(number.upper(), patient.birth_date, patient.display)
                break
    day = resource.get("servicedDate") or (resource.get("servicedPeriod") or {}).get("start")
    served = service_day(day, f"{root}.serviced") if day is not None else None
    asked = tuple(
        code
        for item in resource.get("item") or []
        for code in codes(item.get("category"), SERVICE_TYPES)
    )
    identifiers = resource.get("identifier") or []
    return EligibilityAsk(
        patient,
        served,
        asked,
        tuple(p for p in resource.get("purpose", []) if p in PURPOSES),
        identifiers[0] if identifiers else None,
    )


@dataclass(frozen=True)
class Found:
    """Our member and their coverage on the day asked, as the shell read them."""

    member_number: str
    name: str
    day: date
    status: str  # enrollment.eligibility's: active, grace_period, terminated, ...
    grace_month: int | None
    coverage_id: str | None  # Coverage/<this>
    plan_name: str | None
    period: tuple[date, date] | None  # the plan year of the day
    benefits: Benefits | None  # None when not covered
    wanted: frozenset[str]  # service types to answer (answer271.asked_service_types)
    names: dict[str, str]  # service type -> the category's name, in the caller's language
    described: dict[tuple[str, str], str]  # (service type, network) -> the plan's own words

    @property
    def covered(self) -> bool:
        return self.status in ("active", "grace_period")


def _stc(code: str, name: str | None = None) -> dict[str, Any]:
    display = "Health Benefit Plan Coverage" if code == "30" else None
    return concept(SERVICE_TYPE, code, display, text=name)


def _limit_items(benefits: Benefits) -> list[dict[str, Any]]:
    out = []
    for limit in benefits.limits:
        kind = (
            concept(BENEFIT_TYPE, "deductible", "Deductible")
            if limit.kind == "C"
            else concept(OUR_BENEFIT_TYPE, "out-of-pocket-maximum", "Out-of-pocket maximum")
        )
        item: dict[str, Any] = {"category": _stc(limit.service_type)}
        if limit.network in _NETWORKS:
            item["network"] = concept(NETWORK, *_NETWORKS[limit.network])
        item["unit"] = concept(UNIT, *_UNITS[limit.level])
        item["term"] = concept(TERM, "annual", "Annual")
        used = limit.amount - max(0, limit.remaining)
        item["benefit"] = [
            {"type": kind, "allowedMoney": money(limit.amount), "usedMoney": money(used)}
        ]
        out.append(item)
    return out


def _percent(value: Decimal) -> dict[str, Any]:
    if value == value.to_integral_value():
        return {"allowedUnsignedInt": int(value)}
    return {"allowedString": f"{value:f}%"}


# (lines, wanted, names, described) -> the items they make. Every answer of one plan year
# in one language has the same lines, names and words (the readers keep one object of
# each), so the key holds those objects themselves, compared by identity; bounded. The
# items are shared between answers, which are only ever serialized, never changed.
_items: dict[tuple[int, frozenset[str], int, int], tuple[tuple, list[dict[str, Any]]]] = {}
_ITEMS_KEPT = 512


def _cost_items(found: Found) -> list[dict[str, Any]]:
    benefits = found.benefits
    key = (id(benefits.lines), found.wanted, id(found.names), id(found.described))
    kept = _items.get(key)
    objects = (benefits.lines, found.names, found.described)
    if kept is not None and all(a is b for a, b in zip(kept[0], objects, strict=True)):
        return list(kept[1])
    items = _made_cost_items(found)
    if len(_items) >= _ITEMS_KEPT:
        _items.clear()
    _items[key] = (objects, items)
    return list(items)


def _made_cost_items(found: Found) -> list[dict[str, Any]]:
    out = []
    for line in found.benefits.lines:
        if line.service_type not in found.wanted:
            continue
        item: dict[str, Any] = {
            "category": _stc(line.service_type, found.names.get(line.service_type))
        }
        if line.network in _NETWORKS:
            item["network"] = concept(NETWORK, *_NETWORKS[line.network])
        item["unit"] = concept(UNIT, *_UNITS["IND"])
        if not line.covered:
            item["excluded"] = True
        words = found.described.get((line.service_type, line.network))
        if words:
            item["description"] = words
        benefit = []
        if line.copay is not None:
            benefit.append(
                {
                    "type": concept(BENEFIT_TYPE, "copay", "Copayment per service"),
                    "allowedMoney": money(line.copay),
                }
            )
        if line.coinsurance is not None:
            benefit.append(
                {
                    "type": concept(BENEFIT_TYPE, "copay-percent", "Copayment Percent per service"),
                    **_percent(line.coinsurance),
                }
            )
        if line.visit_limit is not None:
            unit, count, per = line.visit_limit
            kind = (
                concept(BENEFIT_TYPE, "visit", "Visit")
                if unit == "VS"
                else concept(OUR_BENEFIT_TYPE, "days", "Days")
            )
            benefit.append({"type": kind, "allowedUnsignedInt": count})
            if per in _TERMS:
                item["term"] = concept(TERM, _TERMS[per])
        if benefit:
            item["benefit"] = benefit
        if line.covered:
            item["authorizationRequired"] = line.authorization
        out.append(item)
    return out


def _pcp_item(benefits: Benefits) -> dict[str, Any]:
    pcp = benefits.pcp
    name = pcp.last_name if pcp.organization else f"{pcp.first_name} {pcp.last_name}".strip()
    kind = "Organization" if pcp.organization else "Practitioner"
    provider: dict[str, Any] = {
        "identifier": {"system": NPI_SYSTEM, "value": pcp.npi},
        "display": name,
    }
    if kind == "Practitioner":
        provider = {"reference": f"Practitioner/{pcp.npi}", **provider}
    return {
        "category": _stc("98"),
        "provider": provider,
        "network": concept(NETWORK, *_NETWORKS["Y"]),
        "name": "PCP",
    }


def _disposition(found: Found, language: str) -> str:
    day = found.day.isoformat()
    if found.status == "active":
        return translate(
            "eligibility.active", language, name=found.name, plan=found.plan_name, date=day
        )
    if found.status == "grace_period":
        return translate(
            "eligibility.grace_period",
            language,
            name=found.name,
            plan=found.plan_name,
            date=day,
            month=found.grace_month,
        )
    return translate("eligibility.not_covered", language, name=found.name, date=day)


def eligibility_response(
    ask: EligibilityAsk,
    found: Found | None,
    *,
    response_id: str,
    day: date,
    identity: PlanIdentity,
    created: datetime,
    language: str,
    birth_date_missing: bool = False,
) -> dict[str, Any]:
    """The answer: `found` is our member (covered or not), None when no one matches."""
    resource: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "id": response_id,
        "status": "active",
        "purpose": list(ask.purposes) or ["validation"],
    }
    if found is not None:
        resource["patient"] = {
            "reference": f"Patient/{found.member_number}",
            "identifier": {"system": MEMBER_SYSTEM, "value": found.member_number},
        }
    elif ask.patient.member_number:
        resource["patient"] = {
            "identifier": {"system": MEMBER_SYSTEM, "value": ask.patient.member_number}
        }
    else:
        resource["patient"] = {"display": ask.patient.display or "patient not identified"}
    resource["servicedDate"] = day.isoformat()
    resource["created"] = instant(created)
    resource["request"] = (
        {"identifier": ask.identifier}
        if ask.identifier
        else {"display": "CoverageEligibilityRequest"}
    )
    resource["outcome"] = "complete" if found is not None else "error"
    if found is None:
        message = "eligibility.birth_date_needed" if birth_date_missing else "eligibility.not_found"
        resource["disposition"] = translate(message, language)
        resource["insurer"] = insurer(identity)
        code = "birth-date-needed" if birth_date_missing else "not-found"
        resource["error"] = [
            {"code": concept(ELIGIBILITY_ERROR, code, text=resource["disposition"])}
        ]
        return resource
    resource["disposition"] = _disposition(found, language)
    resource["insurer"] = insurer(identity)
    if found.coverage_id is None:
        return resource
    insurance: dict[str, Any] = {
        "coverage": {"reference": f"Coverage/{found.coverage_id}"},
        "inforce": found.covered,
    }
    if found.period is not None and found.covered:
        insurance["benefitPeriod"] = {
            "start": found.period[0].isoformat(),
            "end": found.period[1].isoformat(),
        }
    wants_benefits = {"benefits", "auth-requirements"} & set(ask.purposes)
    if found.covered and found.benefits is not None and wants_benefits:
        items = []
        if found.benefits.pcp is not None:
            items.append(_pcp_item(found.benefits))
        items += _limit_items(found.benefits) + _cost_items(found)
        if items:
            insurance["item"] = items
    resource["insurance"] = [insurance]
    return resource
