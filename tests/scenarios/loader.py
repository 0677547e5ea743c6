"""Read a scenario file (tests/scenarios/*.yaml) into a claims frame, a Context and the
expected decisions.

A scenario is a small story told as data: a plan (an example plan by id, with
`plan_overrides` of some of its fields), a family, providers and their contracts, what
was authorized and accumulated before, the claims, and what must come out, to the cent.
The expected values are written by hand in the file (with the arithmetic in comments);
nothing here computes them.

The keys of a scenario file:

    title, story                    what it shows (text)
    plan: <example plan id>         openhmo/plans/examples/*.yaml, by `id`
    plan_overrides: {path: value}   dotted paths into the design's YAML, e.g.
                                    plan_years.0.tiers.in_network.deductible.kind: aggregate
    families:                       family_id, coverage_id, coverage_tier, subsidized,
      - members: [...]              start, end (defaults: first plan year's start, open);
                                    members: member_number, member_id, name, sex,
                                    birth_date, spans (optional list of start, end,
                                    coverage_id, coverage_tier, subsidized,
                                    termination_reason)
    providers: [...]                npi, name, taxonomy, specialty, entity_type;
                                    fee_schedule: K puts it in the plan's network from
                                    the first plan year's start (contract_start /
                                    contract_end to change that); contracts: [...] explicit
    fee_schedules: {key: {...}}     method, percent, locality, rates (code: amount, or a
                                    list of code, amount, modifier, billing_class, pos, unit)
    qpa: {code: amount}             or a list of code, modifier, billing_class, amount
    pcp, referrals, prior_auths, grace_periods, accumulators, visit_usage,
    referral_usage, overrides       the context's tables, members named by member_number
    claims: [...]                   id, member, billing, rendering, type, frequency,
                                    replaces, received, referral, prior_auth, emergency,
                                    diagnosis, date, pos; lines: line, date, pos, code,
                                    modifiers, revenue, units, charge, drug_tier, expect
    expect_accumulators: [...]      family, member (null: the family row), pool, kind,
                                    amount (plan, plan_year default to the scenario's):
                                    every row with a non-zero amount at the end
    expect_visit_usage: [...]       member, category, used (plan_year defaults)
    expect_referral_usage: {n: k}   every referral with visits used at the end

Money is written "$1,234.56". `expect` of a line names decision columns by short names
(status, pend_reason, category, network_tier, cost_share_tier, emergency, allowed,
plan_paid, deductible, copay, coinsurance, member_share, adjustments, explanation,
explanation_params, referral_number, prior_auth_number, member_id, family_id, plan_year);
adjustments are written "CO-45 $50.00" or "CO-16/MA130 $120.00".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from openhmo.adjudication.context import SCHEMAS, Context, claim_lines, frame
from openhmo.money import parse_money
from openhmo.plans.design import PlanDesign
from openhmo.plans.loader import example_designs, parse_design

HERE = Path(__file__).parent

# Short names of the expectations -> decision columns; money ones are parsed to cents.
MONEY_FIELDS = {
    "allowed": "allowed_cents",
    "plan_paid": "plan_paid_cents",
    "deductible": "deductible_cents",
    "copay": "copay_cents",
    "coinsurance": "coinsurance_cents",
    "member_share": "member_share_cents",
    "charge": "charge_cents",
}
PLAIN_FIELDS = {
    "status": "status",
    "pend_reason": "pend_reason",
    "category": "category",
    "network_tier": "network_tier",
    "cost_share_tier": "cost_share_tier",
    "emergency": "emergency",
    "explanation": "explanation_id",
    "referral_number": "referral_number",
    "prior_auth_number": "prior_auth_number",
    "member_id": "member_id",
    "family_id": "family_id",
    "plan_year": "plan_year",
    "plan_key": "plan_key",
}
SPECIAL_FIELDS = {"adjustments", "explanation_params"}


@dataclass
class Scenario:
    name: str
    title: str
    design: PlanDesign
    claims: pl.DataFrame
    context: Context
    # (claim_id, line_number) -> the expected values, columns of DECISIONS
    expected: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    expected_accumulators: list[dict] | None = None
    expected_visit_usage: list[dict] | None = None
    expected_referral_usage: dict[str, int] | None = None


def scenario_files() -> list[Path]:
    return sorted(HERE.glob("*.yaml"))


def money(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f'write money as text, e.g. "$12.50" (got {value!r})')
    return parse_money(value)


def _date(value: Any) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    return date.fromisoformat(str(value))


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(12), tzinfo=UTC)
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- the plan ------------------------------------------------------------------------------


def example_design_data(plan_id: str) -> dict:
    for path in example_designs():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if data.get("id") == plan_id:
            return _unshared(data)
    raise KeyError(f"no example plan with id {plan_id!r}")


def _unshared(value: Any) -> Any:
    """A copy in which no two places share a dict or list. YAML anchors (the HMO's
    `benefits: *hmo-benefits`) share one between plan years, and deepcopy keeps that
    sharing: an override of one plan year would change the other."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value


def apply_override(data: dict, path: str, value: Any) -> None:
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = data
    for key in keys[:-1]:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    node[keys[-1]] = value


def load_plan(spec: dict) -> PlanDesign:
    data = example_design_data(spec["plan"])
    for path, value in (spec.get("plan_overrides") or {}).items():
        apply_override(data, path, value)
    return parse_design(data, file=f"{spec['plan']} (scenario overrides)")


# --- the context ---------------------------------------------------------------------------


def eligibility_rows(spec: dict, design: PlanDesign) -> tuple[list[dict], dict[str, int]]:
    rows, ids = [], {}
    default_start = design.plan_years[0].starts
    for family in spec.get("families") or []:
        for member in family["members"]:
            ids[member["member_number"]] = member["member_id"]
            spans = member.get("spans") or [{}]
            for span in spans:
                rows.append(
                    {
                        "member_number": member["member_number"],
                        "member_id": member["member_id"],
                        "family_id": family["family_id"],
                        "coverage_id": span.get("coverage_id", family.get("coverage_id")),
                        "plan_key": design.id,
                        "coverage_tier": span.get("coverage_tier", family["coverage_tier"]),
                        "start": _date(span.get("start", family.get("start", default_start))),
                        "end": _date(span.get("end", family.get("end"))),
                        "termination_reason": span.get("termination_reason"),
                        "subsidized": span.get("subsidized", family.get("subsidized", False)),
                        "sex": member.get("sex"),
                        "birth_date": _date(member.get("birth_date")),
                        "name": member.get("name"),
                    }
                )
    return rows, ids


def provider_rows(spec: dict, design: PlanDesign) -> tuple[list[dict], list[dict]]:
    providers, contracts = [], []
    for p in spec.get("providers") or []:
        providers.append(
            {
                "npi": str(p["npi"]),
                "name": p.get("name"),
                "taxonomy_code": p.get("taxonomy"),
                "specialty": p.get("specialty"),
                "entity_type": p.get("entity_type", "individual"),
            }
        )
        if p.get("fee_schedule"):
            contracts.append(
                {
                    "npi": str(p["npi"]),
                    "network_key": design.network,
                    "start": _date(p.get("contract_start", design.plan_years[0].starts)),
                    "end": _date(p.get("contract_end")),
                    "fee_schedule_key": p["fee_schedule"],
                }
            )
        for c in p.get("contracts") or []:
            contracts.append(
                {
                    "npi": str(p["npi"]),
                    "network_key": c.get("network", design.network),
                    "start": _date(c["start"]),
                    "end": _date(c.get("end")),
                    "fee_schedule_key": c["fee_schedule"],
                }
            )
    return providers, contracts


def fee_rows(spec: dict) -> tuple[list[dict], list[dict]]:
    schedules, rates = [], []
    for key, s in (spec.get("fee_schedules") or {}).items():
        schedules.append(
            {
                "fee_schedule_key": key,
                "method": s.get("method", "per_code"),
                "percent": Decimal(str(s["percent"])) if s.get("percent") is not None else None,
                "medicare_locality": s.get("locality"),
            }
        )
        given = s.get("rates") or {}
        if isinstance(given, dict):
            given = [{"code": code, "amount": amount} for code, amount in given.items()]
        for r in given:
            rates.append(
                {
                    "fee_schedule_key": key,
                    "procedure_code": str(r["code"]),
                    "modifier": r.get("modifier"),
                    "billing_class": r.get("billing_class"),
                    "place_of_service": r.get("pos"),
                    "unit": r.get("unit", "per_unit"),
                    "amount_cents": money(r["amount"]),
                }
            )
    return schedules, rates


def qpa_rows(spec: dict) -> list[dict]:
    given = spec.get("qpa") or []
    if isinstance(given, dict):
        given = [{"code": code, "amount": amount} for code, amount in given.items()]
    return [
        {
            "procedure_code": str(q["code"]),
            "modifier": q.get("modifier"),
            "billing_class": q.get("billing_class"),
            "amount_cents": money(q["amount"]),
        }
        for q in given
    ]


def _family_of(spec: dict, member_number: str) -> int:
    for family in spec.get("families") or []:
        if any(m["member_number"] == member_number for m in family["members"]):
            return family["family_id"]
    raise KeyError(member_number)


def accumulator_rows(spec: dict, design: PlanDesign, key: str, ids: dict) -> list[dict]:
    rows = []
    for a in spec.get(key) or []:
        member = a.get("member")
        family = a.get("family") if a.get("family") is not None else _family_of(spec, member)
        rows.append(
            {
                "family_id": family,
                "member_id": ids[member] if member is not None else None,
                "plan_key": a.get("plan", design.id),
                "plan_year": a.get("plan_year", design.plan_years[0].year),
                "pool": a["pool"],
                "kind": a["kind"],
                "amount_cents": money(a["amount"]),
            }
        )
    return rows


def build_context(spec: dict, design: PlanDesign) -> tuple[Context, dict[str, int]]:
    eligibility, ids = eligibility_rows(spec, design)
    providers, contracts = provider_rows(spec, design)
    schedules, rates = fee_rows(spec)
    year = design.plan_years[0].year
    tables = {
        "eligibility": frame(eligibility, SCHEMAS["eligibility"]),
        "providers": frame(providers, SCHEMAS["providers"]),
        "contracts": frame(contracts, SCHEMAS["contracts"]),
        "fee_schedules": frame(schedules, SCHEMAS["fee_schedules"]),
        "fee_rates": frame(rates, SCHEMAS["fee_rates"]),
        "qpa": frame(qpa_rows(spec), SCHEMAS["qpa"]),
        "grace_periods": frame(
            [
                {
                    "coverage_id": g["coverage_id"],
                    "starts": _date(g["starts"]),
                    "ends": _date(g.get("ends")),
                    "subsidized": g.get("subsidized", True),
                }
                for g in spec.get("grace_periods") or []
            ],
            SCHEMAS["grace_periods"],
        ),
        "pcp": frame(
            [
                {
                    "member_id": ids[p["member"]],
                    "npi": str(p["npi"]),
                    "start": _date(p.get("start", design.plan_years[0].starts)),
                    "end": _date(p.get("end")),
                }
                for p in spec.get("pcp") or []
            ],
            SCHEMAS["pcp"],
        ),
        "referrals": frame(
            [
                {
                    "referral_number": r["number"],
                    "member_id": ids[r["member"]],
                    "referring_npi": str(r["referring_npi"]) if r.get("referring_npi") else None,
                    "specialist_npi": str(r["specialist_npi"]) if r.get("specialist_npi") else None,
                    "specialty_prefix": r.get("specialty_prefix"),
                    "category": r.get("category"),
                    "visits": r.get("visits"),
                    "valid_from": _date(r.get("valid_from")),
                    "valid_to": _date(r.get("valid_to")),
                    "status": r.get("status", "approved"),
                }
                for r in spec.get("referrals") or []
            ],
            SCHEMAS["referrals"],
        ),
        "prior_auths": frame(
            [
                {
                    "auth_number": a["number"],
                    "member_id": ids[a["member"]],
                    "category": a.get("category"),
                    "procedure_codes": [str(c) for c in a.get("procedure_codes") or []],
                    "valid_from": _date(a.get("valid_from")),
                    "valid_to": _date(a.get("valid_to")),
                    "status": a.get("status", "approved"),
                }
                for a in spec.get("prior_auths") or []
            ],
            SCHEMAS["prior_auths"],
        ),
        "accumulators": frame(
            accumulator_rows(spec, design, "accumulators", ids), SCHEMAS["accumulators"]
        ),
        "visit_usage": frame(
            [
                {
                    "member_id": ids[u["member"]],
                    "plan_year": u.get("plan_year", year),
                    "category": u["category"],
                    "used": u["used"],
                }
                for u in spec.get("visit_usage") or []
            ],
            SCHEMAS["visit_usage"],
        ),
        "referral_usage": frame(
            [
                {"referral_number": k, "used": v}
                for k, v in (spec.get("referral_usage") or {}).items()
            ],
            SCHEMAS["referral_usage"],
        ),
        "overrides": frame(
            [
                {
                    "claim_id": o["claim"],
                    "line_number": o["line"],
                    "action": o["action"],
                    "carc": str(o["carc"]) if o.get("carc") is not None else None,
                    "allowed_cents": money(o.get("allowed")),
                    "reason": o.get("reason"),
                }
                for o in spec.get("overrides") or []
            ],
            SCHEMAS["overrides"],
        ),
    }
    return Context(designs={design.id: design}, **tables), ids


# --- the claims and what must come out ---------------------------------------------------


def claim_rows(spec: dict) -> tuple[list[dict], dict[tuple[str, int], dict]]:
    rows, expectations = [], {}
    for claim in spec.get("claims") or []:
        lines = claim["lines"]
        first_date = _date(lines[0].get("date", claim.get("date")))
        received = _datetime(claim.get("received"))
        if received is None and first_date is not None:
            received = datetime.combine(first_date + timedelta(days=7), time(12), tzinfo=UTC)
        for i, line in enumerate(lines, start=1):
            number = line.get("line", i)
            units = line.get("units", 1)
            rows.append(
                {
                    "claim_id": claim["id"],
                    "line_number": number,
                    "member_number": claim.get("member"),
                    "billing_npi": str(claim["billing"]) if claim.get("billing") else None,
                    "rendering_npi": str(claim["rendering"]) if claim.get("rendering") else None,
                    "claim_type": claim.get("type", "professional"),
                    "frequency_code": str(claim.get("frequency", "1")),
                    "replaces_claim_id": claim.get("replaces"),
                    "received_at": received,
                    "service_date": _date(line.get("date", claim.get("date"))),
                    "place_of_service": line.get("pos", claim.get("pos")),
                    "procedure_code": str(line["code"]) if line.get("code") else None,
                    "modifiers": [str(m) for m in line.get("modifiers") or []],
                    "revenue_code": str(line["revenue"]) if line.get("revenue") else None,
                    "units": Decimal(str(units)) if units is not None else None,
                    "charge_cents": money(line.get("charge")),
                    "diagnosis_codes": line.get("diagnosis", claim.get("diagnosis")),
                    "referral_number": claim.get("referral"),
                    "prior_auth_number": claim.get("prior_auth"),
                    "emergency": bool(claim.get("emergency", False)),
                    "drug_tier": line.get("drug_tier"),
                }
            )
            if "expect" not in line:
                raise ValueError(f"claim {claim['id']} line {number}: no `expect`")
            expectations[(claim["id"], number)] = expected_columns(line["expect"])
    return rows, expectations


def expected_columns(expect: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in expect.items():
        if name in MONEY_FIELDS:
            out[MONEY_FIELDS[name]] = money(value)
        elif name in PLAIN_FIELDS:
            out[PLAIN_FIELDS[name]] = value
        elif name == "adjustments":
            out["adjustments"] = [parse_adjustment(a) for a in value]
        elif name == "explanation_params":
            out["explanation_params"] = value
        else:
            raise ValueError(f"unknown expectation {name!r}")
    status = out.get("status")
    if status is None:
        raise ValueError(f"every line expects a status ({expect})")
    needed = {"paid": ["adjustments", *MONEY_FIELDS.values()], "denied": ["adjustments"]}
    for column in needed.get(status, []):
        if column not in out and column != "charge_cents":
            raise ValueError(f"a {status} line must expect {column} ({expect})")
    return out


def parse_adjustment(text: str) -> tuple[str, str, str | None, int]:
    """ "CO-45 $50.00" -> ("CO", "45", None, 5000); "CO-16/MA130 $1.00" names the RARC."""
    code, amount = text.split()
    code, _, rarc = code.partition("/")
    group, carc = code.split("-", 1)
    return group, carc, rarc or None, money(amount)


def expected_accumulators(spec: dict, design: PlanDesign, ids: dict) -> list[dict] | None:
    if "expect_accumulators" not in spec:
        return None
    return accumulator_rows(spec, design, "expect_accumulators", ids)


def load_scenario(path: Path) -> Scenario:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    design = load_plan(spec)
    context, ids = build_context(spec, design)
    rows, expected = claim_rows(spec)
    year = design.plan_years[0].year
    visit_usage = None
    if "expect_visit_usage" in spec:
        visit_usage = [
            {
                "member_id": ids[u["member"]],
                "plan_year": u.get("plan_year", year),
                "category": u["category"],
                "used": u["used"],
            }
            for u in spec["expect_visit_usage"] or []
        ]
    referral_usage = None
    if "expect_referral_usage" in spec:
        referral_usage = dict(spec["expect_referral_usage"] or {})
    return Scenario(
        name=path.stem,
        title=spec.get("title", path.stem),
        design=design,
        claims=claim_lines(rows),
        context=context,
        expected=expected,
        expected_accumulators=expected_accumulators(spec, design, ids),
        expected_visit_usage=visit_usage,
        expected_referral_usage=referral_usage,
    )


# --- comparing two results (engine and reference), shared with the property tests -------

# Columns whose text is the implementation's own (the trace's wording is not fixed by
# docs/adjudication.md); everything else must agree exactly.
FREE_TEXT_COLUMNS = ("trace",)


def decision_rows(decisions: pl.DataFrame) -> dict[tuple[str, int], dict]:
    rows = {}
    for row in decisions.iter_rows(named=True):
        row = dict(row)
        for column in FREE_TEXT_COLUMNS:
            row.pop(column, None)
        row["adjustments"] = [
            (a["group"], a["carc"], a["rarc"], a["amount_cents"]) for a in row["adjustments"] or []
        ]
        params = row.get("explanation_params")
        row["explanation_params"] = json.loads(params) if params else {}
        rows[(row["claim_id"], row["line_number"])] = row
    return rows


def nonzero_rows(table: pl.DataFrame, value: str) -> set[tuple]:
    return {tuple(r.values()) for r in table.iter_rows(named=True) if r[value]}


# Disagreements on these come first in a report: they move money or decide the line.
DECIDING_COLUMNS = (
    "status",
    "pend_reason",
    "allowed_cents",
    "plan_paid_cents",
    "deductible_cents",
    "copay_cents",
    "coinsurance_cents",
    "member_share_cents",
    "adjustments",
    "explanation_id",
)


def differences(a, b, names: tuple[str, str] = ("engine", "reference")) -> list[str]:
    """Every disagreement between two Results, as readable lines (empty when they agree):
    the tables' rows first, then the decisions' columns that decide the line, then the
    others."""
    tables, deciding, other = [], [], []
    rows_a, rows_b = decision_rows(a.decisions), decision_rows(b.decisions)
    if rows_a.keys() != rows_b.keys():
        tables.append(f"decision rows differ: {sorted(rows_a.keys() ^ rows_b.keys())[:10]}")
    for key in sorted(rows_a.keys() & rows_b.keys()):
        for column, value in rows_a[key].items():
            if value != rows_b[key][column]:
                line = f"{key} {column}: {names[0]} {value!r} != {names[1]} {rows_b[key][column]!r}"
                (deciding if column in DECIDING_COLUMNS else other).append(line)
    for table, value in (
        ("accumulators", "amount_cents"),
        ("visit_usage", "used"),
        ("referral_usage", "used"),
    ):
        only_a = nonzero_rows(getattr(a, table), value) - nonzero_rows(getattr(b, table), value)
        only_b = nonzero_rows(getattr(b, table), value) - nonzero_rows(getattr(a, table), value)
        for row in sorted(only_a, key=repr):
            tables.append(f"{table}: only in {names[0]}: {row}")
        for row in sorted(only_b, key=repr):
            tables.append(f"{table}: only in {names[1]}: {row}")
    return tables + deciding + other
