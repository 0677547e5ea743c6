"""GET /fhir/AuditEvent: staff read who read whose personal health data, when and from where."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select

from openhmo.access.visibility import Caller
from openhmo.api.deps import DB, require
from openhmo.api.errors import ApiError
from openhmo.api.fhir.capabilities import ResourceSupport, SearchParam, declare
from openhmo.api.fhir.responses import (
    DEFAULT_COUNT,
    MAX_COUNT,
    base_url,
    fhir_response,
    query_params,
)
from openhmo.enrollment.models import Member
from openhmo.history.models import PhiAccess
from openhmo.interop.fhir.audit_event import audit_event
from openhmo.interop.fhir.common import searchset

router = APIRouter()
Staff = Annotated[Caller, Depends(require("AuditEvent", "read", roles=("staff",)))]
StaffSearch = Annotated[Caller, Depends(require("AuditEvent", "search", roles=("staff",)))]

declare(
    ResourceSupport(
        type="AuditEvent",
        interactions=("read", "search-type"),
        search=(
            SearchParam("patient", "reference", "Reads of this patient's data (Patient/<id>)"),
            SearchParam("agent-name", "string", "Reads by this account"),
            SearchParam("date", "date", "When, with ge/gt/le/lt prefixes"),
            SearchParam("address", "string", "Reads from this network address"),
        ),
        documentation="Every read of personal health data; staff only.",
    )
)

_KNOWN = {"patient", "agent-name", "date", "address", "_count", "_offset"}


def _moment(value: str, where: str) -> tuple[str, datetime]:
    prefix = value[:2] if value[:2] in ("ge", "gt", "le", "lt", "eq") else "eq"
    text = value[2:] if value[:2] == prefix else value
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            moment = datetime.combine(day, time.max if prefix in ("le", "gt") else time.min)
            moment = moment.replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError as exc:
        raise ApiError(
            400, f"{where}: {value!r} is not a FHIR date or dateTime", expression=[where]
        ) from exc
    return prefix, moment


@router.get("/AuditEvent/{event_id}", summary="Read an AuditEvent")
def read(event_id: str, session: DB, _caller: Staff):
    row_id = event_id.removeprefix("phi-")
    if not row_id.isdigit():
        raise ApiError(404, f"AuditEvent/{event_id} is not known")
    found = session.execute(
        select(PhiAccess, Member.member_number)
        .join(Member, Member.id == PhiAccess.member_id)
        .where(PhiAccess.id == int(row_id))
    ).first()
    if found is None:
        raise ApiError(404, f"AuditEvent/{event_id} is not known")
    return fhir_response(audit_event(found[0], found[1]))


@router.get("/AuditEvent", summary="Search AuditEvents")
def search(
    request: Request,
    session: DB,
    _caller: StaffSearch,
    count: Annotated[int, Query(alias="_count", ge=0, le=MAX_COUNT)] = DEFAULT_COUNT,
    offset: Annotated[int, Query(alias="_offset", ge=0)] = 0,
):
    params = query_params(request)
    unknown = sorted({k for k, _ in params} - _KNOWN)
    if unknown:
        raise ApiError(
            400,
            f"unknown search parameter {unknown[0]!r} for AuditEvent",
            code="not-supported",
            expression=[unknown[0]],
        )
    stmt = select(PhiAccess, Member.member_number).join(Member, Member.id == PhiAccess.member_id)
    for key, value in params:
        if key == "patient":
            stmt = stmt.where(Member.member_number == value.removeprefix("Patient/"))
        elif key == "agent-name":
            stmt = stmt.where(PhiAccess.actor == value)
        elif key == "address":
            stmt = stmt.where(PhiAccess.source_address == value)
        elif key == "date":
            prefix, moment = _moment(value, "date")
            column = PhiAccess.accessed_at
            stmt = stmt.where(
                {
                    "ge": column >= moment,
                    "gt": column > moment,
                    "le": column <= moment,
                    "lt": column < moment,
                    "eq": column == moment,
                }[prefix]
            )
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(
        stmt.order_by(PhiAccess.accessed_at.desc(), PhiAccess.id.desc()).limit(count).offset(offset)
    ).all()
    events = [audit_event(row, number) for row, number in rows]
    bundle = searchset(
        base_url(request),
        "AuditEvent",
        events,
        total=total or 0,
        params=params,
        count=count,
        offset=offset,
    )
    return fhir_response(bundle)
