"""Whose personal health data a caller may see.

- staff and system: every member;
- a member: themself, and, if they are the subscriber, their dependents under 18 on the
  day of the request (an adult dependent's data is their own);
- a provider office: the members its provider treats (named on a claim as billing or
  rendering provider, or on a referral or prior authorization) or is the PCP of today;
- anyone else: no one.

`visible_members` gives a SELECT of member ids for searches to filter by (None for
"everyone"), so a search never fetches what it may not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, false, literal, or_, select, union
from sqlalchemy.orm import Session

from openhmo.claims.models import Claim, ClaimLine
from openhmo.enrollment.models import Member, PcpAssignment
from openhmo.enrollment.pcp import active_on
from openhmo.network.models import Provider
from openhmo.referrals.models import PriorAuthorization, Referral

ADULT_AGE = 18


@dataclass(frozen=True)
class Caller:
    """Who is calling, from the bearer token (or anonymous, with no token)."""

    username: str
    role: str  # member, provider, staff, system, or anonymous
    scopes: str = ""
    account_id: int | None = None
    member_id: int | None = None
    provider_id: int | None = None
    address: str = ""
    # The app a member connected that calls with this token (access.apps), if any, and
    # the member's grant to it.
    app: str | None = None
    grant_id: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.role == "anonymous"

    @property
    def sees_everyone(self) -> bool:
        return self.role in ("staff", "system")


ANONYMOUS = Caller(username="anonymous", role="anonymous")


def _adult_cutoff(day: date) -> date:
    """Born on or before this day: 18 or older on `day`."""
    try:
        return day.replace(year=day.year - ADULT_AGE)
    except ValueError:  # 29 February
        return day.replace(year=day.year - ADULT_AGE, day=28)


def visible_members(caller: Caller, day: date, npi: str | None = None) -> Select | None:
    """A SELECT of the member ids `caller` may see on `day`; None means all of them."""
    if caller.sees_everyone:
        return None
    if caller.role == "member" and caller.member_id is not None:
        minors = select(Member.id).where(
            Member.subscriber_id == caller.member_id,
            Member.id != caller.member_id,
            Member.birth_date > _adult_cutoff(day),
        )
        return union(select(literal(caller.member_id).label("id")), minors).subquery().select()
    if caller.role == "provider" and caller.provider_id is not None:
        pid = caller.provider_id
        parts = [
            select(PcpAssignment.member_id).where(
                PcpAssignment.provider_id == pid,
                active_on(day),
            ),
            select(Referral.member_id).where(
                or_(Referral.referring_provider_id == pid, Referral.specialist_provider_id == pid)
            ),
            select(PriorAuthorization.member_id).where(
                or_(
                    PriorAuthorization.requesting_provider_id == pid,
                    PriorAuthorization.servicing_provider_id == pid,
                )
            ),
        ]
        if npi:
            parts.append(
                select(Claim.member_id).where(
                    Claim.member_id.is_not(None),
                    or_(Claim.billing_npi == npi, Claim.rendering_npi == npi),
                )
            )
            parts.append(
                select(Claim.member_id)
                .join(ClaimLine, ClaimLine.claim_id == Claim.id)
                .where(Claim.member_id.is_not(None), ClaimLine.rendering_npi == npi)
            )
        return union(*parts).subquery().select()
    return select(Member.id).where(false())


def provider_npi(session: Session, caller: Caller) -> str | None:
    if caller.provider_id is None:
        return None
    return session.scalar(select(Provider.npi).where(Provider.id == caller.provider_id))


def may_see(session: Session, caller: Caller, member_id: int, day: date) -> bool:
    ids = visible_members(caller, day, provider_npi(session, caller))
    if ids is None:
        return True
    subquery = ids.subquery()
    column = next(iter(subquery.c))
    return session.scalar(select(column).where(column == member_id).limit(1)) is not None
