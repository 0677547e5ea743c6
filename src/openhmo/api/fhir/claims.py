"""Claim/$submit and ClaimResponse: a provider's claim adjudicated in real time, and read back.

POST /fhir/Claim/$submit takes a Claim (or a Bundle whose first entry is the Claim, with
the Patient, Coverage and Practitioners it references; or Parameters holding either),
maps it to the intake's ClaimIn (openhmo.interop.fhir.claim), stores it with
`claims.intake.submit_claim` (committed: from then on the plan has the claim), has its
family plan year adjudicated in real time by the server's adjudicator, which decides the
claims submitted at the same moment in one engine run (claims.realtime), and answers the
ClaimResponse. A claim not decided within DECISION_WAIT_S seconds is answered `queued`
(it is still decided). Claim.identifier is the idempotency key: the same Claim sent again finds
the stored claim and answers the same ClaimResponse (nothing is re-run unless the claim
was never adjudicated); the same identifier with other content is a 409.

Who may submit: provider offices (for any member: they bill the plan, but only as the
billing or rendering provider they are) and systems (clearinghouses); staff too. A
member's token has no Claim.write scope. A member number we do not have is stored and
denied by the engine (CO-31), as the 837 intake does; a Claim that names no member
number, no billing NPI, no CPT/HCPCS code or no ICD-10-CM diagnosis is answered with a
ClaimResponse whose outcome is `error` and nothing is stored.

GET /fhir/ClaimResponse/{claim id} and GET /fhir/ClaimResponse?patient= read them back: a
provider office sees the claims it billed or rendered, a member their own and their
minor children's, staff and systems all. Every answer naming a member is audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller, provider_npi, visible_members
from openhmo.api.deps import AuditedDB, require
from openhmo.api.errors import ApiError
from openhmo.api.fhir.capabilities import Operation, ResourceSupport, SearchParam, declare
from openhmo.api.fhir.inputs import Body, Count, Offset, PlainText, language, refuse
from openhmo.api.fhir.responses import DEFAULT_COUNT, base_url, fhir_response, page, query_params
from openhmo.claims.intake import ClaimError, sqlite_write_lock, submit_claim
from openhmo.claims.models import RECEIVED, Claim, ClaimLine, LineDecision
from openhmo.config import plan_identity
from openhmo.db.types import utcnow
from openhmo.enrollment.models import MemberCoverage
from openhmo.interop.fhir.claim import claim_in, map_claim
from openhmo.interop.fhir.claim_response import claim_response, rejected_claim_response
from openhmo.interop.fhir.common import CLAIM_SYSTEM, searchset
from openhmo.interop.fhir.reading import FhirInputError, unwrap

router = APIRouter()

SUBMIT = "http://hl7.org/fhir/OperationDefinition/Claim-submit"
declare(
    ResourceSupport(
        type="Claim",
        interactions=(),
        operations=(Operation("submit", SUBMIT),),
        documentation="POST /fhir/Claim/$submit: a professional or institutional claim "
        "(a Claim, or a Bundle whose first entry is the Claim), adjudicated at once; the "
        "answer is its ClaimResponse. Claim.identifier makes a retry idempotent.",
    )
)
declare(
    ResourceSupport(
        type="ClaimResponse",
        interactions=("read", "search-type"),
        search=(
            SearchParam("_id", "token", "The claim id"),
            SearchParam("identifier", "token", f"The claim id ({CLAIM_SYSTEM})"),
            SearchParam("patient", "reference", "The member (Patient/<member number>)"),
            SearchParam("_count", "number", "Page size"),
            SearchParam("_offset", "number", "Entries to skip (paging links carry it)"),
        ),
        documentation="The decision on a claim, line by line; a provider sees the claims it "
        "billed or rendered, a member their own. Reads are audited.",
    )
)

Submitter = Annotated[Caller, Depends(require("Claim", "write"))]
Reader = Annotated[Caller, Depends(require("ClaimResponse", "read"))]
Searcher = Annotated[Caller, Depends(require("ClaimResponse", "search"))]
# How long a Claim/$submit waits for its decision before it answers `queued`.
DECISION_WAIT_S = 30.0


def _visible(session: Session, caller: Caller, today: date) -> Any:
    """The claims whose answers the caller may see (see the module's text)."""
    if caller.sees_everyone:
        return true()
    if caller.role == "provider":
        npi = provider_npi(session, caller)
        if not npi:
            return false()
        own_line = select(ClaimLine.claim_id).where(ClaimLine.rendering_npi == npi)
        return or_(Claim.billing_npi == npi, Claim.rendering_npi == npi, Claim.id.in_(own_line))
    members = visible_members(caller, today)
    if members is None:
        return true()
    return Claim.member_id.is_not(None) & Claim.member_id.in_(members)


def _coverage_ids(session: Session, claims: list[Claim], lines: dict[int, list]) -> dict:
    """Each claim's Coverage id: the member's span on the claim's first date of service."""
    member_ids = {c.member_id for c in claims if c.member_id is not None}
    spans: dict[int, list[MemberCoverage]] = {}
    for span in session.scalars(
        select(MemberCoverage).where(MemberCoverage.member_id.in_(member_ids))
    ):
        spans.setdefault(span.member_id, []).append(span)
    out = {}
    for claim in claims:
        days = [line.service_date for line in lines.get(claim.id, [])]
        if claim.member_id is None or not days:
            continue
        first = min(days)
        for span in spans.get(claim.member_id, []):
            if span.effective_date <= first and (
                span.termination_date is None or span.termination_date >= first
            ):
                out[claim.id] = f"{span.coverage_id}-{claim.member_number}"
    return out


def _responses(session: Session, claims: list[Claim], lang: str) -> list[dict[str, Any]]:
    """The ClaimResponses of claims, their lines and current decisions read in two queries."""
    ids = [c.id for c in claims]
    lines: dict[int, list[ClaimLine]] = {}
    for line in session.scalars(
        select(ClaimLine).where(ClaimLine.claim_id.in_(ids)).order_by(ClaimLine.line_number)
    ):
        lines.setdefault(line.claim_id, []).append(line)
    decisions = {
        d.line_id: d
        for d in session.scalars(
            select(LineDecision).where(
                LineDecision.claim_id.in_(ids), LineDecision.superseded_at.is_(None)
            )
        )
    }
    coverages = _coverage_ids(session, claims, lines)
    identity = plan_identity()
    return [
        claim_response(
            c,
            lines.get(c.id, []),
            decisions,
            coverage_id=coverages.get(c.id),
            identity=identity,
            language=lang,
        )
        for c in claims
    ]


def _audit(session, caller, claims: list[Claim], action: str, what: str) -> None:
    reads = [(c.member_id, "ClaimResponse", c.claim_id) for c in claims if c.member_id]
    record_reads(session, caller, reads, action=action, what=what)


def _claim_error(exc: ClaimError, paths: dict[str, str]) -> ApiError:
    where = [paths.get(exc.field or "", "Claim")]
    if exc.field == "idempotency_key":
        return ApiError(409, str(exc), code="conflict", expression=where)
    return ApiError(422, str(exc), code="business-rule", expression=where)


@router.post("/Claim/$submit", summary="Submit a claim; answered with its ClaimResponse")
def submit(request: Request, caller: Submitter, body: Body):
    lang = language(request)
    try:
        wanted = unwrap(body, "Claim")
        mapped = map_claim(wanted)
        if mapped.problems:
            answer = rejected_claim_response(
                mapped, wanted.resource, identity=plan_identity(), created=utcnow(), language=lang
            )
            return fhir_response(answer)
        claim_input = claim_in(mapped, submitter=caller.username)
    except FhirInputError as exc:
        refuse(exc)
    sessions = request.app.state.sessions
    try:
        # Stored first, in a transaction of its own: a received claim is a claim the plan
        # has (the 837 intake stores them so too), whatever happens to its adjudication.
        with sessions() as session, session.begin():
            sqlite_write_lock(session)
            if caller.role == "provider":
                _own_claim(session, caller, claim_input, mapped.paths)
            claim = submit_claim(session, claim_input, received_at=utcnow(), actor=caller.username)
            claim_id, waiting = claim.claim_id, claim.status == RECEIVED
        # A resubmission answers with the decisions stored; only a claim never decided runs,
        # with the claims submitted at the same moment (claims.realtime).
        if waiting:
            request.app.state.adjudicator.decide(
                claim_id, actor=caller.username, timeout=DECISION_WAIT_S
            )
    except ClaimError as exc:
        raise _claim_error(exc, mapped.paths) from None
    with sessions() as session, session.begin():
        sqlite_write_lock(session)
        claim = session.scalar(select(Claim).where(Claim.claim_id == claim_id))
        answer = _responses(session, [claim], lang)[0]
        _audit(session, caller, [claim], "read", "POST /fhir/Claim/$submit")
    return fhir_response(answer)


def _own_claim(session: Session, caller: Caller, claim_input, paths: dict[str, str]) -> None:
    """A provider office submits only claims it bills or renders."""
    npi = provider_npi(session, caller)
    rendering = {claim_input.rendering_npi, *(ln.rendering_npi for ln in claim_input.lines)}
    if npi != claim_input.billing_npi and npi not in rendering:
        raise ApiError(
            403,
            f"a provider office submits its own claims: NPI {npi} is neither the billing "
            "nor a rendering provider of this claim",
            code="forbidden",
            expression=[paths["billing_npi"]],
        )


@router.get(
    "/ClaimResponse/{claim_id}",
    summary="Read a ClaimResponse (the decision on a claim)",
    dependencies=PlainText,
)
def read_claim_response(claim_id: str, request: Request, caller: Reader, session: AuditedDB):
    claim = session.scalar(
        select(Claim).where(Claim.claim_id == claim_id, _visible(session, caller, date.today()))
    )
    if claim is None:
        raise ApiError(404, f"ClaimResponse/{claim_id} is not known")
    answer = _responses(session, [claim], language(request))[0]
    _audit(session, caller, [claim], "read", f"GET {request.url.path}")
    return fhir_response(answer)


def _member_number(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1].strip().upper()


@router.get("/ClaimResponse", summary="Search ClaimResponses", dependencies=PlainText)
def search_claim_responses(
    request: Request,
    caller: Searcher,
    session: AuditedDB,
    patient: str | None = None,
    ids: Annotated[str | None, Query(alias="_id")] = None,
    identifier: str | None = None,
    count: Count = DEFAULT_COUNT,
    offset: Offset = 0,
):
    stmt = select(Claim).where(_visible(session, caller, date.today()))
    if patient:
        stmt = stmt.where(Claim.member_number == _member_number(patient))
    if ids:
        stmt = stmt.where(Claim.claim_id.in_(ids.split(",")))
    if identifier:
        system, bar, value = identifier.rpartition("|")
        if bar and system not in ("", CLAIM_SYSTEM):
            stmt = stmt.where(false())
        stmt = stmt.where(Claim.claim_id == value)
    total, claims = page(session, stmt, (Claim.id,), count, offset)
    answers = _responses(session, claims, language(request)) if claims else []
    query = request.url.query
    _audit(
        session,
        caller,
        claims,
        "search",
        "GET /fhir/ClaimResponse" + (f"?{query}" if query else ""),
    )
    bundle = searchset(
        base_url(request),
        "ClaimResponse",
        answers,
        total=total,
        params=query_params(request),
        count=count,
        offset=offset,
    )
    return fhir_response(bundle)
