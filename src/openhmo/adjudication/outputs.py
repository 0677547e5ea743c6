"""Step 11 and the outputs: adjustments, explanations, decisions and the new accumulators."""

from __future__ import annotations

import polars as pl

from openhmo.adjudication import cost_sharing
from openhmo.adjudication.context import Context
from openhmo.adjudication.decisions import ADJUSTMENT, DECISIONS, LINE_DECISIONS, TRACE_STEP
from openhmo.adjudication.frame import I64, S, trace_columns
from openhmo.adjudication.json_text import Field, json_object, money
from openhmo.adjudication.share_pass import DEDUCTIBLE, DRUG_DEDUCTIBLE, KINDS, OUT_OF_POCKET

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
    """Step 11: what the plan pays, and the contractual write-off of a paid line."""
    paid = pl.col("status") == "paid"
    allowed = pl.when(paid).then(pl.col("allowed_cents")).otherwise(0)
    return w.with_columns(
        plan_paid_cents=pl.when(paid)
        .then(pl.col("allowed_cents") - pl.col("member_share_cents"))
        .otherwise(0),
        allowed_cents=allowed,
        # Above the allowed amount: the provider's to write off in network (and for an
        # emergency, under the No Surprises Act), the member's to pay out of network.
        write_off_group=pl.when(paid)
        .then(
            pl.when(pl.col("in_network") | pl.col("is_emergency"))
            .then(pl.lit("CO", S))
            .otherwise(pl.lit("PR", S))
        )
        .otherwise(pl.lit(None, S)),
        write_off_cents=pl.when(paid).then(pl.col("charge_cents").fill_null(0) - allowed),
    )


def adjustments() -> pl.Expr:
    """The CAS adjustments of a line decision, as the list of its flat columns say."""
    paid = pl.col("status") == "paid"

    def adj(group: pl.Expr | str, carc: str, amount: str) -> pl.Expr:
        group = group if isinstance(group, pl.Expr) else pl.lit(group, S)
        return pl.when(paid & (pl.col(amount) > 0)).then(
            pl.struct(
                group=group, carc=pl.lit(carc, S), rarc=pl.lit(None, S), amount_cents=pl.col(amount)
            )
        )

    denied = pl.when(pl.col("status") == "denied").then(
        pl.struct(
            group=pl.col("denial_group"),
            carc=pl.col("denial_carc"),
            rarc=pl.col("denial_rarc"),
            amount_cents=pl.col("charge_cents"),
        )
    )
    return (
        pl.concat_list(
            [
                adj(pl.col("write_off_group"), "45", "write_off_cents"),
                adj("PR", "1", "deductible_cents"),
                adj("PR", "3", "copay_cents"),
                adj("PR", "2", "coinsurance_cents"),
                denied,
            ]
        )
        .list.drop_nulls()
        .cast(pl.List(ADJUSTMENT))
    )


def explain(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    """The member's explanation of each line: a catalogue message id and its parameters."""
    status, carc = pl.col("status"), pl.col("carc")
    service = Field(pl.col("category").fill_null("other"), lambda c: f"category.{c}")
    preventive = (
        pl.col("category").is_in(["preventive", "screening_mammography"])
        & pl.col("cost_share_tier").is_in(["in_network", "all_providers"])
        & pl.col("no_charge").fill_null(False)
        & (pl.col("deductible_rule") == "no_deductible")
    )
    by_staff = pl.col("decided_clause").fill_null("").str.starts_with("staff review: ")
    kind = (
        pl.when(status.is_in(["voided", "replaced", "void"]))
        .then(status)
        .when(status == "pended")
        .then(pl.lit("pended"))
        .when((status == "paid") & preventive)
        .then(pl.lit("paid.preventive"))
        .when((status == "paid") & pl.col("emergency_out_of_network").fill_null(False))
        .then(pl.lit("paid.emergency_out_of_network"))
        .when(status == "paid")
        .then(pl.lit("paid"))
        .when(by_staff)
        .then(pl.lit("by_staff"))
        .when(carc.is_in(list(_BY_CARC)))
        .then(carc)
        .otherwise(pl.lit("by_review"))
    )
    lines = w.select(*_EXPLAIN_COLUMNS, _explain=kind)
    if lines.select((pl.col("_explain") == "288").any()).item():
        lines = _with_pcp_name(lines, context)
    # Most lines are paid: their parameters are one expression over the whole column.
    # The other kinds' are made kind by kind, each from the few lines of its kind and
    # the few columns it names, and put in their places.
    paid = pl.col("_explain") == "paid"
    params = lines.select(json_object(_PARAMS["paid"](service))).to_series()
    others = lines.with_row_index("_at").filter(~paid)
    if others.height:
        parts = [
            of_kind.select("_at", params=json_object(_PARAMS[k](service)))
            for (k,), of_kind in others.partition_by("_explain", as_dict=True).items()
        ]
        made = pl.concat(parts)
        params = params.scatter(made["_at"], made["params"])
    return w.with_columns(
        explanation_id=lines["_explain"].replace_strict(*_MESSAGE_SERIES, default=None),
        explanation_params=params,
    )


_EXPLAIN_COLUMNS = [
    "_row",
    "status",
    "carc",
    "rarc",
    "pend_reason",
    "category",
    "cost_share_tier",
    "no_charge",
    "deductible_rule",
    "emergency_out_of_network",
    "decided_clause",
    "allowed_cents",
    "plan_paid_cents",
    "member_share_cents",
    "override_reason",
    "timely_filing_days",
    "member_number",
    "member_id",
    "service_date",
    "first_start",
    "last_end",
    "plan_name",
    "provider_name",
    "provider_specialty",
    "ref_number",
    "ref_visits",
    "limit_text",
]


def _with_pcp_name(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    pcp = context.pcp.join(
        context.providers.select("npi", pcp_name="name"),
        on="npi",
        how="left",
        maintain_order="left",
    )
    names = (
        w.filter(pl.col("_explain") == "288")
        .select("_row", "member_id", "service_date")
        .join(pcp, on="member_id")
        .filter(
            (pl.col("start") <= pl.col("service_date"))
            & (pl.col("end").is_null() | (pl.col("end") >= pl.col("service_date")))
        )
        .unique("_row", keep="first")
        .select("_row", "pcp_name")
    )
    return w.join(names, on="_row", how="left", maintain_order="left")


def _text(column: str) -> pl.Expr:
    return pl.col(column).fill_null("")


def _iso(column: str) -> pl.Expr:
    return pl.col(column).dt.to_string("%Y-%m-%d").fill_null("")


_BY_CARC = {
    "16": "explain.denied.invalid_claim",
    "18": "explain.denied.duplicate",
    "29": "explain.denied.timely_filing",
    "31": "explain.denied.not_a_member",
    "26": "explain.denied.before_coverage",
    "27": "explain.denied.after_coverage",
    "242": "explain.denied.out_of_network",
    "288": "explain.denied.referral_required",
    "287": "explain.denied.referral_used_up",
    "197": "explain.denied.prior_authorization",
    "96": "explain.denied.not_covered",
    "204": "explain.denied.not_covered",
    "119": "explain.denied.limit_reached",
}
_MESSAGE = {
    "voided": "explain.voided",
    "replaced": "explain.replaced",
    "void": "explain.void",
    "pended": "explain.pended",
    "paid.preventive": "explain.paid.preventive",
    "paid.emergency_out_of_network": "explain.paid.emergency_out_of_network",
    "paid": "explain.paid",
    "by_staff": "explain.denied.by_review",
    "by_review": "explain.denied.by_review",
    **_BY_CARC,
}
_MESSAGE_SERIES = (pl.Series(list(_MESSAGE), dtype=S), pl.Series(list(_MESSAGE.values()), dtype=S))
# The parameters of each kind of explanation (keys in sorted order, as JSON has them).
_PARAMS = {
    "voided": lambda service: {},
    "replaced": lambda service: {},
    "void": lambda service: {},
    "pended": lambda service: {"reason": Field(pl.col("pend_reason"))},
    "paid.preventive": lambda service: {"service": service},
    "paid.emergency_out_of_network": lambda service: {
        "member_share": money("member_share_cents"),
        "plan_paid": money("plan_paid_cents"),
        "service": service,
    },
    "paid": lambda service: {
        "allowed": money("allowed_cents"),
        "member_share": money("member_share_cents"),
        "plan_paid": money("plan_paid_cents"),
        "service": service,
    },
    "by_staff": lambda service: {"reason": Field(_text("override_reason"))},
    "by_review": lambda service: {"reason": Field(_text("carc"))},
    "16": lambda service: {
        "reason": Field(pl.col("rarc").replace_strict(RARC_MEANING, default="", return_dtype=S))
    },
    "18": lambda service: {},
    "29": lambda service: {"days": Field(pl.col("timely_filing_days").cast(I64))},
    "31": lambda service: {"member_number": Field(_text("member_number"))},
    "26": lambda service: {"start": Field(_iso("first_start"))},
    "27": lambda service: {"end": Field(_iso("last_end"))},
    "242": lambda service: {
        "plan": Field(_text("plan_name")),
        "provider": Field(_text("provider_name")),
    },
    "288": lambda service: {
        "pcp": Field(pl.col("pcp_name").fill_null("explain.your_pcp")),
        "provider": Field(_text("provider_name")),
        "service": service,
        "specialty": Field(_text("provider_specialty")),
    },
    "287": lambda service: {
        "referral_number": Field(_text("ref_number")),
        "visits": Field(pl.col("ref_visits")),
    },
    "197": lambda service: {"service": service},
    "96": lambda service: {"service": service},
    "204": lambda service: {"service": service},
    "119": lambda service: {"limit": Field(_text("limit_text")), "service": service},
}


def line_decisions(w: pl.DataFrame) -> pl.DataFrame:
    """The flat decision of every line (LINE_DECISIONS), in adjudication order."""
    # (The engine keeps w in adjudication order: every join keeps the left frame's order.)
    out = w.with_columns(
        emergency=pl.col("is_emergency"),
        referral_number=pl.col("ref_number"),
        prior_auth_number=pl.col("auth_number"),
        denial_group=pl.when(pl.col("status") == "denied").then(pl.col("group")),
        denial_carc=pl.when(pl.col("status") == "denied").then(pl.col("carc")),
        denial_rarc=pl.when(pl.col("status") == "denied").then(pl.col("rarc")),
    )
    no_amounts = pl.col("status").is_in(NO_AMOUNTS)
    out = out.with_columns(
        [
            pl.when(no_amounts).then(None).otherwise(pl.col(c).fill_null(0)).cast(I64).alias(c)
            for c in (
                "allowed_cents",
                "plan_paid_cents",
                "deductible_cents",
                "copay_cents",
                "coinsurance_cents",
                "member_share_cents",
            )
        ]
        + [pl.col("charge_cents").fill_null(0).cast(I64)]
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
    return out.select([pl.col(c).cast(t) for c, t in LINE_DECISIONS.items()])


def trace_lists(w: pl.DataFrame) -> pl.Series:
    """Each line's trace, in adjudication order: what every step applied, then the
    clause that decided a line that was not paid."""
    decided = pl.when(
        pl.col("decided_step").is_not_null()
        & pl.col("status").is_in(["denied", "pended", "voided", "replaced", "void"])
    ).then(
        pl.struct(
            step=pl.col("decided_step"),
            clause=pl.col("decided_clause"),
            note=pl.col("decided_note"),
        )
    )
    return w.select(
        trace=pl.concat_list([*[pl.col(c) for c in trace_columns(w)], decided])
        .list.drop_nulls()
        .cast(pl.List(TRACE_STEP))
    ).to_series()


def present(lines: pl.DataFrame, trace: pl.Series | None = None) -> pl.DataFrame:
    """Line decisions as people read them (DECISIONS): the adjustments as a CAS list, and
    the trace (empty where the run kept none)."""
    if trace is None:
        trace = pl.Series("trace", [[]] * lines.height, dtype=pl.List(TRACE_STEP))
    out = lines.with_columns(adjustments=adjustments(), trace=trace)
    return out.select([pl.col(c).cast(t) for c, t in DECISIONS.items()])


def accumulators(w: pl.DataFrame, context: Context) -> pl.DataFrame:
    # Summed by the numbers cost sharing gave each line's accumulator group (plan, year,
    # pool) and kind, then named: grouping by their names as text cost twice as much.
    paid = w.select(
        "status", "family_id", "member_id", "_acc_group", "_acc_drug", "_ded", "_oop_take"
    ).filter(pl.col("status") == "paid")
    deductible = pl.when(pl.col("_acc_drug")).then(DRUG_DEDUCTIBLE).otherwise(DEDUCTIBLE)
    parts = [
        paid.select("family_id", "member_id", "_acc_group", kind=kind, amount_cents=amount)
        for kind, amount in (
            (deductible, pl.col("_ded")),
            (pl.lit(OUT_OF_POCKET), pl.col("_oop_take")),
        )
    ]
    # Lines that took nothing change no total (and a total of 0 is dropped below).
    taken = pl.concat(parts).filter(pl.col("amount_cents") != 0)
    by = ["family_id", "_acc_group", "kind"]
    members = taken.group_by("member_id", *by).agg(pl.col("amount_cents").sum())
    families = (
        taken.group_by(by)
        .agg(pl.col("amount_cents").sum())
        .with_columns(member_id=pl.lit(None, I64))
    )
    kinds = {code: name for name, code in KINDS.items()}
    new = pl.concat([members, families.select(members.columns)]).with_columns(
        **cost_sharing.group_columns(pl.col("_acc_group"), context),
        kind=pl.col("kind").replace_strict(
            list(kinds), list(kinds.values()), default=None, return_dtype=S
        ),
    )
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
    counted = w.select("member_id", "plan_year", "category", "limit_used", "limit_count").filter(
        pl.col("limit_used") <= pl.col("limit_count")
    )
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
    counted = w.select("referral_used", "ref_visit").filter(pl.col("referral_used").is_not_null())
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
