"""Steps 8-9: the benefit (covered, visit limits) and the allowed amount."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from openhmo.adjudication.context import Context
from openhmo.adjudication.frame import I64, OPEN, S, money_text, override, pend, settle, trace
from openhmo.adjudication.steps_authorization import visit_index
from openhmo.network.pricing import (
    FeeScheduleSnapshot,
    NoRate,
    Rate,
    RateKey,
    ServiceLine,
    allowed_amount,
)


def benefit(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = w.with_columns(
        klass=pl.when(pl.col("claim_type") == "professional")
        .then(pl.lit("professional"))
        .otherwise(pl.lit("facility"))
    )
    w = w.join(
        tables["benefits"].rename({"tier": "cost_share_tier"}),
        on=["plan_key", "plan_year", "category", "cost_share_tier", "klass"],
        how="left",
        maintain_order="left",
    )
    w = settle(
        w,
        pl.col("plan_year").is_null() | ~pl.col("has_benefit").fill_null(False),
        step="benefit",
        carc="96",
        rarc="N130",
        clause=pl.lit("no benefit for ", S) + pl.col("category"),
    )
    w = settle(
        w,
        ~pl.col("benefit_covered").fill_null(False),
        step="benefit",
        carc="204",
        clause=pl.coalesce(
            pl.col("benefit_clause"),
            pl.lit("plan_years.benefits.", S)
            + pl.col("category")
            + "."
            + pl.col("cost_share_tier")
            + ": Not covered",
        ),
    )
    # Visit limits: visits (claim, date, category) or days (units, rounded up) per plan year.
    limited = w.select(
        "_row",
        "_order",
        "_claim",
        "member_id",
        "plan_year",
        "category",
        "service_date",
        "units_milli",
        "limit_count",
        "limit_unit",
        "_decision",
    ).filter(OPEN & pl.col("limit_count").is_not_null())
    if limited.height:
        usage = context.visit_usage.rename({"used": "limit_start"})
        over = ["member_id", "plan_year", "category"]
        limited = (
            limited.join(usage, on=over, how="left", maintain_order="left")
            .sort("_order")
            .with_columns(_days=(pl.col("units_milli") + 999) // 1000)
        )
        limited = limited.with_columns(
            limit_used=visit_index(over) + pl.col("limit_start").fill_null(0)
        )
        days = _days_used(limited.filter(pl.col("limit_unit") == "days"), over)
        limited = limited.join(days, on="_row", how="left", maintain_order="left").with_columns(
            limit_used=pl.coalesce("_days_used", "limit_used")
        )
        w = w.join(
            limited.select("_row", "limit_used"), on="_row", how="left", maintain_order="left"
        )
    else:
        w = w.with_columns(limit_used=pl.lit(None, I64))
    w = settle(
        w,
        pl.col("limit_used") > pl.col("limit_count"),
        step="benefit",
        carc="119",
        clause=pl.col("limit_clause") + ": " + pl.col("limit_text"),
    )
    return trace(w, "benefit", pl.col("benefit_clause"), when=OPEN)


def _days_used(lines: pl.DataFrame, over: list[str]) -> pl.DataFrame:
    """Days used through each line, one line at a time: a line whose days do not fit in
    what is left is denied whole and takes none, so a later, shorter line may still fit
    (which no running sum can say). Day limits are rare, their lines few."""
    used: dict[tuple, int] = {}
    rows, out = lines.select("_row", *over, "_days", "limit_start", "limit_count"), []
    for row in rows.iter_rows(named=True):
        key = tuple(row[c] for c in over)
        before = used.setdefault(key, row["limit_start"] or 0)
        after = before + row["_days"]
        if after <= row["limit_count"]:
            used[key] = after
        out.append({"_row": row["_row"], "_days_used": after})
    return pl.DataFrame(out, schema={"_row": lines.schema["_row"], "_days_used": I64})


def pricing(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    schedules = _snapshots(context)
    nc = tables["tiers"].select(
        "plan_key", "plan_year", pricing_tier="tier", nc_pct="non_contracted_pct"
    )
    w = w.join(nc, on=["plan_key", "plan_year", "pricing_tier"], how="left", maintain_order="left")
    # A line without a HCPCS code (room and board) is priced by its revenue code.
    w = w.with_columns(price_code=pl.coalesce("procedure_code", "revenue_code"))

    keys = [
        "price_code",
        "modifiers",
        "units_milli",
        "place_of_service",
        "claim_type",
        "fee_schedule_key",
        "nc_pct",
        "medicare_locality",
        "in_network",
    ]
    combos = w.select(*keys, "_decision").filter(OPEN).select(keys).unique()
    priced = [{**row, **_price(row, schedules)} for row in combos.iter_rows(named=True)]
    schema = {k: w.schema[k] for k in keys} | {"price": I64, "price_detail": S}
    w = w.join(
        pl.DataFrame(priced, schema=schema),
        on=keys,
        how="left",
        maintain_order="left",
        nulls_equal=True,
    )
    w = _with_qpa(w, context)
    emergency_oon = pl.col("emergency_out_of_network")
    computed = pl.when(emergency_oon).then(pl.col("qpa_cents")).otherwise(pl.col("price"))
    computed_detail = (
        pl.when(emergency_oon)
        .then(
            pl.lit("recognized amount: lesser of the charge and the QPA ", S)
            + money_text(pl.col("qpa_cents"))
        )
        .otherwise(pl.col("price_detail"))
    )
    # Staff's allowed amount applies to a line that could not be priced (§6).
    by_staff = override("approve") & pl.col("override_allowed").is_not_null() & computed.is_null()
    price = pl.when(by_staff).then(pl.col("override_allowed")).otherwise(computed)
    detail = pl.when(by_staff).then(
        pl.lit("priced by staff review: ", S) + pl.col("override_reason").fill_null("")
    )
    w = w.with_columns(_price=price)
    w = pend(
        w,
        pl.col("_price").is_null(),
        step="pricing",
        reason="pricing",
        clause=pl.coalesce(pl.col("price_detail"), pl.lit("no allowed amount", S)),
        approvable=False,
    )
    w = w.with_columns(
        allowed_cents=pl.when(OPEN)
        .then(pl.min_horizontal("charge_cents", "_price"))
        .otherwise(pl.lit(0, I64))
    )
    # (The detail, text for every line, is made only where the trace is kept.)
    return trace(w, "pricing", detail.otherwise(computed_detail), when=OPEN)


def _with_qpa(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    """Add `qpa_cents`: the QPA of the line's code times its units, rounded half up.

    The QPA row is found like a fee rate: the line's modifiers in order, then none; the
    claim type as billing class, then none.
    """
    table = {
        (r["procedure_code"], r["modifier"] or "", r["billing_class"] or ""): r["amount_cents"]
        for r in context.qpa.iter_rows(named=True)
    }
    keys = ["price_code", "modifiers", "claim_type", "units_milli"]
    rows = []
    for row in (
        w.select(*keys, "emergency_out_of_network")
        .filter(pl.col("emergency_out_of_network").fill_null(False))
        .select(keys)
        .unique()
        .iter_rows(named=True)
    ):
        found = None
        for modifier in (*(m for m in row["modifiers"] or () if m), ""):
            for klass in (row["claim_type"] or "", ""):
                found = (
                    found if found is not None else table.get((row["price_code"], modifier, klass))
                )
        total = None if found is None else (found * row["units_milli"] + 500) // 1000
        rows.append({**row, "qpa_cents": total})
    schema = {k: w.schema[k] for k in keys} | {"qpa_cents": I64}
    return w.join(
        pl.DataFrame(rows, schema=schema),
        on=keys,
        how="left",
        maintain_order="left",
        nulls_equal=True,
    )


def _snapshots(context: Context) -> dict[str, FeeScheduleSnapshot]:
    rates: dict[str, dict[RateKey, Rate]] = {}
    for r in context.fee_rates.iter_rows(named=True):
        key = RateKey(
            r["procedure_code"],
            r["modifier"] or "",
            r["billing_class"] or "",
            r["place_of_service"] or "",
        )
        rates.setdefault(r["fee_schedule_key"], {})[key] = Rate(
            r["amount_cents"], r["unit"] or "per_unit"
        )
    return {
        s["fee_schedule_key"]: FeeScheduleSnapshot(
            key=s["fee_schedule_key"],
            method=s["method"],
            percent=s["percent"],
            medicare_locality=s["medicare_locality"],
            rates=rates.get(s["fee_schedule_key"], {}),
        )
        for s in context.fee_schedules.iter_rows(named=True)
    }


def _price(row: dict, schedules: dict[str, FeeScheduleSnapshot]) -> dict:
    if row["price_code"] is None or row["units_milli"] is None or row["units_milli"] <= 0:
        return {"price": None, "price_detail": "no procedure code or units to price"}
    modifiers = tuple(m for m in row["modifiers"] or () if m)
    line = ServiceLine(
        procedure_code=row["price_code"],
        modifiers=modifiers,
        units=Decimal(row["units_milli"]) / 1000,
        place_of_service=row["place_of_service"] or "11",
        billing_class="institutional" if row["claim_type"] == "institutional" else "professional",
    )
    if row["in_network"]:
        schedule = schedules.get(row["fee_schedule_key"])
        if schedule is None:
            return {
                "price": None,
                "price_detail": f"contract has no fee schedule {row['fee_schedule_key']}",
            }
    elif row["nc_pct"] is not None:
        schedule = FeeScheduleSnapshot(
            key="non_contracted_allowed",
            method="percent_of_medicare",
            percent=Decimal(row["nc_pct"]),
            medicare_locality=row["medicare_locality"],
        )
    else:
        return {"price": None, "price_detail": "no contract and no non_contracted_allowed"}
    try:
        priced = allowed_amount(line, schedule)
    except NoRate as exc:
        return {"price": None, "price_detail": str(exc)}
    return {"price": priced.amount_cents, "price_detail": priced.detail}
