"""The reference model of claims adjudication: docs/adjudication.md, written plainly.

This is the oracle of the tests. It reads the claim lines one by one, in the order of
docs/adjudication.md §2, and passes each through the steps of §3 as small functions,
in order, with loops and dicts. The columnar engine (`openhmo.adjudication.engine`)
implements the same contract independently; the tests check that the two agree.

Readings of the contract
------------------------
Where docs/adjudication.md leaves a question open or reads two ways, this model takes
the reading below. Each is a question for the contract's owner.

 1. What counts (the "What counts" paragraph): a line counts a referral visit, a
    limited visit or days when it is still open at the step that counts them, and keeps
    them even if a later step denies or pends it (a visit counted at step 6 stays
    counted when step 7 denies the line CO-197). A line denied or pended at or before
    the counting step counts nothing: a line denied CO-119 for days takes no days, so
    a shorter line after it may still fit (visit_limits.yaml, Z-3 line 3). Accumulator
    amounts come only from lines that end paid (step 10 only sees those).
 2. QPA of an out-of-network emergency: multiplied by the line's units like every
    price ("units multiply"), then `min(charge, QPA x units)`. The QPA row is found by
    the code, the line's modifiers in order then none, the claim type then none. Plans
    whose rule is `any_provider` (indemnity) have no network to be out of: their
    emergencies are priced like every other line (contract, else
    `non_contracted_allowed`), keep the `all_providers` cost-share tier and get
    `explain.paid` (CO-45 all the same: "or the line is an emergency").
 3. `network_tier` (the pricing tier) is the provider's real status, `in_network` or
    `out_of_network`, for every plan type: an indemnity plan has no network, so its
    lines are `out_of_network` (and `PR-45`), their cost-share tier `all_providers`.
 4. Amounts: a denied line has allowed, plan_paid, deductible, copay, coinsurance and
    member_share 0 (it pays nothing and the member owes nothing); a pended, voided,
    replaced or void line has them null ("no amounts"). charge_cents is always the
    input's. Pended / voided / replaced / void lines have an empty adjustments list.
 5. Which columns are filled when: member_id and family_id whenever the member number
    is known (from the span covering the date, else the first span when the date is
    before it, else the last span that ended before the date); plan_key and plan_year
    when a span covers the date (plan_year when the design has one on the date);
    category and category_rule on every adjudicated line (not on voided, replaced,
    void); network_tier, cost_share_tier and emergency only on lines that passed
    eligibility (steps 3 and 4 were reached).
 6. "Family (the subscriber's member id)" in the order is read as `family_id`.
 7. Referral and prior authorization choice: an approved match wins over a requested
    one (the line pends only when a requested one matches and no approved one does);
    among several, the earliest `valid_from`, then the lowest number (as text); a null
    `valid_to` is open-ended. A referral with neither specialist NPI nor specialty
    prefix matches any provider. The referral the line was counted against is its
    `referral_number` also when that visit is denied CO-287 (and when it pends).
 8. Usage rows: visits beyond a referral's visits (CO-287) and visits or days beyond
    a limit (CO-119) are not counted; rows are written for referrals used and for the
    (member, plan year, category) of benefits that have a limit. A limit counts per
    plan year whatever its `per` says (stay and lifetime are not modelled).
 9. Copay units `visit` and `stay`: "the first line" is the first line of the visit
    (stay) that reaches cost sharing; `day` counts the days charged (before any
    out-of-pocket cut) by earlier lines of the claim and category that reached cost
    sharing.
10. Duplicates (OA-18): modifiers compare as the list given (order matters); "same
    member" is the member id (the member number when the member is not found);
    "earlier claim" means a line adjudicated earlier in the order of §2 that belongs to
    another claim and passed the whole intake step.
11. The principal diagnosis is required on every claim type, pharmacy included (as
    written); "valid" means a billable ICD-10-CM code (`openhmo.reference.icd10`).
12. Grace period: the member's coverage is subsidized when the eligibility span's
    `subsidized` is true (the grace period row's own flag is not read); a grace period
    applies to the span with its coverage_id, when `starts <= date <= ends`.
13. A benefit that has no cost share for the line's cost-share tier is CO-204, like
    "Not covered". The coinsurance percent is the cost share's (a cost share without
    one has none); the tier's `coinsurance` field is not read.
14. "In-network preventive ... cost share 'No charge'" means a no-charge cost share with
    the rule `no_deductible` ("No charge after deductible" goes through the deductible);
    such a line's explanation is `explain.paid.preventive`, screening mammography too.
15. The deductible accumulator counts the deductible before the out-of-pocket cut, and
    nothing more: "a member whose out-of-pocket maximum is met has met the deductible
    too" is read as a consequence, not as a rule that fills the deductible accumulator.
16. Accumulator rows: the start rows, plus a member row and a family row (member_id
    null) for every (family, plan, plan year, pool, kind) a line added a non-zero amount
    to, self-only coverage included. The family row is the sum of what its members'
    lines took (plus its start).
17. The deductible (and out-of-pocket) taken is min(amount, individual remaining,
    family remaining), remaining = limit - what the pool holds (start + lines), as
    DOMAIN.md §3 step 10 says it. With one set of limits per pool this is exactly §4's
    identity of capped running totals. With `cross` accumulation the two tiers bring
    different limits to the one `combined` pool, where the identity (running sums of
    the amounts subject, capped at one D_ind) is not defined; "remaining" is: an
    out-of-network line may fill the combined pool up to the out-of-network limits
    after in-network lines stopped at theirs (cross_accumulation.yaml, X-3).
18. CO-45 / PR-45 are written only when not zero, like PR-1/2/3.
19. Frequency: a claim is voided / replaced only by a 7/8 claim received strictly later;
    when several do, the latest received decides. A 7 or 8 whose target is not in the
    input changes nothing (the 7 is adjudicated, the 8 is `void`).
20. Staff overrides apply only where a line pends (§6: staff resolve pended lines):
    `approve` passes that pend (and any other pend of the same line; a `pricing`
    approve needs allowed_cents, used as set); `deny` denies with group CO, the
    override's CARC and no RARC. An approved `referral_review` passes the referral step
    without counting a visit. An override of a line that does not pend (paid, or
    denied by a step) changes nothing.
21. Explanation params: `service` is the message id `category.<name>`; money is
    "$1,234.56"; dates are ISO; `days` and `visits` are integers; `provider` is the
    provider's name (the NPI when unknown); `specialty` the providers table's; `pcp`
    the PCP's name or "explain.your_pcp"; `limit` is `VisitLimit.describe()`; the `reason` of
    CO-16 is the RARC's meaning (RARC_MEANING). Trace step names are the snake_case
    names of §3's steps, plus `review` for a staff override.
22. Category: `classify_line` has no age input, so the member's age does not enter it.
23. Units that are not positive cannot be priced (`ServiceLine` refuses them): the line
    pends `pricing`. A null units counts 1.
24. A covered date outside every plan year of the design is CO-96 (N130) at step 8, the
    benefit step, where the step table puts it: the steps before it still run, so a
    category on the plan's own `prior_authorization` list is CO-197 first when no
    authorization matches (a benefit's own flag needs a plan year to be read).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl

from openhmo.adjudication.context import SCHEMAS, Context, frame
from openhmo.adjudication.decisions import DECISIONS, Result
from openhmo.categories.classifier import classify_line
from openhmo.money import format_money, percent_of
from openhmo.network.npi import is_valid_npi
from openhmo.network.pricing import (
    FeeScheduleSnapshot,
    NoRate,
    Rate,
    RateKey,
    ServiceLine,
    allowed_amount,
)
from openhmo.plans.cost_share import CopayUnit, CostShare, DeductibleRule
from openhmo.plans.design import (
    NetworkTier,
    OutOfNetwork,
    PlanDesign,
    PlanYear,
    TierName,
)
from openhmo.reference.icd10 import is_billable

DRUG_CATEGORIES = frozenset(
    {"drugs_generic", "drugs_preferred_brand", "drugs_non_preferred_brand", "drugs_specialty"}
)
PREVENTIVE_CATEGORIES = frozenset({"preventive", "screening_mammography"})

# The meaning of the RARCs a CO-16 denial carries, the `reason` of its explanation.
RARC_MEANING = {
    "MA130": "Your claim contains incomplete and/or invalid information, and no appeal "
    "rights are afforded because the claim is unprocessable. Submit a new claim with the "
    "complete/correct information.",
    "N290": "Missing/incomplete/invalid rendering provider primary identifier.",
    "M76": "Missing/incomplete/invalid diagnosis or condition.",
}


# --- the inputs, as plain records ----------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One eligibility row: a member covered by a plan between two dates."""

    member_number: str
    member_id: int
    family_id: int
    coverage_id: int
    plan_key: str
    coverage_tier: str
    start: date
    end: date | None
    subsidized: bool
    sex: str | None
    name: str | None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _within(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or start <= day) and (end is None or day <= end)


class Tables:
    """The context's tables as dicts and lists, looked up the plain way."""

    def __init__(self, context: Context) -> None:
        self.designs: dict[str, PlanDesign] = context.designs
        self.spans: dict[str, list[Span]] = defaultdict(list)
        for r in context.eligibility.iter_rows(named=True):
            self.spans[r["member_number"]].append(
                Span(
                    r["member_number"],
                    r["member_id"],
                    r["family_id"],
                    r["coverage_id"],
                    r["plan_key"],
                    r["coverage_tier"],
                    r["start"],
                    r["end"],
                    bool(r["subsidized"]),
                    r["sex"],
                    r["name"],
                )
            )
        for spans in self.spans.values():
            spans.sort(key=lambda s: (s.start, s.end or date.max, s.coverage_id))
        self.grace: dict[int, list[tuple[date, date | None]]] = defaultdict(list)
        for r in context.grace_periods.iter_rows(named=True):
            self.grace[r["coverage_id"]].append((r["starts"], r["ends"]))
        self.pcp: dict[int, list[dict]] = defaultdict(list)
        for r in context.pcp.iter_rows(named=True):
            self.pcp[r["member_id"]].append(r)
        self.providers: dict[str, dict] = {}
        for r in context.providers.iter_rows(named=True):
            self.providers.setdefault(r["npi"], r)
        self.contracts: dict[str, list[dict]] = defaultdict(list)
        for r in context.contracts.iter_rows(named=True):
            self.contracts[r["npi"]].append(r)
        self.fee_schedules = {
            r["fee_schedule_key"]: r for r in context.fee_schedules.iter_rows(named=True)
        }
        # fee schedule -> its rates, keyed the way openhmo.network.pricing looks them up
        self.fee_rates: dict[str, dict[RateKey, Rate]] = defaultdict(dict)
        for r in context.fee_rates.iter_rows(named=True):
            key = RateKey(
                _code(r["procedure_code"]),
                _code(r["modifier"]),
                (r["billing_class"] or "").strip(),
                _pos(r["place_of_service"]),
            )
            rate = Rate(r["amount_cents"], r["unit"] or "per_unit")
            self.fee_rates[r["fee_schedule_key"]][key] = rate
        self.qpa: dict[tuple[str, str, str], int] = {}
        for r in context.qpa.iter_rows(named=True):
            key = (_code(r["procedure_code"]), _code(r["modifier"]), (r["billing_class"] or ""))
            self.qpa[key] = r["amount_cents"]
        self.referrals: dict[int, list[dict]] = defaultdict(list)
        for r in context.referrals.iter_rows(named=True):
            self.referrals[r["member_id"]].append(r)
        self.auths: dict[int, list[dict]] = defaultdict(list)
        for r in context.prior_auths.iter_rows(named=True):
            self.auths[r["member_id"]].append(r)
        self.overrides = {
            (r["claim_id"], r["line_number"]): r for r in context.overrides.iter_rows(named=True)
        }

    def provider_name(self, npi: str | None) -> str | None:
        provider = self.providers.get(npi or "")
        return (provider or {}).get("name") or npi

    def taxonomy(self, npi: str | None) -> str | None:
        return (self.providers.get(npi or "") or {}).get("taxonomy_code")


def _code(value: str | None) -> str:
    return (value or "").strip().upper()


def _pos(value: str | None) -> str:
    return (value or "").strip().zfill(2) if not _blank(value) else ""


# --- one line being adjudicated ----------------------------------------------------------


class Denied(Exception):
    """A step denies the line: the whole charge is one adjustment with its group and CARC."""

    def __init__(
        self,
        step: str,
        code: str,
        *,
        clause: str,
        note: str,
        explain: str,
        rarc: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.step, self.rarc, self.clause, self.note = step, rarc, clause, note
        self.group, self.carc = code.split("-", 1)  # "CO-16": group CO, CARC 16
        self.explanation, self.params = explain, params


class Pended(Exception):
    """A step pends the line until staff resolve it (docs/adjudication.md §6)."""

    def __init__(self, step: str, reason: str, clause: str, note: str) -> None:
        super().__init__(reason)
        self.step, self.reason, self.clause, self.note = step, reason, clause, note


@dataclass
class Work:
    """A claim line and everything decided about it so far."""

    row: dict[str, Any]
    status: str | None = None
    span: Span | None = None  # the span covering the service date
    resolved: Span | None = None  # the span that names member and family (reading 5)
    design: PlanDesign | None = None
    plan_year: PlanYear | None = None
    plan_year_index: int | None = None
    category: str | None = None
    category_rule: str | None = None
    claim_emergency: bool = False  # the claim's indicator is set
    claim_has_er_line: bool = False
    network_npi: str | None = None
    contract: dict | None = None
    network_tier: str | None = None
    cost_share_tier: str | None = None
    is_emergency: bool | None = None
    referral_used: str | None = None  # the referral the line was counted against
    auth_used: str | None = None  # the prior authorization that matched
    cost_share: CostShare | None = None
    allowed: int | None = None
    plan_paid: int | None = None
    deductible: int | None = None
    copay: int | None = None
    coinsurance: int | None = None
    pend_reason: str | None = None
    preventive: bool = False
    adjustments: list[dict] = field(default_factory=list)
    trace: list[dict] = field(default_factory=list)
    explanation_id: str | None = None
    explanation_params: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # The input columns read as attributes: w.claim_id, w.service_date, ... (only
        # names that are not fields of their own: the decided `is_emergency`,
        # `referral_used`, `auth_used` stand beside the input's `emergency`,
        # `referral_number`, `prior_auth_number`).
        row = self.__dict__.get("row")
        if row is not None and name in row:
            return row[name]
        raise AttributeError(name)

    def note(self, step: str, clause: str, note: str = "") -> None:
        self.trace.append({"step": step, "clause": clause, "note": note})

    @property
    def rendering(self) -> str | None:
        """The rendering NPI; the billing NPI renders when it is null."""
        return self.rendering_npi if not _blank(self.rendering_npi) else self.billing_npi

    @property
    def member_key(self) -> Any:
        return self.resolved.member_id if self.resolved else ("number", self.member_number)

    @property
    def service(self) -> str:
        return f"category.{self.category}"

    @property
    def charge(self) -> int:
        return self.charge_cents or 0


# --- step 0: frequency ---------------------------------------------------------------------


def frequency_step(works: list[Work]) -> None:
    """Mark the claims voided (8) or replaced (7) by a later-received claim, and void lines.

    The lines of a void claim have status `void`; the claims it and a replacement point
    at are not adjudicated when they were received earlier (reading 20).
    """
    received: dict[str, datetime] = {}
    for w in works:
        if w.received_at is not None and (
            w.claim_id not in received or w.received_at < received[w.claim_id]
        ):
            received[w.claim_id] = w.received_at
    fate: dict[str, tuple[datetime, str, str]] = {}
    for w in works:
        code = (w.frequency_code or "").strip()
        if code not in ("7", "8") or _blank(w.replaces_claim_id):
            continue
        target = w.replaces_claim_id
        if target not in received or w.received_at is None:
            continue
        if received[target] < w.received_at:
            status = "voided" if code == "8" else "replaced"
            # The latest received decides; at the same moment, the higher claim id.
            if target not in fate or fate[target][:2] < (w.received_at, w.claim_id):
                fate[target] = (w.received_at, w.claim_id, status)
    for w in works:
        if (w.frequency_code or "").strip() == "8":
            w.status = "void"
            w.note("frequency", "X12 837 CLM05-3 frequency code 8", "a void of an earlier claim")
        elif w.claim_id in fate:
            w.status = fate[w.claim_id][2]
            w.note(
                "frequency",
                "X12 837 CLM05-3 frequency code 7/8",
                f"{w.status} by a later-received claim",
            )
        if w.status:
            w.explanation_id = f"explain.{w.status}"


# --- who the member is, and the order ------------------------------------------------------


def resolve_member(w: Work, t: Tables) -> None:
    """The span covering the service date, and the span that names member and family."""
    spans = t.spans.get(w.member_number or "", []) if not _blank(w.member_number) else []
    if not spans:
        return
    day = w.service_date
    if day is None:
        w.resolved = spans[0]
        return
    w.span = next((s for s in spans if s.covers(day)), None)
    if w.span is not None:
        w.resolved = w.span
    elif day < spans[0].start:
        w.resolved = spans[0]
    else:
        ended = [s for s in spans if s.end is not None and s.end < day]
        w.resolved = max(ended, key=lambda s: s.end) if ended else spans[0]
    if w.span is not None:
        w.design = t.designs[w.span.plan_key]
        for i, plan_year in enumerate(w.design.plan_years):
            if plan_year.starts <= day <= plan_year.ends:
                w.plan_year, w.plan_year_index = plan_year, i
                break


def classify(w: Work, t: Tables) -> None:
    """The line's service category: the rendering provider's taxonomy (billing's for
    institutional lines) and the member's sex."""
    npi = w.billing_npi if w.claim_type == "institutional" else w.rendering
    sex = w.resolved.sex if w.resolved else None
    w.category, w.category_rule = classify_line(
        procedure_code=w.procedure_code,
        modifiers=w.modifiers,
        revenue_code=w.revenue_code,
        place_of_service=w.place_of_service,
        rendering_taxonomy=t.taxonomy(npi),
        diagnosis_codes=w.diagnosis_codes,
        drug_tier=w.drug_tier,
        claim_type=w.claim_type,
        sex=sex,
    )
    w.category = str(w.category)


def order_key(w: Work) -> tuple:
    """§2: family, service date, received_at, claim_id, line_number; unknown members last."""
    far = datetime.max.replace(tzinfo=UTC)
    return (
        w.resolved is None,
        w.resolved.family_id if w.resolved else 0,
        w.service_date or date.max,
        w.received_at or far,
        w.claim_id or "",
        w.line_number or 0,
    )


# --- the state that runs through the family's lines ---------------------------------------


AccKey = tuple[int, int | None, str, int, str, str]  # family, member, plan, year, pool, kind


@dataclass
class State:
    accumulators: dict[AccKey, int] = field(default_factory=lambda: defaultdict(int))
    start_keys: set[AccKey] = field(default_factory=set)
    visit_usage: dict[tuple[int, int, str], int] = field(default_factory=lambda: defaultdict(int))
    limit_visits: set[tuple] = field(default_factory=set)
    referral_usage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    referral_visits: set[tuple] = field(default_factory=set)
    passed_intake: dict[tuple, set[str]] = field(default_factory=lambda: defaultdict(set))
    copay_visits: set[tuple] = field(default_factory=set)
    copay_stays: set[tuple] = field(default_factory=set)
    copay_days: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def start(cls, context: Context) -> State:
        state = cls()
        for r in context.accumulators.iter_rows(named=True):
            key = (
                r["family_id"],
                r["member_id"],
                r["plan_key"],
                r["plan_year"],
                r["pool"],
                r["kind"],
            )
            state.accumulators[key] += r["amount_cents"] or 0
            state.start_keys.add(key)
        for r in context.visit_usage.iter_rows(named=True):
            state.visit_usage[(r["member_id"], r["plan_year"], r["category"])] += r["used"] or 0
        for r in context.referral_usage.iter_rows(named=True):
            state.referral_usage[r["referral_number"]] += r["used"] or 0
        return state


# --- staff overrides -----------------------------------------------------------------------


def pend(w: Work, t: Tables, step: str, reason: str, clause: str, note: str) -> dict | None:
    """Pend the line, unless staff resolved it: approve passes (returned), deny denies."""
    override = t.overrides.get((w.claim_id, w.line_number))
    approve = override is not None and override["action"] == "approve"
    if approve and (reason != "pricing" or override["allowed_cents"] is not None):
        w.note("review", f"override: approve ({reason})", override["reason"] or "")
        return override
    if override is not None and override["action"] == "deny":
        raise Denied(
            "review",
            "CO-" + (override["carc"] or ""),
            clause=f"override: deny ({reason})",
            note=override["reason"] or "",
            explain="explain.denied.by_review",
            reason=override["reason"],
        )
    raise Pended(step, reason, clause, note)


# --- step 1: intake ------------------------------------------------------------------------


def intake(w: Work, state: State) -> None:
    """Required fields, NPI check digits, the principal diagnosis, duplicates, timely filing."""
    missing = [
        name for name in ("member_number", "billing_npi", "service_date") if _blank(w.row[name])
    ]
    if w.charge_cents is None or w.charge_cents <= 0:
        missing.append("charge_cents")
    if _blank(w.procedure_code) and _blank(w.revenue_code):
        missing.append("procedure_code or revenue_code")
    if missing:
        invalid("MA130", f"required field(s) missing: {', '.join(missing)}")
    bad = [n for n in (w.billing_npi, w.rendering_npi) if not _blank(n) and not is_valid_npi(n)]
    if bad:
        invalid("N290", f"NPI {', '.join(bad)} fails the check digit")
    codes = w.diagnosis_codes or []
    principal = codes[0] if codes else None
    if _blank(principal) or not is_billable(principal):
        invalid("M76", f"principal diagnosis {principal!r} is not a billable ICD-10-CM code")

    key = (
        w.member_key,
        w.rendering,
        w.service_date,
        w.procedure_code,
        tuple(w.modifiers or ()),
        w.units,
        w.charge_cents,
    )
    if state.passed_intake[key] - {w.claim_id}:
        earlier = sorted(state.passed_intake[key] - {w.claim_id})[0]
        raise Denied(
            "intake",
            "OA-18",
            clause="X12 CARC 18: exact duplicate",
            note=f"same service as claim {earlier}",
            explain="explain.denied.duplicate",
        )

    # The plan of the span covering the date; without one, eligibility decides the line.
    if w.design is not None and w.received_at is not None:
        days = w.design.claims.timely_filing_days
        late = (w.received_at.astimezone(UTC).date() - w.service_date).days
        if late > days:
            raise Denied(
                "intake",
                "CO-29",
                clause=f"claims.timely_filing_days: {days}",
                note=f"received {late} days after the service date",
                explain="explain.denied.timely_filing",
                days=days,
            )
    state.passed_intake[key].add(w.claim_id)


def invalid(rarc: str, note: str) -> None:
    raise Denied(
        "intake",
        "CO-16",
        rarc=rarc,
        clause=f"X12 CARC 16, RARC {rarc}",
        note=note,
        explain="explain.denied.invalid_claim",
        reason=RARC_MEANING[rarc],
    )


# --- step 2: eligibility -------------------------------------------------------------------


def eligibility(w: Work, t: Tables) -> None:
    """Not a member (CO-31), before coverage (CO-26), after it (CO-27), grace months (pend)."""
    spans = t.spans.get(w.member_number, [])
    if not spans:
        raise Denied(
            "eligibility",
            "CO-31",
            clause="eligibility: no such member",
            note=f"member number {w.member_number} is not found",
            explain="explain.denied.not_a_member",
            member_number=w.member_number,
        )
    if w.span is None:
        if w.service_date < spans[0].start:
            start = spans[0].start
            raise Denied(
                "eligibility",
                "CO-26",
                clause="eligibility: coverage start",
                note=f"coverage starts {start}",
                explain="explain.denied.before_coverage",
                start=start.isoformat(),
            )
        end = w.resolved.end
        raise Denied(
            "eligibility",
            "CO-27",
            clause="eligibility: coverage end",
            note=f"coverage ended {end}",
            explain="explain.denied.after_coverage",
            end=end.isoformat() if end else None,
        )
    span = w.span
    w.note(
        "eligibility",
        f"coverage {span.coverage_id}: {span.plan_key}, {span.coverage_tier}",
        f"member {span.member_id} of family {span.family_id}",
    )
    if not span.subsidized:
        return
    months = w.design.grace_period.pend_claims_in_grace_months
    day = w.service_date
    for starts, ends in t.grace.get(span.coverage_id, []):
        if not _within(day, starts, ends):
            continue
        month = (day.year * 12 + day.month) - (starts.year * 12 + starts.month) + 1
        if month in months:
            pend(
                w,
                t,
                "eligibility",
                "grace_period",
                f"grace_period.pend_claims_in_grace_months: {months}",
                f"month {month} of the premium grace period from {starts}",
            )


# --- steps 3 and 4: network and emergency ------------------------------------------------


def network(w: Work, t: Tables) -> None:
    """The provider whose status counts, its contract on the date, and the tier."""
    w.network_npi = w.billing_npi if w.claim_type == "institutional" else w.rendering
    day = w.service_date
    contracts = [
        c
        for c in t.contracts.get(w.network_npi, [])
        if w.design.network is not None
        and c["network_key"] == w.design.network
        and _within(day, c["start"], c["end"])
    ]
    if contracts:
        # Several contracts on one date: the latest started, then the lowest schedule key.
        latest = max(c["start"] or date.min for c in contracts)
        w.contract = min(
            (c for c in contracts if (c["start"] or date.min) == latest),
            key=lambda c: c["fee_schedule_key"] or "",
        )
    w.network_tier = "in_network" if w.contract else "out_of_network"
    if w.design.rules.out_of_network is OutOfNetwork.ANY_PROVIDER:
        w.cost_share_tier = "all_providers"
    else:
        w.cost_share_tier = w.network_tier
    where = (
        f"contract in {w.design.network} from {w.contract['start']}"
        if w.contract
        else "no contract on the date"
    )
    w.note(
        "network",
        f"rules.out_of_network: {w.design.rules.out_of_network}",
        f"NPI {w.network_npi}: {where}",
    )


def emergency(w: Work) -> None:
    """Prudent layperson: the indicator, an ER line, or an ambulance on an emergency claim."""
    w.is_emergency = (
        w.claim_emergency
        or w.category == "emergency_room"
        or (w.category == "ambulance" and (w.claim_emergency or w.claim_has_er_line))
    )
    if not w.is_emergency:
        return
    w.note(
        "emergency",
        "No Surprises Act (45 CFR 149.110)",
        "emergency: no referral or authorization; in-network cost sharing",
    )
    if w.cost_share_tier == "out_of_network":
        w.cost_share_tier = "in_network"


# --- step 5: out of network ----------------------------------------------------------------


def out_of_network(w: Work, t: Tables) -> None:
    if (
        w.cost_share_tier == "out_of_network"
        and w.design.rules.out_of_network is OutOfNetwork.EMERGENCY_ONLY
    ):
        raise Denied(
            "out_of_network",
            "CO-242",
            clause="rules.out_of_network: emergency_only",
            note=f"NPI {w.network_npi} is not in network {w.design.network}",
            explain="explain.denied.out_of_network",
            provider=t.provider_name(w.network_npi),
            plan=w.design.name,
        )


# --- step 6: referral ----------------------------------------------------------------------


def referral_needed(w: Work) -> bool:
    rules = w.design.referrals
    return (
        w.design.rules.referral_required
        and w.category in rules.required_for
        and w.category not in rules.direct_access
        and not w.is_emergency
        and w.cost_share_tier == "in_network"
    )


def referral_matches(w: Work, t: Tables, r: dict) -> bool:
    if r["status"] not in ("approved", "requested"):
        return False
    if not _within(w.service_date, r["valid_from"], r["valid_to"]):
        return False
    if (r["category"] or "specialist_visit") != w.category:
        return False
    if not _blank(w.referral_number) and r["referral_number"] != w.referral_number:
        return False
    if not _blank(r["specialist_npi"]):
        return r["specialist_npi"] == w.rendering
    prefix = r["specialty_prefix"] or ""
    return (t.taxonomy(w.rendering) or "").startswith(prefix)


def _first(candidates: list[dict], number: str) -> dict:
    return min(candidates, key=lambda r: (r["valid_from"] or date.min, r[number]))


def referral(w: Work, t: Tables, state: State) -> None:
    """The PCP's referral: needed and missing (CO-288), awaiting staff (pend), used up (CO-287)."""
    if not referral_needed(w):
        return
    matches = [r for r in t.referrals.get(w.span.member_id, []) if referral_matches(w, t, r)]
    approved = [r for r in matches if r["status"] == "approved"]
    clause = f"referrals.required_for: {w.category}"
    if not approved:
        requested = [r for r in matches if r["status"] == "requested"]
        if requested:
            chosen = _first(requested, "referral_number")
            w.referral_used = chosen["referral_number"]
            pend(
                w,
                t,
                "referral",
                "referral_review",
                clause,
                f"referral {chosen['referral_number']} awaits staff review",
            )
            return  # staff approved the line: the step is passed, no visit counted
        pcp = member_pcp(w, t)
        raise Denied(
            "referral",
            "CO-288",
            rarc="N54",
            clause=clause,
            note="no approved referral matches",
            explain="explain.denied.referral_required",
            service=w.service,
            provider=t.provider_name(w.rendering),
            specialty=(t.providers.get(w.rendering) or {}).get("specialty"),
            pcp=pcp,
        )
    chosen = _first(approved, "referral_number")
    number = chosen["referral_number"]
    w.referral_used = number
    visit = (w.claim_id, w.service_date, w.category, number)
    visits = chosen["visits"]
    if visit not in state.referral_visits:
        used = state.referral_usage[number]
        if visits is not None and used + 1 > visits:
            raise Denied(
                "referral",
                "CO-287",
                clause=f"referral {number}: {visits} visits",
                note=f"visit {used + 1} of {visits}",
                explain="explain.denied.referral_used_up",
                referral_number=number,
                visits=visits,
            )
        state.referral_usage[number] = used + 1
        state.referral_visits.add(visit)
    w.note(
        "referral",
        f"referral {number}: {visits} visits",
        f"visit {state.referral_usage[number]} of {visits}",
    )


def member_pcp(w: Work, t: Tables) -> str:
    """The member's PCP on the date, by name, or "explain.your_pcp"."""
    rows = [
        r for r in t.pcp.get(w.span.member_id, []) if _within(w.service_date, r["start"], r["end"])
    ]
    if not rows:
        return "explain.your_pcp"
    latest = max(rows, key=lambda r: (r["start"] or date.min, r["npi"] or ""))
    return t.provider_name(latest["npi"]) or "explain.your_pcp"


# --- step 7: prior authorization ---------------------------------------------------------


def prior_authorization(w: Work, t: Tables) -> None:
    if w.is_emergency:
        return
    benefit = w.plan_year.benefits.get(w.category) if w.plan_year else None
    if benefit is not None and benefit.prior_authorization is not None:
        needed, clause = benefit.prior_authorization, f"benefits.{w.category}.prior_authorization"
    else:
        needed, clause = w.category in w.design.prior_authorization, "prior_authorization"
    if not needed:
        return
    code = _code(w.procedure_code)

    def matches(a: dict) -> bool:
        return (
            a["status"] in ("approved", "requested")
            and _within(w.service_date, a["valid_from"], a["valid_to"])
            and (
                a["category"] == w.category
                or (bool(code) and code in [_code(c) for c in (a["procedure_codes"] or [])])
            )
            and (_blank(w.prior_auth_number) or a["auth_number"] == w.prior_auth_number)
        )

    found = [a for a in t.auths.get(w.span.member_id, []) if matches(a)]
    approved = [a for a in found if a["status"] == "approved"]
    clause = f"{clause}: {w.category}"
    if approved:
        w.auth_used = _first(approved, "auth_number")["auth_number"]
        w.note("prior_authorization", clause, f"authorization {w.auth_used}")
        return
    if found:
        w.auth_used = _first(found, "auth_number")["auth_number"]
        pend(
            w,
            t,
            "prior_authorization",
            "prior_auth_review",
            clause,
            f"authorization {w.auth_used} awaits staff review",
        )
        return
    raise Denied(
        "prior_authorization",
        "CO-197",
        clause=clause,
        note="no approved authorization",
        explain="explain.denied.prior_authorization",
        service=w.service,
    )


# --- step 8: benefit -----------------------------------------------------------------------


def benefit(w: Work, state: State) -> None:
    """Covered category (CO-96), covered tier (CO-204), visit and day limits (CO-119)."""
    benefit = w.plan_year.benefits.get(w.category) if w.plan_year else None
    if benefit is None:
        where = f"plan_years[{w.plan_year_index}].benefits" if w.plan_year else "plan_years"
        raise Denied(
            "benefit",
            "CO-96",
            rarc="N130",
            clause=where,
            note=f"no benefit for {w.category}",
            explain="explain.denied.not_covered",
            service=w.service,
        )
    tier = TierName(w.cost_share_tier)
    professional = w.claim_type == "professional" and benefit.professional is not None
    table = benefit.professional if professional else benefit.cost
    cost = table.get(tier)
    path = f"plan_years[{w.plan_year_index}].benefits.{w.category}"
    path += f".professional.{tier}" if professional else f".{tier}"
    if cost is None or not cost.covered:
        raise Denied(
            "benefit",
            "CO-204",
            clause=f"{path}: Not covered",
            note=f"{w.category} is not covered in the {tier} tier",
            explain="explain.denied.not_covered",
            service=w.service,
        )
    w.cost_share = cost
    w.note("benefit", f"{path}: {cost.describe()}")
    limit = benefit.limit
    if limit is None:
        return
    key = (w.span.member_id, w.plan_year.year, w.category)
    used = state.visit_usage[key]
    limit_clause = f"plan_years[{w.plan_year_index}].benefits.{w.category}.limit"
    if limit.unit == "visits":
        visit = (w.claim_id, w.service_date, w.category)
        if visit in state.limit_visits:
            return
        if used + 1 > limit.count:
            raise Denied(
                "benefit",
                "CO-119",
                clause=f"{limit_clause}: {limit.describe()}",
                note=f"visit {used + 1} of {limit.count}",
                explain="explain.denied.limit_reached",
                service=w.service,
                limit=limit.describe(),
            )
        state.visit_usage[key] = used + 1
        state.limit_visits.add(visit)
    else:
        days = line_days(w)
        if days > limit.count - used:
            raise Denied(
                "benefit",
                "CO-119",
                clause=f"{limit_clause}: {limit.describe()}",
                note=f"{days} days, {max(limit.count - used, 0)} left",
                explain="explain.denied.limit_reached",
                service=w.service,
                limit=limit.describe(),
            )
        state.visit_usage[key] = used + days


def line_days(w: Work) -> int:
    """The line's units rounded up to whole days (a missing units counts one)."""
    units = w.units if w.units is not None else Decimal(1)
    return math.ceil(units)


# --- step 9: pricing -----------------------------------------------------------------------


def _units(w: Work) -> Decimal:
    return Decimal(w.units) if w.units is not None else Decimal(1)


def pricing_code(w: Work) -> str:
    """The code a line is priced by: the procedure code, else the revenue code (room and
    board, priced per diem)."""
    return _code(w.procedure_code) or _code(w.revenue_code)


def price_with(w: Work, schedule: FeeScheduleSnapshot) -> tuple[int | None, str]:
    """`openhmo.network.pricing.allowed_amount` of the line under a schedule."""
    try:
        line = ServiceLine(
            procedure_code=pricing_code(w),
            modifiers=tuple(w.modifiers or ()),
            units=_units(w),
            place_of_service=w.place_of_service or "11",
            billing_class=w.claim_type or "professional",
        )
        priced = allowed_amount(line, schedule)
    except NoRate as exc:
        return None, str(exc)
    except ValueError as exc:  # units that are not positive: nothing can be priced
        return None, str(exc)
    return priced.amount_cents, priced.detail


def fee_schedule_price(w: Work, t: Tables) -> tuple[int | None, str]:
    """The contract's fee schedule."""
    key = w.contract["fee_schedule_key"]
    row = t.fee_schedules.get(key)
    if row is None:
        return None, f"fee schedule {key} is not in the context"
    try:
        schedule = FeeScheduleSnapshot(
            key=key,
            method=row["method"],
            percent=row["percent"],
            medicare_locality=row["medicare_locality"],
            rates=t.fee_rates.get(key, {}),
        )
    except ValueError as exc:
        return None, str(exc)
    return price_with(w, schedule)


def non_contracted_price(w: Work, percent: Decimal | None) -> tuple[int | None, str]:
    """The tier's percent of Medicare, priced as a percent_of_medicare fee schedule in the
    plan's Medicare locality."""
    if percent is None:
        return None, f"tiers.{w.cost_share_tier} has no non_contracted_allowed"
    schedule = FeeScheduleSnapshot(
        key=f"non-contracted {w.cost_share_tier}",
        method="percent_of_medicare",
        percent=Decimal(percent),
        medicare_locality=w.design.claims.medicare_locality,
    )
    return price_with(w, schedule)


def qpa_price(w: Work, t: Tables) -> tuple[int | None, str]:
    """The recognized amount's QPA x units (reading 2)."""
    code = pricing_code(w)
    for modifier in (*(_code(m) for m in (w.modifiers or [])), ""):
        for billing_class in (w.claim_type or "", ""):
            cents = t.qpa.get((code, modifier, billing_class))
            if cents is not None:
                amount = int(
                    (Decimal(cents) * _units(w)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
                )
                return amount, f"QPA of {code} {format_money(cents)} x {_units(w)}"
    return None, f"no QPA for {code}"


def tier_of(w: Work) -> NetworkTier:
    return w.plan_year.tiers[TierName(w.cost_share_tier)]


def pricing(w: Work, t: Tables) -> None:
    """The allowed amount: contract, recognized amount, or non-contracted percent of Medicare."""
    if w.contract is not None:
        price, note = fee_schedule_price(w, t)
        clause = f"contract {w.contract['fee_schedule_key']}"
    elif w.is_emergency and w.design.rules.out_of_network is not OutOfNetwork.ANY_PROVIDER:
        price, note = qpa_price(w, t)
        clause = "No Surprises Act: recognized amount = min(charge, QPA)"
    else:
        tier = w.plan_year.tiers.get(TierName(w.cost_share_tier))
        percent = tier.non_contracted_allowed if tier else None
        clause = f"tiers.{w.cost_share_tier}.non_contracted_allowed: {percent}% of Medicare"
        price, note = non_contracted_price(w, percent)
    if price is None:
        override = pend(w, t, "pricing", "pricing", clause, note)
        w.allowed = min(w.charge, override["allowed_cents"])  # staff's price, at most the charge
        w.note("pricing", "override: allowed amount set by staff", format_money(w.allowed))
        return
    w.allowed = min(w.charge, price)
    w.note("pricing", clause, f"{note}; allowed {format_money(w.allowed)}")


# --- step 10: cost sharing ---------------------------------------------------------------


def pool_of(w: Work) -> str:
    if w.cost_share_tier == "all_providers":
        return "all_providers"
    return "combined" if w.plan_year.accumulation == "cross" else w.cost_share_tier


def limits(tier_limits, coverage_tier: str, kind: str) -> tuple[int | None, int | None]:
    """(individual, family) limits by coverage tier: None where that limit does not exist."""
    self_only = coverage_tier == "self_only"
    if kind == "out_of_pocket":  # always embedded
        return tier_limits.individual, None if self_only else tier_limits.family
    if self_only:
        return tier_limits.individual, None
    if tier_limits.kind == "embedded":
        return tier_limits.individual, tier_limits.family
    return None, tier_limits.family


def take(state: State, w: Work, kind: str, amount: int, ind: int | None, fam: int | None) -> int:
    """What the line takes of `amount` under the individual and family limits.

    DOMAIN.md §3 step 10 in its own words: min(amount, remaining), where remaining is
    the smaller of the individual and the family remaining (a limit that does not exist
    is not a bound). With one limit per pool this equals §4's identity of capped running
    totals; with `cross` accumulation each tier brings its own limits to the one pool,
    which the identity does not define (reading 18).
    """
    s = w.span
    family_key = (s.family_id, None, s.plan_key, w.plan_year.year, pool_of(w), kind)
    member_key = (s.family_id, s.member_id, s.plan_key, w.plan_year.year, pool_of(w), kind)
    bounds = [amount]
    if ind is not None:
        bounds.append(max(0, ind - state.accumulators[member_key]))
    if fam is not None:
        bounds.append(max(0, fam - state.accumulators[family_key]))
    taken = min(bounds)
    state.accumulators[member_key] += taken
    state.accumulators[family_key] += taken
    return taken


def copay_due(w: Work, state: State, cost: CostShare) -> int:
    """The copay the line owes by the copay unit, before it is capped."""
    if cost.copay is None:
        return 0
    unit = cost.copay_unit
    if unit is CopayUnit.VISIT:
        visit = (w.claim_id, w.service_date, w.category)
        if visit in state.copay_visits:
            return 0
        state.copay_visits.add(visit)
        return cost.copay
    if unit is CopayUnit.STAY:
        stay = (w.claim_id, w.category)
        if stay in state.copay_stays:
            return 0
        state.copay_stays.add(stay)
        return cost.copay
    if unit is CopayUnit.DAY:
        days = line_days(w)
        if cost.copay_max_units is not None:
            charged = state.copay_days[(w.claim_id, w.category)]
            days = max(0, min(days, cost.copay_max_units - charged))
            state.copay_days[(w.claim_id, w.category)] = charged + days
        return cost.copay * days
    return cost.copay  # prescription, trip, item, service: each line


def cost_sharing(w: Work, state: State) -> None:
    """Preventive, copay, deductible, coinsurance, then the out-of-pocket cap."""
    cost = w.cost_share
    allowed = w.allowed
    due = copay_due(w, state, cost)
    if (
        w.category in PREVENTIVE_CATEGORIES
        and w.cost_share_tier in ("in_network", "all_providers")
        and cost.is_no_charge
        and cost.deductible is DeductibleRule.NO_DEDUCTIBLE
    ):
        w.preventive = True
        w.deductible = w.copay = w.coinsurance = 0
        w.note("cost_sharing", "ACA §2713: in-network preventive care", "member pays $0.00")
        return

    rule = cost.deductible
    copay_before = min(due, allowed) if rule is not DeductibleRule.AFTER_DEDUCTIBLE else 0

    tier = tier_of(w)
    kind, ded_limits = "deductible", tier.deductible
    if w.category in DRUG_CATEGORIES and tier.drug_deductible is not None:
        kind, ded_limits = "drug_deductible", tier.drug_deductible
    deductible = 0
    if rule is not DeductibleRule.NO_DEDUCTIBLE:
        ind, fam = limits(ded_limits, w.span.coverage_tier, kind)
        deductible = take(state, w, kind, allowed - copay_before, ind, fam)
    rest = allowed - copay_before - deductible

    copay_after = min(due, rest) if rule is DeductibleRule.AFTER_DEDUCTIBLE else 0
    rest -= copay_after
    coinsurance = percent_of(rest, cost.coinsurance) if cost.coinsurance else 0
    copay = copay_before + copay_after

    share = copay + deductible + coinsurance
    ind, fam = limits(tier.out_of_pocket_max, w.span.coverage_tier, "out_of_pocket")
    capped = take(state, w, "out_of_pocket", share, ind, fam)
    cut = share - capped
    # The cut comes off coinsurance first, then the copay, then the deductible; the
    # deductible accumulator keeps what was counted before the cut.
    for_coinsurance = min(cut, coinsurance)
    coinsurance -= for_coinsurance
    cut -= for_coinsurance
    for_copay = min(cut, copay)
    copay -= for_copay
    cut -= for_copay
    deductible_share = deductible - cut
    w.deductible, w.copay, w.coinsurance = deductible_share, copay, coinsurance
    w.note(
        "cost_sharing",
        f"tiers.{w.cost_share_tier} ({pool_of(w)} pool)",
        f"copay {format_money(copay)}, {kind} {format_money(deductible_share)} "
        f"(counted {format_money(deductible)}), coinsurance {format_money(coinsurance)}"
        + (
            f"; out-of-pocket maximum cut {format_money(share - capped)}" if share != capped else ""
        ),
    )


# --- step 11: payment ----------------------------------------------------------------------


def payment(w: Work) -> None:
    """Plan paid = allowed - member share, and the adjustments that balance the charge."""
    member_share = w.deductible + w.copay + w.coinsurance
    w.plan_paid = w.allowed - member_share
    w.status = "paid"
    write_off = w.charge - w.allowed
    if write_off:
        group = "CO" if (w.network_tier == "in_network" or w.is_emergency) else "PR"
        w.adjustments.append(adjustment(group, "45", None, write_off))
    for carc, amount in (("1", w.deductible), ("3", w.copay), ("2", w.coinsurance)):
        if amount:
            w.adjustments.append(adjustment("PR", carc, None, amount))
    w.note(
        "payment",
        "plan pays allowed - member share",
        f"plan {format_money(w.plan_paid)}, member {format_money(member_share)}",
    )
    if w.preventive:
        w.explanation_id = "explain.paid.preventive"
        w.explanation_params = {"service": w.service}
    elif (
        w.is_emergency
        and w.network_tier == "out_of_network"
        and w.design.rules.out_of_network is not OutOfNetwork.ANY_PROVIDER
    ):
        w.explanation_id = "explain.paid.emergency_out_of_network"
        w.explanation_params = {
            "service": w.service,
            "plan_paid": format_money(w.plan_paid),
            "member_share": format_money(member_share),
        }
    else:
        w.explanation_id = "explain.paid"
        w.explanation_params = {
            "service": w.service,
            "allowed": format_money(w.allowed),
            "plan_paid": format_money(w.plan_paid),
            "member_share": format_money(member_share),
        }


def adjustment(group: str, carc: str, rarc: str | None, amount: int) -> dict:
    return {"group": group, "carc": carc, "rarc": rarc, "amount_cents": amount}


# --- one line through every step ---------------------------------------------------------


def adjudicate_line(w: Work, t: Tables, state: State) -> None:
    try:
        intake(w, state)
        eligibility(w, t)
        network(w, t)
        emergency(w)
        out_of_network(w, t)
        referral(w, t, state)
        prior_authorization(w, t)
        benefit(w, state)
        pricing(w, t)
        cost_sharing(w, state)
        payment(w)
    except Denied as d:
        w.status = "denied"
        w.allowed = w.plan_paid = w.deductible = w.copay = w.coinsurance = 0
        w.adjustments = [adjustment(d.group, d.carc, d.rarc, w.charge)]
        w.note(
            d.step,
            d.clause,
            f"{d.group}-{d.carc}" + (f" ({d.rarc})" if d.rarc else "") + f": {d.note}",
        )
        w.explanation_id, w.explanation_params = d.explanation, d.params
    except Pended as p:
        w.status = "pended"
        w.pend_reason = p.reason
        w.allowed = w.plan_paid = w.deductible = w.copay = w.coinsurance = None
        w.note(p.step, p.clause, f"pended ({p.reason}): {p.note}")
        w.explanation_id, w.explanation_params = "explain.pended", {"reason": p.reason}


def adjudicate_reference(claims: pl.DataFrame, context: Context) -> Result:
    """Adjudicate the claim lines against the context, one line at a time."""
    t = Tables(context)
    works = [Work(row) for row in claims.iter_rows(named=True)]
    frequency_step(works)
    for w in works:
        resolve_member(w, t)
    todo = [w for w in works if w.status is None]
    for w in todo:
        classify(w, t)
    by_claim: dict[str, list[Work]] = defaultdict(list)
    for w in todo:
        by_claim[w.claim_id].append(w)
    for w in todo:
        lines = by_claim[w.claim_id]
        w.claim_emergency = any(bool(x.emergency) for x in lines)
        w.claim_has_er_line = any(x.category == "emergency_room" for x in lines)
    state = State.start(context)
    for w in sorted(todo, key=order_key):
        adjudicate_line(w, t, state)
    return Result(
        decisions=decisions_frame(works),
        accumulators=accumulators_frame(state),
        visit_usage=frame(
            [
                {"member_id": m, "plan_year": y, "category": c, "used": n}
                for (m, y, c), n in sorted(state.visit_usage.items())
            ],
            SCHEMAS["visit_usage"],
        ),
        referral_usage=frame(
            [{"referral_number": k, "used": n} for k, n in sorted(state.referral_usage.items())],
            SCHEMAS["referral_usage"],
        ),
    )


# --- the output frames ---------------------------------------------------------------------


def decisions_frame(works: list[Work]) -> pl.DataFrame:
    rows = []
    for w in sorted(works, key=lambda w: (w.claim_id or "", w.line_number or 0)):
        share = None if w.deductible is None else w.deductible + w.copay + w.coinsurance
        adjudicated = w.status not in ("voided", "replaced", "void")
        reached_network = w.network_tier is not None
        rows.append(
            {
                "claim_id": w.claim_id,
                "line_number": w.line_number,
                "member_id": w.resolved.member_id if w.resolved else None,
                "family_id": w.resolved.family_id if w.resolved else None,
                "plan_key": w.span.plan_key if w.span else None,
                "plan_year": w.plan_year.year if w.plan_year else None,
                "status": w.status,
                "pend_reason": w.pend_reason,
                "category": w.category if adjudicated else None,
                "category_rule": w.category_rule if adjudicated else None,
                "network_tier": w.network_tier,
                "cost_share_tier": w.cost_share_tier if reached_network else None,
                "emergency": w.is_emergency if reached_network else None,
                "charge_cents": w.charge_cents,
                "allowed_cents": w.allowed,
                "plan_paid_cents": w.plan_paid,
                "deductible_cents": w.deductible,
                "copay_cents": w.copay,
                "coinsurance_cents": w.coinsurance,
                "member_share_cents": share,
                "adjustments": w.adjustments,
                "trace": w.trace,
                "explanation_id": w.explanation_id,
                "explanation_params": json.dumps(w.explanation_params, sort_keys=True),
                "referral_number": w.referral_used,
                "prior_auth_number": w.auth_used,
            }
        )
    return frame(rows, DECISIONS)


def accumulators_frame(state: State) -> pl.DataFrame:
    keys = state.start_keys | {k for k, v in state.accumulators.items() if v}
    rows = [
        {
            "family_id": k[0],
            "member_id": k[1],
            "plan_key": k[2],
            "plan_year": k[3],
            "pool": k[4],
            "kind": k[5],
            "amount_cents": state.accumulators[k],
        }
        for k in sorted(keys, key=lambda k: (k[0], k[1] is not None, k[1] or 0, *k[2:]))
    ]
    return frame(rows, SCHEMAS["accumulators"])
