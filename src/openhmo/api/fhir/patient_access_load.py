"""Fetch what Patient Access resources show, a page at a time, and build them.

A page of members, spans or claims costs a fixed handful of queries (addresses, change
history, plans, lines, current decisions, providers, referrals), never one per row.
Each function returns (member id, resource) pairs: the member id is what the audit needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openhmo.claims.models import Claim, ClaimLine, LineDecision
from openhmo.config import PlanIdentity
from openhmo.enrollment.models import Coverage, Member, MemberAddress, MemberCoverage
from openhmo.history.models import ChangeRecord
from openhmo.interop.fhir.eob import ClaimFacts, Party
from openhmo.interop.fhir.patient_access import coverage, coverage_id, patient
from openhmo.network.models import Organization, Provider
from openhmo.plans.models import Plan
from openhmo.referrals.models import Referral


def _latest(*moments: datetime | None) -> datetime:
    return max(m for m in moments if m is not None)


def _on(rows: list[Any], day: date, start: str, end: str) -> Any | None:
    """The row in force on `day`, else the last one begun before it, else the first one."""
    rows = sorted(rows, key=lambda r: getattr(r, start))
    for row in rows:
        if getattr(row, start) <= day and (getattr(row, end) is None or getattr(row, end) >= day):
            return row
    before = [r for r in rows if getattr(r, start) <= day]
    return before[-1] if before else (rows[0] if rows else None)


def patients(session: Session, members: Iterable[Member], today: date) -> list[tuple[int, dict]]:
    members = list(members)
    ids = [m.id for m in members]
    if not ids:
        return []
    addresses: dict[int, list[MemberAddress]] = defaultdict(list)
    for row in session.scalars(select(MemberAddress).where(MemberAddress.member_id.in_(ids))):
        addresses[row.member_id].append(row)
    changed = dict(
        session.execute(
            select(ChangeRecord.member_id, func.max(ChangeRecord.occurred_at))
            .where(ChangeRecord.member_id.in_(ids))
            .group_by(ChangeRecord.member_id)
        ).all()
    )
    out = []
    for m in members:
        address = _on(addresses[m.id], today, "effective_from", "effective_to")
        out.append((m.id, patient(m, address, _latest(m.created_at, changed.get(m.id)))))
    return out


def coverages(
    session: Session, spans: Iterable[MemberCoverage], today: date, identity: PlanIdentity
) -> list[tuple[int, dict]]:
    spans = list(spans)
    if not spans:
        return []
    contracts = {
        c.id: c
        for c in session.scalars(
            select(Coverage).where(Coverage.id.in_({s.coverage_id for s in spans}))
        )
    }
    plans = {
        p.id: p
        for p in session.scalars(
            select(Plan).where(Plan.id.in_({c.plan_id for c in contracts.values()}))
        )
    }
    people = {s.member_id for s in spans} | {c.subscriber_id for c in contracts.values()}
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(people)))}
    changed: dict[tuple[int, int | None], datetime] = {
        (cov, member): moment
        for cov, member, moment in session.execute(
            select(
                ChangeRecord.coverage_id, ChangeRecord.member_id, func.max(ChangeRecord.occurred_at)
            )
            .where(ChangeRecord.coverage_id.in_(contracts))
            .group_by(ChangeRecord.coverage_id, ChangeRecord.member_id)
        ).all()
    }
    out = []
    for span in spans:
        contract = contracts[span.coverage_id]
        member = members[span.member_id]
        last = _latest(
            contract.created_at,
            changed.get((contract.id, member.id)),
            changed.get((contract.id, None)),
        )
        resource = coverage(
            span=span,
            member=member,
            subscriber_number=members[contract.subscriber_id].member_number,
            plan=plans[contract.plan_id],
            identity=identity,
            today=today,
            last_updated=last,
        )
        out.append((member.id, resource))
    return out


def _parties(session: Session, npis: set[str], provider_ids: set[int]) -> tuple[dict, dict]:
    """Parties by NPI (for the NPIs given) and by provider id (for the ids given)."""
    providers = list(
        session.scalars(
            select(Provider).where(Provider.npi.in_(npis) | Provider.id.in_(provider_ids))
        )
    )
    wanted = npis | {p.npi for p in providers}
    orgs = {
        o.npi: o for o in session.scalars(select(Organization).where(Organization.npi.in_(wanted)))
    }
    by_npi: dict[str, Party] = {}
    for npi in wanted:
        provider = next((p for p in providers if p.npi == npi), None)
        org = orgs.get(npi)
        if provider is not None and provider.entity_type == "individual":
            by_npi[npi] = Party(npi, provider.display_name, "Practitioner", npi)
        elif org is not None:
            by_npi[npi] = Party(npi, org.name, "Organization", f"org-{org.id}")
        else:
            by_npi[npi] = Party(npi, provider.display_name if provider else None)
    return by_npi, {p.id: by_npi[p.npi] for p in providers}


def eob_facts(session: Session, claims: list[Claim]) -> list[ClaimFacts]:
    """What the EOB of each claim shows, in the claims' order."""
    if not claims:
        return []
    ids = [c.id for c in claims]
    lines: dict[int, list[ClaimLine]] = defaultdict(list)
    for line in session.scalars(
        select(ClaimLine).where(ClaimLine.claim_id.in_(ids)).order_by(ClaimLine.line_number)
    ):
        lines[line.claim_id].append(line)
    decisions = {
        d.line_id: d
        for d in session.scalars(
            select(LineDecision).where(
                LineDecision.claim_id.in_(ids), LineDecision.superseded_at.is_(None)
            )
        )
    }
    member_ids = {c.member_id for c in claims}
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(member_ids)))}
    spans: dict[int, list[MemberCoverage]] = defaultdict(list)
    for span in session.scalars(
        select(MemberCoverage).where(MemberCoverage.member_id.in_(member_ids))
    ):
        spans[span.member_id].append(span)
    replaced_by = dict(
        session.execute(
            select(Claim.replaces_claim_id, func.max(Claim.claim_id))
            .where(Claim.replaces_claim_id.in_([c.claim_id for c in claims]))
            .group_by(Claim.replaces_claim_id)
        ).all()
    )
    referral_numbers = {c.referral_number for c in claims} | {
        d.referral_number for d in decisions.values()
    }
    referrals = {
        r.referral_number: r
        for r in session.scalars(
            select(Referral).where(Referral.referral_number.in_(referral_numbers - {None}))
        )
    }
    npis = {c.billing_npi for c in claims} | {c.rendering_npi for c in claims}
    npis |= {ln.rendering_npi for group in lines.values() for ln in group}
    by_npi, by_id = _parties(
        session, npis - {None}, {r.referring_provider_id for r in referrals.values()}
    )
    out = []
    for claim in claims:
        own = lines[claim.id]
        decided = [decisions[ln.id] for ln in own if ln.id in decisions]
        member = members[claim.member_id]
        first_day = min(ln.service_date for ln in own)
        span = _on(spans[member.id], first_day, "effective_date", "termination_date")
        number = claim.referral_number or next(
            (d.referral_number for d in decided if d.referral_number), None
        )
        referral = referrals.get(number) if number else None
        out.append(
            ClaimFacts(
                claim=claim,
                lines=own,
                decisions={d.line_id: d for d in decided},
                patient_id=member.member_number,
                coverage_id=coverage_id(span.coverage_id, member.member_number) if span else None,
                billing=by_npi[claim.billing_npi],
                rendering={n: by_npi[n] for n in by_npi},
                referring=by_id.get(referral.referring_provider_id) if referral else None,
                replaced_by=replaced_by.get(claim.claim_id),
                language=member.language or "en",
                last_updated=_latest(claim.created_at, *(d.decided_at for d in decided)),
            )
        )
    return out
