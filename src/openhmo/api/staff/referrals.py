"""Referral and prior-authorization review: the requests waiting for staff, and deciding them.

Decisions go through referrals.service (`approve_referral`, `deny_referral`,
`approve_prior_auth`, `deny_prior_auth`): the state machine, the history with the
caller as actor and the member's notice are theirs; a transition it refuses is a 409.
Every request shown names a member, so every read is audited: a referral as the FHIR
ServiceRequest it is, a prior authorization as the Claim (use preauthorization) that
Da Vinci PAS makes of it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller
from openhmo.api.deps import AuditedDB, WriteDB
from openhmo.api.errors import ApiError
from openhmo.api.staff.common import In, Out, Reason, actor, errors, staff
from openhmo.claims.context_db import utc
from openhmo.enrollment.models import Member
from openhmo.network.models import Provider
from openhmo.referrals.models import PriorAuthorization, Referral
from openhmo.referrals.service import (
    ReferralError,
    approve_prior_auth,
    approve_referral,
    deny_prior_auth,
    deny_referral,
    get_prior_auth,
    get_referral,
    prior_auth_queue,
    referral_queue,
)

router = APIRouter()

ReferralStatus = Literal["requested", "approved", "denied", "expired", "exhausted"]
AuthStatus = Literal["requested", "approved", "denied", "expired"]
ReferralNumber = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9]{1,20}$",
        description="the referral number, e.g. R000000001",
        examples=["R000000001"],
    ),
]
AuthNumber = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9]{1,20}$",
        description="the authorization number, e.g. PA000000001",
        examples=["PA000000001"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many")]


class ReviewRequest(Out):
    member_number: str
    member_name: str
    category: str = Field(description="the service category")
    diagnosis_codes: list[str]
    valid_from: date
    valid_to: date
    status: str
    status_reason: str = Field(description="why it is in its state (rules, staff, expiry)")
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    source: str


class ReferralOut(ReviewRequest):
    referral_number: str
    referring_npi: str = Field(description="the member's PCP who referred")
    specialist_npi: str | None
    specialty_prefix: str | None = Field(description="a NUCC taxonomy prefix, for any specialist")
    visits: int


class PriorAuthOut(ReviewRequest):
    auth_number: str
    requesting_npi: str
    servicing_npi: str | None
    procedure_codes: list[str]
    units: int | None


class DecisionIn(In):
    reason: Reason


def _people(session: Session, rows: list[Any]) -> tuple[dict[int, Member], dict[int, str]]:
    members = {r.member_id for r in rows}
    providers = {
        pid
        for r in rows
        for pid in (
            getattr(r, "referring_provider_id", None),
            getattr(r, "specialist_provider_id", None),
            getattr(r, "requesting_provider_id", None),
            getattr(r, "servicing_provider_id", None),
        )
        if pid is not None
    }
    by_id = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(members)))}
    npis = dict(
        session.execute(select(Provider.id, Provider.npi).where(Provider.id.in_(providers))).all()
    )
    return by_id, npis


def _common(row: Any, member: Member) -> dict[str, Any]:
    return {
        "member_number": member.member_number,
        "member_name": member.name,
        "category": row.category,
        "diagnosis_codes": list(row.diagnosis_codes or []),
        "valid_from": row.valid_from,
        "valid_to": row.valid_to,
        "status": row.status,
        "status_reason": row.status_reason or "",
        "decided_by": row.decided_by,
        "decided_at": utc(row.decided_at) if row.decided_at else None,
        "created_at": utc(row.created_at),
        "source": row.source,
    }


def _referrals(session: Session, rows: list[Referral]) -> list[dict[str, Any]]:
    members, npis = _people(session, rows)
    return [
        {
            **_common(r, members[r.member_id]),
            "referral_number": r.referral_number,
            "referring_npi": npis[r.referring_provider_id],
            "specialist_npi": npis.get(r.specialist_provider_id),
            "specialty_prefix": r.specialty_prefix,
            "visits": r.visits,
        }
        for r in rows
    ]


def _auths(session: Session, rows: list[PriorAuthorization]) -> list[dict[str, Any]]:
    members, npis = _people(session, rows)
    return [
        {
            **_common(a, members[a.member_id]),
            "auth_number": a.auth_number,
            "requesting_npi": npis[a.requesting_provider_id],
            "servicing_npi": npis.get(a.servicing_provider_id),
            "procedure_codes": list(a.procedure_codes or []),
            "units": a.units,
        }
        for a in rows
    ]


def _audit(session, caller, rows, resource_type: str, number: str, action: str, what: str):
    reads = [(r.member_id, resource_type, getattr(r, number)) for r in rows]
    record_reads(session, caller, reads, action=action, what=what)


def _listed(session: Session, model, status: str, queue_of, limit: int, offset: int) -> list:
    # The queue of what waits is the service's; other states are a plain listing.
    if status == "requested":
        rows = queue_of(session)
    else:
        rows = session.scalars(
            select(model).where(model.status == status).order_by(model.created_at, model.id)
        ).all()
    return list(rows)[offset : offset + limit]


def _decide(session: Session, find, decide, number: str, caller: Caller, reason: str):
    """Find the request (404), then have the service decide it (409 if its state forbids)."""
    try:
        find(session, number)
    except ReferralError as exc:
        raise ApiError(404, exc.reason, expression=["number"]) from None
    try:
        return decide(session, number, actor=actor(caller), reason=reason)
    except ReferralError as exc:
        raise ApiError(409, exc.reason, code="conflict") from None


# --- referrals ---------------------------------------------------------------------------


@router.get(
    "/referrals",
    response_model=list[ReferralOut],
    summary="Referrals in a state (default: requested, the queue waiting for staff)",
    responses=errors(),
)
def list_referrals(
    session: AuditedDB,
    caller: Annotated[Caller, staff("Referral", "read")],
    status: Annotated[ReferralStatus, Query(description="the referrals' state")] = "requested",
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Any:
    rows = _listed(session, Referral, status, referral_queue, limit, offset)
    _audit(
        session, caller, rows, "ServiceRequest", "referral_number", "search", "GET /staff/referrals"
    )
    return _referrals(session, rows)


@router.get(
    "/referrals/{number}",
    response_model=ReferralOut,
    summary="A referral",
    responses=errors(_404="no referral with this number"),
)
def show_referral(
    number: ReferralNumber, session: AuditedDB, caller: Annotated[Caller, staff("Referral", "read")]
) -> Any:
    try:
        referral = get_referral(session, number)
    except ReferralError as exc:
        raise ApiError(404, exc.reason, expression=["number"]) from None
    what = f"GET /staff/referrals/{referral.referral_number}"
    _audit(session, caller, [referral], "ServiceRequest", "referral_number", "read", what)
    return _referrals(session, [referral])[0]


_DECIDE_ERRORS = errors(
    _404="no request with this number",
    _409="its state forbids the decision (only a requested one is decided)",
)


def _decided_referral(session, caller, number: str, decide, reason: str, verb: str) -> Any:
    referral = _decide(session, get_referral, decide, number, caller, reason)
    what = f"POST /staff/referrals/{referral.referral_number}/{verb}"
    _audit(session, caller, [referral], "ServiceRequest", "referral_number", "read", what)
    return _referrals(session, [referral])[0]


@router.post(
    "/referrals/{number}/approve",
    response_model=ReferralOut,
    summary="Approve a referral waiting for review",
    responses=_DECIDE_ERRORS,
)
def approve_a_referral(
    number: ReferralNumber,
    body: DecisionIn,
    session: WriteDB,
    caller: Annotated[Caller, staff("Referral", "update")],
) -> Any:
    return _decided_referral(session, caller, number, approve_referral, body.reason, "approve")


@router.post(
    "/referrals/{number}/deny",
    response_model=ReferralOut,
    summary="Deny a referral waiting for review",
    responses=_DECIDE_ERRORS,
)
def deny_a_referral(
    number: ReferralNumber,
    body: DecisionIn,
    session: WriteDB,
    caller: Annotated[Caller, staff("Referral", "update")],
) -> Any:
    return _decided_referral(session, caller, number, deny_referral, body.reason, "deny")


# --- prior authorizations ------------------------------------------------------------------


@router.get(
    "/prior-authorizations",
    response_model=list[PriorAuthOut],
    summary="Prior authorizations in a state (default: requested, waiting for staff)",
    responses=errors(),
)
def list_prior_auths(
    session: AuditedDB,
    caller: Annotated[Caller, staff("Referral", "read")],
    status: Annotated[AuthStatus, Query(description="the requests' state")] = "requested",
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Any:
    rows = _listed(session, PriorAuthorization, status, prior_auth_queue, limit, offset)
    what = "GET /staff/prior-authorizations"
    _audit(session, caller, rows, "Claim", "auth_number", "search", what)
    return _auths(session, rows)


@router.get(
    "/prior-authorizations/{number}",
    response_model=PriorAuthOut,
    summary="A prior authorization",
    responses=errors(_404="no prior authorization with this number"),
)
def show_prior_auth(
    number: AuthNumber, session: AuditedDB, caller: Annotated[Caller, staff("Referral", "read")]
) -> Any:
    try:
        auth = get_prior_auth(session, number)
    except ReferralError as exc:
        raise ApiError(404, exc.reason, expression=["number"]) from None
    what = f"GET /staff/prior-authorizations/{auth.auth_number}"
    _audit(session, caller, [auth], "Claim", "auth_number", "read", what)
    return _auths(session, [auth])[0]


def _decided_auth(session, caller, number: str, decide, reason: str, verb: str) -> Any:
    auth = _decide(session, get_prior_auth, decide, number, caller, reason)
    what = f"POST /staff/prior-authorizations/{auth.auth_number}/{verb}"
    _audit(session, caller, [auth], "Claim", "auth_number", "read", what)
    return _auths(session, [auth])[0]


@router.post(
    "/prior-authorizations/{number}/approve",
    response_model=PriorAuthOut,
    summary="Approve a prior authorization waiting for review",
    responses=_DECIDE_ERRORS,
)
def approve_a_prior_auth(
    number: AuthNumber,
    body: DecisionIn,
    session: WriteDB,
    caller: Annotated[Caller, staff("Referral", "update")],
) -> Any:
    return _decided_auth(session, caller, number, approve_prior_auth, body.reason, "approve")


@router.post(
    "/prior-authorizations/{number}/deny",
    response_model=PriorAuthOut,
    summary="Deny a prior authorization waiting for review",
    responses=_DECIDE_ERRORS,
)
def deny_a_prior_auth(
    number: AuthNumber,
    body: DecisionIn,
    session: WriteDB,
    caller: Annotated[Caller, staff("Referral", "update")],
) -> Any:
    return _decided_auth(session, caller, number, deny_prior_auth, body.reason, "deny")
