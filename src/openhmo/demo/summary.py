"""What the demo built, as tables a plan's staff would want to see first."""

from __future__ import annotations

from collections import Counter
from datetime import date

from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openhmo.billing.models import GracePeriod, Invoice, Payment
from openhmo.claims.models import Claim, ClaimOverride, LineDecision
from openhmo.cli.common import console
from openhmo.demo.generator import DemoResult
from openhmo.enrollment.models import Coverage, Member, MemberCoverage, Notice, PcpAssignment
from openhmo.money import format_money
from openhmo.network.membership import in_network_clause
from openhmo.network.models import Organization, Provider
from openhmo.plans.models import Plan
from openhmo.reference.codes import carc_description


def _count(session: Session, query) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery()))


def render_summary(session: Session, result: DemoResult, year: int) -> None:
    _membership(session, year)
    _network(session, year)
    _pcps(session)
    _premiums(session, result)
    _claims(session, result, year)


def _membership(session: Session, year: int) -> None:
    table = Table(
        "plan",
        "type",
        "families",
        "members",
        "children",
        "self only",
        "+spouse",
        "+children",
        "family",
        "ended",
        title=f"Membership, {year}",
    )
    for plan in session.scalars(select(Plan).order_by(Plan.plan_key)):
        coverages = list(session.scalars(select(Coverage).where(Coverage.plan_id == plan.id)))
        tiers = Counter(c.tier for c in coverages)
        members = list(
            session.scalars(
                select(Member)
                .join(MemberCoverage, MemberCoverage.member_id == Member.id)
                .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
                .where(Coverage.plan_id == plan.id)
            )
        )
        children = sum(1 for m in members if m.age_on(date(year, 1, 1)) < 18)
        ended = sum(1 for c in coverages if c.termination_date is not None)
        table.add_row(
            plan.name,
            plan.plan_type,
            str(len(coverages)),
            str(len(members)),
            str(children),
            str(tiers["self_only"]),
            str(tiers["self_plus_spouse"]),
            str(tiers["self_plus_children"]),
            str(tiers["family"]),
            str(ended),
        )
    console.print(table)
    reasons = Counter(
        session.scalars(
            select(Coverage.termination_reason).where(Coverage.termination_reason.is_not(None))
        )
    )
    if reasons:
        console.print(
            "Coverage ended: "
            + ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.most_common())
        )


def _network(session: Session, year: int) -> None:
    providers = list(session.scalars(select(Provider)))
    in_network = set(
        session.scalars(
            select(Provider.id).where(in_network_clause("openhmo-core", date(year, 6, 30)))
        )
    )
    by_specialty = Counter(p.specialty for p in providers)
    table = Table(
        "specialty",
        "providers",
        title=(
            f"Provider network: {len(providers)} providers ({len(in_network)} in network), "
            f"{_count(session, select(Organization))} organizations"
        ),
    )
    for specialty, n in by_specialty.most_common(12):
        table.add_row(specialty, str(n))
    table.add_row("… others", str(sum(n for _, n in by_specialty.most_common()[12:])))
    console.print(table)


def _pcps(session: Session) -> None:
    methods = Counter(session.scalars(select(PcpAssignment.method)))
    table = Table("how", "assignments", title="Primary care physicians")
    for method, n in methods.most_common():
        table.add_row(method.replace("_", " "), str(n))
    console.print(table)


def _premiums(session: Session, result: DemoResult) -> None:
    billed = session.scalar(
        select(func.coalesce(func.sum(Invoice.amount_cents), 0)).where(Invoice.voided_on.is_(None))
    )
    received = session.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)))
    graces = Counter(session.scalars(select(GracePeriod.status)))
    table = Table("", "", title="A year of premiums", show_header=False)
    table.add_row(
        "invoices", str(_count(session, select(Invoice).where(Invoice.voided_on.is_(None))))
    )
    table.add_row("billed", format_money(int(billed)))
    table.add_row("received", format_money(int(received)))
    table.add_row("outstanding", format_money(int(billed) - int(received)))
    table.add_row("grace periods", ", ".join(f"{n} {s}" for s, n in graces.most_common()) or "none")
    table.add_row("notices to members", str(_count(session, select(Notice))))
    for event, n in sorted(result.events.items()):
        table.add_row(event, str(n))
    table.add_row(
        "applications refused",
        f"{len(result.refused)} (outside the service area)" if result.refused else "0",
    )
    table.add_row("PCP choices refused", str(result.pcp_choices_refused))
    console.print(table)


def member_months(session: Session, year: int) -> int:
    """Months of coverage in the year: a member covered on a month's first day counts it."""
    total = 0
    for start, end in session.execute(
        select(MemberCoverage.effective_date, MemberCoverage.termination_date)
    ):
        for month in range(1, 13):
            first = date(year, month, 1)
            if start <= first and (end is None or end >= first):
                total += 1
    return total


def _claims(session: Session, result: DemoResult, year: int) -> None:
    current = select(LineDecision).where(LineDecision.superseded_at.is_(None)).subquery()
    lines = Counter(
        dict(
            session.execute(select(current.c.status, func.count()).group_by(current.c.status)).all()
        )
    )
    decided = session.scalar(select(func.count()).select_from(Claim))
    totals = session.execute(
        select(
            func.coalesce(func.sum(current.c.plan_paid_cents), 0),
            func.coalesce(func.sum(current.c.member_share_cents), 0),
            func.coalesce(func.sum(current.c.deductible_cents), 0),
            func.coalesce(func.sum(current.c.copay_cents), 0),
            func.coalesce(func.sum(current.c.coinsurance_cents), 0),
        )
    ).one()
    paid, share, deductible, copay, coinsurance = (int(v) for v in totals)
    # A claim a person had to touch: a line pended for staff, or a staff override.
    touched = set(session.scalars(select(current.c.claim_id).where(current.c.status == "pended")))
    touched |= set(session.scalars(select(ClaimOverride.claim_id)))
    auto = (decided - len(touched)) / decided if decided else 0
    months = member_months(session, year)
    table = Table("", "", title=f"Claims, {year}", show_header=False)
    table.add_row("claims received", f"{decided:,}")
    table.add_row("claim lines", ", ".join(f"{n:,} {s}" for s, n in lines.most_common()))
    table.add_row("auto-adjudicated (no pend, no staff)", f"{auto:.1%}")
    table.add_row("plan paid", format_money(paid))
    table.add_row(
        "members' cost share",
        f"{format_money(share)} (deductible {format_money(deductible)}, copays "
        f"{format_money(copay)}, coinsurance {format_money(coinsurance)})",
    )
    table.add_row("member months", f"{months:,}")
    table.add_row("plan cost per member per month", format_money(paid // months if months else 0))
    console.print(table)
    denials = Table("denial", "lines", "the CARC's words", title="Denials by reason (group-CARC)")
    counted = result.claims.denials if result.claims else {}
    for code, n in sorted(counted.items(), key=lambda kv: -kv[1]):
        denials.add_row(code, f"{n:,}", carc_description(code.split("-")[1]))
    console.print(denials)
