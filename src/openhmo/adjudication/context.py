"""The tables adjudication takes in, with their exact schemas (docs/adjudication.md §1).

The engine, the reference model and every shell (database, Parquet snapshots, the
scenario files of the tests) build the same `Claims` frame and `Context`; `frame()`
turns plain rows into a frame of the right schema, so a missing or misspelt column is
an error here and not a wrong decision later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from openhmo.plans.design import PlanDesign

S, I64, B, D = pl.String, pl.Int64, pl.Boolean, pl.Date
LIST_S = pl.List(pl.String)
UNITS = pl.Decimal(12, 3)
TS = pl.Datetime("us", "UTC")

CLAIM_LINES = {
    "claim_id": S,
    "line_number": I64,
    "member_number": S,
    "billing_npi": S,
    "rendering_npi": S,
    "claim_type": S,
    "frequency_code": S,
    "replaces_claim_id": S,
    "received_at": TS,
    "service_date": D,
    "place_of_service": S,
    "procedure_code": S,
    "modifiers": LIST_S,
    "revenue_code": S,
    "units": UNITS,
    "charge_cents": I64,
    "diagnosis_codes": LIST_S,
    "referral_number": S,
    "prior_auth_number": S,
    "emergency": B,
    "drug_tier": S,
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    # One row per member per coverage span.
    "eligibility": {
        "member_number": S,
        "member_id": I64,
        "family_id": I64,
        "coverage_id": I64,
        "plan_key": S,
        "coverage_tier": S,
        "start": D,
        "end": D,
        "termination_reason": S,
        "subsidized": B,
        "sex": S,
        "birth_date": D,
        "name": S,
    },
    "grace_periods": {"coverage_id": I64, "starts": D, "ends": D, "subsidized": B},
    "pcp": {"member_id": I64, "npi": S, "start": D, "end": D},
    "providers": {
        "npi": S,
        "name": S,
        "taxonomy_code": S,
        "specialty": S,
        "entity_type": S,
    },
    # A provider in a network on dates (organization contracts already expanded to NPIs).
    "contracts": {"npi": S, "network_key": S, "start": D, "end": D, "fee_schedule_key": S},
    "fee_schedules": {
        "fee_schedule_key": S,
        "method": S,
        "percent": pl.Decimal(7, 3),
        "medicare_locality": S,
    },
    "fee_rates": {
        "fee_schedule_key": S,
        "procedure_code": S,
        "modifier": S,
        "billing_class": S,
        "place_of_service": S,
        "unit": S,
        "amount_cents": I64,
    },
    # Qualifying payment amount: the median in-network allowed amount of a code.
    "qpa": {"procedure_code": S, "modifier": S, "billing_class": S, "amount_cents": I64},
    "referrals": {
        "referral_number": S,
        "member_id": I64,
        "referring_npi": S,
        "specialist_npi": S,
        "specialty_prefix": S,
        "category": S,
        "visits": I64,
        "valid_from": D,
        "valid_to": D,
        "status": S,
    },
    "prior_auths": {
        "auth_number": S,
        "member_id": I64,
        "category": S,
        "procedure_codes": LIST_S,
        "valid_from": D,
        "valid_to": D,
        "status": S,
    },
    # Accumulated amounts at the start (member_id null: the family's row).
    "accumulators": {
        "family_id": I64,
        "member_id": I64,
        "plan_key": S,
        "plan_year": I64,
        "pool": S,
        "kind": S,
        "amount_cents": I64,
    },
    "visit_usage": {"member_id": I64, "plan_year": I64, "category": S, "used": I64},
    "referral_usage": {"referral_number": S, "used": I64},
    "overrides": {
        "claim_id": S,
        "line_number": I64,
        "action": S,
        "carc": S,
        "allowed_cents": I64,
        "reason": S,
    },
}


def frame(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A frame with exactly `schema`: absent columns are null, unknown ones an error."""
    rows = list(rows)
    for i, row in enumerate(rows):
        unknown = set(row) - set(schema)
        if unknown:
            raise ValueError(f"row {i}: unknown column(s) {', '.join(sorted(unknown))}")
    data = {name: [row.get(name) for row in rows] for name in schema}
    return pl.DataFrame(data, schema=dict(schema))


def claim_lines(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    return frame(rows, CLAIM_LINES)


@dataclass
class Context:
    """Everything adjudication reads besides the claims, as of one run."""

    designs: dict[str, PlanDesign]
    eligibility: pl.DataFrame
    grace_periods: pl.DataFrame = field(default_factory=lambda: empty("grace_periods"))
    pcp: pl.DataFrame = field(default_factory=lambda: empty("pcp"))
    providers: pl.DataFrame = field(default_factory=lambda: empty("providers"))
    contracts: pl.DataFrame = field(default_factory=lambda: empty("contracts"))
    fee_schedules: pl.DataFrame = field(default_factory=lambda: empty("fee_schedules"))
    fee_rates: pl.DataFrame = field(default_factory=lambda: empty("fee_rates"))
    qpa: pl.DataFrame = field(default_factory=lambda: empty("qpa"))
    referrals: pl.DataFrame = field(default_factory=lambda: empty("referrals"))
    prior_auths: pl.DataFrame = field(default_factory=lambda: empty("prior_auths"))
    accumulators: pl.DataFrame = field(default_factory=lambda: empty("accumulators"))
    visit_usage: pl.DataFrame = field(default_factory=lambda: empty("visit_usage"))
    referral_usage: pl.DataFrame = field(default_factory=lambda: empty("referral_usage"))
    overrides: pl.DataFrame = field(default_factory=lambda: empty("overrides"))

    def __post_init__(self) -> None:
        for name, schema in SCHEMAS.items():
            table = getattr(self, name)
            if dict(table.schema) != dict(schema):
                raise ValueError(
                    f"context table {name!r} has schema {dict(table.schema)}, "
                    f"expected {dict(schema)}"
                )


def empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[name])
