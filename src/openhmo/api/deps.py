"""What every route depends on: one database transaction, and who is calling with what scopes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

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


def _from_token(request: Request) -> Caller:
    """The caller the request's bearer token names (anonymous without one), its signature
    and expiry checked; its account not yet (see `confirm_account`)."""
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
    return Caller(
        username=claims.username,
        role=claims.role,
        scopes=claims.scopes,
        account_id=claims.account_id,
        member_id=claims.member_id,
        provider_id=claims.provider_id,
        address=address,
        app=claims.client_id,
        grant_id=claims.grant_id,
    )


# Built once: building a statement and its cache key cost more than running it.
_ACTIVE = select(ApiAccount.active).where(ApiAccount.id == bindparam("account_id"))
_ACTIVE_GRANT = (
    select(ApiAccount.active)
    .join(OAuthGrant, OAuthGrant.account_id == ApiAccount.id)
    .where(
        ApiAccount.id == bindparam("account_id"),
        OAuthGrant.id == bindparam("grant_id"),
        OAuthGrant.revoked_at.is_(None),
    )
)


def confirm_account(connection: Connection, caller: Caller) -> None:
    """Refuse (401) a token whose account is disabled, or, for an app's token
    (access.apps), whose grant the member revoked: such tokens stop working at once, not
    when they expire."""
    if caller.anonymous:
        return
    if caller.grant_id is None:
        active = connection.scalar(_ACTIVE, {"account_id": caller.account_id})
    else:
        params = {"account_id": caller.account_id, "grant_id": caller.grant_id}
        active = connection.scalar(_ACTIVE_GRANT, params)
    if not active:
        raise ApiError(
            401,
            "the account of this token is disabled"
            + (", or the app's authorization was revoked" if caller.grant_id else ""),
            code="login",
            headers={"WWW-Authenticate": f'{_BEARER}, error="invalid_token"'},
        )


def _confirm_alone(single_reads: Engine, caller: Caller) -> None:
    # Its own short connection: the route's transaction then begins with the route's
    # first statement (on SQLite a writing route must take the write lock before it
    # reads anything).
    with single_reads.connect() as connection:
        confirm_account(connection, caller)


# The routes marked by `confirms_account`.
CONFIRMING_ITSELF: set = set()


def confirms_account(endpoint):
    """Mark a route that calls `confirm_account` itself, first thing in the worker thread
    and transaction it does all its database work in: its callers' accounts are then not
    also checked in a thread and connection of their own (a thread hop, a pool checkout
    and a round trip saved on every call). tests/test_api_auth.py sends a disabled
    account's token to every route so marked."""
    endpoint.confirms_account = True
    CONFIRMING_ITSELF.add(endpoint)
    return endpoint


def _confirmed_by_route(request: Request) -> bool:
    return getattr(request.scope.get("endpoint"), "confirms_account", False)


# async: the token is read on the event loop; only the account's check, a read, goes to
# a worker thread (and none for a route that confirms it in its own).
async def _caller(request: Request) -> Caller:
    caller = _from_token(request)
    if not caller.anonymous and not _confirmed_by_route(request):
        await run_in_threadpool(_confirm_alone, request.app.state.single_reads, caller)
    return caller


AnyCaller = Annotated[Caller, Depends(_caller)]


async def check_token(caller: AnyCaller) -> Caller:
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
