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

# One decision per claim line, flat, as a batch run writes it to Parquet: the adjustments
# as columns (the contractual write-off, the member's PR-1/2/3 shares, the denial) and
# the step and clause that decided, instead of the lists a person reads
# (openhmo.adjudication.outputs.present turns these into DECISIONS).
LINE_DECISIONS = {
    **{c: t for c, t in DECISIONS.items() if c not in ("adjustments", "trace")},
    "write_off_group": S,
    "write_off_cents": I64,
    "denial_group": S,
    "denial_carc": S,
    "denial_rarc": S,
    "decided_step": S,
    "decided_clause": S,
}

STATUSES = ("paid", "denied", "pended", "voided", "replaced", "void")


def _check(name: str, table: pl.DataFrame, schema: dict) -> None:
    if dict(table.schema) != dict(schema):
        raise ValueError(
            f"result table {name!r} has schema {dict(table.schema)}, expected {dict(schema)}"
        )


@dataclass
class Result:
    """What the engine gives out: a decision per line, and the new accumulators and counts."""

    decisions: pl.DataFrame
    accumulators: pl.DataFrame
    visit_usage: pl.DataFrame
    referral_usage: pl.DataFrame

    DECISIONS_SCHEMA = DECISIONS

    def __post_init__(self) -> None:
        _check("decisions", self.decisions, self.DECISIONS_SCHEMA)
        for name in ("accumulators", "visit_usage", "referral_usage"):
            _check(name, getattr(self, name), SCHEMAS[name])


@dataclass
class Decided(Result):
    """What a batch run gives out: the same, with flat line decisions (LINE_DECISIONS)."""

    DECISIONS_SCHEMA = LINE_DECISIONS
