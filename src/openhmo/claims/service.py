"""The real-time path around the engine: one family plan year, one transaction.

`adjudicate_claim` re-runs the claim's **whole family plan year** from the carry-in:
every claim line of the family whose service date falls in the plan year(s) of the
claim (and of every claim linked to those by a replacement or void), not only the new
ones. The engine is a pure function, so the same claims give the same decisions;
re-running everything is what makes a late claim, a void (frequency 8) or a
replacement (7) give its amounts back and re-decide the family's later claims for
free. Then only what changed is written: a new `LineDecision` for each line whose
decision differs from its current one (the old row is superseded, never updated), the
claims' statuses, and the family's `Accumulator`, `VisitUsage` and `ReferralUsage`
rows set to the engine's output (updated in place, added or removed, row by row).

Locking, so two runs of one family never interleave (the family is the unit: its
accumulators are shared):

- PostgreSQL: `SELECT ... FOR NO KEY UPDATE` of the subscriber's member row, before
  anything of the family is read. Runs of one family queue behind it; under READ
  COMMITTED each later statement sees what the previous holder committed. NO KEY
  UPDATE (not FOR UPDATE) so that inserts referencing the member (claims, history
  rows: their foreign-key checks take KEY SHARE) are never blocked by it, which would
  deadlock two submitters. A claim of someone who is not a member locks an advisory
  lock on its member number instead.
- SQLite: the database has one writer at a time. Every entry point **writes first**,
  before it reads anything (`intake.sqlite_write_lock`: an UPDATE of no row). Python's
  sqlite3 driver opens the transaction (deferred BEGIN) at that first write and SQLite
  takes the write lock for it, waiting up to the driver's busy timeout (5 s) for the
  writer before; every read that follows sees the latest committed data and nobody
  else can write until this transaction ends. Reads the same session made earlier ran
  outside any transaction (the driver begins one only at a write) and hold no stale
  snapshot. (Were the engine set up to BEGIN at the first read, as SQLAlchemy's
  pysqlite recipe does, the entry points would still lock before reading, but a caller
  that read first in the same transaction should then use BEGIN IMMEDIATE.)

Functions take a session and leave committing to the caller (one request, one
transaction); the lock is held until the caller commits or rolls back.
`adjudicate_claims` decides several claims' families in one run (the API's real-time
adjudicator, claims.realtime, gives it the claims submitted at the same moment);
`adjudicate_waiting` is the batch: one transaction per family.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from openhmo.adjudication.context import claim_lines
from openhmo.adjudication.engine import adjudicate
from openhmo.claims.context_db import build_context, claim_line_rows, line_row, utc
from openhmo.claims.intake import ClaimError, sqlite_write_lock
from openhmo.claims.models import (
    ADJUDICATED,
    FAMILY_HOLDER,
    PENDED,
    RECEIVED,
    REPLACED,
    VOIDED,
    Accumulator,
    Claim,
    ClaimLine,
    ClaimOverride,
    LineDecision,
    ReferralUsage,
    VisitUsage,
)
from openhmo.db.types import utcnow
from openhmo.enrollment.models import Coverage, Member
from openhmo.history.record import record_change, record_changes
from openhmo.plans.models import Plan, PlanYear
from openhmo.referrals.models import Referral
from openhmo.referrals.service import mark_exhausted

# The engine's decision columns kept on a LineDecision (docs/adjudication.md §4).
DECISION_FIELDS = (
    "member_id",
    "family_id",
    "plan_key",
    "plan_year",
    "status",
    "pend_reason",
    "category",
    "category_rule",
    "network_tier",
    "cost_share_tier",
    "emergency",
    "charge_cents",
    "allowed_cents",
    "plan_paid_cents",
    "deductible_cents",
    "copay_cents",
    "coinsurance_cents",
    "member_share_cents",
    "adjustments",
    "trace",
    "explanation_id",
    "explanation_params",
    "referral_number",
    "prior_auth_number",
)
_CARC = re.compile(r"^[A-Z]?[0-9]{1,3}$")


@dataclass
class FamilyRun:
    """What one run of a family plan year read and decided."""

    run_id: str
    claims: list[Claim]
    lines: list[ClaimLine]
    decisions: dict[int, LineDecision]  # line id -> its current decision after the run
    changed_lines: int = 0
    changed_claims: list[str] = field(default_factory=list)
    # line id -> (claim id, status, adjustments) of its decision after the run
    outcome: dict[int, tuple[int, str, list]] = field(default_factory=dict)
    # line id -> id of the decision the run added (loaded only when asked for)
    new_ids: dict[int, int] = field(default_factory=dict)
    session: Session | None = None
    _by_claim: dict[int, list[ClaimLine]] | None = None

    def of(self, claim: Claim) -> list[LineDecision]:
        if self._by_claim is None:  # built once: a batch run holds thousands of claims
            self._by_claim = defaultdict(list)
            for line in sorted(self.lines, key=lambda ln: ln.line_number):
                self._by_claim[line.claim_id].append(line)
        lines = self._by_claim[claim.id]
        missing = [self.new_ids[ln.id] for ln in lines if ln.id not in self.decisions]
        if missing:
            for d in self.session.scalars(select(LineDecision).where(LineDecision.id.in_(missing))):
                self.decisions[d.line_id] = d
        return [self.decisions[line.id] for line in lines]


# --- reading ---------------------------------------------------------------------------------


def get_claim(session: Session, claim_id: str) -> Claim:
    claim = session.scalar(select(Claim).where(Claim.claim_id == claim_id.strip().upper()))
    if claim is None:
        raise ClaimError(f"there is no claim {claim_id}", "claim_id")
    return claim


def current_decisions(session: Session, claim: Claim) -> list[LineDecision]:
    """The current decision of each line of the claim (lines never adjudicated left out)."""
    return list(
        session.scalars(
            select(LineDecision)
            .where(LineDecision.claim_id == claim.id, LineDecision.superseded_at.is_(None))
            .order_by(LineDecision.line_number)
        )
    )


def _lock(session: Session, claim: Claim, family_id: int | None) -> None:
    """Serialise the runs of the claim's family (see the module's text)."""
    if session.get_bind().dialect.name == "postgresql":
        if family_id is not None:
            session.execute(
                select(Member.id).where(Member.id == family_id).with_for_update(key_share=True)
            )
        else:
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"openhmo-claims:{claim.member_number}"},
            )
    else:
        sqlite_write_lock(session)  # held already when the entry point took it first


def _adopt(session: Session, claims: Iterable[Claim], members: dict[str, Member], actor: str):
    """Claims received before their member was enrolled get the member and family now."""
    for claim in claims:
        member = members.get(claim.member_number)
        if member is None or claim.family_id is not None:
            continue
        claim.member_id, claim.family_id = member.id, member.subscriber_id
        record_change(
            session,
            actor=actor,
            entity="claim",
            entity_id=claim.claim_id,
            action="claim_member_found",
            member_id=member.id,
            changes={"member_id": member.id, "family_id": member.subscriber_id},
            reason=f"member {claim.member_number} enrolled after the claim was received",
        )


def _scope(session: Session, claim: Claim, actor: str) -> tuple[list[Claim], set[int]]:
    """The claims of the claim's family plan year(s), and those plan years."""
    return _scopes(session, [claim], actor)[claim.id]


def _scopes(
    session: Session, triggers: list[Claim], actor: str
) -> dict[int, tuple[list[Claim], set[int]]]:
    """For each trigger claim: its family's plan-year claims and those plan years.

    A plan year's claims are all the family's claims with a line in it, with the claims
    they replace or that replace them (and so on, to a fixed point). Done for many
    families in a few queries.
    """
    out: dict[int, tuple[list[Claim], set[int]]] = {}
    families = sorted({c.family_id for c in triggers if c.family_id is not None})
    for claim in triggers:
        if claim.family_id is None:
            claims = session.scalars(
                select(Claim)
                .where(Claim.family_id.is_(None), Claim.member_number == claim.member_number)
                .order_by(Claim.id)
            ).all()
            out[claim.id] = (list(claims), set())
    if not families:
        return out
    # claims of the families' members received before they were enrolled
    members = {
        m.member_number: m
        for m in session.scalars(select(Member).where(Member.subscriber_id.in_(families)))
    }
    strays = session.scalars(
        select(Claim).where(Claim.family_id.is_(None), Claim.member_number.in_(sorted(members)))
    ).all()
    _adopt(session, strays, members, actor)
    session.flush()
    dates: dict[int, dict[int, set[date]]] = defaultdict(lambda: defaultdict(set))
    numbers: dict[int, dict[str, int]] = defaultdict(dict)
    replaces: dict[int, dict[int, str | None]] = defaultdict(dict)
    for family, cid, number, original, day in session.execute(
        select(
            Claim.family_id,
            Claim.id,
            Claim.claim_id,
            Claim.replaces_claim_id,
            ClaimLine.service_date,
        )
        .join(ClaimLine, ClaimLine.claim_id == Claim.id)
        .where(Claim.family_id.in_(families))
    ):
        dates[family][cid].add(day)
        numbers[family][number] = cid
        replaces[family][cid] = original
    windows: dict[int, set[tuple]] = defaultdict(set)
    for family, year, starts, ends in session.execute(
        select(Coverage.subscriber_id, PlanYear.year, PlanYear.starts, PlanYear.ends)
        .join(Plan, Plan.id == PlanYear.plan_id)
        .join(Coverage, Coverage.plan_id == Plan.id)
        .where(Coverage.subscriber_id.in_(families))
    ):
        windows[family].add((year, starts, ends))
    chosen_of: dict[int, set[int]] = {}
    for claim in triggers:
        family = claim.family_id
        if family is None:
            continue
        linked: dict[int, set[int]] = defaultdict(set)  # a claim and what it replaces
        for cid, original in replaces[family].items():
            if original in numbers[family]:
                linked[cid].add(numbers[family][original])
                linked[numbers[family][original]].add(cid)
        chosen, years = {claim.id}, set()
        while True:
            days = {d for cid in chosen for d in dates[family].get(cid, ())}
            new_years = {
                y for y, starts, ends in windows[family] if any(starts <= d <= ends for d in days)
            }
            spans = [(starts, ends) for y, starts, ends in windows[family] if y in new_years]
            new_chosen = {
                cid
                for cid, ds in dates[family].items()
                if any(a <= d <= b for d in ds for a, b in spans)
            }
            new_chosen |= chosen | {other for cid in chosen for other in linked.get(cid, ())}
            if new_years == years and new_chosen == chosen:
                break
            chosen, years = new_chosen, new_years
        chosen_of[claim.id] = chosen
        out[claim.id] = ([], years)
    wanted = sorted(set().union(*chosen_of.values()))
    loaded = {c.id: c for c in session.scalars(select(Claim).where(Claim.id.in_(wanted)))}
    for cid, chosen in chosen_of.items():
        out[cid] = ([loaded[i] for i in sorted(chosen)], out[cid][1])
    return out


# --- writing -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _values(row: dict) -> dict[str, Any]:
    values = {name: row[name] for name in DECISION_FIELDS}
    values["adjustments"] = _plain(row["adjustments"] or [])
    values["trace"] = _plain(row["trace"] or [])
    values["explanation_params"] = json.loads(row["explanation_params"] or "{}")
    return values


def _differs(old: LineDecision, values: dict[str, Any]) -> bool:
    """Whether the engine's `values` differ from a stored decision (JSON read back is plain)."""
    return any(getattr(old, name) != values[name] for name in DECISION_FIELDS)


def _claim_status(statuses: Iterable[str]) -> str:
    statuses = set(statuses)
    if statuses == {"voided"}:
        return VOIDED
    if statuses == {"replaced"}:
        return REPLACED
    if "pended" in statuses:
        return PENDED
    return ADJUDICATED


def _sync(session: Session, existing: dict, wanted: dict, make, set_value) -> dict:
    """Make the rows `existing` (key -> row) hold `wanted` (key -> value); the changes."""
    changes = {}
    for key, row in existing.items():
        if key not in wanted:
            changes[key] = (row, None)
            session.delete(row)
    for key, value in wanted.items():
        row = existing.get(key)
        if row is None:
            session.add(make(key, value))
            changes[key] = (None, value)
        elif set_value(row, value):
            changes[key] = ("changed", value)
    return changes


def _write_totals(
    session: Session,
    plan: dict[int, tuple[set[int], set[int], set[str]]],
    result,
    actor: str,
) -> dict[int, dict[str, Any]]:
    """Replace the families' current totals with the run's, a handful of queries in all.

    `plan`: family -> (the plan years run, its member ids, its referral numbers). A
    family's rows of those years that the run no longer has are deleted.
    """
    now = utcnow()
    member_family = {m: f for f, (_, members, _) in plan.items() for m in members}
    referral_family = {r: f for f, (_, _, numbers) in plan.items() for r in numbers}
    acc_rows = [r for r in result.accumulators.iter_rows(named=True) if r["family_id"] in plan]
    usage_rows = [
        r for r in result.visit_usage.iter_rows(named=True) if r["member_id"] in member_family
    ]
    years = {f: set(y) for f, (y, _, _) in plan.items()}
    for r in acc_rows:
        years[r["family_id"]].add(r["plan_year"])
    for r in usage_rows:
        years[member_family[r["member_id"]]].add(r["plan_year"])
    all_years = sorted(set().union(*years.values())) if years else []
    families = sorted(plan)

    def set_amount(row, value) -> bool:
        if row.amount_cents == value[1]:
            return False
        row.amount_cents, row.updated_at = value[1], now
        return True

    def set_used(row, value) -> bool:
        if row.used == value:
            return False
        row.used, row.updated_at = value, now
        return True

    accumulators = _sync(
        session,
        {
            (a.family_id, a.holder, a.plan_key, a.plan_year, a.pool, a.kind): a
            for a in session.scalars(
                select(Accumulator).where(
                    Accumulator.family_id.in_(families), Accumulator.plan_year.in_(all_years)
                )
            )
            if a.plan_year in years[a.family_id]
        },
        {
            (
                r["family_id"],
                r["member_id"] if r["member_id"] is not None else FAMILY_HOLDER,
                r["plan_key"],
                r["plan_year"],
                r["pool"],
                r["kind"],
            ): (r["member_id"], r["amount_cents"])
            for r in acc_rows
        },
        lambda key, value: Accumulator(
            family_id=key[0],
            member_id=value[0],
            holder=key[1],
            plan_key=key[2],
            plan_year=key[3],
            pool=key[4],
            kind=key[5],
            amount_cents=value[1],
            updated_at=now,
        ),
        set_amount,
    )
    visits = _sync(
        session,
        {
            (v.member_id, v.plan_year, v.category): v
            for v in session.scalars(
                select(VisitUsage).where(
                    VisitUsage.family_id.in_(families), VisitUsage.plan_year.in_(all_years)
                )
            )
            if v.plan_year in years[v.family_id]
        },
        {(r["member_id"], r["plan_year"], r["category"]): r["used"] for r in usage_rows},
        lambda key, value: VisitUsage(
            family_id=member_family[key[0]],
            member_id=key[0],
            plan_year=key[1],
            category=key[2],
            used=value,
            updated_at=now,
        ),
        set_used,
    )
    referral_used = {
        r["referral_number"]: r["used"]
        for r in result.referral_usage.iter_rows(named=True)
        if r["referral_number"] in referral_family
    }
    referrals = _sync(
        session,
        {
            u.referral_number: u
            for u in session.scalars(
                select(ReferralUsage).where(ReferralUsage.family_id.in_(families))
            )
        },
        referral_used,
        lambda key, value: ReferralUsage(
            referral_number=key, family_id=referral_family[key], used=value, updated_at=now
        ),
        set_used,
    )
    if referral_used:
        for referral in session.scalars(
            select(Referral).where(
                Referral.referral_number.in_(sorted(referral_used)), Referral.status == "approved"
            )
        ):
            if referral_used[referral.referral_number] >= referral.visits:
                mark_exhausted(
                    session,
                    referral.referral_number,
                    referral_used[referral.referral_number],
                    actor=actor,
                )
    described: dict[int, dict[str, Any]] = defaultdict(dict)
    for (family, holder, plan_key, plan_year, pool, kind), (_, value) in accumulators.items():
        who = "family" if holder == FAMILY_HOLDER else f"member {holder}"
        described[family][f"{plan_key} {plan_year} {pool} {kind} {who}"] = (
            None if value is None else value[1]
        )
    for (member, plan_year, category), (_, value) in visits.items():
        described[member_family[member]][f"visits {plan_year} {category} member {member}"] = value
    for number, (_, value) in referrals.items():
        described[referral_family[number]][f"referral {number} visits"] = value
    return described


def _run_family(session: Session, claim: Claim, *, actor: str) -> FamilyRun:
    return _run(session, [claim], actor=actor)


def _run(session: Session, triggers: list[Claim], *, actor: str) -> FamilyRun:
    """Re-run the plan years of the triggers' families in one engine call, and write it.

    Each family is locked (in family order, so two runs never wait on each other in a
    circle), its plan-year claims gathered, and all of them decided together: the engine
    is columnar, so a hundred families cost little more than one.
    """
    firsts: dict[int | str, Claim] = {}
    for claim in sorted(triggers, key=lambda c: (c.family_id is None, c.family_id or 0, c.id)):
        found = None
        if claim.family_id is None:
            found = session.scalar(
                select(Member).where(Member.member_number == claim.member_number)
            )
        family = claim.family_id or (found.subscriber_id if found else None)
        key = family if family is not None else f"member:{claim.member_number}"
        if key in firsts:
            continue
        _lock(session, claim, family)
        if found is not None:  # adopted under the family's lock, never before it
            _adopt(session, [claim], {found.member_number: found}, actor)
        firsts[key] = claim
    claims_by_id: dict[int, Claim] = {}
    years_of: dict[int, set[int]] = {}
    for claim_id, (scoped, years) in _scopes(session, list(firsts.values()), actor).items():
        claim = session.get(Claim, claim_id)
        claims_by_id.update((c.id, c) for c in scoped)
        if claim.family_id is not None:
            years_of[claim.family_id] = years
    claims = sorted(claims_by_id.values(), key=lambda c: c.id)
    families = sorted(years_of)
    all_years = sorted(set().union(*years_of.values())) if years_of else []
    rows = claim_line_rows(session, claims)
    context = build_context(session, families, all_years, claims=claims, rows=rows)
    result = adjudicate(claim_lines(line_row(c, line) for c, line in rows), context)
    trigger_of = {c.family_id: c for c in firsts.values() if c.family_id is not None}
    trigger_ids = {t.id for t in triggers}

    run = FamilyRun(
        run_id=uuid.uuid4().hex,
        claims=claims,
        lines=[ln for _, ln in rows],
        decisions={},
        session=session,
    )
    by_key = {(c.claim_id, line.line_number): (c, line) for c, line in rows}
    current = (
        {
            d.line_id: d
            for d in session.scalars(
                select(LineDecision).where(
                    LineDecision.line_id.in_([ln.id for ln in run.lines]),
                    LineDecision.superseded_at.is_(None),
                )
            )
        }
        if run.lines
        else {}
    )
    now = utcnow()
    line_changes: dict[str, dict[int, Any]] = defaultdict(dict)
    statuses: dict[int, list[str]] = defaultdict(list)
    new_rows: list[dict[str, Any]] = []
    olds: list[LineDecision | None] = []
    for row in result.decisions.iter_rows(named=True):
        c, line = by_key[(row["claim_id"], row["line_number"])]
        values = _values(row)
        statuses[c.id].append(values["status"])
        old = current.get(line.id)
        run.outcome[line.id] = (c.id, values["status"], values["adjustments"])
        if old is not None and not _differs(old, values):
            run.decisions[line.id] = old
            continue
        new_rows.append(
            {
                "line_id": line.id,
                "claim_id": c.id,
                "line_number": line.line_number,
                "decided_at": now,
                "run_id": run.run_id,
                **values,
            }
        )
        olds.append(old)
        line_changes[c.claim_id][line.line_number] = {
            "status": [old.status if old else None, values["status"]],
            "plan_paid_cents": [old.plan_paid_cents if old else None, values["plan_paid_cents"]],
            "member_share_cents": [
                old.member_share_cents if old else None,
                values["member_share_cents"],
            ],
        }
    session.flush()
    # One statement for all the new decisions (a batch run writes tens of thousands);
    # each line has at most one new decision, so the line id finds its new id.
    new_ids = (
        dict(
            session.execute(
                insert(LineDecision.__table__).returning(
                    LineDecision.__table__.c.line_id, LineDecision.__table__.c.id
                ),
                new_rows,
            ).all()
        )
        if new_rows
        else {}
    )
    for row, old in zip(new_rows, olds, strict=True):
        run.new_ids[row["line_id"]] = new_ids[row["line_id"]]
        if old is not None:
            old.superseded_at, old.superseded_by = now, new_ids[row["line_id"]]
    run.changed_lines = sum(len(v) for v in line_changes.values())

    changes = []
    for c in claims:
        status = _claim_status(statuses[c.id]) if statuses[c.id] else c.status
        before = c.status
        if status == before and c.claim_id not in line_changes:
            continue
        c.status = status
        run.changed_claims.append(c.claim_id)
        changes.append(
            {
                "actor": actor,
                "entity": "claim",
                "entity_id": c.claim_id,
                "action": "claim_adjudicated" if before == RECEIVED else "claim_readjudicated",
                "member_id": c.member_id,
                "changes": {
                    "status": [before, status],
                    "lines": line_changes.get(c.claim_id, {}),
                    "run_id": run.run_id,
                },
                "reason": (
                    "adjudicated"
                    if c.id in trigger_ids or c.family_id not in trigger_of
                    else "family plan year re-adjudicated for claim "
                    f"{trigger_of[c.family_id].claim_id}"
                ),
            }
        )
    record_changes(session, changes)
    eligibility, referrals = context.eligibility, context.referrals
    plan: dict[int, tuple[set[int], set[int], set[str]]] = {}
    for family in families:
        members = set(eligibility.filter(eligibility["family_id"] == family)["member_id"].to_list())
        numbers = set(
            referrals.filter(referrals["member_id"].is_in(sorted(members)))[
                "referral_number"
            ].to_list()
        )
        plan[family] = (years_of[family], members, numbers)
    for family, totals in _write_totals(session, plan, result, actor).items():
        if totals:
            record_change(
                session,
                actor=actor,
                entity="accumulator",
                entity_id=family,
                action="accumulators_recalculated",
                member_id=family,
                changes={"totals": totals, "run_id": run.run_id},
                reason=f"family plan year re-adjudicated for claim {trigger_of[family].claim_id}",
            )
    session.flush()
    return run


# --- the public API ------------------------------------------------------------------------------


def adjudicate_claim(session: Session, claim_id: str, *, actor: str) -> list[LineDecision]:
    """Adjudicate a claim in real time: its family plan year re-run, what changed written.

    Returns the claim's current line decisions. Running it again changes nothing (the
    same decisions are found and kept). The caller commits.
    """
    sqlite_write_lock(session)  # SQLite: before anything is read
    claim = get_claim(session, claim_id)
    run = _run_family(session, claim, actor=actor)
    return run.of(claim)


def adjudicate_claims(session: Session, claim_ids: list[str], *, actor: str) -> FamilyRun:
    """Adjudicate several claims in real time in one engine run: each one's family plan
    year re-run as `adjudicate_claim` does, all of them together (the engine is columnar:
    twenty families cost about what three cost alone). The caller commits."""
    sqlite_write_lock(session)
    return _run(session, [get_claim(session, claim_id) for claim_id in claim_ids], actor=actor)


@dataclass
class WaitingReport:
    claims: int = 0
    lines: int = 0
    families: int = 0
    statuses: Counter = field(default_factory=Counter)  # line status -> count
    denials: Counter = field(default_factory=Counter)  # "CO-288" -> lines
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def adjudicate_waiting(
    session_factory: sessionmaker[Session],
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
    families_per_run: int = 300,
) -> WaitingReport:
    """Adjudicate every claim in status `received`, many families per engine run.

    Families go in batches of `families_per_run`, one transaction and one engine call a
    batch (the engine is columnar: a batch costs little more than one family). A batch
    that fails is retried family by family, so one bad family is left as it was and
    named in `errors` while the others go on. `progress(n)` is called after each batch
    with the number of its waiting claims.
    """
    started = time.perf_counter()
    report = WaitingReport()
    with session_factory() as session:
        waiting = session.execute(
            select(Claim.id, Claim.family_id, Claim.member_number)
            .where(Claim.status == RECEIVED)
            .order_by(Claim.id)
        ).all()
    groups: dict[tuple, list[int]] = defaultdict(list)
    for cid, family, member_number in waiting:
        key = ("family", family) if family is not None else ("member", member_number)
        groups[key].append(cid)
    report.families = len(groups)
    keys = list(groups)
    for i in range(0, len(keys), families_per_run):
        batch = keys[i : i + families_per_run]
        try:
            _adjudicate_batch(session_factory, [groups[k] for k in batch], actor, report)
        except Exception:  # find the family that failed; the others go on
            for key in batch:
                try:
                    _adjudicate_batch(session_factory, [groups[key]], actor, report)
                except Exception as exc:
                    report.errors.append(f"{key[0]} {key[1]}: {type(exc).__name__}: {exc}")
        if progress is not None:
            progress(sum(len(groups[k]) for k in batch))
    report.seconds = time.perf_counter() - started
    return report


def _adjudicate_batch(session_factory, groups: list[list[int]], actor: str, report) -> None:
    with session_factory() as session, session.begin():
        sqlite_write_lock(session)  # SQLite: before anything is read
        pending = {cid for ids in groups for cid in ids}
        outcome: dict[int, tuple[int, str, list]] = {}
        while pending:
            triggers = [session.get(Claim, min(ids)) for ids in groups if set(ids) & pending]
            triggers = [t for t in triggers if t.id in pending] or [
                session.get(Claim, min(pending))
            ]
            run = _run(session, triggers, actor=actor)
            decided = {c.id for c in run.claims if c.id in pending}
            outcome.update(
                (line_id, value) for line_id, value in run.outcome.items() if value[0] in decided
            )
            pending -= {c.id for c in run.claims} | {t.id for t in triggers}
    report.claims += len({claim_id for claim_id, _, _ in outcome.values()})
    for _, status, adjustments in outcome.values():
        report.lines += 1
        report.statuses[status] += 1
        if status == "denied" and adjustments:
            a = adjustments[-1]
            report.denials[f"{a['group']}-{a['carc']}"] += 1


# --- the work queue of pended lines ------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    claim_id: str
    line_number: int
    member_id: int | None
    member_number: str
    member_name: str
    pend_reason: str | None
    procedure_code: str | None
    service_date: date
    charge_cents: int
    received_at: datetime
    age_days: int


def queue(session: Session, *, as_of: datetime | None = None) -> list[QueueItem]:
    """Pended lines waiting for staff, oldest claim first."""
    as_of = utc(as_of or utcnow())
    rows = session.execute(
        select(LineDecision, Claim, ClaimLine, Member.first_name, Member.last_name)
        .join(Claim, Claim.id == LineDecision.claim_id)
        .join(ClaimLine, ClaimLine.id == LineDecision.line_id)
        .outerjoin(Member, Member.id == Claim.member_id)
        .where(LineDecision.status == "pended", LineDecision.superseded_at.is_(None))
        .order_by(Claim.received_at, Claim.id, LineDecision.line_number)
    )
    return [
        QueueItem(
            claim_id=c.claim_id,
            line_number=d.line_number,
            member_id=c.member_id,
            member_number=c.member_number,
            member_name=f"{first} {last}" if first else "",
            pend_reason=d.pend_reason,
            procedure_code=line.procedure_code or line.revenue_code,
            service_date=line.service_date,
            charge_cents=line.charge_cents,
            received_at=utc(c.received_at),
            age_days=(as_of - utc(c.received_at)).days,
        )
        for d, c, line, first, last in rows
    ]


def _pended_line(session: Session, claim: Claim, line_number: int) -> LineDecision:
    decision = session.scalar(
        select(LineDecision).where(
            LineDecision.claim_id == claim.id,
            LineDecision.line_number == line_number,
            LineDecision.superseded_at.is_(None),
        )
    )
    if decision is None:
        exists = session.scalar(
            select(func.count())
            .select_from(ClaimLine)
            .where(ClaimLine.claim_id == claim.id, ClaimLine.line_number == line_number)
        )
        if not exists:
            raise ClaimError(f"claim {claim.claim_id} has no line {line_number}", "line_number")
        raise ClaimError(
            f"line {line_number} of claim {claim.claim_id} has not been adjudicated yet",
            "line_number",
        )
    if decision.status != "pended":
        raise ClaimError(
            f"line {line_number} of claim {claim.claim_id} is not pended (it is "
            f"{decision.status}): only a pended line can be approved or denied",
            "line_number",
        )
    return decision


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ClaimError("staff resolve a pended line with a reason", "reason")
    return reason


def _resolve(
    session: Session,
    claim_id: str,
    line_number: int,
    *,
    action: str,
    carc: str | None,
    allowed_cents: int | None,
    reason: str,
    actor: str,
) -> list[LineDecision]:
    sqlite_write_lock(session)  # SQLite: before anything is read
    claim = get_claim(session, claim_id)
    _lock(session, claim, claim.family_id)
    decision = _pended_line(session, claim, line_number)
    if action == "approve" and decision.pend_reason == "pricing" and allowed_cents is None:
        raise ClaimError(
            f"line {line_number} of claim {claim.claim_id} pended for pricing: approving it "
            "needs the allowed amount",
            "allowed_cents",
        )
    session.add(
        ClaimOverride(
            claim_id=claim.id,
            line_number=line_number,
            action=action,
            carc=carc,
            allowed_cents=allowed_cents,
            reason=reason,
            actor=actor,
        )
    )
    record_change(
        session,
        actor=actor,
        entity="claim",
        entity_id=claim.claim_id,
        action=f"line_{'approved' if action == 'approve' else 'denied'}_by_review",
        member_id=claim.member_id,
        changes={
            "line_number": line_number,
            "pend_reason": decision.pend_reason,
            "carc": carc,
            "allowed_cents": allowed_cents,
        },
        reason=reason,
    )
    session.flush()
    return _run_family(session, claim, actor=actor).of(claim)


def approve(
    session: Session,
    claim_id: str,
    line_number: int,
    *,
    allowed_cents: int | None = None,
    reason: str,
    actor: str,
) -> list[LineDecision]:
    """Staff pass the step that pended the line (for `pricing`, at `allowed_cents`).

    Writes a ClaimOverride and its history, and re-adjudicates the family. The caller
    commits. Returns the claim's current line decisions.
    """
    reason = _reason(reason)
    if allowed_cents is not None and (isinstance(allowed_cents, bool) or allowed_cents < 0):
        raise ClaimError(
            f"the allowed amount cannot be negative ({allowed_cents})", "allowed_cents"
        )
    return _resolve(
        session,
        claim_id,
        line_number,
        action="approve",
        carc=None,
        allowed_cents=allowed_cents,
        reason=reason,
        actor=actor,
    )


def deny(
    session: Session, claim_id: str, line_number: int, *, carc: str | int, reason: str, actor: str
) -> list[LineDecision]:
    """Staff deny a pended line with a CARC (group CO) and a reason; the family is re-run."""
    reason = _reason(reason)
    code = str(carc).strip().upper()
    if not _CARC.match(code):
        raise ClaimError(f"{carc!r} is not a claim adjustment reason code (e.g. 50)", "carc")
    return _resolve(
        session,
        claim_id,
        line_number,
        action="deny",
        carc=code,
        allowed_cents=None,
        reason=reason,
        actor=actor,
    )
