"""Patient Access (CMS-9115-F, CARIN Blue Button): read and search Patient, Coverage and
ExplanationOfBenefit, for the members the caller may see, each read audited.

Who sees what (access.visibility): a member themself and, as subscriber, their minor
children; a provider office the patients it treats or is PCP of; staff and systems
everyone. A provider sees only the EOBs of claims it billed or rendered (minimum
necessary: being a patient's PCP does not open the patient's other doctors' claims).
What the caller may not see answers exactly as what does not exist: 404 on a read,
absent from a search. Every resource about a member that leaves, included ones too, is
written to the audit in the request's own transaction, committed before the answer.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Select, and_, false, or_, select, true
from sqlalchemy.orm import Session

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller, provider_npi, visible_members
from openhmo.api.deps import AuditedDB, require
from openhmo.api.errors import ApiError
from openhmo.api.fhir import patient_access_search as q
from openhmo.api.fhir.capabilities import ResourceSupport, SearchParam, declare
from openhmo.api.fhir.patient_access_load import coverages, eob_facts, patients
from openhmo.api.fhir.responses import (
    DEFAULT_COUNT,
    MAX_COUNT,
    base_url,
    fhir_response,
    page,
    query_params,
)
from openhmo.claims.models import Claim, ClaimLine
from openhmo.config import plan_identity
from openhmo.enrollment.models import Coverage, Member, MemberCoverage
from openhmo.interop.fhir.common import CLAIM_SYSTEM, MEMBER_SYSTEM, searchset
from openhmo.interop.fhir.eob import PROFILES, explanation_of_benefit
from openhmo.interop.fhir.patient_access import (
    COVERAGE_PROFILE,
    PATIENT_PROFILE,
    parse_coverage_id,
)

router = APIRouter()

_PAGING = (
    SearchParam("_count", "number", f"Page size (default {DEFAULT_COUNT}, at most {MAX_COUNT})"),
    SearchParam("_offset", "number", "Entries to skip (paging links carry it)"),
)
declare(
    ResourceSupport(
        type="Patient",
        interactions=("read", "search-type"),
        search=(
            SearchParam("_id", "token", "The member number"),
            SearchParam("identifier", "token", f"The member number ({MEMBER_SYSTEM})"),
            SearchParam("name", "string", "Start of a given or family name"),
            SearchParam("family", "string", "Start of the family name"),
            SearchParam("given", "string", "Start of the given name"),
            SearchParam("birthdate", "date", "Birth date, with eq/ne/gt/ge/lt/le prefixes"),
            SearchParam("gender", "token", "female, male or unknown"),
            *_PAGING,
        ),
        profiles=(PATIENT_PROFILE,),
        documentation="Members the caller may see (CARIN BB C4BB-Patient); reads are audited.",
    )
)
declare(
    ResourceSupport(
        type="Coverage",
        interactions=("read", "search-type"),
        search=(
            SearchParam("_id", "token", "<coverage number>-<member number>"),
            SearchParam("patient", "reference", "The covered member (Patient/<member number>)"),
            SearchParam("beneficiary", "reference", "The same as patient"),
            SearchParam("subscriber", "reference", "The subscriber (Patient/<member number>)"),
            SearchParam("status", "token", "active or cancelled (the span has ended)"),
            *_PAGING,
        ),
        profiles=(COVERAGE_PROFILE,),
        documentation="One per member and coverage span (C4BB-Coverage); reads are audited.",
    )
)
declare(
    ResourceSupport(
        type="ExplanationOfBenefit",
        interactions=("read", "search-type"),
        search=(
            SearchParam("_id", "token", "The claim id"),
            SearchParam("identifier", "token", f"The claim id ({CLAIM_SYSTEM})"),
            SearchParam("patient", "reference", "The member (Patient/<member number>)"),
            SearchParam("type", "token", "professional or institutional"),
            SearchParam("status", "token", "active or cancelled (voided or replaced)"),
            SearchParam("service-date", "date", "Dates of service, with prefixes"),
            SearchParam("_lastUpdated", "date", "When last adjudicated, with prefixes"),
            SearchParam(
                "_include",
                "special",
                "ExplanationOfBenefit:patient, ExplanationOfBenefit:coverage, "
                "ExplanationOfBenefit:insurer (contained) or ExplanationOfBenefit:*",
            ),
            *_PAGING,
        ),
        profiles=tuple(PROFILES.values()),
        documentation="Adjudicated claims with their current line decisions (CARIN BB); a "
        "provider sees the claims it billed or rendered. Reads are audited.",
        includes=(
            "ExplanationOfBenefit:patient",
            "ExplanationOfBenefit:coverage",
            "ExplanationOfBenefit:insurer",
            "ExplanationOfBenefit:*",
        ),
    )
)

Count = Annotated[int, Query(alias="_count", ge=0, le=MAX_COUNT)]
Offset = Annotated[int, Query(alias="_offset", ge=0)]
PatientReader = Annotated[Caller, Depends(require("Patient", "read"))]
CoverageReader = Annotated[Caller, Depends(require("Coverage", "read"))]
EobReader = Annotated[Caller, Depends(require("ExplanationOfBenefit", "read"))]
PatientSearcher = Annotated[Caller, Depends(require("Patient", "search"))]
CoverageSearcher = Annotated[Caller, Depends(require("Coverage", "search"))]
EobSearcher = Annotated[Caller, Depends(require("ExplanationOfBenefit", "search"))]


class _Scope:
    """Whom the caller may see today, and the provider's NPI if it is a provider office."""

    def __init__(self, session: Session, caller: Caller) -> None:
        self.today = date.today()
        self.npi = provider_npi(session, caller)
        self.members = visible_members(caller, self.today, self.npi)
        self.caller = caller

    def member_filter(self, column) -> Any:
        return true() if self.members is None else column.in_(self.members)

    def claim_filter(self) -> Any:
        """The claims whose EOBs the caller may see (see the module's text)."""
        visible = Claim.member_id.is_not(None) & self.member_filter(Claim.member_id)
        if self.caller.role != "provider":
            return visible
        if not self.npi:
            return false()
        own_line = select(ClaimLine.claim_id).where(ClaimLine.rendering_npi == self.npi)
        return visible & or_(
            Claim.billing_npi == self.npi,
            Claim.rendering_npi == self.npi,
            Claim.id.in_(own_line),
        )


def _what(request: Request) -> str:
    query = request.url.query
    return f"GET {request.url.path}" + (f"?{query}" if query else "")


def _audit(session, scope: _Scope, request: Request, resources, action: str) -> None:
    reads = [(member_id, r["resourceType"], r["id"]) for member_id, r in resources]
    record_reads(session, scope.caller, reads, action=action, what=_what(request))


def _not_found(resource_type: str, resource_id: str) -> ApiError:
    return ApiError(404, f"{resource_type}/{resource_id} is not known")


def _bundle(request, resource_type, found, total, params, count, offset, included=()):
    return searchset(
        base_url(request),
        resource_type,
        [r for _, r in found],
        total=total,
        params=params,
        count=count,
        offset=offset,
        included=[r for _, r in included] or None,
    )


# --- Patient ---------------------------------------------------------------------------------


@router.get("/Patient/{patient_id}", summary="Read a Patient (a member)")
def read_patient(patient_id: str, request: Request, session: AuditedDB, caller: PatientReader):
    scope = _Scope(session, caller)
    member = session.scalar(
        select(Member).where(Member.member_number == patient_id, scope.member_filter(Member.id))
    )
    if member is None:
        raise _not_found("Patient", patient_id)
    found = patients(session, [member], scope.today)
    _audit(session, scope, request, found, "read")
    return fhir_response(found[0][1])


@router.get("/Patient", summary="Search Patients")
def search_patients(
    request: Request,
    session: AuditedDB,
    caller: PatientSearcher,
    count: Count = DEFAULT_COUNT,
    offset: Offset = 0,
):
    params = query_params(request)
    q.check_known(params, "Patient", q.PATIENT_PARAMS)
    scope = _Scope(session, caller)
    stmt = select(Member).where(scope.member_filter(Member.id), *q.patient_clauses(params))
    total, members = page(session, stmt, (Member.member_number,), count, offset)
    found = patients(session, members, scope.today)
    _audit(session, scope, request, found, "search")
    return fhir_response(_bundle(request, "Patient", found, total, params, count, offset))


# --- Coverage --------------------------------------------------------------------------------


def _spans(scope: _Scope) -> Select:
    return (
        select(MemberCoverage)
        .join(Member, Member.id == MemberCoverage.member_id)
        .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
        .where(scope.member_filter(MemberCoverage.member_id))
    )


@router.get("/Coverage/{coverage_id}", summary="Read a Coverage (a member's span)")
def read_coverage(coverage_id: str, request: Request, session: AuditedDB, caller: CoverageReader):
    scope = _Scope(session, caller)
    key = parse_coverage_id(coverage_id)
    span = None
    if key is not None:
        span = session.scalars(
            _spans(scope).where(
                MemberCoverage.coverage_id == key[0], Member.member_number == key[1]
            )
        ).first()
    if span is None:
        raise _not_found("Coverage", coverage_id)
    found = coverages(session, [span], scope.today, plan_identity())
    _audit(session, scope, request, found, "read")
    return fhir_response(found[0][1])


@router.get("/Coverage", summary="Search Coverages")
def search_coverages(
    request: Request,
    session: AuditedDB,
    caller: CoverageSearcher,
    count: Count = DEFAULT_COUNT,
    offset: Offset = 0,
):
    params = query_params(request)
    q.check_known(params, "Coverage", q.COVERAGE_PARAMS)
    scope = _Scope(session, caller)
    stmt = _spans(scope).where(*q.coverage_clauses(params, scope.today))
    order = (MemberCoverage.coverage_id, Member.member_number)
    total, spans = page(session, stmt, order, count, offset)
    found = coverages(session, spans, scope.today, plan_identity())
    _audit(session, scope, request, found, "search")
    return fhir_response(_bundle(request, "Coverage", found, total, params, count, offset))


# --- ExplanationOfBenefit --------------------------------------------------------------------


def _eobs(session, claims: list[Claim]) -> list[tuple[int, dict]]:
    identity = plan_identity()
    return [
        (facts.claim.member_id, explanation_of_benefit(facts, identity))
        for facts in eob_facts(session, claims)
    ]


@router.get("/ExplanationOfBenefit/{eob_id}", summary="Read an ExplanationOfBenefit (a claim)")
def read_eob(eob_id: str, request: Request, session: AuditedDB, caller: EobReader):
    scope = _Scope(session, caller)
    claim = session.scalar(select(Claim).where(Claim.claim_id == eob_id, scope.claim_filter()))
    if claim is None:
        raise _not_found("ExplanationOfBenefit", eob_id)
    found = _eobs(session, [claim])
    _audit(session, scope, request, found, "read")
    return fhir_response(found[0][1])


@router.get("/ExplanationOfBenefit", summary="Search ExplanationOfBenefits")
def search_eobs(
    request: Request,
    session: AuditedDB,
    caller: EobSearcher,
    count: Count = DEFAULT_COUNT,
    offset: Offset = 0,
):
    params = query_params(request)
    q.check_known(params, "ExplanationOfBenefit", q.EOB_PARAMS)
    includes = q.eob_includes(params)
    scope = _Scope(session, caller)
    stmt = select(Claim).where(scope.claim_filter(), *q.eob_clauses(params))
    total, claims = page(session, stmt, (Claim.id,), count, offset)
    found = _eobs(session, claims)
    included: list[tuple[int, dict]] = []
    if "patient" in includes and claims:
        ids = {c.member_id for c in claims}
        members = session.scalars(select(Member).where(Member.id.in_(ids))).all()
        included += patients(session, sorted(members, key=lambda m: m.member_number), scope.today)
    if "coverage" in includes and claims:
        named = {r["insurance"][0]["coverage"].get("reference", "") for _, r in found}
        keys = [k for k in (parse_coverage_id(n.removeprefix("Coverage/")) for n in named) if k]
        if keys:
            wanted = or_(
                *(and_(MemberCoverage.coverage_id == c, Member.member_number == m) for c, m in keys)
            )
            spans = session.scalars(
                _spans(scope)
                .where(wanted)
                .order_by(MemberCoverage.coverage_id, Member.member_number)
            ).all()
            included += coverages(session, spans, scope.today, plan_identity())
    _audit(session, scope, request, found + included, "search")
    bundle = _bundle(request, "ExplanationOfBenefit", found, total, params, count, offset, included)
    return fhir_response(bundle)
