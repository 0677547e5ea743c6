"""The adjudication engine: claims and context tables in, decisions and accumulators out.

A pure function (no I/O) over Polars frames, so the same code decides one claim in real
time and millions in a batch. It follows docs/adjudication.md step by step; each step
is a small function that settles some open lines (denied or pended, with the group
code, CARC and the clause that decided) and adds the columns later steps need.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import polars as pl

from openhmo.adjudication import accumulate, plan_tables
from openhmo.adjudication.context import Context
from openhmo.adjudication.decisions import ADJUSTMENT, DECISIONS, TRACE_STEP, Result
from openhmo.categories.classifier import classify
from openhmo.money import format_money
from openhmo.network.npi import is_valid_npi
from openhmo.network.pricing import (
    FeeScheduleSnapshot,
    NoRate,
    Rate,
    RateKey,
    ServiceLine,
    allowed_amount,
)
from openhmo.reference.icd10 import is_billable

OPEN = pl.col("status").is_null()
S, I64 = pl.String, pl.Int64
RARC_MEANING = {
    "MA130": "the claim is missing required information",
    "N290": "a provider NPI is not valid",
    "M76": "the principal diagnosis is missing or not a valid ICD-10-CM code",
}


def adjudicate(claims: pl.DataFrame, context: Context) -> Result:
    """Decide every line of `claims` under `context` (docs/adjudication.md)."""
    tables = plan_tables.build(context.designs)
    w = _prepare(claims, context, tables)
    for step in (
        _frequency,
        _staff_denials,
        _intake,
        _eligibility,
        _network,
        _category,
        _emergency,
        _out_of_network,
        _referral,
        _prior_authorization,
        _benefit,
        _pricing,
    ):
        w = step(w, context, tables)
    w = _cost_sharing(w, context, tables)
    w = _payment(w)
    w = _explain(w, context)
    return Result(
        decisions=_decisions(w),
        accumulators=_accumulators(w, context),
        visit_usage=_visit_usage(w, context),
        referral_usage=_referral_usage(w, context),
    )


# --- helpers --------------------------------------------------------------------------


def _settle(
    w: pl.DataFrame,
    condition: pl.Expr,
    *,
    step: str,
    status: str = "denied",
    group: str | None = "CO",
    carc: str | None = None,
    rarc: str | None = None,
    pend: str | None = None,
    clause: pl.Expr | str | None = None,
    note: pl.Expr | str | None = None,
) -> pl.DataFrame:
    """Give the open lines where `condition` holds their final status at this step."""
    hit = OPEN & condition.fill_null(False)

    def put(column: str, value) -> pl.Expr:
        value = value if isinstance(value, pl.Expr) else pl.lit(value, dtype=S)
        return pl.when(hit).then(value).otherwise(pl.col(column)).alias(column)

    return w.with_columns(
        put("status", status),
        put("group", group if status == "denied" else None),
        put("carc", carc),
        put("rarc", rarc),
        put("pend_reason", pend),
        put("decided_step", step),
        put("decided_clause", clause if clause is not None else pl.lit(None, S)),
        put("decided_note", note if note is not None else pl.lit(None, S)),
    )


def _trace(
    w: pl.DataFrame,
    step: str,
    clause: pl.Expr | str,
    note: pl.Expr | str | None = None,
    when: pl.Expr | None = None,
) -> pl.DataFrame:
    """Record that `step` applied `clause` to the lines where `when` holds."""
    clause = clause if isinstance(clause, pl.Expr) else pl.lit(clause, S)
    note = note if isinstance(note, pl.Expr) else pl.lit(note, S)
    cond = when.fill_null(False) if when is not None else pl.lit(True)
    entry = pl.when(cond & clause.is_not_null()).then(
        pl.struct(step=pl.lit(step, S), clause=clause.cast(S), note=note.cast(S))
    )
    return w.with_columns(_t=pl.concat_list([pl.col("_t"), entry]).list.drop_nulls())


def _override(action: str) -> pl.Expr:
    return pl.col("override_action") == action


# --- preparation ------------------------------------------------------------------------


def _prepare(claims: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = claims.with_row_index("_row").with_columns(
        rendering=pl.coalesce("rendering_npi", "billing_npi"),
        units_milli=(pl.col("units").cast(pl.Decimal(18, 3)) * 1000).cast(I64),
        received_date=pl.col("received_at").dt.date(),
        principal_dx=pl.col("diagnosis_codes")
        .list.first()
        .str.replace_all(".", "", literal=True)
        .str.to_uppercase(),
        modifiers=pl.col("modifiers").fill_null([]),
        diagnosis_codes=pl.col("diagnosis_codes").fill_null([]),
        emergency=pl.col("emergency").fill_null(False),
    )
    # The span covering the service date; otherwise the member's first span.
    elig = context.eligibility
    spans = (
        w.select("_row", "member_number", "service_date")
        .join(elig, on="member_number", how="inner")
        .filter(
            (pl.col("start") <= pl.col("service_date"))
            & (pl.col("end").is_null() | (pl.col("end") >= pl.col("service_date")))
        )
        .sort("_row", "start")
        .unique("_row", keep="first")
        .select(
            "_row",
            "member_id",
            "family_id",
            "coverage_id",
            "plan_key",
            "coverage_tier",
            "subsidized",
            "start",
            "end",
            "sex",
            "birth_date",
            "name",
        )
    )
    members = (
        elig.sort("start")
        .group_by("member_number", maintain_order=True)
        .agg(
            m_member_id=pl.col("member_id").first(),
            m_family_id=pl.col("family_id").first(),
            first_start=pl.col("start").min(),
            m_name=pl.col("name").first(),
            last_end=pl.col("end").max(),
            any_open=pl.col("end").is_null().any(),
        )
    )
    w = w.join(spans, on="_row", how="left").join(members, on="member_number", how="left")
    w = w.with_columns(
        covered=pl.col("member_id").is_not_null(),
        known_member=pl.col("m_member_id").is_not_null(),
        member_id=pl.coalesce("member_id", "m_member_id"),
        family_id=pl.coalesce("family_id", "m_family_id"),
        member_name=pl.coalesce("name", "m_name"),
    )
    # The plan year of the design containing the service date.
    w = w.join(tables["plan_years"], on="plan_key", how="left").with_columns(
        in_year=(pl.col("py_starts") <= pl.col("service_date"))
        & (pl.col("py_ends") >= pl.col("service_date"))
    )
    w = w.sort("_row", pl.col("in_year").fill_null(False), descending=[False, True]).unique(
        "_row", keep="first", maintain_order=True
    )
    year_cols = [c for c in plan_tables.PLAN_YEARS if c not in ("plan_key", "plan_name")]
    w = w.with_columns(
        [
            pl.when(pl.col("in_year").fill_null(False)).then(pl.col(c)).otherwise(None).alias(c)
            for c in year_cols
        ]
    )
    w = w.sort(
        pl.col("family_id").is_null(),
        "family_id",
        "service_date",
        "received_at",
        "claim_id",
        "line_number",
    ).with_row_index("_order")
    return w.with_columns(
        status=pl.lit(None, S),
        group=pl.lit(None, S),
        carc=pl.lit(None, S),
        rarc=pl.lit(None, S),
        pend_reason=pl.lit(None, S),
        decided_step=pl.lit(None, S),
        decided_clause=pl.lit(None, S),
        decided_note=pl.lit(None, S),
        _t=pl.lit([], pl.List(TRACE_STEP)),
    ).join(
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
    )


# --- the steps ----------------------------------------------------------------------------


def _frequency(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    claims = w.group_by("claim_id").agg(
        pl.col("frequency_code").first(),
        pl.col("replaces_claim_id").first(),
        pl.col("received_at").first(),
    )
    later = claims.filter(
        pl.col("frequency_code").is_in(["7", "8"]) & pl.col("replaces_claim_id").is_not_null()
    )
    gone = (
        later.join(
            claims.select("claim_id", original_received=pl.col("received_at")),
            left_on="replaces_claim_id",
            right_on="claim_id",
        )
        .filter(pl.col("original_received") <= pl.col("received_at"))
        .group_by("replaces_claim_id")
        .agg(
            pl.col("frequency_code").sort_by("received_at").last().alias("by_frequency"),
            pl.col("claim_id").sort_by("received_at").last().alias("by_claim"),
        )
    )
    w = w.join(gone, left_on="claim_id", right_on="replaces_claim_id", how="left")
    w = _settle(
        w,
        pl.col("by_frequency") == "8",
        step="frequency",
        status="voided",
        group=None,
        clause=pl.lit("void (frequency 8) of claim ", S) + pl.col("by_claim"),
    )
    w = _settle(
        w,
        pl.col("by_frequency") == "7",
        step="frequency",
        status="replaced",
        group=None,
        clause=pl.lit("replaced (frequency 7) by claim ", S) + pl.col("by_claim"),
    )
    return _settle(
        w,
        pl.col("frequency_code") == "8",
        step="frequency",
        status="void",
        group=None,
        clause=pl.lit("void of claim ", S) + pl.col("replaces_claim_id"),
    )


def _staff_denials(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    return _settle(
        w,
        _override("deny"),
        step="review",
        carc=pl.col("override_carc"),
        clause=pl.lit("staff review: ", S) + pl.col("override_reason").fill_null(""),
    )


def _intake(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    blank = lambda c: pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")  # noqa: E731
    missing = (
        blank("member_number")
        | blank("billing_npi")
        | pl.col("service_date").is_null()
        | pl.col("charge_cents").is_null()
        | (pl.col("charge_cents") <= 0)
        | (blank("procedure_code") & blank("revenue_code"))
    )
    w = _settle(
        w, missing, step="intake", carc="16", rarc="MA130", clause="intake: required field missing"
    )
    npis = pl.concat([w["billing_npi"], w["rendering"]]).drop_nulls().unique()
    bad_npis = [n for n in npis.to_list() if not is_valid_npi(n)]
    w = _settle(
        w,
        pl.col("billing_npi").is_in(bad_npis) | pl.col("rendering").is_in(bad_npis),
        step="intake",
        carc="16",
        rarc="N290",
        clause="intake: NPI check digit",
    )
    codes = w["principal_dx"].drop_nulls().unique().to_list()
    bad_dx = [c for c in codes if not is_billable(c)]
    w = _settle(
        w,
        pl.col("principal_dx").is_null() | pl.col("principal_dx").is_in(bad_dx),
        step="intake",
        carc="16",
        rarc="M76",
        clause="intake: ICD-10-CM principal diagnosis",
    )
    # Duplicates: the first claim (in order) to carry a line wins; other claims are OA-18.
    key = [
        "member_number",
        "rendering",
        "service_date",
        "procedure_code",
        "_mods",
        "units_milli",
        "charge_cents",
    ]
    w = w.with_columns(_mods=pl.col("modifiers").list.join(","))
    first = (
        w.filter(OPEN)
        .sort("_order")
        .group_by(key, maintain_order=True)
        .agg(_first_claim=pl.col("claim_id").first())
    )
    w = w.join(first, on=key, how="left", nulls_equal=True)
    w = _settle(
        w,
        pl.col("_first_claim").is_not_null() & (pl.col("_first_claim") != pl.col("claim_id")),
        step="intake",
        group="OA",
        carc="18",
        clause=pl.lit("duplicate of claim ", S) + pl.col("_first_claim"),
    )
    late = (pl.col("received_date") - pl.col("service_date")).dt.total_days()
    return _settle(
        w,
        pl.col("covered") & (late > pl.col("timely_filing_days")),
        step="intake",
        carc="29",
        clause=pl.lit("claims.timely_filing_days: ", S) + pl.col("timely_filing_days").cast(S),
    )


def _eligibility(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = _settle(
        w,
        ~pl.col("known_member"),
        step="eligibility",
        carc="31",
        clause=pl.lit("no member ", S) + pl.col("member_number"),
    )
    w = _settle(
        w,
        ~pl.col("covered") & (pl.col("service_date") < pl.col("first_start")),
        step="eligibility",
        carc="26",
        clause=pl.lit("coverage begins ", S) + pl.col("first_start").cast(S),
    )
    w = _settle(
        w, ~pl.col("covered"), step="eligibility", carc="27", clause=pl.lit("coverage ended", S)
    )
    w = _trace(
        w,
        "eligibility",
        pl.lit("coverage ", S)
        + pl.col("plan_key")
        + " "
        + pl.col("coverage_tier")
        + " from "
        + pl.col("start").cast(S),
        when=OPEN,
    )
    grace = context.grace_periods.rename(
        {"starts": "g_starts", "ends": "g_ends", "subsidized": "g_subsidized"}
    )
    hits = (
        w.select("_row", "coverage_id", "service_date", "subsidized", "grace_pend_months")
        .join(grace, on="coverage_id")
        .filter(
            (pl.col("g_starts") <= pl.col("service_date"))
            & (pl.col("g_ends") >= pl.col("service_date"))
            & pl.col("subsidized").fill_null(False)
        )
        .with_columns(
            grace_month=(pl.col("service_date").dt.year() * 12 + pl.col("service_date").dt.month())
            - (pl.col("g_starts").dt.year() * 12 + pl.col("g_starts").dt.month())
            + 1
        )
        .filter(pl.col("grace_pend_months").list.contains(pl.col("grace_month").cast(I64)))
        .select("_row", "grace_month")
        .unique("_row")
    )
    w = w.join(hits, on="_row", how="left")
    return _settle(
        w,
        pl.col("grace_month").is_not_null() & ~_override("approve"),
        step="eligibility",
        status="pended",
        pend="grace_period",
        clause=pl.lit("grace_period.pend_claims_in_grace_months: month ", S)
        + pl.col("grace_month").cast(S),
    )


def _network(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = w.with_columns(
        network_npi=pl.when(pl.col("claim_type") == "institutional")
        .then(pl.col("billing_npi"))
        .otherwise(pl.col("rendering"))
    )
    contracts = (
        w.select("_row", "network_npi", "network_key", "service_date")
        .join(
            context.contracts,
            left_on=["network_npi", "network_key"],
            right_on=["npi", "network_key"],
        )
        .filter(
            (pl.col("start") <= pl.col("service_date"))
            & (pl.col("end").is_null() | (pl.col("end") >= pl.col("service_date")))
        )
        .sort(
            ["_row", "start", "fee_schedule_key"], descending=[False, True, False], nulls_last=True
        )
        .unique("_row", keep="first")
        .select("_row", "fee_schedule_key", contract_start="start")
    )
    w = w.join(contracts, on="_row", how="left").with_columns(
        in_network=pl.col("contract_start").is_not_null()
    )
    tier = (
        pl.when(pl.col("oon_rule") == "any_provider")
        .then(pl.lit("all_providers"))
        .when(pl.col("in_network"))
        .then(pl.lit("in_network"))
        .otherwise(pl.lit("out_of_network"))
    )
    w = w.with_columns(network_tier=tier)
    return _trace(
        w,
        "network",
        pl.when(pl.col("in_network"))
        .then(
            pl.lit("contract in ", S)
            + pl.col("network_key")
            + " from "
            + pl.col("contract_start").cast(S)
            + ", fee schedule "
            + pl.col("fee_schedule_key").fill_null("none")
        )
        .otherwise(pl.lit("no contract in ", S) + pl.col("network_key").fill_null("any network")),
        when=OPEN,
    )


def _category(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    providers = context.providers.select("npi", "taxonomy_code", "name", "specialty")
    w = w.join(
        providers.rename(
            {
                "npi": "rendering",
                "taxonomy_code": "rendering_taxonomy_r",
                "name": "provider_name",
                "specialty": "provider_specialty",
            }
        ),
        on="rendering",
        how="left",
    ).join(
        providers.select(billing_npi="npi", billing_taxonomy="taxonomy_code"),
        on="billing_npi",
        how="left",
    )
    w = w.with_columns(
        rendering_taxonomy=pl.when(pl.col("claim_type") == "institutional")
        .then(pl.col("billing_taxonomy"))
        .otherwise(pl.col("rendering_taxonomy_r")),
        age=_age(),
    )
    classified = classify(
        w.select(
            "_row",
            "procedure_code",
            "modifiers",
            "revenue_code",
            "place_of_service",
            "rendering_taxonomy",
            "diagnosis_codes",
            "drug_tier",
            "claim_type",
            "sex",
        )
    )
    w = w.join(
        classified.select("_row", category="service_category", category_rule="category_rule"),
        on="_row",
    )
    return _trace(
        w,
        "category",
        pl.lit("service category ", S)
        + pl.col("category")
        + " (rule "
        + pl.col("category_rule")
        + ")",
        when=OPEN,
    )


def _age() -> pl.Expr:
    born, day = pl.col("birth_date"), pl.col("service_date")
    before_birthday = (day.dt.month() < born.dt.month()) | (
        (day.dt.month() == born.dt.month()) & (day.dt.day() < born.dt.day())
    )
    return (day.dt.year() - born.dt.year() - before_birthday.cast(pl.Int32)).cast(I64)


def _emergency(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    claim_er = (
        (pl.col("emergency") | (pl.col("category") == "emergency_room")).any().over("claim_id")
    )
    emergency = (
        pl.col("emergency")
        | (pl.col("category") == "emergency_room")
        | ((pl.col("category") == "ambulance") & claim_er)
    )
    w = w.with_columns(is_emergency=emergency)
    w = w.with_columns(
        cost_share_tier=pl.when(
            pl.col("is_emergency") & (pl.col("network_tier") == "out_of_network")
        )
        .then(pl.lit("in_network"))
        .otherwise(pl.col("network_tier"))
    )
    return _trace(
        w,
        "emergency",
        pl.lit("emergency (prudent layperson): in-network cost sharing", S),
        when=OPEN & pl.col("is_emergency"),
    )


def _out_of_network(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    return _settle(
        w,
        (pl.col("network_tier") == "out_of_network")
        & ~pl.col("is_emergency")
        & (pl.col("oon_rule") == "emergency_only"),
        step="out_of_network",
        carc="242",
        clause=pl.lit("rules.out_of_network: emergency_only", S),
    )


def _join_rules(w: pl.DataFrame, tables) -> pl.DataFrame:
    return w.join(tables["category_rules"], on=["plan_key", "plan_year", "category"], how="left")


def _visits(over: list[str]) -> pl.Expr:
    """The 1-based index, in order, of each line's visit (claim, date, category) within `over`."""
    first = pl.col("_order").min().over([*over, "claim_id", "service_date", "category"])
    return first.rank("dense").over(over).cast(I64)


def _referral(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = _join_rules(w, tables)
    needed = (
        OPEN
        & pl.col("referral_needed").fill_null(False)
        & ~pl.col("is_emergency")
        & (pl.col("network_tier") == "in_network")
    )
    w = w.with_columns(referral_needed_now=needed)
    candidates = (
        w.filter(pl.col("referral_needed_now"))
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
        .sort("_row", "valid_from", "ref_number")
        .unique("_row", keep="first")
        .select("_row", "ref_number", "ref_status", ref_visits="visits")
    )
    w = w.join(candidates, on="_row", how="left")
    w = _settle(
        w,
        pl.col("referral_needed_now") & pl.col("ref_number").is_null(),
        step="referral",
        carc="288",
        rarc="N54",
        clause=pl.lit("referrals.required_for: a referral from the PCP is required", S),
    )
    w = _settle(
        w,
        pl.col("referral_needed_now")
        & (pl.col("ref_status") == "requested")
        & ~_override("approve"),
        step="referral",
        status="pended",
        pend="referral_review",
        clause=pl.lit("referral ", S) + pl.col("ref_number") + " awaits review",
    )
    counted = w.filter(OPEN & pl.col("referral_needed_now") & pl.col("ref_number").is_not_null())
    if counted.height:
        start = context.referral_usage.rename(
            {"referral_number": "ref_number", "used": "ref_start"}
        )
        counted = (
            counted.join(start, on="ref_number", how="left")
            .sort("_order")
            .with_columns(ref_visit=_visits(["ref_number"]) + pl.col("ref_start").fill_null(0))
        )
        w = w.join(counted.select("_row", "ref_visit"), on="_row", how="left")
    else:
        w = w.with_columns(ref_visit=pl.lit(None, I64))
    w = _settle(
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
    return _trace(
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


def _prior_authorization(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    needed = OPEN & pl.col("prior_auth_needed").fill_null(False) & ~pl.col("is_emergency")
    w = w.with_columns(auth_needed_now=needed)
    candidates = (
        w.filter(pl.col("auth_needed_now"))
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
        .sort("_row", "pa_from", "auth_number")
        .unique("_row", keep="first")
        .select("_row", "auth_number", "pa_status")
    )
    w = w.join(candidates, on="_row", how="left")
    w = _settle(
        w,
        pl.col("auth_needed_now") & pl.col("auth_number").is_null(),
        step="prior_authorization",
        carc="197",
        clause=pl.lit("prior_authorization: ", S) + pl.col("category"),
    )
    w = _settle(
        w,
        pl.col("auth_needed_now") & (pl.col("pa_status") == "requested") & ~_override("approve"),
        step="prior_authorization",
        status="pended",
        pend="prior_auth_review",
        clause=pl.lit("prior authorization ", S) + pl.col("auth_number") + " awaits review",
    )
    w = w.with_columns(
        auth_used=pl.when(OPEN & pl.col("auth_needed_now")).then(pl.col("auth_number"))
    )
    return _trace(
        w,
        "prior_authorization",
        pl.lit("prior authorization ", S) + pl.col("auth_number"),
        when=OPEN & pl.col("auth_used").is_not_null(),
    )


def _benefit(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = w.with_columns(
        klass=pl.when(pl.col("claim_type") == "professional")
        .then(pl.lit("professional"))
        .otherwise(pl.lit("facility"))
    )
    w = w.join(
        tables["benefits"].rename({"tier": "cost_share_tier"}),
        on=["plan_key", "plan_year", "category", "cost_share_tier", "klass"],
        how="left",
    )
    w = _settle(
        w,
        pl.col("plan_year").is_null() | ~pl.col("has_benefit").fill_null(False),
        step="benefit",
        carc="96",
        rarc="N130",
        clause=pl.lit("no benefit for ", S) + pl.col("category"),
    )
    w = _settle(
        w,
        ~pl.col("covered").fill_null(False),
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
    limited = w.filter(OPEN & pl.col("limit_count").is_not_null())
    if limited.height:
        usage = context.visit_usage.rename({"used": "limit_start"})
        over = ["member_id", "plan_year", "category"]
        limited = (
            limited.join(usage, on=over, how="left")
            .sort("_order")
            .with_columns(_days=(pl.col("units_milli") + 999) // 1000)
        )
        limited = limited.with_columns(
            limit_used=pl.when(pl.col("limit_unit") == "days")
            .then(pl.col("_days").cum_sum().over(over))
            .otherwise(_visits(over))
            + pl.col("limit_start").fill_null(0)
        )
        w = w.join(limited.select("_row", "limit_used"), on="_row", how="left")
    else:
        w = w.with_columns(limit_used=pl.lit(None, I64))
    w = _settle(
        w,
        pl.col("limit_used") > pl.col("limit_count"),
        step="benefit",
        carc="119",
        clause=pl.col("limit_clause") + ": " + pl.col("limit_text"),
    )
    return _trace(w, "benefit", pl.col("benefit_clause"), when=OPEN)


def _pricing(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    schedules = _snapshots(context)
    nc = tables["tiers"].select(
        "plan_key", "plan_year", network_tier="tier", nc_pct="non_contracted_pct"
    )
    w = w.join(nc, on=["plan_key", "plan_year", "network_tier"], how="left")
    open_lines = w.filter(OPEN)
    keys = [
        "procedure_code",
        "_mods",
        "units_milli",
        "place_of_service",
        "claim_type",
        "fee_schedule_key",
        "nc_pct",
        "medicare_locality",
        "in_network",
    ]
    combos = open_lines.select(keys).unique()
    priced = [{**row, **_price(row, schedules)} for row in combos.iter_rows(named=True)]
    schema = {k: w.schema[k] for k in keys} | {"price": I64, "price_detail": S}
    w = w.join(pl.DataFrame(priced, schema=schema), on=keys, how="left", nulls_equal=True)
    qpa = context.qpa.rename(
        {"amount_cents": "qpa_cents", "modifier": "qpa_modifier", "billing_class": "qpa_class"}
    )
    w = w.join(
        qpa.filter(pl.col("qpa_modifier").fill_null("") == "")
        .drop("qpa_modifier")
        .unique(["procedure_code", "qpa_class"]),
        left_on=["procedure_code", "claim_type"],
        right_on=["procedure_code", "qpa_class"],
        how="left",
    )
    emergency_oon = (
        pl.col("is_emergency")
        & ~pl.col("in_network")
        & (pl.col("network_tier") == "out_of_network")
    )
    price = (
        pl.when(_override("approve") & pl.col("override_allowed").is_not_null())
        .then(pl.col("override_allowed"))
        .when(emergency_oon)
        .then(pl.col("qpa_cents"))
        .otherwise(pl.col("price"))
    )
    detail = (
        pl.when(_override("approve") & pl.col("override_allowed").is_not_null())
        .then(pl.lit("priced by staff review: ", S) + pl.col("override_reason").fill_null(""))
        .when(emergency_oon)
        .then(
            pl.lit("recognized amount: lesser of the charge and the QPA ", S)
            + pl.col("qpa_cents").map_elements(format_money, return_dtype=S)
        )
    )
    w = w.with_columns(_price=price, _price_detail=detail.otherwise(pl.col("price_detail")))
    w = _settle(
        w,
        pl.col("_price").is_null(),
        step="pricing",
        status="pended",
        pend="pricing",
        clause=pl.coalesce(pl.col("price_detail"), pl.lit("no allowed amount", S)),
    )
    w = w.with_columns(
        allowed_cents=pl.when(OPEN)
        .then(pl.min_horizontal("charge_cents", "_price"))
        .otherwise(pl.lit(0, I64))
    )
    return _trace(w, "pricing", pl.col("_price_detail"), when=OPEN)


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
    if row["procedure_code"] is None or row["units_milli"] is None or row["units_milli"] <= 0:
        return {"price": None, "price_detail": "no procedure code or units to price"}
    modifiers = tuple(m for m in (row["_mods"] or "").split(",") if m)
    line = ServiceLine(
        procedure_code=row["procedure_code"],
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


def _cost_sharing(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = w.with_columns(paying=OPEN)
    allowed = pl.col("allowed_cents")
    # Copay units: visit (first line of claim, date, category), stay (first of claim,
    # category), day (days up to the max per claim and category), else every line.
    pay = (
        w.filter(pl.col("paying"))
        .sort("_order")
        .with_columns(_days=(pl.col("units_milli") + 999) // 1000)
    )
    pay = pay.with_columns(
        _first_visit=pl.col("_order")
        == pl.col("_order").min().over(["claim_id", "service_date", "category"]),
        _first_stay=pl.col("_order") == pl.col("_order").min().over(["claim_id", "category"]),
        _days_before=pl.col("_days").cum_sum().over(["claim_id", "category"]) - pl.col("_days"),
    )
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
        "_oop_note",
        "_ded_note",
    ]
    w = w.join(pay.select(keep), on="_row", how="left").with_columns(
        status=pl.when(pl.col("paying")).then(pl.lit("paid", S)).otherwise(pl.col("status"))
    )
    for c in ("deductible_cents", "copay_cents", "coinsurance_cents", "member_share_cents"):
        w = w.with_columns(pl.col(c).fill_null(0))
    w = _trace(w, "deductible", pl.col("_ded_note"), when=pl.col("paying") & (pl.col("_ded") > 0))
    return _trace(
        w,
        "out_of_pocket",
        pl.col("_oop_note"),
        when=pl.col("paying") & (pl.col("_oop_take") < pl.col("_share")),
    )


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
    pay = pay.join(members, on=["member_id", "plan_key", "plan_year", "pool", "kind"], how="left")
    pay = pay.join(families, on=["family_id", "plan_key", "plan_year", "pool", "kind"], how="left")
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
    plain = pay.filter(pl.col("pool") != "combined")
    crossed = pay.filter(pl.col("pool") == "combined")
    parts = [accumulate.take(plain.sort("_order"), **args)]
    if crossed.height:
        parts.append(accumulate.sequential(crossed.sort("_order"), **args))
    return pl.concat(parts, how="vertical").sort("_order")


def _deductible(pay: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    tiers = tables["tiers"].rename({"tier": "cost_share_tier"})
    pay = pay.join(tiers, on=["plan_key", "plan_year", "cost_share_tier"], how="left")
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
    note = (
        pl.col("ded_kind_col")
        + " "
        + pl.col("_ded").map_elements(format_money, return_dtype=S)
        + " ("
        + pl.col("tier_clause")
        + ".deductible)"
    )
    return pay.with_columns(_ded_note=note).drop("_m_start", "_f_start", "_ind", "_fam", "kind")


def _out_of_pocket(pay: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    pay = _starts(pay, context, pl.lit("out_of_pocket", S))
    ind, fam = _limits(pay, tables, "oop_ind", "oop_fam", None)
    pay = pay.with_columns(_ind=ind, _fam=fam)
    pay = _apply_limits(pay, "_share", "_oop_take")
    note = (
        pl.lit("out-of-pocket maximum reached: member share capped at ", S)
        + pl.col("_oop_take").map_elements(format_money, return_dtype=S)
        + " ("
        + pl.col("tier_clause")
        + ".out_of_pocket_max)"
    )
    return pay.with_columns(_oop_note=note).drop("_m_start", "_f_start", "_ind", "_fam", "kind")


def _payment(w: pl.DataFrame) -> pl.DataFrame:
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


# --- explanation, outputs ------------------------------------------------------------------


def _explain(w: pl.DataFrame, context: Context) -> pl.DataFrame:
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
        "in_network",
        "override_reason",
        "decided_step",
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
    service = r["category"] or "other"
    status = r["status"]
    if status in ("voided", "replaced", "void"):
        return f"explain.{status}", {}
    if status == "pended":
        return "explain.pended", {"reason": r["pend_reason"]}
    if status == "paid":
        if r["member_share_cents"] == 0 and service in ("preventive", "screening_mammography"):
            return "explain.paid.preventive", {"service": service}
        if r["is_emergency"] and not r["in_network"]:
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
    if r["decided_step"] == "review":
        return "explain.denied.by_review", {"reason": r["override_reason"] or ""}
    carc = r["carc"]
    table = {
        "16": ("explain.denied.invalid_claim", {"reason": RARC_MEANING.get(r["rarc"], "")}),
        "18": ("explain.denied.duplicate", {}),
        "29": ("explain.denied.timely_filing", {"days": str(r["timely_filing_days"])}),
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
                "pcp": r["pcp_name"] or "",
            },
        ),
        "287": (
            "explain.denied.referral_used_up",
            {"referral_number": r["ref_number"] or "", "visits": str(r["ref_visits"])},
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


def _decisions(w: pl.DataFrame) -> pl.DataFrame:
    out = w.sort("_order").with_columns(
        pend_reason=pl.col("pend_reason"),
        network_tier=pl.col("network_tier"),
        cost_share_tier=pl.col("cost_share_tier"),
        emergency=pl.col("is_emergency").fill_null(False),
        referral_number=pl.col("referral_used"),
        prior_auth_number=pl.col("auth_used"),
        trace=pl.concat_list(
            [
                pl.col("_t"),
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
        out = out.with_columns(pl.col(c).fill_null(0).cast(I64))
    return out.select([pl.col(c).cast(t) for c, t in DECISIONS.items()])


def _accumulators(w: pl.DataFrame, context: Context) -> pl.DataFrame:
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


def _visit_usage(w: pl.DataFrame, context: Context) -> pl.DataFrame:
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


def _referral_usage(w: pl.DataFrame, context: Context) -> pl.DataFrame:
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
