"""Is a member covered on a date, under what, and with what standing?

The one answer that claims, eligibility inquiries (270/271) and the member's own
pages all use: before coverage, active, in a premium grace period (and which month of
it), or terminated (and why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.interfaces import ORMOption

from openhmo.billing.service import GraceStatus, grace_status
from openhmo.enrollment.models import Coverage, Member, MemberCoverage

Status = Literal["active", "grace_period", "not_yet_covered", "terminated", "not_a_member"]


@dataclass(frozen=True)
class Eligibility:
    status: Status
    member: Member | None = None
    coverage: Coverage | None = None
    grace_month: int | None = None
    reason: str | None = None

    @property
    def covered(self) -> bool:
        return self.status in ("active", "grace_period")


def eligibility_on(session: Session, member_number: str, day: date) -> Eligibility:
    member = session.scalar(select(Member).where(Member.member_number == member_number))
    if member is None:
        return Eligibility("not_a_member", reason=f"no member {member_number}")
    return eligibility_of(session, member, day)


def spans_of(session: Session, member: Member, *options: ORMOption) -> list[MemberCoverage]:
    """The member's coverage spans, oldest first, each with its coverage (one round trip).

    `options` are further loader options for callers that go on to read more of them.
    """
    return list(
        session.scalars(
            select(MemberCoverage)
            .where(MemberCoverage.member_id == member.id)
            .order_by(MemberCoverage.effective_date, MemberCoverage.id)
            .options(joinedload(MemberCoverage.coverage), *options)
        ).unique()
    )


def eligibility_of(
    session: Session, member: Member, day: date, spans: list[MemberCoverage] | None = None
) -> Eligibility:
    """`eligibility_on` for a member already loaded; `spans` as `spans_of` gives them, if read."""
    if spans is None:
        spans = spans_of(session, member)
    return standing_on(member, spans, day, lambda coverage: grace_status(session, coverage, day))


def standing_on(
    member, spans: Sequence, day: date, grace_of: Callable[[int], GraceStatus | None]
) -> Eligibility:
    """The rule of `eligibility_of`, over what was read: the member's spans oldest first
    (each with `effective_date`, `termination_date`, `termination_reason`, `coverage_id`
    and its `coverage`), and `grace_of(coverage_id)`, the grace period `day` falls in.
    Pure, so that a reader of its own (interop.eligibility_read) answers by the same rule.
    """
    current = next(
        (
            s
            for s in spans
            if s.effective_date <= day and (s.termination_date is None or s.termination_date >= day)
        ),
        None,
    )
    if current is None:
        if any(s.effective_date > day for s in spans) and not any(
            s.effective_date <= day for s in spans
        ):
            return Eligibility(
                "not_yet_covered",
                member,
                reason=f"coverage begins {min(s.effective_date for s in spans)}",
            )
        ended = [s for s in spans if s.termination_date is not None and s.termination_date < day]
        if ended:
            last = ended[-1]
            return Eligibility(
                "terminated",
                member,
                last.coverage,
                reason=f"{last.termination_reason} on {last.termination_date}",
            )
        return Eligibility("not_yet_covered", member, reason="no coverage on that date")
    grace = grace_of(current.coverage_id)
    if grace is not None:
        return Eligibility(
            "grace_period",
            member,
            current.coverage,
            grace.month,
            reason=f"premium grace period {grace.grace_period.starts} to {grace.grace_period.ends}",
        )
    return Eligibility("active", member, current.coverage)
