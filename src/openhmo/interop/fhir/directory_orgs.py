"""The directory's organizations and plans as Plan-Net resources: who runs what.

Organization in three kinds: a provider organization (our `organization` rows,
"org-<id>", plannet-Organization), a network (`network` rows, "network-<key>",
plannet-Network, part of the payer) and the payer itself ("payer", from
config.plan_identity()); and InsurancePlan (plannet-InsurancePlan, id = plan key) from a
stored plan and its validated design. Pure functions, like directory.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from openhmo.config import PlanIdentity
from openhmo.interop.fhir.common import NPI_SYSTEM, PLAN_SYSTEM, TIN_SYSTEM, coding, money
from openhmo.interop.fhir.common import reference as ref
from openhmo.interop.fhir.directory import (
    PAYER_ID,
    address,
    meta,
    network_id,
    organization_id,
)
from openhmo.interop.fhir.directory_codes import PLANNET, taxonomy_of
from openhmo.network.models import Location, Network, Organization
from openhmo.plans.design import CoverageTier, PlanDesign, PlanType, TierName
from openhmo.plans.models import Plan
from openhmo.reference.geo import counties

ORG_TYPE_SYSTEM = f"{PLANNET}/CodeSystem/OrgTypeCS"
PRODUCT_TYPE_SYSTEM = f"{PLANNET}/CodeSystem/InsuranceProductTypeCS"
PLAN_TYPE_SYSTEM = f"{PLANNET}/CodeSystem/InsurancePlanTypeCS"
NETWORK_SYSTEM = "https://openhmo.org/fhir/sid/network-key"
PAYER_SYSTEM = "https://openhmo.org/fhir/sid/payer-id"

_ORG_TYPES = {
    "fac": "Facility",
    "prvgrp": "Provider Group",
    "payer": "Payer",
    "ntwk": "Network",
}
# NUCC groupings of places rather than of people: their organizations are facilities.
FACILITY_GROUPINGS = {
    "Hospitals",
    "Hospital Units",
    "Ambulatory Health Care Facilities",
    "Laboratories",
    "Nursing & Custodial Care Facilities",
    "Residential Treatment Facilities",
    "Respite Care Facility",
    "Agencies",
    "Suppliers",
    "Transportation Services",
}
_PRODUCT_TYPES = {
    PlanType.HMO: ("commhmo", "Commercial HMO"),
    PlanType.EPO: ("commepo", "Commercial EPO"),
    PlanType.POS: ("commpos", "Commercial POS"),
    PlanType.PPO: ("commppo", "Commercial PPO"),
}
_METAL_LEVELS = {
    "platinum": "Platinum-QHP",
    "gold": "Gold-QHP",
    "silver": "Silver-QHP",
    "bronze": "Bronze-QHP",
    "catastrophic": "Catastrophic-QHP",
}
_TIER_WORDS = {
    CoverageTier.SELF_ONLY: "self only",
    CoverageTier.SELF_PLUS_SPOUSE: "self plus spouse",
    CoverageTier.SELF_PLUS_CHILDREN: "self plus children",
    CoverageTier.FAMILY: "family",
}
_NETWORK_TIER_WORDS = {
    TierName.IN_NETWORK: "in-network",
    TierName.OUT_OF_NETWORK: "out-of-network",
    TierName.ALL_PROVIDERS: "all providers",
}


def org_type(code: str) -> list[dict[str, Any]]:
    return [{"coding": [coding(ORG_TYPE_SYSTEM, code, _ORG_TYPES[code])]}]


def provider_org_type(org: Organization) -> str:
    """'fac' for a hospital, clinic, lab or other place; 'prvgrp' for a practice."""
    known = taxonomy_of(org.taxonomy_code)
    if org.kind in ("facility", "hospital") or (known and known.grouping in FACILITY_GROUPINGS):
        return "fac"
    return "prvgrp"


def provider_organization(
    org: Organization, *, places: Sequence[Location], updated: datetime | None
) -> dict[str, Any]:
    """plannet-Organization of a practice or facility; its addresses are its locations'.

    The TIN is not published: a solo practice's TIN may be its owner's SSN.
    """
    out: dict[str, Any] = {
        "resourceType": "Organization",
        "id": organization_id(org.id),
        "meta": meta("Organization", updated),
        "active": True,
        "type": org_type(provider_org_type(org)),
        "name": org.name,
    }
    if org.npi:
        out["identifier"] = [{"use": "official", "system": NPI_SYSTEM, "value": org.npi}]
    if places:
        out["address"] = [address(place) for place in places]
    return out


def network_organization(network: Network, *, updated: datetime | None) -> dict[str, Any]:
    """plannet-Network: one of the plan's provider networks, managed by the payer."""
    return {
        "resourceType": "Organization",
        "id": network_id(network.key),
        "meta": meta("Network", updated),
        "identifier": [{"system": NETWORK_SYSTEM, "value": network.key}],
        "active": True,
        "type": org_type("ntwk"),
        "name": network.name,
        "partOf": ref("Organization", PAYER_ID),
    }


def payer_organization(identity: PlanIdentity) -> dict[str, Any]:
    """plannet-Organization of the plan itself: owner of the plans and the networks."""
    street, city, state, zip_code = identity.address
    place = {"use": "work", "type": "physical", "line": [street], "city": city}
    place |= {"state": state, "postalCode": zip_code, "country": "US"}
    return {
        "resourceType": "Organization",
        "id": PAYER_ID,
        "meta": meta("Organization", None),
        "identifier": [
            {"system": PAYER_SYSTEM, "value": identity.payer_id},
            {"system": TIN_SYSTEM, "value": identity.ein},
        ],
        "active": True,
        "type": org_type("payer"),
        "name": identity.name,
        "address": [{k: v for k, v in place.items() if v}],
    }


def product_type(plan_type: str) -> dict[str, Any]:
    known = _PRODUCT_TYPES.get(PlanType(plan_type))
    if known is None:
        return {"text": plan_type}
    return {"coding": [coding(PRODUCT_TYPE_SYSTEM, *known)], "text": plan_type}


def product_type_codes(code: str) -> list[str]:
    """Our plan types (plan.plan_type) whose product type is the InsuranceProductTypeCS `code`."""
    return [t.value for t, (c, _) in _PRODUCT_TYPES.items() if c == code]


def _area(fips: str | None = None, zip_code: str | None = None) -> dict[str, Any]:
    if fips is not None:
        name, state = counties().get(fips, (fips, ""))
        where = {"district": name, "state": state, "country": "US"}
        return {
            "resourceType": "Location",
            "id": f"county-{fips}",
            "status": "active",
            "name": f"{name}, {state}" if state else name,
            "address": {k: v for k, v in where.items() if v},
        }
    return {
        "resourceType": "Location",
        "id": f"zip-{zip_code}",
        "status": "active",
        "name": f"ZIP {zip_code}",
        "address": {"postalCode": zip_code, "country": "US"},
    }


def _costs(design: PlanDesign, day: date) -> list[dict[str, Any]]:
    """Premiums, deductibles and out-of-pocket maximums of the plan year in force on `day`
    (else the next one, else the last)."""
    year = design.plan_year_on(day)
    if year is None:
        later = [y for y in design.plan_years if y.starts > day]
        year = later[0] if later else design.plan_years[-1]
    span = f"plan year {year.year} ({year.starts.isoformat()} to {year.ends.isoformat()})"
    costs = []
    for tier, cents in year.premiums.items():
        costs.append(
            {
                "type": {"text": f"Monthly premium, {_TIER_WORDS[tier]}"},
                "cost": money(cents),
                "comment": span,
            }
        )
    for tier_name, tier in year.tiers.items():
        words = _NETWORK_TIER_WORDS[tier_name]
        for what, amount in (
            (f"Deductible, {words}, individual", tier.deductible.individual),
            (f"Deductible, {words}, family", tier.deductible.family),
            (f"Out-of-pocket maximum, {words}, individual", tier.out_of_pocket_max.individual),
            (f"Out-of-pocket maximum, {words}, family", tier.out_of_pocket_max.family),
        ):
            costs.append({"type": {"text": what}, "cost": money(amount), "comment": span})
    return costs


def insurance_plan(
    plan: Plan, design: PlanDesign, *, today: date, updated: datetime | None
) -> dict[str, Any]:
    """plannet-InsurancePlan of a stored plan: its product type, networks, area and costs.

    A plan without a network (indemnity) cannot meet Plan-Net's network-or-plan-Network
    invariant, and a plan whose last year has ended is not 'active' as Plan-Net requires:
    those are served as plain R4 InsurancePlans, without claiming the profile.
    """
    ends = max(y.ends for y in design.plan_years)
    status = "active" if ends >= today else "retired"
    networks = [ref("Organization", network_id(plan.network_key))] if plan.network_key else []
    identifiers = [{"system": PLAN_SYSTEM, "value": plan.plan_key}]
    if plan.hios_plan_id:
        identifiers.append({"type": {"text": "HIOS plan ID"}, "value": plan.hios_plan_id})
    profiled = bool(networks) and status == "active"
    out: dict[str, Any] = {
        "resourceType": "InsurancePlan",
        "id": plan.plan_key,
        "meta": meta("InsurancePlan" if profiled else None, updated),
        "identifier": identifiers,
        "status": status,
        "type": [product_type(plan.plan_type)],
        "name": plan.name,
        "period": {
            "start": min(y.starts for y in design.plan_years).isoformat(),
            "end": ends.isoformat(),
        },
        "ownedBy": ref("Organization", PAYER_ID),
        "administeredBy": ref("Organization", PAYER_ID),
    }
    areas = [_area(fips=f) for f in design.service_area.counties]
    areas += [_area(zip_code=z) for z in design.service_area.zip_codes]
    if areas:
        out["contained"] = areas
        out["coverageArea"] = [{"reference": f"#{a['id']}", "display": a["name"]} for a in areas]
    if networks:
        out["network"] = networks
    cost_plan: dict[str, Any] = {"generalCost": _costs(design, today)}
    metal = (design.metal_level or "").lower()
    if metal in _METAL_LEVELS:
        cost_plan["type"] = {"coding": [coding(PLAN_TYPE_SYSTEM, metal, _METAL_LEVELS[metal])]}
    if networks:
        cost_plan["network"] = networks
    out["plan"] = [cost_plan]
    if not out["meta"]:
        del out["meta"]
    return out
