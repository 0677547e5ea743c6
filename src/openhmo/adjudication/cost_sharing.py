"""Step 10: copays, deductibles, coinsurance and the out-of-pocket cap, family by family."""

from __future__ import annotations

import polars as pl

from openhmo.adjudication import plan_tables, share_pass
from openhmo.adjudication.context import Context
from openhmo.adjudication.frame import I64, OPEN, S, money_text, trace
from openhmo.plans.cost_share import CopayUnit
from openhmo.plans.design import TierName

PAY_COLUMNS = [
    "_row",
    "_claim",
    "paying",
    "service_date",
    "category",
    "units_milli",
    "copay",
    "copay_unit",
    "copay_max_units",
    "coins_milli",
    "deductible_rule",
    "no_charge",
    "cost_share_tier",
    "allowed_cents",
    "plan_key",
    "plan_year",
    "accumulation",
    "coverage_tier",
    "family_id",
    "member_id",
]


def cost_sharing(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = w.with_columns(paying=OPEN)
    # Only the columns cost sharing reads, of the paying lines (w is in adjudication
    # order, and a filter keeps it): the plan's limits and the starting totals joined
    # on, then one pass (share_pass) does the arithmetic line after line.
    pay = w.select(PAY_COLUMNS).filter(pl.col("paying"))
    tiers = tables["tiers"].rename({"tier": "cost_share_tier"})
    pay = pay.join(
        tiers, on=["plan_key", "plan_year", "cost_share_tier"], how="left", maintain_order="left"
    )
    drug = (
        pl.col("category").is_in([c.value for c in plan_tables.DRUG_CATEGORIES])
        & pl.col("drug_ded_ind").is_not_null()
    )
    pay = pay.with_columns(
        pool=_pool(tables),
        ded_kind_col=pl.when(drug).then(pl.lit("drug_deductible")).otherwise(pl.lit("deductible")),
    )
    plans = plan_numbers(context)
    inputs = _pass_columns(pay, drug, plans)
    shares = share_pass.share(inputs | _starts(context, plans))
    pay = pay.with_columns(pl.Series(name, values) for name, values in shares.items())
    # The accumulator each line takes from, as the pass numbers it (the new totals are
    # summed by these numbers: outputs.accumulators).
    pay = pay.with_columns(
        _acc_group=pl.Series(inputs["group"]), _acc_drug=pl.Series(inputs["drug"])
    )
    keep = [
        "_row",
        *share_pass.OUTPUTS,
        "pool",
        "ded_kind_col",
        "tier_clause",
        "_acc_group",
        "_acc_drug",
    ]
    w = w.join(pay.select(keep), on="_row", how="left", maintain_order="left")
    for c in ("deductible_cents", "copay_cents", "coinsurance_cents", "member_share_cents"):
        w = w.with_columns(pl.col(c).fill_null(0))
    ded_note = (
        pl.col("ded_kind_col")
        + " "
        + money_text(pl.col("_ded"))
        + " ("
        + pl.col("tier_clause")
        + ".deductible)"
    )
    w = trace(w, "deductible", ded_note, when=pl.col("paying") & (pl.col("_ded") > 0))
    oop_note = (
        pl.lit("out-of-pocket maximum reached: member share capped at ", S)
        + money_text(pl.col("_oop_take"))
        + " ("
        + pl.col("tier_clause")
        + ".out_of_pocket_max)"
    )
    return trace(
        w,
        "out_of_pocket",
        oop_note,
        when=pl.col("paying") & (pl.col("_oop_take") < pl.col("_share")),
    )


def _pool(tables) -> pl.Expr:
    cross = pl.col("accumulation") == "cross"
    return (
        pl.when(cross & pl.col("cost_share_tier").is_in(["in_network", "out_of_network"]))
        .then(pl.lit("combined"))
        .otherwise(pl.col("cost_share_tier"))
    )


def _limits(kind_ind: str, kind_fam: str, kind_kind: str | None) -> tuple[pl.Expr, pl.Expr]:
    """A line's individual and family limit of one kind (a null limit is no limit)."""
    self_only = pl.col("coverage_tier") == "self_only"
    aggregate = pl.col(kind_kind) == "aggregate" if kind_kind else pl.lit(False)
    ind = pl.when(self_only | ~aggregate).then(pl.col(kind_ind)).otherwise(None)
    fam = pl.when(self_only).then(None).otherwise(pl.col(kind_fam))
    return ind, fam


# Pools and kinds of accumulator as the pass's group numbers.
_POOLS = {tier.value: code for code, tier in enumerate(TierName)} | {"combined": len(TierName)}
_UNITS = {
    CopayUnit.VISIT.value: share_pass.PER_VISIT,
    CopayUnit.STAY.value: share_pass.PER_STAY,
    CopayUnit.DAY.value: share_pass.PER_DAY,
}


def plan_numbers(context: Context) -> dict[str, int]:
    """The plans' numbers in accumulator groups: their keys in sorted order."""
    return {key: number for number, key in enumerate(sorted(context.designs))}


def group_columns(group: pl.Expr, context: Context) -> dict[str, pl.Expr]:
    """plan_key, plan_year and pool of accumulator groups numbered as `_group` numbers
    them (the inverse of `_group`)."""
    plans = plan_numbers(context)
    year = (group // 16) % 65536
    return {
        "plan_key": (group // (65536 * 16)).replace_strict(
            list(plans.values()), list(plans), default=None, return_dtype=S
        ),
        "plan_year": pl.when(year == 65535).then(None).otherwise(year),
        "pool": (group % 16).replace_strict(
            list(_POOLS.values()), list(_POOLS), default=None, return_dtype=S
        ),
    }


def _group(plans: dict[str, int]) -> pl.Expr:
    """A line's accumulator groups within its family, as share_pass numbers them: the
    plan, plan year and pool as one number (times 4, plus the kind, in the pass)."""
    plan = pl.col("plan_key").replace_strict(plans, default=None, return_dtype=I64)
    year = pl.col("plan_year").fill_null(65535)
    pool = pl.col("pool").replace_strict(_POOLS, default=None, return_dtype=I64)
    return (plan * 65536 + year) * 16 + pool


def _starts(context: Context, plans: dict[str, int]) -> dict:
    """The accumulators at the run's start, as the pass looks them up: members' and
    families' totals by (member or family, group), sorted."""
    acc = (
        context.accumulators.with_columns(
            group=_group(plans) * 4 + pl.col("kind").replace_strict(share_pass.KINDS, default=None)
        )
        .filter(pl.col("group").is_not_null())
        .with_columns(id=pl.coalesce("member_id", "family_id"))
        .group_by(pl.col("member_id").is_null().alias("family"), "id", "group")
        .agg(amount=pl.col("amount_cents").sum())
        .sort("family", "id", "group")
    )
    starts = {}
    for level, family in (("member", False), ("family", True)):
        rows = acc.filter(pl.col("family") == family)
        for column in ("id", "group", "amount"):
            starts[f"{level}_start_{column}"] = rows.get_column(column).cast(I64).to_numpy()
    return starts


def _pass_columns(pay: pl.DataFrame, drug: pl.Expr, plans: dict[str, int]) -> dict:
    """The columns share_pass reads, as int64 and bool arrays (nulls as NONE)."""
    none = share_pass.NONE
    rule = pl.col("deductible_rule")
    # Preventive care and screening mammography in the network at no charge are free of
    # every cost share, whatever else the benefit's text says.
    preventive_free = (
        pl.col("category").is_in(["preventive", "screening_mammography"])
        & pl.col("cost_share_tier").is_in(["in_network", "all_providers"])
        & pl.col("no_charge")
    )
    charged = ~preventive_free
    ded_ind_m, ded_fam_m = _limits("ded_ind", "ded_fam", "ded_kind")
    ded_ind_d, ded_fam_d = _limits("drug_ded_ind", "drug_ded_fam", "drug_ded_kind")
    oop_ind, oop_fam = _limits("oop_ind", "oop_fam", None)
    frame = pay.select(
        family=pl.col("family_id"),
        member=pl.col("member_id"),
        # Claims numbered densely (engine._prepare): the pass indexes by them.
        claim=pl.col("_claim").cast(I64),
        service_date=pl.col("service_date").cast(pl.Int32).cast(I64),
        category=pl.col("category").cast(pl.Categorical).to_physical().cast(I64),
        allowed=pl.col("allowed_cents"),
        copay=pl.col("copay").fill_null(none),
        copay_unit=pl.col("copay_unit").replace_strict(
            _UNITS, default=share_pass.PER_LINE, return_dtype=I64
        ),
        copay_max_units=pl.col("copay_max_units").fill_null(none),
        days=(pl.col("units_milli") + 999) // 1000,
        # (A condition that is null, as when(...) reads it, does not hold.)
        copay_first=(rule.is_in(["no_deductible", "with_deductible"]) & charged).fill_null(False),
        deductible_applies=(
            rule.is_in(["after_deductible", "with_deductible"]) & charged
        ).fill_null(False),
        copay_after=((rule == "after_deductible") & charged).fill_null(False),
        coins_milli=pl.when((pl.col("coins_milli").is_not_null() & charged).fill_null(False))
        .then(pl.col("coins_milli"))
        .otherwise(none),
        group=_group(plans),
        drug=drug.fill_null(False),
        ded_ind=pl.when(drug).then(ded_ind_d).otherwise(ded_ind_m).fill_null(none),
        ded_fam=pl.when(drug).then(ded_fam_d).otherwise(ded_fam_m).fill_null(none),
        oop_ind=oop_ind.fill_null(none),
        oop_fam=oop_fam.fill_null(none),
    )
    missing = [name for name, count in frame.null_count().row(0, named=True).items() if count]
    if missing:
        raise ValueError(f"cost sharing: paying lines without {', '.join(missing)}")
    return {name: frame.get_column(name).to_numpy() for name in frame.columns}
