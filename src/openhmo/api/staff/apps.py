"""The apps a member connected (SMART App Launch), as staff see them, and ending one.

For a member who asks who has their data through an app (HIPAA's accounting of
disclosures) or who calls to have an app cut off: every app any account of the member
connected, with when it was allowed and when it ended, and ending one at once, its
refresh and access tokens with it (access.apps). The member does the same for themself
at /auth/apps; an app that misbehaves for everyone is stopped with
`openhmo api disable-client`. The list names a member and who holds their data: each
read is audited against the member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from openhmo.access import apps
from openhmo.access.audit import record_reads
from openhmo.access.visibility import Caller
from openhmo.api.deps import AuditedDB, WriteDB
from openhmo.api.errors import ApiError
from openhmo.api.staff.common import (
    MAX_ID,
    In,
    MemberNumber,
    Out,
    Reason,
    actor,
    errors,
    member_by_number,
    staff,
)

router = APIRouter()

GrantId = Annotated[int, Path(ge=1, le=MAX_ID, description="the connection's id, from the list")]


class AppConnection(Out):
    id: int
    username: str
    client_id: str
    app: str
    scopes: str
    offline_access: bool
    approved_at: datetime
    ended_at: datetime | None


class EndConnection(In):
    reason: Reason


@router.get(
    "/members/{member_number}/apps",
    response_model=list[AppConnection],
    summary="The apps a member connected to their account, ended ones too",
    responses=errors(_404="no member with this number"),
)
def member_apps(
    member_number: MemberNumber,
    session: AuditedDB,
    caller: Annotated[Caller, staff("ConnectedApp", "read")],
) -> Any:
    member = member_by_number(session, member_number)
    found = apps.authorizations(session, member.id)
    record_reads(
        session,
        caller,
        [(member.id, "Consent", member.member_number)],
        action="read",
        what=f"GET /staff/members/{member.member_number}/apps",
    )
    return [
        AppConnection(
            id=c.grant_id,
            username=c.username,
            client_id=c.client_id,
            app=c.app,
            scopes=c.scopes,
            offline_access=c.offline,
            approved_at=c.approved_at,
            ended_at=c.ended_at,
        )
        for c in found
    ]


@router.post(
    "/members/{member_number}/apps/{grant_id}/end",
    status_code=204,
    summary="End an app's access to a member's data, for the member: at once",
    responses=errors(_404="no such member, or no live connection of theirs with this id"),
)
def end_member_app(
    member_number: MemberNumber,
    grant_id: GrantId,
    body: EndConnection,
    session: WriteDB,
    caller: Annotated[Caller, staff("ConnectedApp", "update")],
) -> Response:
    member = member_by_number(session, member_number)
    if not apps.end_for_member(session, member.id, grant_id, actor=actor(caller), why=body.reason):
        raise ApiError(
            404,
            f"member {member.member_number} has no live app connection {grant_id}",
            expression=["grant_id"],
        )
    return Response(status_code=204)
