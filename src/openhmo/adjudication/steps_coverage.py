"""Steps 2-5: eligibility, network status, service category, emergency, out of network."""

from __future__ import annotations

import threading

import polars as pl

from openhmo.adjudication.context import Context
from openhmo.adjudication.frame import I64, OPEN, S, first_of_line, pend, settle, trace
from openhmo.categories.classifier import (
    DIAGNOSES_READ,
    classify,
    classify_line,
    diagnoses_read,
)


def eligibility(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = settle(
        w,
        ~pl.col("known_member"),
        step="eligibility",
        carc="31",
        clause=pl.lit("no member ", S) + pl.col("member_number"),
    )
    w = settle(
        w,
        ~pl.col("covered") & (pl.col("service_date") < pl.col("first_start")),
        step="eligibility",
        carc="26",
        clause=pl.lit("coverage begins ", S) + pl.col("first_start").cast(S),
    )
    w = settle(
        w, ~pl.col("covered"), step="eligibility", carc="27", clause=pl.lit("coverage ended", S)
    )
    w = trace(
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
    w = w.join(hits, on="_row", how="left", maintain_order="left")
    return pend(
        w,
        pl.col("grace_month").is_not_null(),
        step="eligibility",
        reason="grace_period",
        clause=pl.lit("grace_period.pend_claims_in_grace_months: month ", S)
        + pl.col("grace_month").cast(S),
    )


def network(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    w = w.with_columns(
        network_npi=pl.when(pl.col("claim_type") == "institutional")
        .then(pl.col("billing_npi"))
        .otherwise(pl.col("rendering"))
    )
    # The contract in force on the date of service; of several, the latest to start
    # (then the first fee schedule by key). The join keeps the lines' order and, within
    # a line, the contracts' in that order, so a line's first row is its contract.
    ordered = context.contracts.sort(
        ["npi", "network_key", "start", "fee_schedule_key"],
        descending=[False, False, True, False],
        nulls_last=True,
        maintain_order=True,
    )
    contracts = (
        w.select("_row", "network_npi", "network_key", "service_date")
        .join(
            ordered,
            left_on=["network_npi", "network_key"],
            right_on=["npi", "network_key"],
            maintain_order="left_right",
        )
        .filter(
            (pl.col("start") <= pl.col("service_date"))
            & (pl.col("end").is_null() | (pl.col("end") >= pl.col("service_date")))
        )
        .filter(first_of_line())
        .select("_row", "fee_schedule_key", contract_start="start")
    )
    w = w.join(contracts, on="_row", how="left", maintain_order="left").with_columns(
        in_network=pl.col("contract_start").is_not_null()
    )
    # The provider's real network status; a plan with one tier for every provider
    # prices and shares costs on `all_providers` (cost_share_tier, pricing_tier).
    tier = (
        pl.when(pl.col("in_network")).then(pl.lit("in_network")).otherwise(pl.lit("out_of_network"))
    )
    any_provider = pl.col("oon_rule") == "any_provider"
    w = w.with_columns(
        network_tier=tier,
        pricing_tier=pl.when(any_provider).then(pl.lit("all_providers")).otherwise(tier),
    )
    return trace(
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


# What the category rules read of a line: its kind. The lists (modifiers, diagnoses) are
# keys as they are, compared element by element: joining them into text first took a
# quarter of the step.
KIND_FEATURES = (
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
KIND_KEY = list(KIND_FEATURES)


# What the category rules read of a kind: the kind, but of its diagnoses only those a
# rule could match (categories.classifier.diagnoses_read).
READ_KEY = [k for k in KIND_KEY if k != "diagnosis_codes"] + list(DIAGNOSES_READ)


class _ClassifiedKinds:
    """The kinds of line classified so far in this process, by what the rules read of
    them (READ_KEY).

    A kind's category is a function of what the rules read of it alone, and classifying
    costs about 20-30 ms a call whatever the number of kinds (the rule table is one large
    expression to plan), a sixth of a real-time claim; so each is classified once and
    then looked up. Kept by READ_KEY, not by the whole kind: nearly every claim's list of
    diagnoses is its own, and a memory keyed by it found almost nothing in real time.
    Bounded: past LIMIT kinds the memory starts again.
    """

    LIMIT = 200_000
    # Up to this many new kinds are classified one by one (classify_line, ~20 µs a kind)
    # rather than as a frame (classify, 20-30 ms a call whatever its size): a real-time
    # claim brings a few new kinds at most.
    ONE_BY_ONE = 64

    def __init__(self) -> None:
        self._known: pl.DataFrame | None = None
        self._lock = threading.Lock()

    def classified(self, kinds: pl.DataFrame, key: list[str]) -> pl.DataFrame:
        """`key` (kinds unique by it), category and category_rule of every kind in `kinds`."""
        read = diagnoses_read(kinds)
        known = self._known
        new = read if known is None else read.join(known, on=READ_KEY, how="anti", nulls_equal=True)
        if known is None or new.height:
            with self._lock:
                # Again from what is known now: another thread may have added or started again.
                known = self._known
                if known is not None and known.height < self.LIMIT:
                    new = read.join(known, on=READ_KEY, how="anti", nulls_equal=True)
                else:
                    known, new = None, read
                found = _classify(new.unique(subset=READ_KEY, keep="first"), self.ONE_BY_ONE)
                known = found if known is None else pl.concat([known, found])
                self._known = known
        return read.join(
            known, on=READ_KEY, how="left", maintain_order="left", nulls_equal=True
        ).select(*key, "category", "category_rule")


def _classify(kinds: pl.DataFrame, one_by_one: int) -> pl.DataFrame:
    """READ_KEY, category and category_rule of each of `kinds`. The two ways give the
    same answers (tests/test_categories.py: test_vectorised_and_row_by_row_agree)."""
    if kinds.height > one_by_one:
        return classify(kinds).select(
            *READ_KEY, category="service_category", category_rule="category_rule"
        )
    answers = [classify_line(**row) for row in kinds.select(KIND_FEATURES).iter_rows(named=True)]
    return kinds.select(READ_KEY).with_columns(
        category=pl.Series([str(category) for category, _ in answers], dtype=pl.String),
        category_rule=pl.Series([rule for _, rule in answers], dtype=pl.String),
    )


_KINDS = _ClassifiedKinds()


def category(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
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
        maintain_order="left",
    ).join(
        providers.select(billing_npi="npi", billing_taxonomy="taxonomy_code"),
        on="billing_npi",
        how="left",
        maintain_order="left",
    )
    w = w.with_columns(
        rendering_taxonomy=pl.when(pl.col("claim_type") == "institutional")
        .then(pl.col("billing_taxonomy"))
        .otherwise(pl.col("rendering_taxonomy_r")),
    )
    # Lines are classified once per kind (a partition's lines are of a few thousand),
    # then joined back.
    kinds = w.select(KIND_KEY).unique(keep="first")
    w = w.join(
        _KINDS.classified(kinds, KIND_KEY),
        on=KIND_KEY,
        how="left",
        maintain_order="left",
        nulls_equal=True,
    )
    return trace(
        w,
        "category",
        pl.lit("service category ", S)
        + pl.col("category")
        + " (rule "
        + pl.col("category_rule")
        + ")",
        when=OPEN,
    )


def emergency(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    # The emergency indicator is the claim's (any of its lines may carry it). The few
    # claims with an indicator or an emergency-room line are found from their lines.
    er_line = pl.col("category") == "emergency_room"
    flagged = w.select("_claim", "emergency", _er=er_line).filter(
        pl.col("emergency") | pl.col("_er")
    )
    indicator = pl.col("_claim").is_in(
        flagged.filter(pl.col("emergency"))["_claim"].unique().implode()
    )
    claim_er = pl.col("_claim").is_in(flagged["_claim"].unique().implode())
    emergency = indicator | er_line | ((pl.col("category") == "ambulance") & claim_er)
    w = w.with_columns(is_emergency=emergency)
    w = w.with_columns(
        emergency_out_of_network=pl.col("is_emergency")
        & (pl.col("pricing_tier") == "out_of_network")
    )
    w = w.with_columns(
        cost_share_tier=pl.when(pl.col("emergency_out_of_network"))
        .then(pl.lit("in_network"))
        .otherwise(pl.col("pricing_tier"))
    )
    return trace(
        w,
        "emergency",
        pl.lit("emergency (prudent layperson): in-network cost sharing", S),
        when=OPEN & pl.col("is_emergency"),
    )


def out_of_network(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    return settle(
        w,
        (pl.col("network_tier") == "out_of_network")
        & ~pl.col("is_emergency")
        & (pl.col("oon_rule") == "emergency_only"),
        step="out_of_network",
        carc="242",
        clause=pl.lit("rules.out_of_network: emergency_only", S),
    )
