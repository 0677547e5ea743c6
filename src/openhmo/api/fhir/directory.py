"""The public provider directory (Da Vinci PDex Plan-Net STU 1.1): read and search of
Practitioner, PractitionerRole, Location, HealthcareService, Organization (provider
organizations, networks, the payer) and InsurancePlan.

No token is needed (a good one is accepted; a bad one is refused by the router), and
nothing here names a member, so nothing is audited. Searches are strict: an unknown
parameter is a 400 unless the client sends `Prefer: handling=lenient`
(directory_params). Network membership is as of the day of the request.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select, text

from openhmo.api.deps import DB
from openhmo.api.errors import ApiError
from openhmo.api.fhir import directory_pages as pages
from openhmo.api.fhir import directory_params as params
from openhmo.api.fhir.capabilities import ResourceSupport, SearchParam, declare
from openhmo.api.fhir.directory_plans import plans, search_organizations, search_plans
from openhmo.api.fhir.directory_search import (
    search_locations,
    search_practitioners,
    search_roles,
    search_services,
)
from openhmo.api.fhir.directory_sql import COUNT_CAP, networks
from openhmo.api.fhir.responses import base_url, fhir_response
from openhmo.config import plan_identity
from openhmo.interop.fhir import directory as fhir
from openhmo.interop.fhir.common import operation_outcome, searchset
from openhmo.interop.fhir.directory_codes import PROFILE
from openhmo.network.models import Location
from openhmo.plans.models import Plan

router = APIRouter()

_PAGING = (
    SearchParam("_count", "number", "page size (default 20, at most 200; 0: the total only)"),
    SearchParam("_offset", "number", "how many matches to skip (the paging links set it)"),
    SearchParam(
        "_total",
        "token",
        f"estimate (default): Bundle.total when at most {COUNT_CAP:,} match, else left out; "
        "accurate: always, however many match; none: never (no count at all)",
    ),
)


def _p(name: str, kind: str, doc: str) -> SearchParam:
    return SearchParam(name, kind, doc)


_STRING = "case-insensitive starts-with; :exact and :contains supported"
SEARCHES: dict[str, tuple[SearchParam, ...]] = {
    "Practitioner": (
        _p("_id", "token", "the NPI"),
        _p("identifier", "token", "NPI: http://hl7.org/fhir/sid/us-npi|<npi>"),
        _p("name", "string", f"family or given name; {_STRING}"),
        _p("family", "string", _STRING),
        _p("given", "string", _STRING),
    ),
    "PractitionerRole": (
        _p("_id", "token", "role-<n>"),
        _p("practitioner", "reference", "Practitioner/<npi>"),
        _p("organization", "reference", "Organization/org-<n>"),
        _p("location", "reference", "Location/loc-<n>"),
        _p(
            "location.near",
            "special",
            "latitude|longitude|distance|units (mi, [mi_i], km, m); nearest first",
        ),
        _p(
            "specialty",
            "token",
            "NUCC taxonomy: http://nucc.org/provider-taxonomy|<code> or the code",
        ),
        _p("role", "token", "Plan-Net ProviderRoleCS code (ph, crnp, py, ...)"),
        _p(
            "new-patient",
            "token",
            "AcceptingPatientsCS newpt (accepting) or nopt; true/false also accepted",
        ),
        _p("network", "reference", "Organization/network-<key>: in that network today"),
    ),
    "Location": (
        _p("_id", "token", "loc-<n>"),
        _p("name", "string", f"name or first address line; {_STRING}"),
        _p("address", "string", f"street, city, state or ZIP; {_STRING}"),
        _p("address-city", "string", _STRING),
        _p("address-state", "string", _STRING),
        _p("address-postalcode", "string", _STRING),
        _p("organization", "reference", "Organization/org-<n>"),
        _p(
            "near",
            "special",
            "latitude|longitude|distance|units (mi, [mi_i], km, m; km when "
            "left out, 25 mi when no distance); nearest first, distance in "
            "entry.search.extension location-distance",
        ),
    ),
    "HealthcareService": (
        _p("_id", "token", "hcs-<location>-<taxonomy code>"),
        _p("specialty", "token", "NUCC taxonomy code"),
        _p("category", "token", "Plan-Net HealthcareServiceCategoryCS code"),
        _p("location", "reference", "Location/loc-<n>"),
        _p("organization", "reference", "Organization/org-<n>"),
        _p("new-patient", "token", "newpt or nopt (true/false also accepted)"),
    ),
    "Organization": (
        _p("_id", "token", "payer, network-<key> or org-<n>"),
        _p("identifier", "token", "NPI, network key, payer id or EIN"),
        _p("name", "string", _STRING),
        _p("type", "token", "Plan-Net OrgTypeCS: payer, ntwk, prvgrp, fac"),
        _p("partof", "reference", "Organization/payer: the networks"),
    ),
    "InsurancePlan": (
        _p("_id", "token", "the plan key"),
        _p("identifier", "token", "https://openhmo.org/fhir/sid/plan-key|<key>, or a HIOS id"),
        _p("name", "string", _STRING),
        _p("type", "token", "Plan-Net InsuranceProductTypeCS: commhmo, commepo, commpos, commppo"),
        _p("network", "reference", "Organization/network-<key>"),
        _p("owned-by", "reference", "Organization/payer"),
        _p("administered-by", "reference", "Organization/payer"),
    ),
}
INCLUDES = {
    "PractitionerRole": (
        "PractitionerRole:practitioner",
        "PractitionerRole:location",
        "PractitionerRole:organization",
        "PractitionerRole:network",
    )
}
# Who points at a page's practitioners, places and practices: their PractitionerRoles.
REVINCLUDES = {
    "Practitioner": ("PractitionerRole:practitioner",),
    "Location": ("PractitionerRole:location",),
    "Organization": ("PractitionerRole:organization",),
}
# A place or a practice may have thousands of providers: past this many roles a page's
# _revinclude stops, and the Bundle says so in an OperationOutcome entry.
REVINCLUDE_CAP = 500
PROFILES = {
    "Practitioner": "Practitioner",
    "PractitionerRole": "PractitionerRole",
    "Location": "Location",
    "HealthcareService": "HealthcareService",
    "Organization": "Organization",
    "InsurancePlan": "InsurancePlan",
}
_NOTES = {
    "Organization": "The payer, the networks (plannet-Network) and provider organizations.",
    "HealthcareService": "One per place and NUCC specialty offered there by in-network providers.",
    "PractitionerRole": "One per individual provider; network-reference lists the networks it "
    "is in today. _include: " + ", ".join(INCLUDES["PractitionerRole"]),
}
for _type, _declared in SEARCHES.items():
    extra = [PROFILE + "Network"] if _type == "Organization" else []
    declare(
        ResourceSupport(
            type=_type,
            interactions=("read", "search-type"),
            search=_declared + _PAGING,
            profiles=(PROFILE + PROFILES[_type], *extra),
            documentation="Public (Plan-Net); searches are strict (Prefer: handling=lenient "
            "ignores unknown parameters). " + _NOTES.get(_type, ""),
            public=True,
            includes=INCLUDES.get(_type, ()),
            revincludes=REVINCLUDES.get(_type, ()),
        )
    )


def _query(request: Request, resource_type: str, session) -> params.Query:
    query = params.parse(
        request,
        SEARCHES[resource_type],
        INCLUDES.get(resource_type, ()),
        REVINCLUDES.get(resource_type, ()),
    )
    if session.get_bind().dialect.name == "postgresql":
        # Plan each search for its own values (a distance, a name prefix, a specialty),
        # not once for any: psycopg prepares repeated statements, and a generic plan
        # cannot see how few rows a box on the map or a prefix selects. No JIT: its
        # compiling costs more than these short queries take; and no parallel workers:
        # the server answers many searches at once, one core each. This transaction only.
        session.execute(
            text(
                "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL jit = off; "
                "SET LOCAL max_parallel_workers_per_gather = 0"
            )
        )
    return query


def _bundle(
    request: Request,
    resource_type: str,
    found: list[dict],
    total: int | None,
    query: params.Query,
    *,
    included: list[dict] | None = None,
    distances: list[float | None] | None = None,
    warning: str | None = None,
) -> Response:
    # Without a total (_total=none) a full page may have a next one.
    more = query.offset + len(found) + (1 if len(found) == query.count else 0)
    bundle = searchset(
        base_url(request),
        resource_type,
        found,
        total=more if total is None else total,
        params=query.used,
        count=query.count,
        offset=query.offset,
        included=included,
    )
    for entry, miles in zip(bundle.get("entry", []), distances or [], strict=False):
        if miles is not None:
            entry["search"]["extension"] = [fhir.distance_extension(miles)]
    if warning is not None:
        outcome = operation_outcome(200, warning, code="too-costly", severity="warning")
        bundle.setdefault("entry", []).append({"resource": outcome, "search": {"mode": "outcome"}})
    if query.count == 0:
        bundle["link"] = [link for link in bundle["link"] if link["relation"] in ("self", "first")]
    if total is None:
        del bundle["total"]
    return fhir_response(bundle)


def _missing(resource_type: str, fhir_id: str) -> ApiError:
    return ApiError(404, f"{resource_type}/{fhir_id} is not in the directory", code="not-found")


def _today() -> date:
    return date.today()


def _roles_pointing_at(
    session, query: params.Query, parameter: str, references: list[str]
) -> tuple[list[dict], str | None]:
    """The PractitionerRoles whose `parameter` names one of `references` (a page's
    _revinclude), at most REVINCLUDE_CAP, and a warning if there were more."""
    if not query.revinclude or not references:
        return [], None
    day, known = _today(), networks(session)
    asked = params.Query(
        clauses={parameter: [params.Clause(None, tuple(references))]},
        count=REVINCLUDE_CAP + 1,
        counted=False,
    )
    found, _ = search_roles(session, asked, day, known)
    roles, _ = pages.roles(session, [p for p, _ in found[:REVINCLUDE_CAP]], day, known)
    if len(found) <= REVINCLUDE_CAP:
        return roles, None
    return roles, (
        f"_revinclude={query.revinclude[0]} stopped at {REVINCLUDE_CAP} PractitionerRoles; "
        f"search PractitionerRole?{parameter}=... for all of them"
    )


@router.get("/Practitioner", summary="Search practitioners")
def search_practitioner(request: Request, session: DB):
    query = _query(request, "Practitioner", session)
    found, total = search_practitioners(session, query)
    npis = [f"Practitioner/{p.npi}" for p in found]
    roles, warning = _roles_pointing_at(session, query, "practitioner", npis)
    return _bundle(
        request,
        "Practitioner",
        pages.practitioners(session, found),
        total,
        query,
        included=roles,
        warning=warning,
    )


@router.get("/Practitioner/{fhir_id}", summary="Read a practitioner (id = NPI)")
def read_practitioner(fhir_id: str, session: DB):
    found, _ = search_practitioners(session, params.Query(clauses=_by_id(fhir_id), count=2))
    if not found:
        raise _missing("Practitioner", fhir_id)
    return fhir_response(pages.practitioners(session, found)[0])


def _by_id(fhir_id: str) -> dict[str, list[params.Clause]]:
    return {"_id": [params.Clause(None, (fhir_id,))]}


@router.get("/PractitionerRole", summary="Search practitioner roles")
def search_practitioner_role(request: Request, session: DB):
    query = _query(request, "PractitionerRole", session)
    day, known = _today(), networks(session)
    found, total = search_roles(session, query, day, known)
    roles, included = pages.roles(session, [p for p, _ in found], day, known, query.include)
    distances = [miles for _, miles in found]
    return _bundle(
        request, "PractitionerRole", roles, total, query, included=included, distances=distances
    )


@router.get("/PractitionerRole/{fhir_id}", summary="Read a practitioner role")
def read_practitioner_role(fhir_id: str, session: DB):
    day, known = _today(), networks(session)
    query = params.Query(clauses=_by_id(fhir_id), count=2)
    found, _ = search_roles(session, query, day, known)
    if not found:
        raise _missing("PractitionerRole", fhir_id)
    return fhir_response(pages.roles(session, [found[0][0]], day, known)[0][0])


@router.get("/Location", summary="Search locations")
def search_location(request: Request, session: DB):
    query = _query(request, "Location", session)
    found, total = search_locations(session, query)
    resources = [fhir.location(place, updated=place.updated_at) for place, _ in found]
    distances = [miles for _, miles in found]
    places = [f"Location/{r['id']}" for r in resources]
    roles, warning = _roles_pointing_at(session, query, "location", places)
    return _bundle(
        request,
        "Location",
        resources,
        total,
        query,
        included=roles,
        distances=distances,
        warning=warning,
    )


@router.get("/Location/{fhir_id}", summary="Read a location")
def read_location(fhir_id: str, session: DB):
    number = fhir.number_after("loc-", fhir_id)
    place = session.get(Location, number) if number is not None else None
    if place is None:
        raise _missing("Location", fhir_id)
    return fhir_response(fhir.location(place, updated=place.updated_at))


def _services(session, rows: list[tuple[int, str, bool]], day: date) -> list[dict]:
    ids = sorted({loc for loc, _, _ in rows})
    places = {p.id: p for p in session.scalars(select(Location).where(Location.id.in_(ids)))}
    services = [(loc, code) for loc, code, _ in rows]
    updated = pages.service_updates(session, places, services, day)
    return [
        fhir.healthcare_service(
            places[loc], code, accepting=accepting, updated=updated[(loc, code)]
        )
        for loc, code, accepting in rows
    ]


@router.get("/HealthcareService", summary="Search healthcare services")
def search_healthcare_service(request: Request, session: DB):
    query = _query(request, "HealthcareService", session)
    day = _today()
    rows, total = search_services(session, query, day, networks(session))
    return _bundle(request, "HealthcareService", _services(session, rows, day), total, query)


@router.get("/HealthcareService/{fhir_id}", summary="Read a healthcare service")
def read_healthcare_service(fhir_id: str, session: DB):
    query = params.Query(clauses=_by_id(fhir_id), count=2)
    day = _today()
    rows, _ = search_services(session, query, day, networks(session))
    if not rows:
        raise _missing("HealthcareService", fhir_id)
    return fhir_response(_services(session, rows, day)[0])


@router.get("/Organization", summary="Search organizations and networks")
def search_organization(request: Request, session: DB):
    query = _query(request, "Organization", session)
    found, total = search_organizations(session, query, plan_identity())
    # Practices have roles; networks and the payer are named by none (network is not a
    # PractitionerRole:organization reference).
    practices = [f"Organization/{r['id']}" for r in found if r["id"].startswith("org-")]
    roles, warning = _roles_pointing_at(session, query, "organization", practices)
    return _bundle(request, "Organization", found, total, query, included=roles, warning=warning)


@router.get("/Organization/{fhir_id}", summary="Read an organization or a network")
def read_organization(fhir_id: str, session: DB):
    query = params.Query(clauses=_by_id(fhir_id), count=2)
    found, _ = search_organizations(session, query, plan_identity())
    if not found:
        raise _missing("Organization", fhir_id)
    return fhir_response(found[0])


@router.get("/InsurancePlan", summary="Search insurance plans")
def search_insurance_plan(request: Request, session: DB):
    query = _query(request, "InsurancePlan", session)
    found, total = search_plans(session, query, _today())
    return _bundle(request, "InsurancePlan", found, total, query)


@router.get("/InsurancePlan/{fhir_id}", summary="Read an insurance plan (id = plan key)")
def read_insurance_plan(fhir_id: str, session: DB):
    plan = session.scalar(select(Plan).where(Plan.plan_key == fhir_id))
    if plan is None or not plan.years:
        raise _missing("InsurancePlan", fhir_id)
    return fhir_response(plans(session, [plan], _today())[0])
