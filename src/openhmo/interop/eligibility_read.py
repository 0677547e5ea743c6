"""Everything an eligibility answer reads about one member, in one statement.

A CoverageEligibilityResponse (and a 271) answers from the member, their coverage spans,
the grace period of the day, who is covered with them that day (the coverage tier), the
plan's design, the PCP and the family's accumulators. Read the usual way that is seven
statements, and on the eligibility path of the API each statement's own cost in the
database layer (about a quarter of a millisecond of the server's CPU, whatever the
statement) was most of a call's. Here they are one UNION ALL of tagged rows (tag, three
integers, two dates, five strings, one amount), read in one round trip, and the answer is
made by the same pure rules the ORM readers use (enrollment.eligibility.standing_on,
interop.x12.lookup270.benefits_from), so the two cannot answer differently; the tests
compare them member by member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from openhmo.billing.models import GracePeriod
from openhmo.billing.service import GraceStatus, grace_month, grace_on
from openhmo.claims.models import Accumulator
from openhmo.enrollment.eligibility import Eligibility, standing_on
from openhmo.enrollment.models import Coverage, Member, MemberCoverage, PcpAssignment
from openhmo.enrollment.pcp import active_on
from openhmo.enrollment.service import tier_for
from openhmo.interop.x12.answer271 import Benefits
from openhmo.interop.x12.lookup270 import answering, benefits_from
from openhmo.network.models import Provider
from openhmo.plans.design import PlanDesign
from openhmo.plans.models import Plan, PlanYear
from openhmo.plans.store import design_with


@dataclass(frozen=True)
class CoverageRef:
    """The coverage a span belongs to, as far as an answer needs it."""

    id: int
    plan_id: int
    subscriber_id: int


@dataclass(frozen=True)
class SpanRef:
    """One of the member's coverage spans (a MemberCoverage, read as columns)."""

    id: int
    coverage_id: int
    effective_date: date
    termination_date: date | None
    termination_reason: str | None
    coverage: CoverageRef


@dataclass(frozen=True)
class MemberRef:
    id: int
    subscriber_id: int | None
    member_number: str
    first_name: str
    last_name: str
    birth_date: date

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class GraceRef:
    starts: date
    ends: date


@dataclass(frozen=True)
class PcpRef:
    npi: str
    entity_type: str
    first_name: str | None
    last_name: str | None
    organization_name: str | None


@dataclass
class EligibilityFacts:
    """What `read_eligibility` found about one member on one day."""

    member: MemberRef
    day: date
    spans: list[SpanRef] = field(default_factory=list)
    # coverage id -> the relationship codes of everyone it covers on the day, but its subscriber
    covered_with: dict[int, list[str]] = field(default_factory=dict)
    graces: dict[int, GraceRef] = field(default_factory=dict)
    digests: dict[int, list[tuple[date, str]]] = field(default_factory=dict)
    pcp: PcpRef | None = None
    # (plan key, plan year) -> (holder, pool, kind) -> cents
    accumulators: dict[tuple[str, int], dict[tuple[int, str, str], int]] = field(
        default_factory=dict
    )

    def eligibility(self) -> Eligibility:
        """enrollment.eligibility.eligibility_of, from what was read."""
        return standing_on(self.member, self.spans, self.day, self._grace)

    def _grace(self, coverage_id: int) -> GraceStatus | None:
        grace = self.graces.get(coverage_id)
        if grace is None:
            return None
        return GraceStatus(grace, grace_month(grace.starts, self.day))  # type: ignore[arg-type]

    def coverage_of(self) -> tuple[Eligibility, SpanRef | None, CoverageRef | None]:
        """interop.x12.lookup270.coverage_of, from what was read."""
        eligibility = self.eligibility()
        return eligibility, *answering(eligibility, self.spans, self.day)

    def design(self, session: Session, plan_id: int) -> PlanDesign:
        """The plan's design: the validated one of these digests, else read (a cache miss)."""
        digests = [digest for _, digest in sorted(self.digests.get(plan_id, []))]
        return design_with(session, plan_id, digests)

    def benefits(self, design: PlanDesign, coverage: CoverageRef) -> Benefits:
        """interop.x12.lookup270.benefits_of, from what was read."""
        tier = tier_for(self.covered_with.get(coverage.id, []))
        plan_year = design.plan_year_on(self.day)
        met = self.accumulators.get((design.id, plan_year.year), {}) if plan_year else {}
        return benefits_from(design, self.day, self.member.id, tier, self.pcp, met)


# The columns every tagged row has, with their types (PostgreSQL wants each column of a
# UNION to be of one type, so every empty place is a typed NULL).
_SHAPE = (
    ("a", Integer), ("b", Integer), ("c", Integer), ("d1", Date), ("d2", Date),
    ("s1", String), ("s2", String), ("s3", String), ("s4", String), ("s5", String),
    ("n", BigInteger),
)  # fmt: skip


def _row(tag: str, **columns):
    """The select list of one kind of row: its tag, then every column of _SHAPE."""
    return [literal(tag, String).label("tag")] + [
        (columns[name] if name in columns else cast(null(), kind)).label(name)
        for name, kind in _SHAPE
    ]


def _statement():
    member_number, day = bindparam("member_number", type_=String), bindparam("day", type_=Date)
    member = select(Member.id, Member.subscriber_id).where(Member.member_number == member_number)
    member = member.cte("asked")
    # Not correlated: used inside selects from the same tables, these still mean the
    # member's coverages and plans, not the outer row's.
    spans = (
        select(MemberCoverage.coverage_id)
        .where(MemberCoverage.member_id == member.c.id)
        .correlate(None)
    )
    plans = select(Coverage.plan_id).where(Coverage.id.in_(spans)).correlate(None)
    on_day = and_(
        MemberCoverage.effective_date <= day,
        or_(MemberCoverage.termination_date.is_(None), MemberCoverage.termination_date >= day),
    )
    others = Member.__table__.alias("covered")
    return (
        select(
            *_row(
                "member",
                a=Member.id,
                b=Member.subscriber_id,
                d1=Member.birth_date,
                s1=Member.member_number,
                s2=Member.first_name,
                s3=Member.last_name,
            )
        )
        .where(Member.id == member.c.id)
        .union_all(
            select(
                *_row(
                    "span",
                    a=MemberCoverage.id,
                    b=MemberCoverage.coverage_id,
                    c=Coverage.plan_id,
                    d1=MemberCoverage.effective_date,
                    d2=MemberCoverage.termination_date,
                    s1=MemberCoverage.termination_reason,
                    n=Coverage.subscriber_id,
                )
            )
            .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
            .where(MemberCoverage.member_id == member.c.id),
            # Who else each of the member's coverages covers on the day: the coverage tier.
            select(
                *_row(
                    "covered",
                    a=MemberCoverage.coverage_id,
                    b=MemberCoverage.member_id,
                    s1=others.c.relationship_code,
                )
            )
            .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
            .join(others, others.c.id == MemberCoverage.member_id)
            .where(
                MemberCoverage.coverage_id.in_(spans),
                MemberCoverage.member_id != Coverage.subscriber_id,
                on_day,
            ),
            select(
                *_row(
                    "grace", a=GracePeriod.coverage_id, d1=GracePeriod.starts, d2=GracePeriod.ends
                )
            ).where(
                GracePeriod.coverage_id.in_(spans),
                *grace_on(day),
            ),
            select(
                *_row("digest", a=PlanYear.plan_id, d1=PlanYear.starts, s1=PlanYear.design_digest)
            ).where(PlanYear.plan_id.in_(plans)),
            select(
                *_row(
                    "pcp",
                    s1=Provider.npi,
                    s2=Provider.entity_type,
                    s3=Provider.first_name,
                    s4=Provider.last_name,
                    s5=Provider.organization_name,
                )
            )
            .join(PcpAssignment, PcpAssignment.provider_id == Provider.id)
            .where(
                PcpAssignment.member_id == member.c.id,
                active_on(day),
            ),
            # The family's accumulators of the plan years the day falls in, of the member's
            # plans; the answer takes those of its plan design's year.
            select(
                *_row(
                    "accumulator",
                    a=Accumulator.plan_year,
                    s1=Accumulator.plan_key,
                    s2=Accumulator.pool,
                    s3=Accumulator.kind,
                    b=Accumulator.holder,
                    n=Accumulator.amount_cents,
                )
            ).where(
                Accumulator.family_id
                == select(func.coalesce(member.c.subscriber_id, member.c.id)).scalar_subquery(),
                Accumulator.plan_key.in_(select(Plan.plan_key).where(Plan.id.in_(plans))),
                Accumulator.plan_year.in_(
                    select(PlanYear.year).where(
                        PlanYear.plan_id.in_(plans), PlanYear.starts <= day, PlanYear.ends >= day
                    )
                ),
            ),
        )
    )


# Made once: building a statement this size cost more than running it (1.5 ms of CPU).
_STATEMENT = _statement()


def read_eligibility(session: Session, member_number: str, day: date) -> EligibilityFacts | None:
    """What an eligibility answer about the member with this number on `day` reads, or
    None when there is no such member."""
    facts = None
    # On the session's connection: a plain statement needs none of the ORM's handling.
    params = {"member_number": member_number, "day": day}
    rows = session.connection().execute(_STATEMENT, params).all()
    for row in rows:
        if row.tag == "member":
            member = MemberRef(row.a, row.b, row.s1, row.s2, row.s3, row.d1)
            facts = EligibilityFacts(member, day)
    if facts is None:
        return None
    spans = []
    for row in rows:
        tag = row.tag
        if tag == "span":
            coverage = CoverageRef(row.b, row.c, row.n)
            spans.append(SpanRef(row.a, row.b, row.d1, row.d2, row.s1, coverage))
        elif tag == "covered":
            facts.covered_with.setdefault(row.a, []).append(row.s1)
        elif tag == "grace":
            facts.graces[row.a] = GraceRef(row.d1, row.d2)
        elif tag == "digest":
            facts.digests.setdefault(row.a, []).append((row.d1, row.s1))
        elif tag == "pcp":
            facts.pcp = facts.pcp or PcpRef(row.s1, row.s2, row.s3, row.s4, row.s5)
        elif tag == "accumulator":
            kept = facts.accumulators.setdefault((row.s1, row.a), {})
            kept[(row.b, row.s2, row.s3)] = row.n
    # As enrollment.eligibility.spans_of orders them.
    facts.spans = sorted(spans, key=lambda s: (s.effective_date, s.id))
    return facts
