"""Step 10: copays, deductibles, coinsurance and the out-of-pocket cap, family by family."""

from __future__ import annotations

import polars as pl

from openhmo.adjudication import accumulate, plan_tables
from openhmo.adjudication.context import Context
from openhmo.adjudication.frame import I64, OPEN, S, money_text, trace

PAY_COLUMNS = [
    "_row",
    "_order",
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
    allowed = pl.col("allowed_cents")
    # Copay units: visit (first line of claim, date, category), stay (first of claim,
    # category), day (days up to the max per claim and category), else every line.
    # Only the columns cost sharing reads, of the paying lines (w is in adjudication order).
    pay = (
        w.select(PAY_COLUMNS)
        .filter(pl.col("paying"))
        .with_columns(_days=(pl.col("units_milli") + 999) // 1000)
    )
    pay = pay.with_columns(
        # The visit's (stay's) copay is owed by its first line whose cost share charges a
        # copay by the visit (stay).
        _first_visit=pl.col("_order")
        == _first_with_copay("visit", ["_claim", "service_date", "category"]),
        _first_stay=pl.col("_order") == _first_with_copay("stay", ["_claim", "category"]),
    )
    # Days already charged on the claim in the category, for the lines charged by the day
    # (an inpatient stay's few): the window runs over those lines only.
    days = pay.filter(pl.col("copay_unit") == "day").select(
        "_row",
        _days_before=pl.col("_days").cum_sum().over(["_claim", "category"]) - pl.col("_days"),
    )
    pay = pay.join(days, on="_row", how="left", maintain_order="left")
    copay_units = (
        pl.when(pl.col("copay").is_null())
        .then(0)
        .when(pl.col("copay_unit") == "visit")
        .then(pl.col("_first_visit").cast(I64))
        .when(pl.col("copay_unit") == "stay")
        .then(pl.col("_first_stay").cast(I64))
        .when(pl.col("copay_unit") == "day")
        .then(
            pl.when(pl.col("copay_max_units").is_null())
            .then(pl.col("_days"))
            .otherwise(
                pl.min_horizontal(
                    pl.col("_days"),
                    pl.max_horizontal(0, pl.col("copay_max_units") - pl.col("_days_before")),
                )
            )
        )
        .otherwise(1)
    )
    pay = pay.with_columns(_copay_amount=pl.col("copay").fill_null(0) * copay_units)
    rule = pl.col("deductible_rule")
    copay_first = rule.is_in(["no_deductible", "with_deductible"])
    preventive_free = (
        pl.col("category").is_in(["preventive", "screening_mammography"])
        & pl.col("cost_share_tier").is_in(["in_network", "all_providers"])
        & pl.col("no_charge")
    )
    pay = pay.with_columns(
        _before=pl.when(copay_first & ~preventive_free)
        .then(pl.min_horizontal(pl.col("_copay_amount"), allowed))
        .otherwise(0)
    )
    pay = pay.with_columns(
        _subject=pl.when(rule.is_in(["after_deductible", "with_deductible"]) & ~preventive_free)
        .then(allowed - pl.col("_before"))
        .otherwise(0)
    )
    pay = _deductible(pay, context, tables)
    rest = allowed - pl.col("_before") - pl.col("_ded")
    after_copay = (
        pl.when((rule == "after_deductible") & ~preventive_free)
        .then(pl.min_horizontal(pl.col("_copay_amount"), rest))
        .otherwise(0)
    )
    pay = pay.with_columns(_after=after_copay)
    rest = rest - pl.col("_after")
    coins = (
        pl.when(pl.col("coins_milli").is_not_null() & ~preventive_free)
        .then((rest * pl.col("coins_milli") + 50_000) // 100_000)
        .otherwise(0)
    )
    pay = pay.with_columns(_coins=coins)
    pay = pay.with_columns(
        _share=pl.col("_before") + pl.col("_ded") + pl.col("_after") + pl.col("_coins")
    )
    pay = _out_of_pocket(pay, context, tables)
    # The cap's cut comes off coinsurance, then the copay, then the deductible.
    cut = pl.col("_share") - pl.col("_oop_take")
    pay = pay.with_columns(_cut=cut)
    pay = pay.with_columns(coinsurance_cents=pl.col("_coins") - pl.min_horizontal("_cut", "_coins"))
    pay = pay.with_columns(_cut=pl.col("_cut") - (pl.col("_coins") - pl.col("coinsurance_cents")))
    copay_total = pl.col("_before") + pl.col("_after")
    pay = pay.with_columns(copay_cents=copay_total - pl.min_horizontal(pl.col("_cut"), copay_total))
    pay = pay.with_columns(_cut=pl.col("_cut") - (copay_total - pl.col("copay_cents")))
    pay = pay.with_columns(deductible_cents=pl.col("_ded") - pl.col("_cut"))
    pay = pay.with_columns(
        member_share_cents=pl.col("deductible_cents")
        + pl.col("copay_cents")
        + pl.col("coinsurance_cents"),
        status=pl.lit("paid", S),
    )
    keep = [
        "_row",
        "deductible_cents",
        "copay_cents",
        "coinsurance_cents",
        "member_share_cents",
        "_ded",
        "_share",
        "pool",
        "ded_kind_col",
        "_oop_take",
        "tier_clause",
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


def _first_with_copay(unit: str, keys: list[str]) -> pl.Expr:
    """The order of the first line among `keys` whose copay is charged by `unit`."""
    charged = pl.col("copay").is_not_null() & (pl.col("copay_unit") == unit)
    return pl.when(charged).then(pl.col("_order")).min().over(keys)


def _pool(tables) -> pl.Expr:
    cross = pl.col("accumulation") == "cross"
    return (
        pl.when(cross & pl.col("cost_share_tier").is_in(["in_network", "out_of_network"]))
        .then(pl.lit("combined"))
        .otherwise(pl.col("cost_share_tier"))
    )


def _limits(
    pay: pl.DataFrame, tables, kind_ind: str, kind_fam: str, kind_kind: str | None
) -> tuple[pl.Expr, pl.Expr]:
    self_only = pl.col("coverage_tier") == "self_only"
    aggregate = pl.col(kind_kind) == "aggregate" if kind_kind else pl.lit(False)
    ind = pl.when(self_only | ~aggregate).then(pl.col(kind_ind)).otherwise(None)
    fam = pl.when(self_only).then(None).otherwise(pl.col(kind_fam))
    return ind, fam


def _starts(pay: pl.DataFrame, context: Context, kind: pl.Expr) -> pl.DataFrame:
    acc = context.accumulators
    members = (
        acc.filter(pl.col("member_id").is_not_null())
        .group_by("member_id", "plan_key", "plan_year", "pool", "kind")
        .agg(_m_start=pl.col("amount_cents").sum())
    )
    families = (
        acc.filter(pl.col("member_id").is_null())
        .group_by("family_id", "plan_key", "plan_year", "pool", "kind")
        .agg(_f_start=pl.col("amount_cents").sum())
    )
    pay = pay.with_columns(kind=kind)
    pay = pay.join(
        members,
        on=["member_id", "plan_key", "plan_year", "pool", "kind"],
        how="left",
        maintain_order="left",
    )
    pay = pay.join(
        families,
        on=["family_id", "plan_key", "plan_year", "pool", "kind"],
        how="left",
        maintain_order="left",
    )
    return pay.with_columns(pl.col("_m_start").fill_null(0), pl.col("_f_start").fill_null(0))


def _apply_limits(pay: pl.DataFrame, amount: str, out: str) -> pl.DataFrame:
    group = ["family_id", "plan_key", "plan_year", "pool", "kind"]
    args = dict(
        amount=amount,
        member_group=[*group, "member_id"],
        family_group=group,
        ind_limit="_ind",
        fam_limit="_fam",
        member_start="_m_start",
        family_start="_f_start",
        out=out,
    )
    # A line of no amount takes nothing and moves no running total (accumulate's
    # identity), so only the others are accumulated: for a deductible, a small share of
    # the lines. (pay is in adjudication order, and a filter keeps it.)
    moving = pl.col(amount).is_null() | (pl.col(amount) != 0)
    columns = [amount, *group, "member_id", "_ind", "_fam", "_m_start", "_f_start", "_row"]
    lines = pay.select(columns).filter(moving)
    plain = lines.filter(pl.col("pool") != "combined")
    crossed = lines.filter(pl.col("pool") == "combined")
    taken = [accumulate.take(plain, **args)]
    if crossed.height:
        taken.append(accumulate.sequential(crossed, **args))
    taken = pl.concat([t.select("_row", out) for t in taken], how="vertical")
    pay = pay.join(taken, on="_row", how="left", maintain_order="left")
    return pay.with_columns(pl.when(moving).then(pl.col(out)).otherwise(0).alias(out))


def _deductible(pay: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    tiers = tables["tiers"].rename({"tier": "cost_share_tier"})
    pay = pay.join(
        tiers, on=["plan_key", "plan_year", "cost_share_tier"], how="left", maintain_order="left"
    )
    pay = pay.with_columns(pool=_pool(tables))
    drug = (
        pl.col("category").is_in([c.value for c in plan_tables.DRUG_CATEGORIES])
        & pl.col("drug_ded_ind").is_not_null()
    )
    pay = pay.with_columns(
        ded_kind_col=pl.when(drug).then(pl.lit("drug_deductible")).otherwise(pl.lit("deductible"))
    )
    pay = _starts(pay, context, pl.col("ded_kind_col"))
    ind_m, fam_m = _limits(pay, tables, "ded_ind", "ded_fam", "ded_kind")
    ind_d, fam_d = _limits(pay, tables, "drug_ded_ind", "drug_ded_fam", "drug_ded_kind")
    pay = pay.with_columns(
        _ind=pl.when(drug).then(ind_d).otherwise(ind_m),
        _fam=pl.when(drug).then(fam_d).otherwise(fam_m),
    )
    pay = _apply_limits(pay, "_subject", "_ded")
    return pay.drop("_m_start", "_f_start", "_ind", "_fam", "kind")


def _out_of_pocket(pay: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    pay = _starts(pay, context, pl.lit("out_of_pocket", S))
    ind, fam = _limits(pay, tables, "oop_ind", "oop_fam", None)
    pay = pay.with_columns(_ind=ind, _fam=fam)
    pay = _apply_limits(pay, "_share", "_oop_take")
    return pay.drop("_m_start", "_f_start", "_ind", "_fam", "kind")
