"""The engine's context and claim lines, read from the database in a handful of queries.

`build_context(session, family_ids, plan_years, claims=...)` gives the `Context` of
openhmo.adjudication.context for the families: one query per table (eligibility, plans,
grace periods, PCPs, providers and organizations, contracts, fee schedules, rates,
referrals and authorizations, carry-in, overrides), never one per member or claim.

Choices this module makes (docs/adjudication.md leaves them to the shell):

- Eligibility: one row per member_coverage span; `family_id` is the coverage's
  subscriber (the subscriber's member id), the tier and `subsidized` come from the
  coverage, the name is "first last".
- Grace periods: only `open` ones. A cured grace period pends nothing any more, and
  after a `terminated` one the coverage span itself ends (CO-27).
- Contracts are expanded to NPIs: a provider's own contract to its NPI; an
  organization's contract to the NPI of every provider of that organization and to
  the organization's own NPI (a group or facility that bills under it). Organizations
  with an NPI but no provider row are added to `providers` (entity type
  `organization`) so an institutional claim finds the facility's taxonomy.
- QPA (qualifying payment amount): for each code, the median of the in-network
  allowed amounts of one unit across every fee schedule some contract uses, priced
  through `openhmo.network.pricing.allowed_amount` exactly as the engine prices a line:
  per-code amounts directly, percent-of-Medicare schedules at the Medicare fee of
  the code (non-facility, place of service 11, no modifier, the schedule's Medicare
  year and locality), case rates at their amount. One row per code and billing class
  (`professional`, `institutional`); a schedule that cannot price the code is left
  out; an even count takes the mean of the middle two, rounded half up to the cent.
  With `claims`, the codes are the claims' procedure (or revenue) codes; without, every
  code that some in-network schedule lists.
- Carry-in, not current totals: `accumulators` and `visit_usage` are the amounts a
  family starts the plan year with (AccumulatorCarryIn, VisitUsageCarryIn), because the
  real-time path re-runs the whole family plan year. `referral_usage` starts from the
  visits that current decisions of the family's *other* claims (those not being
  re-run) counted against each referral, so a referral spanning two plan years is not
  counted twice nor forgotten.
- Overrides: the latest staff override of each line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
from sqlalchemy import and_, select, true
from sqlalchemy.orm import Session

from openhmo.adjudication.context import SCHEMAS, Context, claim_lines, frame
from openhmo.billing.models import GracePeriod
from openhmo.claims.models import (
    AccumulatorCarryIn,
    Claim,
    ClaimLine,
    ClaimOverride,
    LineDecision,
    VisitUsageCarryIn,
)
from openhmo.enrollment.models import Coverage, Member, MemberCoverage, PcpAssignment
from openhmo.network.models import (
    Contract,
    FeeSchedule,
    FeeScheduleRate,
    Network,
    Organization,
    Provider,
)
from openhmo.network.pricing import (
    FeeScheduleSnapshot,
    NoRate,
    Rate,
    RateKey,
    ServiceLine,
    allowed_amount,
)
from openhmo.plans.models import Plan
from openhmo.plans.store import designs_by_key
from openhmo.referrals.service import context_tables

BILLING_CLASSES = ("professional", "institutional")


def utc(moment: datetime) -> datetime:
    """A stored timestamp as UTC (SQLite gives back naive datetimes, in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _in(column, values: Iterable | None):
    """`column IN values`, or no condition at all when values is None."""
    if values is None:
        return true()
    return column.in_(sorted(set(values)))


# --- claim lines ------------------------------------------------------------------------


def claim_line_rows(session: Session, claims: Sequence[Claim]) -> list[tuple[Claim, ClaimLine]]:
    by_id = {c.id: c for c in claims}
    if not by_id:
        return []
    lines = session.scalars(
        select(ClaimLine)
        .where(ClaimLine.claim_id.in_(sorted(by_id)))
        .order_by(ClaimLine.claim_id, ClaimLine.line_number)
    )
    return [(by_id[line.claim_id], line) for line in lines]


def line_row(claim: Claim, line: ClaimLine) -> dict:
    return {
        "claim_id": claim.claim_id,
        "line_number": line.line_number,
        "member_number": claim.member_number,
        "billing_npi": claim.billing_npi,
        # A line's own rendering provider (NM1*82 of the line) beats the claim's.
        "rendering_npi": line.rendering_npi or claim.rendering_npi,
        "claim_type": claim.claim_type,
        "frequency_code": claim.frequency_code,
        "replaces_claim_id": claim.replaces_claim_id,
        "received_at": utc(claim.received_at),
        "service_date": line.service_date,
        "place_of_service": line.place_of_service or claim.place_of_service,
        "procedure_code": line.procedure_code,
        "modifiers": list(line.modifiers or []),
        "revenue_code": line.revenue_code,
        "units": Decimal(line.units).quantize(Decimal("0.001")),
        "charge_cents": line.charge_cents,
        "diagnosis_codes": list(claim.diagnosis_codes or []),
        "referral_number": claim.referral_number,
        "prior_auth_number": claim.prior_auth_number,
        "emergency": bool(claim.emergency),
        "drug_tier": line.drug_tier,
    }


def claim_lines_frame(session: Session, claims: Sequence[Claim]) -> pl.DataFrame:
    """The engine's claim-lines frame of `claims` (one query for all their lines)."""
    return claim_lines(line_row(c, line) for c, line in claim_line_rows(session, claims))


# --- the context --------------------------------------------------------------------------


def _eligibility(session: Session, family_ids: list[int] | None) -> list[dict]:
    query = (
        select(
            MemberCoverage.member_id,
            MemberCoverage.coverage_id,
            MemberCoverage.effective_date,
            MemberCoverage.termination_date,
            MemberCoverage.termination_reason,
            Member.member_number,
            Member.sex,
            Member.birth_date,
            Member.first_name,
            Member.last_name,
            Coverage.subscriber_id,
            Coverage.tier,
            Coverage.subsidized,
            Plan.plan_key,
        )
        .join(Member, Member.id == MemberCoverage.member_id)
        .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
        .join(Plan, Plan.id == Coverage.plan_id)
        .where(_in(Coverage.subscriber_id, family_ids))
        .order_by(MemberCoverage.member_id, MemberCoverage.effective_date, MemberCoverage.id)
    )
    return [
        {
            "member_number": r.member_number,
            "member_id": r.member_id,
            "family_id": r.subscriber_id,
            "coverage_id": r.coverage_id,
            "plan_key": r.plan_key,
            "coverage_tier": r.tier,
            "start": r.effective_date,
            "end": r.termination_date,
            "termination_reason": r.termination_reason,
            "subsidized": bool(r.subsidized),
            "sex": r.sex,
            "birth_date": r.birth_date,
            "name": f"{r.first_name} {r.last_name}",
        }
        for r in session.execute(query)
    ]


def _providers(session: Session, npis: set[str] | None) -> list[dict]:
    rows = {
        p.npi: {
            "npi": p.npi,
            "name": p.display_name,
            "taxonomy_code": p.taxonomy_code,
            "specialty": p.specialty,
            "entity_type": p.entity_type,
        }
        for p in session.scalars(select(Provider).where(_in(Provider.npi, npis)))
    }
    organizations = session.scalars(
        select(Organization).where(Organization.npi.is_not(None), _in(Organization.npi, npis))
    )
    for org in organizations:
        rows.setdefault(
            org.npi,
            {
                "npi": org.npi,
                "name": org.name,
                "taxonomy_code": org.taxonomy_code,
                "specialty": "",
                "entity_type": "organization",
            },
        )
    return [rows[n] for n in sorted(rows)]


def _contracts(session: Session, npis: set[str] | None) -> list[dict]:
    """Contracts as (npi, network, dates, fee schedule): organizations' expanded to NPIs."""
    base = (
        select(
            Network.key,
            Contract.effective_from,
            Contract.effective_to,
            FeeSchedule.key.label("fee_schedule_key"),
        )
        .join(Network, Network.id == Contract.network_id)
        .outerjoin(FeeSchedule, FeeSchedule.id == Contract.fee_schedule_id)
    )
    own = base.add_columns(Provider.npi).join(Provider, Provider.id == Contract.provider_id)
    members = base.add_columns(Provider.npi).join(
        Provider,
        and_(
            Contract.organization_id.is_not(None),
            Provider.organization_id == Contract.organization_id,
        ),
    )
    itself = base.add_columns(Organization.npi).join(
        Organization,
        and_(Organization.id == Contract.organization_id, Organization.npi.is_not(None)),
    )
    rows = set()
    for query, npi_column in ((own, Provider.npi), (members, Provider.npi)):
        for r in session.execute(query.where(_in(npi_column, npis))):
            rows.add((r.npi, r.key, r.effective_from, r.effective_to, r.fee_schedule_key))
    for r in session.execute(itself.where(_in(Organization.npi, npis))):
        rows.add((r.npi, r.key, r.effective_from, r.effective_to, r.fee_schedule_key))
    keys = ("npi", "network_key", "start", "end", "fee_schedule_key")
    return [
        dict(zip(keys, row, strict=True))
        for row in sorted(rows, key=lambda r: (r[0], r[1], r[2], r[4] or ""))
    ]


def _fee_schedules(
    session: Session, codes: set[str] | None
) -> tuple[list[FeeSchedule], list[FeeScheduleRate]]:
    """Every fee schedule some contract uses, and their rates (of `codes` only, if given)."""
    used = select(Contract.fee_schedule_id).where(Contract.fee_schedule_id.is_not(None))
    schedules = list(
        session.scalars(
            select(FeeSchedule).where(FeeSchedule.id.in_(used)).order_by(FeeSchedule.key)
        )
    )
    rates = (
        list(
            session.scalars(
                select(FeeScheduleRate)
                .where(
                    FeeScheduleRate.fee_schedule_id.in_([s.id for s in schedules]),
                    _in(FeeScheduleRate.procedure_code, codes),
                )
                .order_by(FeeScheduleRate.id)
            )
        )
        if schedules
        else []
    )
    return schedules, rates


def _median(amounts: list[int]) -> int:
    ordered = sorted(amounts)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    middle = Decimal(ordered[mid - 1] + ordered[mid]) / 2
    return int(middle.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _qpa(
    schedules: list[FeeSchedule], rates: list[FeeScheduleRate], codes: set[str] | None
) -> list[dict]:
    by_schedule: dict[int, dict[RateKey, Rate]] = defaultdict(dict)
    for r in rates:
        key = RateKey(r.procedure_code, r.modifier, r.billing_class, r.place_of_service)
        by_schedule[r.fee_schedule_id][key] = Rate(r.amount_cents, r.unit)
    snapshots = []
    for s in schedules:
        try:
            snapshots.append(
                FeeScheduleSnapshot(
                    key=s.key,
                    method=s.method,
                    percent=s.percent,
                    medicare_locality=s.medicare_locality,
                    medicare_year=s.medicare_year or 2022,
                    rates=by_schedule.get(s.id, {}),
                )
            )
        except ValueError:
            continue  # a schedule that cannot price anything has no amount to give
    if codes is None:
        codes = {r.procedure_code for r in rates}
    out = []
    for code in sorted(codes):
        for billing_class in BILLING_CLASSES:
            line = ServiceLine(procedure_code=code, billing_class=billing_class)
            amounts = []
            for snapshot in snapshots:
                try:
                    amounts.append(allowed_amount(line, snapshot).amount_cents)
                except (NoRate, ValueError):
                    continue
            if amounts:
                out.append(
                    {
                        "procedure_code": code,
                        "modifier": "",
                        "billing_class": billing_class,
                        "amount_cents": _median(amounts),
                    }
                )
    return out


def _referral_usage(session: Session, family_ids: list[int], claims: Sequence[Claim]) -> list[dict]:
    """Visits counted against each referral by current decisions of the other claims."""
    visits: dict[str, set] = defaultdict(set)
    query = (
        select(
            LineDecision.referral_number,
            LineDecision.claim_id,
            LineDecision.category,
            ClaimLine.service_date,
        )
        .join(ClaimLine, ClaimLine.id == LineDecision.line_id)
        .where(
            LineDecision.family_id.in_(family_ids),
            LineDecision.superseded_at.is_(None),
            LineDecision.referral_number.is_not(None),
            LineDecision.claim_id.not_in([c.id for c in claims]),
        )
    )
    for r in session.execute(query):
        visits[r.referral_number].add((r.claim_id, r.service_date, r.category))
    return [{"referral_number": n, "used": len(v)} for n, v in sorted(visits.items())]


def build_context(
    session: Session,
    family_ids: list[int] | None,
    plan_years: Iterable[int] | None = None,
    *,
    claims: Sequence[Claim] | None = None,
    rows: Sequence[tuple[Claim, ClaimLine]] | None = None,
    qpa_codes: Iterable[str] | None = None,
) -> Context:
    """The engine's context for the families (None: every family), from the database.

    `plan_years` limits the carry-in to those plan years (None: all). `claims`, the
    claims this context will adjudicate, narrows providers, contracts, rates and QPAs
    to what they name, and makes `referral_usage` start from the family's other claims
    (see the module's text); without it everything is read and referral usage starts
    at zero (the whole history is being re-run). `qpa_codes`, without `claims`: the
    codes to give QPAs for (the codes of the claims a batch run will decide: a
    percent-of-Medicare schedule lists no codes of its own). `rows`: the claims' lines
    (claim_line_rows) when the caller has read them already.
    """
    families = None if family_ids is None else sorted(set(family_ids))
    years = None if plan_years is None else sorted(set(plan_years))
    eligibility = _eligibility(session, families)
    member_ids = {r["member_id"] for r in eligibility}
    coverage_ids = {r["coverage_id"] for r in eligibility}
    plan_keys = None if families is None else {r["plan_key"] for r in eligibility}

    grace = [
        {
            "coverage_id": g.coverage_id,
            "starts": g.starts,
            "ends": g.ends,
            "subsidized": g.subsidized,
        }
        for g in session.scalars(
            select(GracePeriod)
            .where(
                GracePeriod.status == "open",
                _in(GracePeriod.coverage_id, None if families is None else coverage_ids),
            )
            .order_by(GracePeriod.id)
        )
    ]
    pcp = [
        {"member_id": r.member_id, "npi": r.npi, "start": r.effective_from, "end": r.effective_to}
        for r in session.execute(
            select(
                PcpAssignment.member_id,
                Provider.npi,
                PcpAssignment.effective_from,
                PcpAssignment.effective_to,
            )
            .join(Provider, Provider.id == PcpAssignment.provider_id)
            .where(_in(PcpAssignment.member_id, None if families is None else member_ids))
            .order_by(PcpAssignment.member_id, PcpAssignment.effective_from)
        )
    ]

    npis: set[str] | None = None
    codes: set[str] | None = None
    if claims is not None:
        rows = claim_line_rows(session, claims) if rows is None else rows
        npis = {c.billing_npi for c in claims}
        npis |= {n for c, line in rows for n in (line.rendering_npi, c.rendering_npi) if n}
        npis |= {r["npi"] for r in pcp}
        codes = {line.procedure_code or line.revenue_code for _, line in rows} - {None}

    schedules, rates = _fee_schedules(session, codes)
    schedule_keys = {s.id: s.key for s in schedules}
    referrals, prior_auths = context_tables(
        session, None if families is None else sorted(member_ids)
    )

    def carry_in(model) -> list:
        return list(
            session.scalars(
                select(model)
                .where(_in(model.family_id, families), _in(model.plan_year, years))
                .order_by(model.id)
            )
        )

    accumulators = [
        {
            "family_id": a.family_id,
            "member_id": a.member_id,
            "plan_key": a.plan_key,
            "plan_year": a.plan_year,
            "pool": a.pool,
            "kind": a.kind,
            "amount_cents": a.amount_cents,
        }
        for a in carry_in(AccumulatorCarryIn)
    ]
    visit_usage = [
        {"member_id": v.member_id, "plan_year": v.plan_year, "category": v.category, "used": v.used}
        for v in carry_in(VisitUsageCarryIn)
    ]
    referral_usage = (
        _referral_usage(session, families, claims)
        if claims is not None and families is not None
        else []
    )

    override_query = (
        select(ClaimOverride, Claim.claim_id.label("number"))
        .join(Claim, Claim.id == ClaimOverride.claim_id)
        .order_by(ClaimOverride.id)
    )
    if claims is not None:
        override_query = override_query.where(ClaimOverride.claim_id.in_([c.id for c in claims]))
    elif families is not None:
        override_query = override_query.where(Claim.family_id.in_(families))
    latest: dict[tuple[str, int], dict] = {}
    for override, number in session.execute(override_query):
        latest[(number, override.line_number)] = {
            "claim_id": number,
            "line_number": override.line_number,
            "action": override.action,
            "carc": override.carc,
            "allowed_cents": override.allowed_cents,
            "reason": override.reason,
        }

    qpa_for = codes
    if codes is None and qpa_codes is not None:
        qpa_for = {r.procedure_code for r in rates} | set(qpa_codes)
    return Context(
        designs=designs_by_key(session, plan_keys),
        eligibility=frame(eligibility, SCHEMAS["eligibility"]),
        grace_periods=frame(grace, SCHEMAS["grace_periods"]),
        pcp=frame(pcp, SCHEMAS["pcp"]),
        providers=frame(_providers(session, npis), SCHEMAS["providers"]),
        contracts=frame(_contracts(session, npis), SCHEMAS["contracts"]),
        fee_schedules=frame(
            (
                {
                    "fee_schedule_key": s.key,
                    "method": s.method,
                    "percent": s.percent,
                    "medicare_locality": s.medicare_locality,
                }
                for s in schedules
            ),
            SCHEMAS["fee_schedules"],
        ),
        fee_rates=frame(
            (
                {
                    "fee_schedule_key": schedule_keys[r.fee_schedule_id],
                    "procedure_code": r.procedure_code,
                    "modifier": r.modifier,
                    "billing_class": r.billing_class,
                    "place_of_service": r.place_of_service,
                    "unit": r.unit,
                    "amount_cents": r.amount_cents,
                }
                for r in rates
            ),
            SCHEMAS["fee_rates"],
        ),
        qpa=frame(_qpa(schedules, rates, qpa_for), SCHEMAS["qpa"]),
        referrals=referrals,
        prior_auths=prior_auths,
        accumulators=frame(accumulators, SCHEMAS["accumulators"]),
        visit_usage=frame(visit_usage, SCHEMAS["visit_usage"]),
        referral_usage=frame(referral_usage, SCHEMAS["referral_usage"]),
        overrides=frame(latest.values(), SCHEMAS["overrides"]),
    )
