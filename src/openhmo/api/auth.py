"""The OAuth2 token endpoint (RFC 6749): password grant for people, client credentials for systems.

Errors are RFC 6749 section 5.2 JSON (`error`, `error_description`). SMART's discovery
document points here (/fhir/.well-known/smart-configuration).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openhmo.access.accounts import authenticate
from openhmo.access.scopes import ScopeError, grant
from openhmo.access.tokens import LIFETIME_SECONDS, TokenClaims, expiry, issue
from openhmo.api.deps import DB

router = APIRouter(tags=["auth"])


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


def _refuse(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="openhmo"'
    return JSONResponse({"error": error, "error_description": description}, status, headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, _, secret = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return name, secret


@router.post(
    "/auth/token",
    response_model=TokenAnswer,
    responses={400: {"description": "RFC 6749 error"}, 401: {"description": "bad client"}},
)
def token(
    request: Request,
    session: DB,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
):
    """A bearer token for an account: `password` (people) or `client_credentials` (systems)."""
    if grant_type == "password":
        if not username or not password:
            return _refuse(400, "invalid_request", "the password grant needs username and password")
        account = authenticate(session, username, password)
        if account is None or account.role == "system":
            return _refuse(400, "invalid_grant", "unknown username or wrong password")
    elif grant_type == "client_credentials":
        basic = _basic(request)
        name, secret = basic if basic else (client_id, client_secret)
        if not name or not secret:
            return _refuse(401, "invalid_client", "client credentials are missing")
        account = authenticate(session, name, secret)
        if account is None or account.role != "system":
            return _refuse(401, "invalid_client", "unknown client or wrong secret")
    else:
        return _refuse(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    try:
        scopes = grant(scope, account.scopes)
    except ScopeError as exc:
        return _refuse(400, "invalid_scope", str(exc))
    claims = TokenClaims(
        account_id=account.id,
        username=account.username,
        role=account.role,
        scopes=scopes,
        member_id=account.member_id,
        provider_id=account.provider_id,
        expires_at=expiry(),
    )
    body = TokenAnswer(
        access_token=issue(request.app.state.signing_key, claims),
        token_type="Bearer",
        expires_in=LIFETIME_SECONDS,
        scope=scopes,
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})
