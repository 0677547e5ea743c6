"""ServiceRequest: a PCP office asks for a referral, and referrals are read back.

POST /fhir/ServiceRequest (openhmo.interop.fhir.service_request reads it) makes the
referral with `referrals.service.request_referral`, whose rules approve it at once or
leave it for staff; the answer is 201 with the ServiceRequest and its Location. A
provider office refers as itself (the requester, if named, must be its own NPI); staff
name the referring PCP. A request about someone who is not our member, or whom the
office may not see, is a 422 naming the subject, the same either way; a request the
referral rules refuse (not the member's PCP, a specialist out of network, no diagnosis,
...) is a 422 with the rule's reason, in the caller's language, naming the element.

GET /fhir/ServiceRequest/{referral number} and GET /fhir/ServiceRequest?patient=,
requester=, performer=, status= (FHIR's, or ours: requested, approved, ...) show the
referrals of the members the caller may see (access.visibility); each one shown is
audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import false, select, true
from sqlalchemy.orm import Session, aliased

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller, may_see, provider_npi, visible_members
from openhmo.api.deps import AuditedDB, WriteDB, require
from openhmo.api.errors import ApiError
from openhmo.api.fhir.capabilities import ResourceSupport, SearchParam, declare
from openhmo.api.fhir.inputs import Body, Count, Offset, PlainText, language, refuse
from openhmo.api.fhir.responses import DEFAULT_COUNT, base_url, fhir_response, page, query_params
from openhmo.categories import ServiceCategory
from openhmo.claims.models import ReferralUsage
from openhmo.enrollment.models import Member
from openhmo.i18n import translate
from openhmo.interop.fhir.common import REFERRAL_SYSTEM, searchset
from openhmo.interop.fhir.reading import FhirInputError, unwrap
from openhmo.interop.fhir.service_request import (
    OUR_STATUSES,
    REFUSAL_PATHS,
    Party,
    ReferralAsk,
    read_referral,
    service_request,
)
from openhmo.network.models import Provider
from openhmo.referrals.models import Referral
from openhmo.referrals.service import ReferralError, request_referral, specialty_name

router = APIRouter()

declare(
    ResourceSupport(
        type="ServiceRequest",
        interactions=("create", "read", "search-type"),
        search=(
            SearchParam("_id", "token", "The referral number"),
            SearchParam("identifier", "token", f"The referral number ({REFERRAL_SYSTEM})"),
            SearchParam("patient", "reference", "The member (Patient/<member number>)"),
            SearchParam("requester", "reference", "The referring PCP (Practitioner/<NPI>)"),
            SearchParam("performer", "reference", "The specialist (Practitioner/<NPI>)"),
            SearchParam(
                "status",
                "token",
                "draft, active, revoked, completed (or requested, approved, denied, expired, "
                "exhausted)",
            ),
            SearchParam("_count", "number", "Page size"),
            SearchParam("_offset", "number", "Entries to skip (paging links carry it)"),
        ),
        documentation="PCP referrals: a PCP office creates one (subject, requester, "
        "performer or performerType, reasonCode, quantityQuantity visits, "
        "occurrencePeriod); the plan's rules approve it or leave it for staff. Reads are "
        "audited.",
    )
)

Referrer = Annotated[Caller, Depends(require("ServiceRequest", "write"))]
Reader = Annotated[Caller, Depends(require("ServiceRequest", "read"))]
Searcher = Annotated[Caller, Depends(require("ServiceRequest", "search"))]


def _provider(session: Session, npi: str) -> Provider | None:
    return session.scalar(select(Provider).where(Provider.npi == npi))


def _party(provider: Provider) -> Party:
    individual = provider.entity_type != "organization" and bool(provider.last_name)
    return Party(provider.npi, provider.display_name, individual)


def _resources(session: Session, referrals: list[Referral], lang: str) -> list[dict[str, Any]]:
    """Referrals as ServiceRequests, their members, providers and usage read in three queries."""
    member_ids = {r.member_id for r in referrals}
    numbers = dict(
        session.execute(
            select(Member.id, Member.member_number).where(Member.id.in_(member_ids))
        ).all()
    )
    provider_ids = {r.referring_provider_id for r in referrals} | {
        r.specialist_provider_id for r in referrals if r.specialist_provider_id
    }
    providers = {
        p.id: _party(p)
        for p in session.scalars(select(Provider).where(Provider.id.in_(provider_ids)))
    }
    used = dict(
        session.execute(
            select(ReferralUsage.referral_number, ReferralUsage.used).where(
                ReferralUsage.referral_number.in_([r.referral_number for r in referrals])
            )
        ).all()
    )
    return [
        service_request(
            r,
            member_number=numbers[r.member_id],
            requester=providers[r.referring_provider_id],
            specialist=providers.get(r.specialist_provider_id),
            specialty_name=specialty_name(r.specialty_prefix) if r.specialty_prefix else None,
            category_name=translate(f"category.{r.category}", lang),
            used=used.get(r.referral_number),
        )
        for r in referrals
    ]


def _referring(session: Session, caller: Caller, ask: ReferralAsk) -> Provider:
    """The referring PCP: a provider office itself; the requester staff name."""
    where = [ask.paths["requester"]]
    if caller.role == "provider":
        own = session.get(Provider, caller.provider_id) if caller.provider_id else None
        if own is None:
            raise ApiError(403, "this account is bound to no provider", code="forbidden")
        if ask.requester_npi not in (None, own.npi):
            raise ApiError(
                403,
                f"a provider office refers as itself (NPI {own.npi}), not as NPI "
                f"{ask.requester_npi}",
                code="forbidden",
                expression=where,
            )
        return own
    if ask.requester_npi is None:
        raise ApiError(400, "name the referring PCP by NPI (requester)", expression=where)
    found = _provider(session, ask.requester_npi)
    if found is None:
        raise ApiError(
            422, f"no provider with NPI {ask.requester_npi}", code="business-rule", expression=where
        )
    return found


@router.post("/ServiceRequest", status_code=201, summary="Ask for a referral (a PCP office)")
def create_referral(request: Request, caller: Referrer, session: WriteDB, body: Body):
    lang = language(request)
    try:
        ask = read_referral(unwrap(body, "ServiceRequest"))
    except FhirInputError as exc:
        refuse(exc)
    today = date.today()
    number = ask.patient.member_number
    member = (
        session.scalar(select(Member).where(Member.member_number == number)) if number else None
    )
    if member is None or (
        caller.role == "provider" and not may_see(session, caller, member.id, today)
    ):
        raise ApiError(
            422,
            f"no member {number or '(none named)'} whom this caller may refer",
            code="business-rule",
            expression=[ask.paths["subject"]],
        )
    referring = _referring(session, caller, ask)
    specialist = None
    if ask.specialist_npi is not None:
        specialist = _provider(session, ask.specialist_npi)
        if specialist is None:
            raise ApiError(
                422,
                f"no provider with NPI {ask.specialist_npi} in our directory",
                code="business-rule",
                expression=[ask.paths["performer"]],
            )
    if ask.defects:
        refuse(ask.defects[0])
    if ask.visits is None:
        raise ApiError(
            400, "how many visits: quantityQuantity.value", expression=[ask.paths["quantity"]]
        )
    try:
        referral = request_referral(
            session,
            member=member,
            referring_provider=referring,
            specialist=specialist,
            specialty_prefix=ask.specialty,
            category=ServiceCategory(ask.category),
            visits=ask.visits,
            valid_from=ask.valid_from or today,
            valid_to=ask.valid_to,
            diagnosis_codes=ask.diagnoses,
            actor=caller.username,
            source="api",
        )
    except ReferralError as exc:
        where = ask.paths.get(REFUSAL_PATHS.get(exc.message_id or "", ""), "ServiceRequest")
        raise ApiError(
            422, exc.member_text(lang), code="business-rule", expression=[where]
        ) from None
    answer = _resources(session, [referral], lang)[0]
    record_reads(
        session,
        caller,
        [(member.id, "ServiceRequest", referral.referral_number)],
        action="read",
        what="POST /fhir/ServiceRequest",
    )
    location = f"{base_url(request)}/ServiceRequest/{referral.referral_number}"
    return fhir_response(answer, 201, Location=location)


def _visible(session: Session, caller: Caller) -> Any:
    members = visible_members(caller, date.today(), provider_npi(session, caller))
    return true() if members is None else Referral.member_id.in_(members)


@router.get("/ServiceRequest/{referral_number}", summary="Read a referral", dependencies=PlainText)
def read_referral_resource(
    referral_number: str, request: Request, caller: Reader, session: AuditedDB
):
    referral = session.scalar(
        select(Referral).where(
            Referral.referral_number == referral_number, _visible(session, caller)
        )
    )
    if referral is None:
        raise ApiError(404, f"ServiceRequest/{referral_number} is not known")
    answer = _resources(session, [referral], language(request))[0]
    record_reads(
        session,
        caller,
        [(referral.member_id, "ServiceRequest", referral.referral_number)],
        action="read",
        what=f"GET {request.url.path}",
    )
    return fhir_response(answer)


def _last(value: str) -> str:
    """The id of a reference search value: 'Practitioner/123' or '123' -> '123'."""
    return value.rstrip("/").rsplit("/", 1)[-1].strip()


@router.get("/ServiceRequest", summary="Search referrals", dependencies=PlainText)
def search_referrals(
    request: Request,
    caller: Searcher,
    session: AuditedDB,
    patient: str | None = None,
    requester: str | None = None,
    performer: str | None = None,
    status: str | None = None,
    ids: Annotated[str | None, Query(alias="_id")] = None,
    identifier: str | None = None,
    count: Count = DEFAULT_COUNT,
    offset: Offset = 0,
):
    stmt = select(Referral).where(_visible(session, caller))
    if patient:
        member = select(Member.id).where(Member.member_number == _last(patient).upper())
        stmt = stmt.where(Referral.member_id.in_(member))
    for value, column in (
        (requester, Referral.referring_provider_id),
        (performer, Referral.specialist_provider_id),
    ):
        if value:
            who = aliased(Provider)
            stmt = stmt.where(column.in_(select(who.id).where(who.npi == _last(value))))
    if status:
        wanted = [s for v in status.split(",") for s in OUR_STATUSES.get(v, (v,))]
        stmt = stmt.where(Referral.status.in_(wanted))
    if ids:
        stmt = stmt.where(Referral.referral_number.in_(ids.split(",")))
    if identifier:
        system, bar, value = identifier.rpartition("|")
        if bar and system not in ("", REFERRAL_SYSTEM):
            stmt = stmt.where(false())
        stmt = stmt.where(Referral.referral_number == value)
    total, referrals = page(session, stmt, (Referral.id,), count, offset)
    lang = language(request)
    answers = _resources(session, referrals, lang) if referrals else []
    query = request.url.query
    record_reads(
        session,
        caller,
        [(r.member_id, "ServiceRequest", r.referral_number) for r in referrals],
        action="search",
        what="GET /fhir/ServiceRequest" + (f"?{query}" if query else ""),
    )
    bundle = searchset(
        base_url(request),
        "ServiceRequest",
        answers,
        total=total,
        params=query_params(request),
        count=count,
        offset=offset,
    )
    return fhir_response(bundle)
