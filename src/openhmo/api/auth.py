"""The OAuth2 token endpoint (RFC 6749): password grant for people, client credentials for systems.

Errors are RFC 6749 section 5.2 JSON (`error`, `error_description`). SMART's discovery
document points here (/fhir/.well-known/smart-configuration).
"""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openhmo.access import apps
from openhmo.access.accounts import address_paused, authenticate
from openhmo.access.scopes import ScopeError, grant
from openhmo.access.tokens import LIFETIME_SECONDS, TokenClaims, expiry, issue
from openhmo.api.deps import WriteDB, client_address

router = APIRouter(tags=["auth"])


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


def _refuse(
    status: int, error: str, description: str, retry_after: int | None = None
) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="openhmo"'
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": error, "error_description": description}, status, headers=headers)


def _paused(request: Request, session) -> JSONResponse | None:
    """429 (RFC 6585) while the caller's address is paused for failed sign-ins."""
    left = address_paused(session, client_address(request))
    if left is None:
        return None
    seconds = max(1, int(left.total_seconds()) + 1)
    return _refuse(
        429,
        "slow_down",
        "too many failed sign-ins from this address: try again later",
        retry_after=seconds,
    )


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, _, secret = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    # RFC 6749 2.3.1: both are form-encoded before they are joined.
    return unquote_plus(name), unquote_plus(secret)


def client_credentials(
    request: Request, client_id: str | None, client_secret: str | None
) -> tuple[str | None, str | None]:
    """The client's id and secret: HTTP Basic if sent, else the form's (RFC 6749 2.3.1)."""
    basic = _basic(request)
    return basic if basic else (client_id, client_secret)


def _claims(
    account, scopes: str, grant_id: int | None = None, client_id: str | None = None
) -> TokenClaims:
    """What a token for `account` carries: who, the role, the scopes, and the app's grant."""
    return TokenClaims(
        account_id=account.id,
        username=account.username,
        role=account.role,
        scopes=scopes,
        member_id=account.member_id,
        provider_id=account.provider_id,
        expires_at=expiry(),
        grant_id=grant_id,
        client_id=client_id,
    )


def _app_tokens(issued: apps.Issued, key: str) -> JSONResponse:
    """The answer to an app (SMART App Launch): the patient in context, a refresh token."""
    claims = _claims(issued.account, issued.scopes, issued.grant.id, issued.client_id)
    body = {
        "access_token": issue(key, claims),
        "token_type": "Bearer",
        "expires_in": LIFETIME_SECONDS,
        "scope": issued.granted,
        "patient": issued.patient,
    }
    if issued.refresh_token is not None:
        body["refresh_token"] = issued.refresh_token
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post(
    "/auth/token",
    response_model=TokenAnswer,
    responses={400: {"description": "RFC 6749 error"}, 401: {"description": "bad client"}},
)
def token(
    request: Request,
    session: WriteDB,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    code: Annotated[str | None, Form()] = None,
    redirect_uri: Annotated[str | None, Form()] = None,
    code_verifier: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
):
    """A bearer token: `password` (people), `client_credentials` (systems), and for apps a
    member connected (SMART App Launch) `authorization_code` and `refresh_token`."""
    if grant_type in ("authorization_code", "refresh_token"):
        name, secret = client_credentials(request, client_id, client_secret)
        try:
            if grant_type == "authorization_code":
                issued = apps.exchange_code(
                    session,
                    code=code,
                    redirect_uri=redirect_uri,
                    client_id=name,
                    client_secret=secret,
                    verifier=code_verifier,
                )
            else:
                issued = apps.refresh(
                    session, token=refresh_token, client_id=name, client_secret=secret, scope=scope
                )
        except apps.OAuthError as exc:
            # Answered, not raised: a revocation it made (a code or refresh token that
            # came back) commits with the route's transaction.
            return _refuse(exc.status, exc.error, exc.description)
        return _app_tokens(issued, request.app.state.signing_key)
    if grant_type in ("password", "client_credentials"):
        paused = _paused(request, session)
        if paused is not None:
            return paused
    if grant_type == "password":
        if not username or not password:
            return _refuse(400, "invalid_request", "the password grant needs username and password")
        account = authenticate(session, username, password, address=client_address(request))
        if account is None or account.role == "system":
            return _refuse(400, "invalid_grant", "unknown username or wrong password")
    elif grant_type == "client_credentials":
        name, secret = client_credentials(request, client_id, client_secret)
        if not name or not secret:
            return _refuse(401, "invalid_client", "client credentials are missing")
        account = authenticate(session, name, secret, address=client_address(request))
        if account is None or account.role != "system":
            return _refuse(401, "invalid_client", "unknown client or wrong secret")
    else:
        return _refuse(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    try:
        scopes = grant(scope, account.scopes)
    except ScopeError as exc:
        return _refuse(400, "invalid_scope", str(exc))
    claims = _claims(account, scopes)
    body = TokenAnswer(
        access_token=issue(request.app.state.signing_key, claims),
        token_type="Bearer",
        expires_in=LIFETIME_SECONDS,
        scope=scopes,
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})
