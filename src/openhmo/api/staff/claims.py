"""The pended-claim queue: the lines waiting for staff, a claim as staff read it, and
approving or denying a pended line.

Approve and deny go through claims.service (`approve` / `deny`), which writes the
override and its history with the caller as actor and re-adjudicates the family plan
year; the answer is the claim as that run left it. Every claim shown names a member,
so every read is audited.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller
from openhmo.adjudication.explain import explanation_text
from openhmo.api.deps import AuditedDB, WriteDB
from openhmo.api.errors import ApiError
from openhmo.api.staff.common import (
    MAX_CENTS,
    MAX_ID,
    ClaimId,
    In,
    LineNumber,
    Out,
    Reason,
    actor,
    errors,
    short_text,
    staff,
)
from openhmo.claims.context_db import utc
from openhmo.claims.intake import ClaimError
from openhmo.claims.models import ClaimLine, ClaimOverride
from openhmo.claims.service import approve, current_decisions, deny, get_claim, queue
from openhmo.i18n import LANGUAGES

router = APIRouter()

Language = Literal[LANGUAGES]  # type: ignore[valid-type]
Carc = short_text(8, "a claim adjustment reason code (CARC, group CO), e.g. 50")


class QueueItemOut(Out):
    claim_id: str
    line_number: int
    member_number: str
    member_name: str
    pend_reason: str | None = Field(description="why it waits: pricing, referral_review, ...")
    procedure_code: str | None
    service_date: date
    charge_cents: int
    received_at: datetime
    age_days: int = Field(description="days since the claim was received")


class PendedQueue(Out):
    total: int = Field(description="pended lines in the queue")
    items: list[QueueItemOut]


class Adjustment(Out):
    group: str = Field(description="CAS group code: CO, PR, OA, PI")
    carc: str
    rarc: str | None = None
    amount_cents: int


class TraceStep(Out):
    step: str
    clause: str | None = None
    note: str | None = None


class DecisionOut(Out):
    status: str = Field(description="paid, denied, pended, voided, replaced or void")
    pend_reason: str | None
    category: str | None
    network_tier: str | None
    cost_share_tier: str | None
    emergency: bool | None
    charge_cents: int
    allowed_cents: int | None
    plan_paid_cents: int | None
    deductible_cents: int | None
    copay_cents: int | None
    coinsurance_cents: int | None
    member_share_cents: int | None
    adjustments: list[Adjustment]
    trace: list[TraceStep]
    explanation: str = Field(description="the member's explanation, in the asked language")
    referral_number: str | None
    prior_auth_number: str | None
    decided_at: datetime


class LineOut(Out):
    line_number: int
    service_date: date
    procedure_code: str | None
    modifiers: list[str]
    revenue_code: str | None
    units: str = Field(description="units of service, an exact decimal")
    charge_cents: int
    place_of_service: str | None
    rendering_npi: str | None
    decision: DecisionOut | None = Field(description="the current decision; null until adjudicated")


class OverrideOut(Out):
    line_number: int
    action: str = Field(description="approve or deny")
    carc: str | None
    allowed_cents: int | None
    reason: str
    actor: str
    created_at: datetime


class ClaimOut(Out):
    claim_id: str
    status: str = Field(description="received, adjudicated, pended, voided or replaced")
    member_number: str
    patient_control_number: str
    billing_npi: str
    rendering_npi: str | None
    claim_type: str
    frequency_code: str
    replaces_claim_id: str | None
    place_of_service: str | None
    diagnosis_codes: list[str]
    referral_number: str | None
    prior_auth_number: str | None
    emergency: bool
    received_at: datetime
    total_charge_cents: int
    source: str
    lines: list[LineOut]
    overrides: list[OverrideOut] = Field(description="staff resolutions of its pended lines")


class ApproveIn(In):
    reason: Reason
    allowed_cents: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CENTS,
        strict=True,
        description="the allowed amount in cents; needed for a line pended for pricing",
    )


class DenyIn(In):
    reason: Reason
    carc: Carc


def _claim_out(session: Session, claim_id: str, language: str) -> dict[str, Any]:
    try:
        claim = get_claim(session, claim_id)
    except ClaimError as exc:
        raise ApiError(404, str(exc), expression=["claim_id"]) from None
    decisions = {d.line_number: d for d in current_decisions(session, claim)}
    overrides = session.scalars(
        select(ClaimOverride).where(ClaimOverride.claim_id == claim.id).order_by(ClaimOverride.id)
    ).all()
    return {
        "claim_id": claim.claim_id,
        "status": claim.status,
        "member_number": claim.member_number,
        "member_id": claim.member_id,
        "patient_control_number": claim.patient_control_number,
        "billing_npi": claim.billing_npi,
        "rendering_npi": claim.rendering_npi,
        "claim_type": claim.claim_type,
        "frequency_code": claim.frequency_code,
        "replaces_claim_id": claim.replaces_claim_id,
        "place_of_service": claim.place_of_service,
        "diagnosis_codes": list(claim.diagnosis_codes or []),
        "referral_number": claim.referral_number,
        "prior_auth_number": claim.prior_auth_number,
        "emergency": claim.emergency,
        "received_at": utc(claim.received_at),
        "total_charge_cents": claim.total_charge_cents,
        "source": claim.source,
        "lines": [_line(line, decisions.get(line.line_number), language) for line in claim.lines],
        "overrides": [{**_columns(o), "created_at": utc(o.created_at)} for o in overrides],
    }


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def _line(line: ClaimLine, decision: Any, language: str) -> dict[str, Any]:
    out = {**_columns(line), "units": str(line.units), "modifiers": list(line.modifiers or [])}
    if decision is None:
        return {**out, "decision": None}
    return {
        **out,
        "decision": {
            **_columns(decision),
            "explanation": explanation_text(
                decision.explanation_id, decision.explanation_params or {}, language
            ),
            "decided_at": utc(decision.decided_at),
        },
    }


def _audit(session: Session, caller: Caller, claim: dict[str, Any], what: str, action: str):
    if claim["member_id"] is not None:  # a claim of someone who is not a member names no one
        record_reads(
            session,
            caller,
            [(claim["member_id"], "Claim", claim["claim_id"])],
            action=action,
            what=what,
        )


@router.get(
    "/claims/pended",
    response_model=PendedQueue,
    summary="Pended lines waiting for staff, oldest claim first",
    responses=errors(),
)
def pended_queue(
    session: AuditedDB,
    caller: Annotated[Caller, staff("PendedClaim", "read")],
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many lines")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="skip this many lines")] = 0,
) -> Any:
    items = queue(session)
    page = items[offset : offset + limit]
    record_reads(
        session,
        caller,
        [(i.member_id, "Claim", i.claim_id) for i in page if i.member_id is not None],
        action="search",
        what="GET /staff/claims/pended",
    )
    return {"total": len(items), "items": page}


@router.get(
    "/claims/{claim_id}",
    response_model=ClaimOut,
    summary="A claim with its lines and their current decisions",
    responses=errors(_404="no claim with this id"),
)
def show_claim(
    claim_id: ClaimId,
    session: AuditedDB,
    caller: Annotated[Caller, staff("PendedClaim", "read")],
    language: Annotated[Language, Query(description="the explanations' language")] = "en",
) -> Any:
    claim = _claim_out(session, claim_id, language)
    _audit(session, caller, claim, f"GET /staff/claims/{claim['claim_id']}", "read")
    return claim


def _resolve(session: Session, caller: Caller, claim_id: str, line_number: int, run) -> Any:
    """Run a resolution of the service; its refusals as 404, 409 or 422."""
    try:
        claim = get_claim(session, claim_id)
    except ClaimError as exc:
        raise ApiError(404, str(exc), expression=["claim_id"]) from None
    line = session.scalar(
        select(ClaimLine.id).where(
            ClaimLine.claim_id == claim.id, ClaimLine.line_number == line_number
        )
    )
    if line is None:
        raise ApiError(
            404, f"claim {claim.claim_id} has no line {line_number}", expression=["line_number"]
        )
    try:
        run(claim.claim_id)
    except ClaimError as exc:
        # The line is there: what the service refuses on it is its state (not pended, not
        # adjudicated yet); anything else is a value of the body.
        if exc.field == "line_number":
            raise ApiError(409, str(exc), code="conflict", expression=["line_number"]) from None
        raise ApiError(422, str(exc), code="processing", expression=[exc.field or "body"]) from None
    session.flush()
    out = _claim_out(session, claim.claim_id, "en")
    _audit(
        session,
        caller,
        out,
        f"POST /staff/claims/{out['claim_id']}/lines/{line_number}",
        "read",
    )
    return out


_RESOLVE_ERRORS = errors(
    _404="no claim with this id, or no such line on it",
    _409="the line is not pended (already decided, or not adjudicated yet)",
    _422="the service refuses a value (a pricing pend needs allowed_cents; a bad CARC)",
)


@router.post(
    "/claims/{claim_id}/lines/{line_number}/approve",
    response_model=ClaimOut,
    summary="Approve a pended line; the family plan year is re-adjudicated",
    responses=_RESOLVE_ERRORS,
)
def approve_line(
    claim_id: ClaimId,
    line_number: LineNumber,
    body: ApproveIn,
    session: WriteDB,
    caller: Annotated[Caller, staff("PendedClaim", "update")],
) -> Any:
    return _resolve(
        session,
        caller,
        claim_id,
        line_number,
        lambda cid: approve(
            session,
            cid,
            line_number,
            allowed_cents=body.allowed_cents,
            reason=body.reason,
            actor=actor(caller),
        ),
    )


@router.post(
    "/claims/{claim_id}/lines/{line_number}/deny",
    response_model=ClaimOut,
    summary="Deny a pended line with a CARC (group CO); the family plan year is re-adjudicated",
    responses=_RESOLVE_ERRORS,
)
def deny_line(
    claim_id: ClaimId,
    line_number: LineNumber,
    body: DenyIn,
    session: WriteDB,
    caller: Annotated[Caller, staff("PendedClaim", "update")],
) -> Any:
    return _resolve(
        session,
        caller,
        claim_id,
        line_number,
        lambda cid: deny(
            session, cid, line_number, carc=body.carc, reason=body.reason, actor=actor(caller)
        ),
    )
