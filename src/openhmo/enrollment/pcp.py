"""Primary care physicians: who may be one, choosing one, and assigning one to those who don't.

DOMAIN.md §2: a member may choose any *available* in-network PCP — in the plan's
network on that date, of a PCP-eligible specialty, accepting new patients, with room
on the panel — and a child may have a pediatrician. A change takes effect on the first
of the next month (the plan's eligibility rules say so, as data). Members of a plan
that requires a PCP who have not chosen one are auto-assigned the nearest available
PCP, keeping a family together where one PCP can take them all, and told so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from openhmo.dates import first_of_next_month
from openhmo.enrollment.models import Coverage, Member, MemberCoverage, PcpAssignment
from openhmo.enrollment.service import (
    EnrollmentError,
    add_notice,
    coverage_plan,
    current_address,
    current_coverage,
)
from openhmo.history.record import record_change
from openhmo.network.membership import in_network_clause, is_in_network
from openhmo.network.models import Location, Provider, ProviderLocation
from openhmo.plans.design import PlanDesign
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of
from openhmo.reference.geo import distance_miles

# Reasons a PCP is not available, as message ids of the i18n catalogue.
NOT_IN_NETWORK = "pcp.unavailable.not_in_network"
NOT_PCP_ELIGIBLE = "pcp.unavailable.not_pcp_eligible"
NOT_ACCEPTING = "pcp.unavailable.not_accepting"
PANEL_FULL = "pcp.unavailable.panel_full"
PEDIATRICS_ONLY = "pcp.unavailable.pediatrics_only"


def active_on(day):
    """An assignment in force on `day` (a date or a bound parameter)."""
    return (PcpAssignment.effective_from <= day) & (
        PcpAssignment.effective_to.is_(None) | (PcpAssignment.effective_to >= day)
    )


def panel_size(session: Session, provider_id: int, day: date) -> int:
    return session.scalar(
        select(func.count())
        .select_from(PcpAssignment)
        .where(PcpAssignment.provider_id == provider_id, active_on(day))
    )


def pcp_of(session: Session, member: Member, day: date) -> PcpAssignment | None:
    return session.scalar(
        select(PcpAssignment).where(PcpAssignment.member_id == member.id, active_on(day))
    )


def pcp_provider_of(session: Session, member: Member, day: date) -> Row | None:
    """Who is `member`'s PCP on `day`, for answers that show the PCP (a 271, an
    eligibility response): the provider's npi, entity_type, first_name, last_name and
    organization_name, in one query (not the whole provider: an answer shows no more)."""
    return session.execute(
        select(
            Provider.npi,
            Provider.entity_type,
            Provider.first_name,
            Provider.last_name,
            Provider.organization_name,
        )
        .join(PcpAssignment, PcpAssignment.provider_id == Provider.id)
        .where(PcpAssignment.member_id == member.id, active_on(day))
    ).first()


def unavailable_reasons(
    session: Session, provider: Provider, member: Member, design: PlanDesign, day: date
) -> list[str]:
    """Why `provider` cannot be `member`'s PCP on `day` (empty when they can)."""
    reasons = []
    if not design.network or not is_in_network(session, provider.id, design.network, day):
        reasons.append(NOT_IN_NETWORK)
    if not provider.pcp_eligible:
        reasons.append(NOT_PCP_ELIGIBLE)
    if provider.pediatrics and member.age_on(day) >= design.eligibility.pediatrician_max_age:
        reasons.append(PEDIATRICS_ONLY)
    current = pcp_of(session, member, day - timedelta(days=1))
    already_patient = current is not None and current.provider_id == provider.id
    if not already_patient:
        if not provider.accepting_new_patients:
            reasons.append(NOT_ACCEPTING)
        if provider.panel_capacity is not None and (
            panel_size(session, provider.id, day) >= provider.panel_capacity
        ):
            reasons.append(PANEL_FULL)
    return reasons


def change_effective_date(design: PlanDesign, requested_on: date) -> date:
    if design.eligibility.pcp_change_effective == "immediately":
        return requested_on
    return first_of_next_month(requested_on)


def _design_for(session: Session, member: Member, day: date) -> tuple[Coverage, PlanDesign]:
    coverage = current_coverage(session, member, day)
    if coverage is None:
        raise EnrollmentError(f"{member.name} has no coverage on {day}")
    return coverage, design_of(coverage_plan(session, coverage))


def _start(
    session: Session,
    member: Member,
    provider: Provider,
    start: date,
    method: str,
    reason: str,
    actor: str,
) -> PcpAssignment:
    """Make `provider` the member's PCP from `start`, closing or cancelling what was there."""
    for old in session.scalars(
        select(PcpAssignment).where(
            PcpAssignment.member_id == member.id,
            or_(PcpAssignment.effective_to.is_(None), PcpAssignment.effective_to >= start),
        )
    ):
        # A pending change that has not begun is cancelled by ending it the day before it
        # would have started: the row stays, so the history still shows it was made.
        old.effective_to = max(start, old.effective_from) - timedelta(days=1)
        record_change(
            session,
            actor=actor,
            entity="pcp_assignment",
            entity_id=old.id,
            action="pcp_ended",
            member_id=member.id,
            effective_date=old.effective_to,
            changes={"provider_id": old.provider_id, "effective_to": old.effective_to},
            reason=f"replaced: {reason}",
        )
    assignment = PcpAssignment(
        member_id=member.id,
        provider_id=provider.id,
        effective_from=start,
        method=method,
        reason=reason,
    )
    session.add(assignment)
    session.flush()
    record_change(
        session,
        actor=actor,
        entity="pcp_assignment",
        entity_id=assignment.id,
        action="pcp_assigned" if method == "auto_assigned" else "pcp_chosen",
        member_id=member.id,
        effective_date=start,
        reason=reason,
        changes={"provider_npi": provider.npi, "provider": provider.display_name, "method": method},
    )
    return assignment


def choose_pcp(
    session: Session,
    *,
    member: Member,
    provider: Provider,
    requested_on: date,
    actor: str,
    initial: bool = False,
    reason: str = "chosen by the member",
) -> PcpAssignment:
    """The member's choice of PCP: effective at coverage start if `initial`, else per the plan."""
    coverage, design = _design_for(session, member, requested_on)
    start = (
        max(requested_on, coverage.effective_date)
        if initial
        else change_effective_date(design, requested_on)
    )
    reasons = unavailable_reasons(session, provider, member, design, start)
    if reasons:
        from openhmo.i18n import t

        text = "; ".join(t(r) for r in reasons)
        raise EnrollmentError(
            f"{provider.display_name} (NPI {provider.npi}) cannot be {member.name}'s PCP on "
            f"{start}: {text}",
            "enrollment.refusal.pcp_not_available",
            {"pcp": provider.display_name, "date": start.isoformat(), "reason": reasons},
        )
    assignment = _start(session, member, provider, start, "chosen", reason, actor)
    add_notice(
        session,
        member,
        "enrollment.notice.pcp_changed",
        pcp=provider.display_name,
        effective_date=start.isoformat(),
    )
    return assignment


@dataclass
class _Candidate:
    provider: Provider
    lat: float
    lon: float
    address: str
    room: float  # remaining panel places; inf when the panel has no limit

    def can_see(self, member: Member, day: date, design: PlanDesign) -> bool:
        return not (
            self.provider.pediatrics
            and member.age_on(day) >= design.eligibility.pediatrician_max_age
        )


@dataclass
class AutoAssignReport:
    assigned: int = 0
    families_kept_together: int = 0
    families_split: int = 0
    unassigned: list[str] = field(default_factory=list)


def _candidates(session: Session, network: str, day: date) -> list[_Candidate]:
    """Every available PCP of the network on `day`, with its primary location and room."""
    panel = Counter(
        dict(
            session.execute(
                select(PcpAssignment.provider_id, func.count())
                .where(active_on(day))
                .group_by(PcpAssignment.provider_id)
            ).all()
        )
    )
    rows = session.execute(
        select(Provider, Location)
        .join(ProviderLocation, ProviderLocation.provider_id == Provider.id)
        .join(Location, Location.id == ProviderLocation.location_id)
        .where(
            Provider.pcp_eligible,
            Provider.accepting_new_patients,
            ~Provider.ob_gyn,
            in_network_clause(network, day),
            Location.latitude.is_not(None),
        )
        .order_by(Provider.id, ProviderLocation.is_primary.desc())
    ).all()
    out, seen = [], set()
    for provider, location in rows:
        if provider.id in seen:
            continue
        seen.add(provider.id)
        room = (
            float("inf")
            if provider.panel_capacity is None
            else provider.panel_capacity - panel[provider.id]
        )
        if room > 0:
            out.append(
                _Candidate(
                    provider,
                    location.latitude,
                    location.longitude,
                    f"{location.line1}, {location.city}",
                    room,
                )
            )
    return out


def members_without_pcp(session: Session, day: date, plan_key: str | None = None) -> list[Member]:
    """Members covered on `day` by a plan requiring a PCP, with no PCP from `day` on."""
    plans = session.scalars(
        select(Plan) if plan_key is None else select(Plan).where(Plan.plan_key == plan_key)
    )
    requiring = [p.id for p in plans if design_of(p).rules.pcp_required]
    if not requiring:
        return []
    has_pcp = select(PcpAssignment.member_id).where(
        or_(PcpAssignment.effective_to.is_(None), PcpAssignment.effective_to >= day)
    )
    return list(
        session.scalars(
            select(Member)
            .join(MemberCoverage, MemberCoverage.member_id == Member.id)
            .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
            .where(
                Coverage.plan_id.in_(requiring),
                MemberCoverage.effective_date <= day,
                or_(
                    MemberCoverage.termination_date.is_(None),
                    MemberCoverage.termination_date >= day,
                ),
                Member.id.not_in(has_pcp),
            )
            .order_by(Member.subscriber_id, Member.id)
        ).unique()
    )


def auto_assign(
    session: Session,
    *,
    as_of: date,
    actor: str,
    plan_key: str | None = None,
) -> AutoAssignReport:
    """Assign a PCP to every member who needs one and has none, effective `as_of`."""
    report = AutoAssignReport()
    pool: dict[str, list[_Candidate]] = {}
    families: dict[int, list[Member]] = {}
    for member in members_without_pcp(session, as_of, plan_key):
        families.setdefault(member.subscriber_id, []).append(member)
    for family in families.values():
        _coverage, design = _design_for(session, family[0], as_of)
        if design.network not in pool:
            pool[design.network] = _candidates(session, design.network, as_of)
        home = current_address(session, family[0], as_of)
        if home is None or home.latitude is None:
            report.unassigned += [f"{m.member_number}: no geocoded address" for m in family]
            continue
        _assign_family(session, family, pool[design.network], design, home, as_of, actor, report)
    return report


def _assign_family(session, family, candidates, design, home, day, actor, report) -> None:
    ranked = sorted(
        candidates, key=lambda c: distance_miles(home.latitude, home.longitude, c.lat, c.lon)
    )
    together = None
    if len(family) > 1:
        together = next(
            (
                c
                for c in ranked
                if c.room >= len(family) and all(c.can_see(m, day, design) for m in family)
            ),
            None,
        )
        if together is not None:
            report.families_kept_together += 1
        else:
            report.families_split += 1
    for member in family:
        if together is not None:
            choice = together
            why = "nearest available PCP who can see the whole family"
        else:
            children_first = member.age_on(day) < design.eligibility.pediatrician_max_age
            fitting = [c for c in ranked if c.room >= 1 and c.can_see(member, day, design)]
            if children_first:
                fitting.sort(
                    key=lambda c: not c.provider.pediatrics
                )  # stable: nearest pediatrician
            choice = fitting[0] if fitting else None
            why = (
                "nearest available pediatrician"
                if choice and choice.provider.pediatrics
                else "nearest available PCP"
            )
        if choice is None:
            report.unassigned.append(f"{member.member_number}: no available PCP in the network")
            continue
        miles = distance_miles(home.latitude, home.longitude, choice.lat, choice.lon)
        reason = f"auto-assigned: no PCP chosen by {day}; {why} ({miles:.1f} mi)"
        _start(session, member, choice.provider, day, "auto_assigned", reason, actor)
        choice.room -= 1
        report.assigned += 1
        add_notice(
            session,
            member,
            "enrollment.notice.pcp_auto_assigned",
            pcp=choice.provider.display_name,
            address=choice.address,
            distance=f"{miles:.1f} mi",
            effective_date=day.isoformat(),
        )
