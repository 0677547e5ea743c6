"""Steps 6-7: referrals and prior authorizations, with their visit counts."""

from __future__ import annotations

import polars as pl

from openhmo.adjudication.context import Context
from openhmo.adjudication.frame import I64, OPEN, S, pend, settle, trace


def join_rules(w: pl.DataFrame, tables) -> pl.DataFrame:
    w = w.join(
        tables["category_rules"],
        on=["plan_key", "plan_year", "category"],
        how="left",
        maintain_order="left",
    )
    w = w.join(
        tables["plan_category_rules"],
        on=["plan_key", "category"],
        how="left",
        maintain_order="left",
    )
    return w.with_columns(
        referral_needed=pl.coalesce("referral_needed", "plan_referral_needed"),
        prior_auth_needed=pl.coalesce("prior_auth_needed", "plan_prior_auth_needed"),
    )


def visit_index(over: list[str]) -> pl.Expr:
    """The 1-based index, in order, of each line's visit (claim, date, category) within `over`."""
    first = pl.col("_order").min().over([*over, "_claim", "service_date", "category"])
    return first.rank("dense").over(over).cast(I64)


def referral(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = join_rules(w, tables)
    needed = (
        OPEN
        & pl.col("referral_needed").fill_null(False)
        & ~pl.col("is_emergency")
        & (pl.col("network_tier") == "in_network")
    )
    w = w.with_columns(referral_needed_now=needed)
    candidates = (
        w.select(
            "_row",
            "member_id",
            "service_date",
            "category",
            "rendering",
            "rendering_taxonomy",
            "referral_number",
            "referral_needed_now",
        )
        .filter(pl.col("referral_needed_now"))
        .select(
            "_row",
            "member_id",
            "service_date",
            "category",
            "rendering",
            "rendering_taxonomy",
            claim_referral="referral_number",
        )
        .join(
            context.referrals.rename(
                {
                    "referral_number": "ref_number",
                    "member_id": "ref_member",
                    "category": "ref_category",
                    "status": "ref_status",
                }
            ),
            left_on="member_id",
            right_on="ref_member",
        )
        .filter(
            pl.col("ref_status").is_in(["approved", "requested"])
            & (pl.col("valid_from") <= pl.col("service_date"))
            & (pl.col("valid_to") >= pl.col("service_date"))
            & (pl.col("ref_category").fill_null("specialist_visit") == pl.col("category"))
            & pl.when(pl.col("specialist_npi").is_not_null())
            .then(pl.col("specialist_npi") == pl.col("rendering"))
            .otherwise(
                pl.col("rendering_taxonomy")
                .fill_null("")
                .str.starts_with(pl.col("specialty_prefix").fill_null("\x00"))
            )
            & (
                pl.col("claim_referral").is_null()
                | (pl.col("claim_referral") == pl.col("ref_number"))
            )
        )
        # An approved referral wins over one awaiting review; then the earliest.
        .sort("_row", pl.col("ref_status") != "approved", "valid_from", "ref_number")
        .unique("_row", keep="first")
        .select("_row", "ref_number", "ref_status", ref_visits="visits")
    )
    w = w.join(candidates, on="_row", how="left", maintain_order="left")
    w = settle(
        w,
        pl.col("referral_needed_now") & pl.col("ref_number").is_null(),
        step="referral",
        carc="288",
        rarc="N54",
        clause=pl.lit("referrals.required_for: a referral from the PCP is required", S),
    )
    w = pend(
        w,
        pl.col("referral_needed_now") & (pl.col("ref_status") == "requested"),
        step="referral",
        reason="referral_review",
        clause=pl.lit("referral ", S) + pl.col("ref_number") + " awaits review",
    )
    # Only an approved referral's visits are counted (a staff-approved pend is not).
    counted = w.select(
        "_row",
        "_order",
        "_claim",
        "service_date",
        "category",
        "ref_number",
        "ref_status",
        "referral_needed_now",
        "_decision",
    ).filter(OPEN & pl.col("referral_needed_now") & (pl.col("ref_status") == "approved"))
    if counted.height:
        start = context.referral_usage.rename(
            {"referral_number": "ref_number", "used": "ref_start"}
        )
        counted = (
            counted.join(start, on="ref_number", how="left", maintain_order="left")
            .sort("_order")
            .with_columns(ref_visit=visit_index(["ref_number"]) + pl.col("ref_start").fill_null(0))
        )
        w = w.join(
            counted.select("_row", "ref_visit"), on="_row", how="left", maintain_order="left"
        )
    else:
        w = w.with_columns(ref_visit=pl.lit(None, I64))
    w = settle(
        w,
        pl.col("ref_visit") > pl.col("ref_visits"),
        step="referral",
        carc="287",
        clause=pl.lit("referral ", S)
        + pl.col("ref_number")
        + " allows "
        + pl.col("ref_visits").cast(S)
        + " visits",
    )
    w = w.with_columns(
        referral_used=pl.when(OPEN & pl.col("ref_visit").is_not_null()).then(pl.col("ref_number"))
    )
    return trace(
        w,
        "referral",
        pl.lit("referral ", S)
        + pl.col("ref_number")
        + ", visit "
        + pl.col("ref_visit").cast(S)
        + " of "
        + pl.col("ref_visits").cast(S),
        when=OPEN & pl.col("referral_used").is_not_null(),
    )


def prior_authorization(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    needed = OPEN & pl.col("prior_auth_needed").fill_null(False) & ~pl.col("is_emergency")
    w = w.with_columns(auth_needed_now=needed)
    candidates = (
        w.select(
            "_row",
            "member_id",
            "service_date",
            "category",
            "procedure_code",
            "prior_auth_number",
            "auth_needed_now",
        )
        .filter(pl.col("auth_needed_now"))
        .select(
            "_row",
            "member_id",
            "service_date",
            "category",
            "procedure_code",
            claim_auth="prior_auth_number",
        )
        .join(
            context.prior_auths.rename(
                {
                    "member_id": "pa_member",
                    "category": "pa_category",
                    "status": "pa_status",
                    "valid_from": "pa_from",
                    "valid_to": "pa_to",
                }
            ),
            left_on="member_id",
            right_on="pa_member",
        )
        .filter(
            pl.col("pa_status").is_in(["approved", "requested"])
            & (pl.col("pa_from") <= pl.col("service_date"))
            & (pl.col("pa_to") >= pl.col("service_date"))
            & (
                (pl.col("pa_category") == pl.col("category"))
                | pl.col("procedure_codes").fill_null([]).list.contains(pl.col("procedure_code"))
            )
            & (pl.col("claim_auth").is_null() | (pl.col("claim_auth") == pl.col("auth_number")))
        )
        .sort("_row", pl.col("pa_status") != "approved", "pa_from", "auth_number")
        .unique("_row", keep="first")
        .select("_row", "auth_number", "pa_status")
    )
    w = w.join(candidates, on="_row", how="left", maintain_order="left")
    w = settle(
        w,
        pl.col("auth_needed_now") & pl.col("auth_number").is_null(),
        step="prior_authorization",
        carc="197",
        clause=pl.lit("prior_authorization: ", S) + pl.col("category"),
    )
    w = pend(
        w,
        pl.col("auth_needed_now") & (pl.col("pa_status") == "requested"),
        step="prior_authorization",
        reason="prior_auth_review",
        clause=pl.lit("prior authorization ", S) + pl.col("auth_number") + " awaits review",
    )
    w = w.with_columns(
        auth_used=pl.when(OPEN & pl.col("auth_needed_now")).then(pl.col("auth_number"))
    )
    return trace(
        w,
        "prior_authorization",
        pl.lit("prior authorization ", S) + pl.col("auth_number"),
        when=OPEN & pl.col("auth_used").is_not_null(),
    )
