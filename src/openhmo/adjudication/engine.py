"""The adjudication engine: claims and context tables in, decisions and accumulators out.

A pure function (no I/O) over Polars frames, so the same code decides one claim in real
time and millions in a batch. It follows docs/adjudication.md step by step; each step
is a small function that settles some open lines (denied or pended, with the group
code, CARC and the clause that decided) and adds the columns later steps need.
"""

from __future__ import annotations

import polars as pl

from openhmo.adjudication import (
    cost_sharing,
    outputs,
    plan_tables,
    steps_authorization,
    steps_benefit,
    steps_coverage,
    steps_intake,
)
from openhmo.adjudication.context import Context
from openhmo.adjudication.decisions import Decided, Result
from openhmo.adjudication.frame import I64, decided, first_of_line, tracing

# The steps of docs/adjudication.md §3, in order.
STEPS = (
    steps_intake.frequency,
    steps_intake.intake,
    steps_coverage.eligibility,
    steps_coverage.network,
    steps_coverage.category,
    steps_coverage.emergency,
    steps_coverage.out_of_network,
    steps_authorization.referral,
    steps_authorization.prior_authorization,
    steps_benefit.benefit,
    steps_benefit.pricing,
    cost_sharing.cost_sharing,
)


def adjudicate(claims: pl.DataFrame, context: Context) -> Result:
    """Decide every line of `claims` under `context` (docs/adjudication.md), with the
    trace of every step: the real-time path, and what staff read."""
    with tracing(True):
        w = _run(claims, context, plan_tables.build(context.designs))
    return Result(
        decisions=outputs.present(outputs.line_decisions(w), outputs.trace_lists(w)),
        accumulators=outputs.accumulators(w, context),
        visit_usage=outputs.visit_usage(w, context),
        referral_usage=outputs.referral_usage(w, context),
    )


def decide(claims: pl.DataFrame, context: Context, tables: dict | None = None) -> Decided:
    """The same decisions as `adjudicate`, flat and without the trace: the batch path.

    `tables` are the plan tables of `context.designs` (plan_tables.build), built once by
    a caller that decides many partitions under the same designs.
    """
    with tracing(False):
        w = _run(claims, context, tables or plan_tables.build(context.designs))
    return Decided(
        decisions=outputs.line_decisions(w),
        accumulators=outputs.accumulators(w, context),
        visit_usage=outputs.visit_usage(w, context),
        referral_usage=outputs.referral_usage(w, context),
    )


def _run(claims: pl.DataFrame, context: Context, tables: dict) -> pl.DataFrame:
    w = _prepare(claims, context, tables)
    for step in STEPS:
        w = step(w, context, tables)
    return outputs.explain(outputs.payment(decided(w)), context)


def _prepare(claims: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    # Lines are joined to narrow frames keyed by `_row`; the wide frame is never sorted
    # or de-duplicated as a whole (each of those copies every column).
    lines = claims.with_row_index("_row")
    keys = lines.select("_row", "member_number", "service_date")
    # The span covering the service date (the earliest, if spans overlap); a line without
    # one gets the member's first span's fields below. The join keeps the lines' order
    # and, within a line, the spans' (by start), so a line's first row is its span: no
    # sort or de-duplication over the lines.
    elig = context.eligibility.sort("member_number", "start", maintain_order=True)
    covering = (
        keys.join(
            elig.select("member_number", "start", "end", "plan_key").with_row_index("_span"),
            on="member_number",
            how="inner",
            maintain_order="left_right",
        )
        .filter(
            (pl.col("start") <= pl.col("service_date"))
            & (pl.col("end").is_null() | (pl.col("end") >= pl.col("service_date")))
        )
        .filter(first_of_line())
    )
    spans = covering.select("_row").hstack(
        elig.select(
            "member_id",
            "family_id",
            "coverage_id",
            "plan_key",
            "coverage_tier",
            "subsidized",
            "start",
            "end",
            "sex",
        )[covering["_span"]]
    )
    members = elig.group_by("member_number", maintain_order=True).agg(
        m_member_id=pl.col("member_id").first(),
        m_family_id=pl.col("family_id").first(),
        first_start=pl.col("start").min(),
        m_sex=pl.col("sex").first(),
        last_end=pl.col("end").max(),
    )
    # The plan year of the design containing the service date. Plan-year columns are
    # null for a date outside every plan year; the design's own (network, rules) stay.
    plan_years = tables["plan_years"]
    year_cols = ["plan_year", "accumulation"]
    in_year = (
        covering.select("_row", "plan_key", "service_date")
        .join(
            plan_years.select("plan_key", "py_starts", "py_ends", *year_cols),
            on="plan_key",
            how="inner",
            maintain_order="left_right",
        )
        .filter(
            (pl.col("py_starts") <= pl.col("service_date"))
            & (pl.col("py_ends") >= pl.col("service_date"))
        )
        .filter(first_of_line())
        .select("_row", *year_cols)
    )
    design = plan_years.unique("plan_key", keep="first", maintain_order=True).drop(
        *year_cols, "py_index", "py_starts", "py_ends"
    )
    spans = spans.join(design, on="plan_key", how="left", maintain_order="left").join(
        in_year, on="_row", how="left", maintain_order="left"
    )
    # Adjudication order: family, date of service, receipt, claim, line.
    order = (
        lines.select(
            "_row", "member_number", "service_date", "received_at", "claim_id", "line_number"
        )
        .join(spans.select("_row", "family_id"), on="_row", how="left", maintain_order="left")
        .join(
            members.select("member_number", "m_family_id"),
            on="member_number",
            how="left",
            maintain_order="left",
        )
        .with_columns(_family=pl.coalesce("family_id", "m_family_id"))
        .sort(
            pl.col("_family").is_null(),
            "_family",
            "service_date",
            "received_at",
            "claim_id",
            "line_number",
        )
        .get_column("_row")
    )
    # Claims files written in adjudication order (the generator's, a partition of one)
    # need no reordering: only the permutation is checked.
    in_order = bool((order.diff().fill_null(1) == 1).all())
    w = (
        (lines if in_order else lines[order])
        .with_row_index("_order")
        .with_columns(
            rendering=pl.coalesce("rendering_npi", "billing_npi"),
            units_milli=(pl.col("units").cast(pl.Decimal(18, 3)) * 1000).cast(I64),
            received_date=pl.col("received_at").dt.date(),
            modifiers=pl.col("modifiers").fill_null([]),
            diagnosis_codes=pl.col("diagnosis_codes").fill_null([]),
            emergency=pl.col("emergency").fill_null(False),
            # A claim's lines as one integer key, for window functions by claim.
            _claim=pl.col("claim_id").cast(pl.Categorical).to_physical(),
        )
    )
    w = w.join(spans, on="_row", how="left", maintain_order="left").join(
        members, on="member_number", how="left", maintain_order="left"
    )
    w = w.with_columns(
        covered=pl.col("member_id").is_not_null(),
        known_member=pl.col("m_member_id").is_not_null(),
        member_id=pl.coalesce("member_id", "m_member_id"),
        family_id=pl.coalesce("family_id", "m_family_id"),
        sex=pl.coalesce("sex", "m_sex"),
    )
    return w.with_columns(_decision=pl.lit(None, pl.Int32)).join(
        context.overrides.rename(
            {
                "action": "override_action",
                "carc": "override_carc",
                "allowed_cents": "override_allowed",
                "reason": "override_reason",
            }
        ),
        on=["claim_id", "line_number"],
        how="left",
        maintain_order="left",
    )
