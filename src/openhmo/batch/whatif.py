"""What-if: a year of claims re-adjudicated under a changed plan design, and what it costs.

The benefit designer's question: if this plan's design had been NEW, what would the
plan have paid, and the members, in total and service category by category? Both runs
use the same engine (its batch path) on the same claims and context; only the design
of the one plan differs. Only the families that were ever on the plan are decided,
and only lines of that plan and plan year are compared.

Member cost is what the members owe on those lines: their share (deductible, copay,
coinsurance) plus what a provider may bill them, the PR-group write-offs of
out-of-network charges above the allowed amount and PR-group denials.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from openhmo.adjudication import plan_tables
from openhmo.adjudication.context import Context
from openhmo.adjudication.engine import decide
from openhmo.batch.snapshot import only_families
from openhmo.plans.design import PlanDesign

KEY = ["claim_id", "line_number"]


class WhatIfError(ValueError):
    pass


@dataclass
class WhatIf:
    plan_key: str
    plan_year: int
    lines: int
    # One row per service category (and a "total" row last): lines, plan and member
    # cost before and after, and the changes, in cents.
    by_category: pl.DataFrame
    # Lines whose status changed: before, after, lines.
    status_changes: pl.DataFrame

    @property
    def total(self) -> dict:
        return self.by_category.filter(pl.col("category") == "total").row(0, named=True)


def member_cost() -> pl.Expr:
    return (
        pl.col("member_share_cents").fill_null(0)
        + pl.when(pl.col("write_off_group") == "PR").then(pl.col("write_off_cents")).otherwise(0)
        + pl.when((pl.col("status") == "denied") & (pl.col("denial_group") == "PR"))
        .then(pl.col("charge_cents"))
        .otherwise(0)
    )


def what_if(claims: pl.DataFrame, context: Context, design: PlanDesign, year: int) -> WhatIf:
    """The change in plan and member cost of `design` (replacing the plan of the same id)
    on the lines of plan year `year` of that plan."""
    key = design.id
    if key not in context.designs:
        known = ", ".join(sorted(context.designs)) or "none"
        raise WhatIfError(f"plan {key!r} is not in the context (plans: {known})")
    if not any(y.year == year for y in design.plan_years):
        years = ", ".join(str(y.year) for y in design.plan_years)
        raise WhatIfError(f"the new design of {key!r} has no plan year {year} (it has {years})")
    families = context.eligibility.filter(pl.col("plan_key") == key)["family_id"].unique()
    if families.is_empty():
        raise WhatIfError(f"no member was ever on plan {key!r}")
    ctx = only_families(context, families)
    numbers = ctx.eligibility["member_number"].unique().implode()
    lines = claims.filter(pl.col("member_number").is_in(numbers))
    changed = replace(ctx, designs={**ctx.designs, key: design})
    before = decide(lines, ctx, plan_tables.build(ctx.designs)).decisions
    after = decide(lines, changed, plan_tables.build(changed.designs)).decisions
    return compare(before, after, key, year)


def compare(before: pl.DataFrame, after: pl.DataFrame, plan_key: str, year: int) -> WhatIf:
    """The costs of two runs' decisions of the same lines, on the lines of the plan year."""

    def costs(decisions: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return decisions.select(
            *KEY,
            pl.col("plan_key").alias(f"plan_key{suffix}"),
            pl.col("plan_year").alias(f"plan_year{suffix}"),
            pl.col("category").alias(f"category{suffix}"),
            pl.col("status").alias(f"status{suffix}"),
            pl.col("plan_paid_cents").fill_null(0).alias(f"plan{suffix}"),
            member_cost().alias(f"member{suffix}"),
        )

    both = costs(before, "_before").join(costs(after, "_after"), on=KEY, how="full", coalesce=True)
    both = both.filter(
        ((pl.col("plan_key_before") == plan_key) & (pl.col("plan_year_before") == year))
        | ((pl.col("plan_key_after") == plan_key) & (pl.col("plan_year_after") == year))
    ).with_columns(
        category=pl.coalesce("category_after", "category_before").fill_null("unclassified"),
        **{c: pl.col(c).fill_null(0) for c in ("plan_before", "plan_after")},
        **{c: pl.col(c).fill_null(0) for c in ("member_before", "member_after")},
    )
    sums = [
        pl.len().alias("lines"),
        *[pl.col(c).sum() for c in ("plan_before", "plan_after", "member_before", "member_after")],
    ]
    by_category = both.group_by("category").agg(sums).sort("category")
    total = both.select(pl.lit("total").alias("category"), *sums)
    table = pl.concat([by_category, total], how="vertical_relaxed").with_columns(
        plan_change=pl.col("plan_after") - pl.col("plan_before"),
        member_change=pl.col("member_after") - pl.col("member_before"),
    )
    changes = (
        both.filter(pl.col("status_before").ne_missing(pl.col("status_after")))
        .group_by(before="status_before", after="status_after")
        .agg(lines=pl.len())
        .sort("lines", "before", "after", descending=[True, False, False])
    )
    return WhatIf(
        plan_key=plan_key,
        plan_year=year,
        lines=both.height,
        by_category=table.with_columns(pl.col("lines").cast(pl.Int64)),
        status_changes=changes.with_columns(pl.col("lines").cast(pl.Int64)),
    )
