"""What adjudication gives out: one decision per claim line, and the new accumulators."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from openhmo.adjudication.context import SCHEMAS

S, I64, B = pl.String, pl.Int64, pl.Boolean

ADJUSTMENT = pl.Struct({"group": S, "carc": S, "rarc": S, "amount_cents": I64})
TRACE_STEP = pl.Struct({"step": S, "clause": S, "note": S})

DECISIONS = {
    "claim_id": S,
    "line_number": I64,
    "member_id": I64,
    "family_id": I64,
    "plan_key": S,
    "plan_year": I64,
    "status": S,
    "pend_reason": S,
    "category": S,
    "category_rule": S,
    "network_tier": S,
    "cost_share_tier": S,
    "emergency": B,
    "charge_cents": I64,
    "allowed_cents": I64,
    "plan_paid_cents": I64,
    "deductible_cents": I64,
    "copay_cents": I64,
    "coinsurance_cents": I64,
    "member_share_cents": I64,
    "adjustments": pl.List(ADJUSTMENT),
    "trace": pl.List(TRACE_STEP),
    "explanation_id": S,
    "explanation_params": S,  # params as a JSON object
    "referral_number": S,
    "prior_auth_number": S,
}

STATUSES = ("paid", "denied", "pended", "voided", "replaced", "void")


@dataclass
class Result:
    decisions: pl.DataFrame
    accumulators: pl.DataFrame
    visit_usage: pl.DataFrame
    referral_usage: pl.DataFrame

    def __post_init__(self) -> None:
        expected = {
            "decisions": DECISIONS,
            "accumulators": SCHEMAS["accumulators"],
            "visit_usage": SCHEMAS["visit_usage"],
            "referral_usage": SCHEMAS["referral_usage"],
        }
        for name, schema in expected.items():
            table = getattr(self, name)
            if dict(table.schema) != dict(schema):
                raise ValueError(
                    f"result table {name!r} has schema {dict(table.schema)}, "
                    f"expected {dict(schema)}"
                )
