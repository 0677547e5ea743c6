"""/auth/apps: the apps a member has connected to their account, and disconnecting one.

Only the member, signed in themself: an app's own token (SMART App Launch) may not list
or end the member's other connections, nor anyone else's. Disconnecting ends the app's
refresh token and, at once, every access token it holds (access.apps).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from openhmo.access import apps
from openhmo.access.models import ApiAccount
from openhmo.access.visibility import Caller
from openhmo.api.deps import DB, WriteDB, require
from openhmo.api.errors import ApiError

router = APIRouter(tags=["auth"])


def _the_member(caller: Annotated[Caller, Depends(require("Patient", "read"))]) -> Caller:
    if caller.role != "member":
        raise ApiError(403, "only a member manages the apps connected to their account")
    if caller.app is not None:
        raise ApiError(403, "an app may not manage the member's connected apps")
    return caller


Member = Annotated[Caller, Depends(_the_member)]


class ConnectedApp(BaseModel):
    id: int
    client_id: str
    name: str
    scope: str
    offline_access: bool
    approved_at: str


@router.get(
    "/auth/apps",
    response_model=list[ConnectedApp],
    summary="The apps connected to the signed-in member's account",
)
def connected(caller: Member, session: DB):
    return [
        ConnectedApp(
            id=c.grant_id,
            client_id=c.client_id,
            name=c.app,
            scope=c.scopes,
            offline_access=c.offline,
            approved_at=c.approved_at.isoformat(timespec="seconds"),
        )
        for c in apps.connections(session, caller.account_id)
    ]


@router.post(
    "/auth/apps/{grant_id}/revoke",
    status_code=204,
    summary="Disconnect an app: its refresh and access tokens stop working at once",
    responses={404: {"description": "no such connected app of this member"}},
)
def disconnect(grant_id: int, caller: Member, session: WriteDB):
    account = session.get(ApiAccount, caller.account_id)
    if account is None or not apps.disconnect(session, account, grant_id):
        raise ApiError(404, f"no connected app {grant_id} on this account")
    return Response(status_code=204)
