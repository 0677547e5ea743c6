"""Creating accounts and checking their secrets: the only place a password is compared."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openhmo.access.models import ROLES, ApiAccount, SignInFailure
from openhmo.access.passwords import hash_secret, verify_secret
from openhmo.access.scopes import check_account_scopes
from openhmo.db.types import as_aware, utcnow
from openhmo.enrollment.models import Member
from openhmo.history.record import record_change
from openhmo.network.models import Provider

# Wrong passwords in a row before sign-in pauses, and how long it pauses: five tries a
# quarter of an hour is some 500 guesses a day, against the ten or more characters and
# argon2 of access.passwords.
MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
# Per address, whatever usernames it tries (password spraying: one password against many
# accounts, which no account's own count sees): this many failures within ADDRESS_WINDOW
# pause the address's sign-ins until the oldest of them is older than the window. While
# paused, its tries count against no account, so one address cannot keep pausing
# accounts. (Behind a proxy the server must be told the client's address: uvicorn's
# --proxy-headers with --forwarded-allow-ips.)
MAX_ADDRESS_FAILURES = 30
ADDRESS_WINDOW = timedelta(minutes=15)


class AccountError(ValueError):
    """An account that cannot be made as asked (unknown member or NPI, taken name, ...)."""


@dataclass(frozen=True)
class NewAccount:
    username: str
    role: str
    member_number: str | None = None
    provider_npi: str | None = None
    scopes: str = ""


def create_account(session: Session, new: NewAccount, secret: str, *, actor: str) -> ApiAccount:
    """Add an account; a member's names the member, a provider office's the provider."""
    if new.role not in ROLES:
        raise AccountError(f"role {new.role!r} is not one of {', '.join(ROLES)}")
    if session.scalar(select(ApiAccount.id).where(ApiAccount.username == new.username)):
        raise AccountError(f"username {new.username!r} is taken")
    member_id = provider_id = None
    if new.role == "member":
        if not new.member_number:
            raise AccountError("a member's account needs the member number")
        member_id = session.scalar(
            select(Member.id).where(Member.member_number == new.member_number.upper())
        )
        if member_id is None:
            raise AccountError(f"no member {new.member_number}")
    elif new.member_number:
        raise AccountError(f"a {new.role} account is not bound to a member")
    if new.role == "provider":
        if not new.provider_npi:
            raise AccountError("a provider office's account needs the provider's NPI")
        provider_id = session.scalar(select(Provider.id).where(Provider.npi == new.provider_npi))
        if provider_id is None:
            raise AccountError(f"no provider with NPI {new.provider_npi}")
    elif new.provider_npi:
        raise AccountError(f"a {new.role} account is not bound to a provider")
    account = ApiAccount(
        username=new.username,
        secret_hash=hash_secret(secret),
        role=new.role,
        member_id=member_id,
        provider_id=provider_id,
        scopes=check_account_scopes(new.role, new.scopes),
    )
    session.add(account)
    session.flush()
    record_change(
        session,
        actor=actor,
        entity="api_account",
        entity_id=str(account.id),
        action="created",
        changes={"username": new.username, "role": new.role, "scopes": account.scopes},
        member_id=member_id,
    )
    return account


def address_paused(session: Session, address: str | None) -> timedelta | None:
    """How long sign-ins from `address` stay paused, or None if they are not."""
    if not address:
        return None
    since = utcnow() - ADDRESS_WINDOW
    recent = session.scalars(
        select(SignInFailure.failed_at)
        .where(SignInFailure.address == address, SignInFailure.failed_at > since)
        .order_by(SignInFailure.failed_at.desc())
        .limit(MAX_ADDRESS_FAILURES)
    ).all()
    if len(recent) < MAX_ADDRESS_FAILURES:
        return None
    return as_aware(recent[-1]) + ADDRESS_WINDOW - utcnow()


def _note_failure(session: Session, address: str | None) -> None:
    if not address:
        return
    now = utcnow()
    # Only the window is ever read: older rows of this address go as new ones come.
    session.execute(
        delete(SignInFailure).where(
            SignInFailure.address == address, SignInFailure.failed_at <= now - ADDRESS_WINDOW
        )
    )
    session.add(SignInFailure(address=address[:64], failed_at=now))


def authenticate(
    session: Session, username: str, secret: str, *, address: str | None = None
) -> ApiAccount | None:
    """The active account with this name and secret, or None (same time either way).

    After MAX_FAILURES wrong secrets in a row the account refuses every sign-in, the
    right secret too, for LOCK_TIME; each wrong one after that pauses it again. A right
    one, outside a pause, starts the count anew. The caller is told nothing more than
    for a wrong secret, so the pause does not show which usernames exist. The count is
    written in the caller's transaction, which must commit even when sign-in fails. A
    failure is also noted against the caller's `address` (address_paused, which the
    caller asks first).
    """
    account = session.scalar(
        select(ApiAccount).where(ApiAccount.username == username).with_for_update()
    )
    ok = verify_secret(account.secret_hash if account else None, secret)
    if account is None:
        _note_failure(session, address)
        return None
    now = utcnow()
    locked = account.locked_until is not None and as_aware(account.locked_until) > now
    if locked:
        return None
    if not ok:
        _note_failure(session, address)
        account.failed_logins = (account.failed_logins or 0) + 1
        if account.failed_logins >= MAX_FAILURES:
            account.locked_until = now + LOCK_TIME
        return None
    if account.failed_logins:
        account.failed_logins = 0
        account.locked_until = None
    if not account.active:
        return None
    return account
