"""Step 11 and the outputs: adjustments, explanations, decisions and the new accumulators."""

from __future__ import annotations

import json
from datetime import date

import polars as pl

from openhmo.adjudication.context import Context
from openhmo.adjudication.decisions import ADJUSTMENT, DECISIONS
from openhmo.adjudication.frame import I64, S, trace_columns
from openhmo.money import format_money

# The meaning of the RARCs a CO-16 denial carries (X12 RARC list), for the explanation.
RARC_MEANING = {
    "MA130": "Your claim contains incomplete and/or invalid information, and no appeal "
    "rights are afforded because the claim is unprocessable. Submit a new claim with the "
    "complete/correct information.",
    "N290": "Missing/incomplete/invalid rendering provider primary identifier.",
    "M76": "Missing/incomplete/invalid diagnosis or condition.",
}
# Lines settled by these steps never reached the network (or the category) step.
BEFORE_NETWORK = ("frequency", "intake", "eligibility")
BEFORE_CATEGORY = ("frequency",)
NO_AMOUNTS = ("pended", "voided", "replaced", "void")


def payment(w: pl.DataFrame) -> pl.DataFrame:
    paid = pl.col("status") == "paid"
    w = w.with_columns(
        plan_paid_cents=pl.when(paid)
        .then(pl.col("allowed_cents") - pl.col("member_share_cents"))
        .otherwise(0),
        allowed_cents=pl.when(paid).then(pl.col("allowed_cents")).otherwise(0),
    )
    write_off_group = (
        pl.when(pl.col("in_network") | pl.col("is_emergency"))
        .then(pl.lit("CO", S))
        .otherwise(pl.lit("PR", S))
    )

    def adj(group, carc: str, amount: pl.Expr, when: pl.Expr) -> pl.Expr:
        group = group if isinstance(group, pl.Expr) else pl.lit(group, S)
        return pl.when(when & (amount > 0)).then(
            pl.struct(group=group, carc=pl.lit(carc, S), rarc=pl.lit(None, S), amount_cents=amount)
        )

    charge = pl.col("charge_cents").fill_null(0)
    denied = pl.when(pl.col("status") == "denied").then(
        pl.struct(
            group=pl.col("group"), carc=pl.col("carc"), rarc=pl.col("rarc"), amount_cents=charge
        )
    )
    adjustments = pl.concat_list(
        [
            adj(write_off_group, "45", charge - pl.col("allowed_cents"), paid),
            adj("PR", "1", pl.col("deductible_cents"), paid),
            adj("PR", "3", pl.col("copay_cents"), paid),
            adj("PR", "2", pl.col("coinsurance_cents"), paid),
            denied,
        ]
    ).list.drop_nulls()
    return w.with_columns(adjustments=adjustments.cast(pl.List(ADJUSTMENT)))


def explain(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    pcp = context.pcp.join(context.providers.select("npi", pcp_name="name"), on="npi", how="left")
    pcps = (
        w.select("_row", "member_id", "service_date")
        .join(pcp, on="member_id")
        .filter(
            (pl.col("start") <= pl.col("service_date"))
            & (pl.col("end").is_null() | (pl.col("end") >= pl.col("service_date")))
        )
        .unique("_row", keep="first")
        .select("_row", "pcp_name")
    )
    w = w.join(pcps, on="_row", how="left")
    rows = w.select(
        "_row",
        "status",
        "carc",
        "rarc",
        "pend_reason",
        "category",
        "allowed_cents",
        "plan_paid_cents",
        "member_share_cents",
        "provider_name",
        "provider_specialty",
        "plan_name",
        "member_number",
        "first_start",
        "last_end",
        "ref_number",
        "ref_visits",
        "limit_text",
        "timely_filing_days",
        "pcp_name",
        "is_emergency",
        "emergency_out_of_network",
        "override_reason",
        "decided_step",
        "decided_clause",
        "cost_share_tier",
        "no_charge",
        "deductible_rule",
        "end",
    ).to_dicts()
    ids, params = [], []
    for r in rows:
        message, p = _explanation(r)
        ids.append(message)
        params.append(json.dumps(p, sort_keys=True, ensure_ascii=False))
    return w.join(
        pl.DataFrame(
            {
                "_row": [r["_row"] for r in rows],
                "explanation_id": ids,
                "explanation_params": params,
            },
            schema={"_row": w.schema["_row"], "explanation_id": S, "explanation_params": S},
        ),
        on="_row",
    )


def _money(cents) -> str:
    return format_money(int(cents or 0))


def _explanation(r: dict) -> tuple[str, dict]:
    service = f"category.{r['category'] or 'other'}"
    status = r["status"]
    if status in ("voided", "replaced", "void"):
        return f"explain.{status}", {}
    if status == "pended":
        return "explain.pended", {"reason": r["pend_reason"]}
    if status == "paid":
        if (
            service in ("category.preventive", "category.screening_mammography")
            and r["cost_share_tier"] in ("in_network", "all_providers")
            and r["no_charge"]
            and r["deductible_rule"] == "no_deductible"
        ):
            return "explain.paid.preventive", {"service": service}
        if r["emergency_out_of_network"]:
            return "explain.paid.emergency_out_of_network", {
                "service": service,
                "plan_paid": _money(r["plan_paid_cents"]),
                "member_share": _money(r["member_share_cents"]),
            }
        return "explain.paid", {
            "service": service,
            "allowed": _money(r["allowed_cents"]),
            "plan_paid": _money(r["plan_paid_cents"]),
            "member_share": _money(r["member_share_cents"]),
        }
    if (r["decided_clause"] or "").startswith("staff review: "):
        return "explain.denied.by_review", {"reason": r["override_reason"] or ""}
    carc = r["carc"]
    table = {
        "16": ("explain.denied.invalid_claim", {"reason": RARC_MEANING.get(r["rarc"], "")}),
        "18": ("explain.denied.duplicate", {}),
        "29": ("explain.denied.timely_filing", {"days": r["timely_filing_days"]}),
        "31": ("explain.denied.not_a_member", {"member_number": r["member_number"] or ""}),
        "26": ("explain.denied.before_coverage", {"start": _iso(r["first_start"])}),
        "27": ("explain.denied.after_coverage", {"end": _iso(r["last_end"])}),
        "242": (
            "explain.denied.out_of_network",
            {"provider": r["provider_name"] or "", "plan": r["plan_name"] or ""},
        ),
        "288": (
            "explain.denied.referral_required",
            {
                "service": service,
                "provider": r["provider_name"] or "",
                "specialty": r["provider_specialty"] or "",
                "pcp": r["pcp_name"] or "explain.your_pcp",
            },
        ),
        "287": (
            "explain.denied.referral_used_up",
            {"referral_number": r["ref_number"] or "", "visits": r["ref_visits"]},
        ),
        "197": ("explain.denied.prior_authorization", {"service": service}),
        "96": ("explain.denied.not_covered", {"service": service}),
        "204": ("explain.denied.not_covered", {"service": service}),
        "119": (
            "explain.denied.limit_reached",
            {"service": service, "limit": r["limit_text"] or ""},
        ),
    }
    return table.get(carc, ("explain.denied.by_review", {"reason": carc or ""}))


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def decisions(w: pl.DataFrame) -> pl.DataFrame:
    out = w.sort("_order").with_columns(
        pend_reason=pl.col("pend_reason"),
        network_tier=pl.col("network_tier"),
        cost_share_tier=pl.col("cost_share_tier"),
        emergency=pl.col("is_emergency"),
        referral_number=pl.col("ref_number"),
        prior_auth_number=pl.col("auth_number"),
        trace=pl.concat_list(
            [
                *[pl.col(c) for c in trace_columns(w)],
                pl.when(
                    pl.col("decided_step").is_not_null()
                    & pl.col("status").is_in(["denied", "pended", "voided", "replaced", "void"])
                ).then(
                    pl.struct(
                        step=pl.col("decided_step"),
                        clause=pl.col("decided_clause"),
                        note=pl.col("decided_note"),
                    )
                ),
            ]
        ).list.drop_nulls(),
    )
    for c in (
        "allowed_cents",
        "plan_paid_cents",
        "deductible_cents",
        "copay_cents",
        "coinsurance_cents",
        "member_share_cents",
        "charge_cents",
    ):
        out = out.with_columns(
            pl.when(pl.col("status").is_in(NO_AMOUNTS) & (c != "charge_cents"))
            .then(None)
            .otherwise(pl.col(c).fill_null(0))
            .cast(I64)
            .alias(c)
        )
    early = pl.col("decided_step").is_in(BEFORE_NETWORK) & pl.col("status").is_in(
        ["denied", "pended", "voided", "replaced", "void"]
    )
    never_classified = pl.col("decided_step").is_in(BEFORE_CATEGORY)
    out = out.with_columns(
        [
            pl.when(early).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("network_tier", "cost_share_tier", "emergency")
        ]
        + [
            pl.when(never_classified).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("category", "category_rule")
        ]
    )
    return out.select([pl.col(c).cast(t) for c, t in DECISIONS.items()])


def accumulators(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    paid = w.filter(pl.col("status") == "paid")
    parts = []
    for kind, amount in (("deductible", "_ded"), ("out_of_pocket", "_oop_take")):
        rows = paid.with_columns(
            kind=pl.col("ded_kind_col") if kind == "deductible" else pl.lit(kind, S),
            _amount=pl.col(amount),
        )
        parts.append(
            rows.select(
                "family_id",
                "member_id",
                "plan_key",
                "plan_year",
                "pool",
                "kind",
                amount_cents=pl.col("_amount"),
            )
        )
    taken = pl.concat(parts)
    members = taken.group_by("family_id", "member_id", "plan_key", "plan_year", "pool", "kind").agg(
        pl.col("amount_cents").sum()
    )
    families = (
        taken.group_by("family_id", "plan_key", "plan_year", "pool", "kind")
        .agg(pl.col("amount_cents").sum())
        .with_columns(member_id=pl.lit(None, I64))
    )
    new = pl.concat([members, families.select(members.columns)])
    keys = ["family_id", "member_id", "plan_key", "plan_year", "pool", "kind"]
    total = (
        pl.concat(
            [
                context.accumulators.select([*keys, "amount_cents"]),
                new.select([*keys, "amount_cents"]),
            ]
        )
        .group_by(keys)
        .agg(pl.col("amount_cents").sum())
    )
    total = total.filter(pl.col("amount_cents") != 0).sort(keys, nulls_last=False)
    return total.select([pl.col(c).cast(t) for c, t in context.accumulators.schema.items()])


def visit_usage(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    # Counted when open at the benefit step, unless that step denied them for the limit.
    counted = w.filter(pl.col("limit_used") <= pl.col("limit_count"))
    keys = ["member_id", "plan_year", "category"]
    used = counted.group_by(keys).agg(used=pl.col("limit_used").max())
    start = context.visit_usage
    total = (
        pl.concat([start, used.select(start.columns)])
        .group_by(keys)
        .agg(used=pl.col("used").max())
        .sort(keys)
    )
    return total.select([pl.col(c).cast(t) for c, t in start.schema.items()])


def referral_usage(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    counted = w.filter(pl.col("referral_used").is_not_null())
    used = (
        counted.group_by("referral_used")
        .agg(used=pl.col("ref_visit").max())
        .rename({"referral_used": "referral_number"})
    )
    start = context.referral_usage
    total = (
        pl.concat([start, used.select(start.columns)])
        .group_by("referral_number")
        .agg(used=pl.col("used").max())
        .sort("referral_number")
    )
    return total.select([pl.col(c).cast(t) for c, t in start.schema.items()])
