"""Steps 0-1: voids and replacements, staff denials, intake checks (docs/adjudication.md §3)."""

from __future__ import annotations

import polars as pl

from openhmo.adjudication.context import Context
from openhmo.adjudication.frame import OPEN, S, settle
from openhmo.network.npi import is_valid_npi, valid_npi
from openhmo.reference.icd10 import is_billable

# An odd 64-bit multiplier (wrapping) that mixes one column's hash into the next.
_MIX = 0x9E3779B97F4A7C15
# Up to this many distinct NPIs are checked one by one (is_valid_npi), more as a column.
FEW_NPIS = 64
# A line repeats an earlier claim's line when all of these are equal (modifiers as the
# list given, in order; docs/adjudication.md §3, step 1).
DUPLICATE_KEY = [
    "member_number",
    "rendering",
    "service_date",
    "procedure_code",
    "modifiers",
    "units_milli",
    "charge_cents",
]


def frequency(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    # Claim-level fields as the claim's first line carries them, read only for the few
    # claims that can be a replacement or void (a line of frequency 7 or 8) and the
    # claims they name: every claim's first line took a sort and a grouping of all lines.
    lines = w.select(
        "claim_id", "line_number", "frequency_code", "replaces_claim_id", "received_at"
    )
    maybe = lines.filter(pl.col("frequency_code").is_in(["7", "8"])).get_column("claim_id")
    if maybe.is_empty():  # (most real-time calls: no replacement, no void)
        return w
    later = _first_lines(lines, maybe).filter(
        pl.col("frequency_code").is_in(["7", "8"]) & pl.col("replaces_claim_id").is_not_null()
    )
    originals = _first_lines(lines, later.get_column("replaces_claim_id"))
    gone = (
        later.join(
            originals.select("claim_id", original_received=pl.col("received_at")),
            left_on="replaces_claim_id",
            right_on="claim_id",
        )
        .filter(pl.col("original_received") < pl.col("received_at"))
        .group_by("replaces_claim_id")
        .agg(
            # The latest received decides; at the same moment, the higher claim id.
            pl.col("frequency_code")
            .sort_by(["received_at", "claim_id"])
            .last()
            .alias("by_frequency"),
            pl.col("claim_id").sort_by(["received_at", "claim_id"]).last().alias("by_claim"),
        )
    )
    w = w.join(
        gone, left_on="claim_id", right_on="replaces_claim_id", how="left", maintain_order="left"
    )
    # A void is a void, whatever later claims say of it.
    w = settle(
        w,
        pl.col("frequency_code") == "8",
        step="frequency",
        status="void",
        group=None,
        clause=pl.lit("void of claim ", S) + pl.col("replaces_claim_id"),
    )
    w = settle(
        w,
        pl.col("by_frequency") == "8",
        step="frequency",
        status="voided",
        group=None,
        clause=pl.lit("void (frequency 8) of claim ", S) + pl.col("by_claim"),
    )
    return settle(
        w,
        pl.col("by_frequency") == "7",
        step="frequency",
        status="replaced",
        group=None,
        clause=pl.lit("replaced (frequency 7) by claim ", S) + pl.col("by_claim"),
    )


def _first_lines(lines: pl.DataFrame, claims: pl.Series) -> pl.DataFrame:
    """The first line (by line number) of each of `claims` that `lines` hold."""
    return (
        lines.filter(pl.col("claim_id").is_in(claims.unique().implode()))
        .sort("claim_id", "line_number")
        .group_by("claim_id", maintain_order=True)
        .agg(
            pl.col("frequency_code").first(),
            pl.col("replaces_claim_id").first(),
            pl.col("received_at").first(),
        )
    )


def intake(w: pl.DataFrame, context: Context, tables) -> pl.DataFrame:
    blank = lambda c: pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")  # noqa: E731
    missing = (
        blank("member_number")
        | blank("billing_npi")
        | pl.col("service_date").is_null()
        | pl.col("charge_cents").is_null()
        | (pl.col("charge_cents") <= 0)
        | (blank("procedure_code") & blank("revenue_code"))
    )
    w = settle(
        w, missing, step="intake", carc="16", rarc="MA130", clause="intake: required field missing"
    )
    npis = pl.concat([w["billing_npi"], w["rendering"]]).drop_nulls().unique()
    # A real-time call's few NPIs are checked one by one; a partition's tens of
    # thousands as a column (the two agree: tests/test_npi.py).
    if npis.len() <= FEW_NPIS:
        bad_npis = pl.Series([n for n in npis.to_list() if not is_valid_npi(n)], dtype=S)
    else:
        bad_npis = npis.to_frame("npi").filter(~valid_npi(pl.col("npi"))).to_series()
    bad_npis = bad_npis.implode()
    w = settle(
        w,
        pl.col("billing_npi").is_in(bad_npis) | pl.col("rendering").is_in(bad_npis),
        step="intake",
        carc="16",
        rarc="N290",
        clause="intake: NPI check digit",
    )
    # is_billable, once per distinct code (a partition repeats a few thousand codes; a
    # claim has one or two): is_in against all 74,000 billable codes built their hash set
    # at every call, 7 ms of a real-time claim's engine call. The codes are normalised
    # (no dots, upper case) once per distinct code too, not line by line.
    principal = pl.col("diagnosis_codes").list.first()
    codes = w.select(principal).to_series().drop_nulls().unique().to_list()
    unbillable = pl.Series([c for c in codes if not is_billable(c)], dtype=S)
    w = settle(
        w,
        principal.is_null() | principal.is_in(unbillable.implode()),
        step="intake",
        carc="16",
        rarc="M76",
        clause="intake: ICD-10-CM principal diagnosis",
    )
    # Duplicates: the first claim (in order) to carry a line wins; other claims are OA-18.
    # (w is in adjudication order: the first open line of a service is the first to carry
    # it.) Only lines whose service hashes like an earlier line's can repeat one: those
    # few are compared in full. Grouping and joining every line back by the seven keys
    # took a tenth of a partition's engine.
    service = pl.struct(DUPLICATE_KEY)
    lines = w.select(*DUPLICATE_KEY, "_row", "claim_id", "_decision").filter(OPEN)
    # (Each column hashed with a seed of its own and the hashes mixed: a third of the
    # time of hashing the struct. Only a filter: the suspects are compared in full.)
    hashes = lines.select(
        pl.reduce(
            lambda a, b: a * _MIX ^ b,
            [pl.col(c).hash(seed) for seed, c in enumerate(DUPLICATE_KEY)],
        )
    ).to_series()
    repeated = hashes.filter(~hashes.is_first_distinct())
    if repeated.len():
        lines = lines.filter(hashes.is_in(repeated.implode()))
        lines = lines.with_columns(_first=service.is_first_distinct())
        again = lines.filter(~pl.col("_first"))
        firsts = lines.filter(pl.col("_first")).select(*DUPLICATE_KEY, _first_claim="claim_id")
        duplicates = (
            again.join(firsts, on=DUPLICATE_KEY, how="inner", nulls_equal=True)
            .filter(pl.col("_first_claim") != pl.col("claim_id"))
            .select("_row", "_first_claim")
        )
        w = w.join(duplicates, on="_row", how="left", maintain_order="left")
        w = settle(
            w,
            pl.col("_first_claim").is_not_null(),
            step="intake",
            group="OA",
            carc="18",
            clause=pl.lit("duplicate of claim ", S) + pl.col("_first_claim"),
        )
    late = (pl.col("received_date") - pl.col("service_date")).dt.total_days()
    return settle(
        w,
        pl.col("covered") & (late > pl.col("timely_filing_days")),
        step="intake",
        carc="29",
        clause=pl.lit("claims.timely_filing_days: ", S) + pl.col("timely_filing_days").cast(S),
    )
