"""What every route depends on: one database transaction, and who is calling with what scopes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from openhmo.access.models import ApiAccount, OAuthGrant
from openhmo.access.scopes import allows
from openhmo.access.tokens import TokenError, read
from openhmo.access.visibility import ANONYMOUS, Caller
from openhmo.api.errors import ApiError
from openhmo.claims.intake import sqlite_write_lock


def _session(request: Request) -> Iterator[Session]:
    """One transaction per call: committed when the route returns, rolled back if it fails.

    The audit rows of a read are in the same transaction as the read, and the commit
    happens before the answer is sent (scope="function" below), so nothing is shown
    whose reading was not recorded.
    """
    with request.app.state.sessions() as session, session.begin():
        yield session


DB = Annotated[Session, Depends(_session, scope="function")]


@contextmanager
def write_transaction(sessions: sessionmaker) -> Iterator[Session]:
    """A transaction that will write: on SQLite it takes the write lock before any read.

    SQLite refuses (at once, "database is locked") a write in a transaction that read
    before another writer committed, so a writing route waits for the lock first and
    then reads what is current (claims.intake.sqlite_write_lock); PostgreSQL needs none.
    Committed when the block ends, rolled back if it fails.
    """
    with sessions() as session, session.begin():
        sqlite_write_lock(session)
        yield session


def _write_session(request: Request) -> Iterator[Session]:
    """`write_transaction` as a route's dependency."""
    with write_transaction(request.app.state.sessions) as session:
        yield session


WriteDB = Annotated[Session, Depends(_write_session, scope="function")]
# A read of personal health data writes its audit rows: it is a writing transaction.
AuditedDB = WriteDB

_BEARER = 'Bearer realm="openhmo"'


def client_address(request: Request) -> str | None:
    """The caller's address, as uvicorn has it (behind a proxy: --proxy-headers)."""
    return request.client.host if request.client else None


def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization")
    address = client_address(request) or ""
    if not header:
        return Caller(username=ANONYMOUS.username, role=ANONYMOUS.role, address=address)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "Authorization must be 'Bearer <token>'",
            code="login",
            headers={"WWW-Authenticate": _BEARER},
        )
    try:
        claims = read(request.app.state.signing_key, token.strip())
    except TokenError as exc:
        raise ApiError(
            401,
            str(exc),
            code="login",
            headers={"WWW-Authenticate": f'{_BEARER}, error="invalid_token"'},
        ) from exc
    # A disabled account's tokens stop working at once, not when they expire. Its own
    # short connection: the route's transaction then begins with the route's first
    # statement (on SQLite a writing route must take the write lock before it reads
    # anything); no ORM session, as this one value is read on every call.
    # An app's token (access.apps) also ends with the member's grant to the app.
    active = select(ApiAccount.active).where(ApiAccount.id == claims.account_id)
    if claims.grant_id is not None:
        active = active.join(OAuthGrant, OAuthGrant.account_id == ApiAccount.id).where(
            OAuthGrant.id == claims.grant_id, OAuthGrant.revoked_at.is_(None)
        )
    with request.app.state.single_reads.connect() as connection:
        active = connection.scalar(active)
    if not active:
        raise ApiError(
            401,
            "the account of this token is disabled"
            + (", or the app's authorization was revoked" if claims.grant_id else ""),
            code="login",
            headers={"WWW-Authenticate": f'{_BEARER}, error="invalid_token"'},
        )
    return Caller(
        username=claims.username,
        role=claims.role,
        scopes=claims.scopes,
        account_id=claims.account_id,
        member_id=claims.member_id,
        provider_id=claims.provider_id,
        address=address,
        app=claims.client_id,
    )


AnyCaller = Annotated[Caller, Depends(_caller)]


def check_token(caller: AnyCaller) -> Caller:
    """The caller, anonymous or signed in with a good token (a bad one is a 401)."""
    return caller


def require(resource: str, action: str, *, roles: tuple[str, ...] | None = None):
    """A dependency: the caller, if signed in with a scope for `action` on `resource`."""

    # async: no I/O here, so FastAPI runs it on the event loop, not a worker thread.
    async def check(caller: AnyCaller) -> Caller:
        if caller.anonymous:
            raise ApiError(
                401,
                f"sign in to {action} {resource}",
                code="login",
                headers={"WWW-Authenticate": _BEARER},
            )
        if roles is not None and caller.role not in roles:
            raise ApiError(403, f"a {caller.role} may not {action} {resource}", code="forbidden")
        if not allows(caller.scopes, resource, action):
            raise ApiError(
                403, f"the token's scopes do not allow {action} on {resource}", code="forbidden"
            )
        return caller

    return check
