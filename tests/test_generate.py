"""The synthetic claim generator (openhmo.batch.generate) and `openhmo generate claims`.

What is checked is what a benchmark or what-if run relies on: the exact schemas, the same
world for the same seed, realistic sizes and mixes (DOMAIN.md §6), members and dates that
agree with eligibility, and a world the real engine adjudicates with every line decided
and every settled line balanced to the cent.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openhmo.adjudication.context import CLAIM_LINES, SCHEMAS
from openhmo.adjudication.decisions import STATUSES
from openhmo.adjudication.engine import adjudicate
from openhmo.batch import generate as gen
from openhmo.batch.generate import generate_world, write_world
from openhmo.batch.snapshot import read_snapshot
from openhmo.cli.main import app
from openhmo.network.npi import is_valid_npi
from openhmo.plans.loader import example_designs, load_design

YEAR = 2026
PATIENT_SHARE = {("PR", "1"), ("PR", "2"), ("PR", "3")}


@pytest.fixture(scope="module")
def world():
    return generate_world(2000, YEAR, seed=11)


@pytest.fixture(scope="module")
def decided(world):
    claims, context = world
    return adjudicate(claims, context)


def per_claim(claims: pl.DataFrame) -> pl.DataFrame:
    return claims.group_by("claim_id").agg(
        pl.col("member_number").first(),
        pl.col("service_date").first(),
        pl.col("claim_type").first(),
        pl.col("frequency_code").first(),
        pl.col("emergency").first(),
        pl.col("referral_number").first(),
        pl.col("prior_auth_number").first(),
        pl.len().alias("lines"),
    )


def member_years(eligibility: pl.DataFrame) -> float:
    first, last = date(YEAR, 1, 1), date(YEAR, 12, 31)
    days = eligibility.select(
        (
            pl.min_horizontal(pl.col("end").fill_null(last), pl.lit(last))
            - pl.max_horizontal("start", pl.lit(first))
        ).dt.total_days()
        + 1
    ).to_series()
    return days.clip(0).sum() / 365


def test_schemas_are_exact(world):
    claims, context = world
    assert dict(claims.schema) == CLAIM_LINES
    for name, schema in SCHEMAS.items():
        assert dict(getattr(context, name).schema) == schema, name
    assert set(context.designs) == {load_design(p).id for p in example_designs()}
    for name in ("eligibility", "providers", "contracts", "fee_schedules", "fee_rates", "qpa"):
        assert getattr(context, name).height > 0, name
    for name in ("referrals", "prior_auths", "pcp", "grace_periods"):
        assert getattr(context, name).height > 0, name


def test_the_same_seed_gives_the_same_world():
    first_claims, first = generate_world(300, YEAR, seed=5)
    again_claims, again = generate_world(300, YEAR, seed=5)
    other_claims, other = generate_world(300, YEAR, seed=6)
    assert first_claims.equals(again_claims)
    for name in SCHEMAS:
        assert getattr(first, name).equals(getattr(again, name)), name
    assert not first_claims.equals(other_claims)
    assert not first.eligibility.equals(other.eligibility)


def test_sizes_are_realistic(world):
    claims, context = world
    claims_per = per_claim(claims)
    assert context.eligibility.height == 2000
    rate = claims_per.height / member_years(context.eligibility)
    assert 10.5 <= rate <= 13.5, f"{rate:.2f} claims per member-year"
    lines_per_claim = claims.height / claims_per.height
    assert 1.3 <= lines_per_claim <= 1.7, lines_per_claim
    assert claims_per["lines"].max() >= 3  # office visit with labs, ER with tests
    # Skewed: the heaviest tenth of members has far more than a tenth of the claims, and
    # some members have none.
    counts = claims_per.group_by("member_number").len()["len"].sort(descending=True)
    assert counts.head(200).sum() / claims_per.height > 0.25
    assert counts.len() < 2000


def test_families_and_plans(world):
    _, context = world
    e = context.eligibility
    assert e["member_number"].n_unique() == e["member_id"].n_unique() == e.height
    families = e.group_by("family_id").agg(
        pl.len().alias("size"),
        pl.col("coverage_id").n_unique().alias("coverages"),
        pl.col("plan_key").n_unique().alias("plans"),
        pl.col("coverage_tier").first(),
        pl.col("member_id").min().alias("subscriber"),
    )
    assert families["size"].min() == 1 and families["size"].max() <= 6
    assert set(families["size"].unique()) >= {1, 2, 3, 4, 5}
    assert (families["coverages"] == 1).all() and (families["plans"] == 1).all()
    assert (families["family_id"] == families["subscriber"]).all()
    assert (families.filter(pl.col("size") == 1)["coverage_tier"] == "self_only").all()
    shares = e["plan_key"].value_counts(normalize=True)
    by_plan = dict(zip(shares["plan_key"], shares["proportion"], strict=True))
    assert set(by_plan) == set(context.designs)
    assert by_plan["openhmo-silver-hmo"] > 0.4  # an HMO mostly
    assert min(by_plan.values()) > 0.02


def test_members_dates_and_providers_agree_with_the_context(world):
    claims, context = world
    e = context.eligibility
    claims_per = per_claim(claims).join(
        e.select("member_number", "start", "end"), on="member_number", how="left"
    )
    assert claims_per["start"].null_count() == 0, "every claim's member is in eligibility"
    before = claims_per.filter(pl.col("service_date") < pl.col("start"))
    assert before.height == 0
    after = claims_per.filter(
        pl.col("end").is_not_null() & (pl.col("service_date") > pl.col("end"))
    )
    # The deliberate claims after coverage ended: a few, and only those (one PCP visit
    # each, or a copy of one).
    assert 0 < after.height < 0.01 * claims_per.height
    assert (after["claim_type"] == "professional").all()
    assert claims_per["service_date"].dt.year().max() == YEAR

    assert not claims.select("claim_id", "line_number").is_duplicated().any()
    numbers = claims.group_by("claim_id").agg(pl.col("line_number").sort())
    assert all(n == list(range(1, len(n) + 1)) for n in numbers["line_number"].to_list())
    npis = set(claims["billing_npi"].unique()) | set(claims["rendering_npi"].drop_nulls())
    assert npis <= set(context.providers["npi"])
    assert all(is_valid_npi(n) for n in context.providers["npi"])
    assert (claims["charge_cents"] > 0).all()
    assert (claims["charge_cents"] % 100 == 0).all()  # whole dollars, as charge masters are

    # In adjudication order: family, service date, received, claim id, line number.
    ordered = claims.join(
        e.select("member_number", "family_id"), on="member_number"
    ).with_row_index()
    resorted = ordered.sort("family_id", "service_date", "received_at", "claim_id", "line_number")
    assert resorted["index"].to_list() == list(range(claims.height))

    # Replacements and voids name an earlier-received claim of the same member.
    copies = claims.filter(pl.col("frequency_code").is_in(["7", "8"]))
    originals = claims.select(
        replaces_claim_id="claim_id", original_member="member_number", original_at="received_at"
    ).unique()
    joined = copies.join(originals, on="replaces_claim_id", how="left")
    assert (joined["original_member"] == joined["member_number"]).all()
    assert (joined["original_at"] < joined["received_at"]).all()


def test_the_mix(world):
    claims, context = world
    claims_per = per_claim(claims)
    n = claims_per.height

    def share(expr: pl.Expr) -> float:
        return claims_per.filter(expr).height / n

    assert 0.01 < share(pl.col("emergency")) < 0.06
    assert 0.15 < share(pl.col("claim_type") == "pharmacy") < 0.40
    assert 0.005 < share(pl.col("claim_type") == "institutional") < 0.05
    assert 0.002 < share(pl.col("frequency_code") == "7") < 0.03
    assert 0.0005 < share(pl.col("frequency_code") == "8") < 0.01
    assert 0.03 < share(pl.col("referral_number").is_not_null()) < 0.2
    assert 0.001 < share(pl.col("prior_auth_number").is_not_null()) < 0.05
    # Out of network: billed by a provider without a contract.
    contracted = set(context.contracts["npi"])
    assert (
        0.01 < claims.filter(~pl.col("billing_npi").is_in(contracted)).height / claims.height < 0.1
    )
    # Referrals: most approved, a few awaiting review; authorizations likewise.
    statuses = context.referrals["status"].value_counts(normalize=True)
    approved = statuses.filter(pl.col("status") == "approved")["proportion"].item()
    assert 0.8 < approved < 1


def test_the_world_adjudicates_and_balances(world, decided):
    claims, _ = world
    d = decided.decisions
    assert d.height == claims.height
    assert set(d["status"].unique()) == set(STATUSES)
    assert d["status"].null_count() == 0
    counts = d["status"].value_counts(normalize=True)
    share = dict(zip(counts["status"], counts["proportion"], strict=True))
    assert share["paid"] > 0.8
    assert 0.01 < share["denied"] < 0.12
    assert 0.01 < share["pended"] < 0.12

    for row in d.filter(pl.col("status").is_in(["paid", "denied"])).iter_rows(named=True):
        adjustments = row["adjustments"]
        member = sum(
            a["amount_cents"] for a in adjustments if (a["group"], a["carc"]) in PATIENT_SHARE
        )
        others = sum(
            a["amount_cents"] for a in adjustments if (a["group"], a["carc"]) not in PATIENT_SHARE
        )
        assert row["member_share_cents"] == member, row["claim_id"]
        assert row["charge_cents"] == row["plan_paid_cents"] + member + others, row["claim_id"]

    denials = {
        f"{a['group']}-{a['carc']}"
        for a in d.filter(pl.col("status") == "denied")["adjustments"].list.first().to_list()
    }
    # Missing referral, out of network (HMO, not an emergency), after coverage ended,
    # duplicates, beyond the referral's visits, no authorization.
    assert {"CO-288", "CO-242", "CO-27", "OA-18", "CO-287", "CO-197"} <= denials, denials
    pends = set(d["pend_reason"].drop_nulls().unique())
    assert {"referral_review", "pricing"} <= pends, pends
    categories = set(d["category"].drop_nulls().unique())
    assert {
        "preventive",
        "pcp_visit",
        "specialist_visit",
        "ob_gyn_visit",
        "screening_mammography",
        "urgent_care",
        "emergency_room",
        "ambulance",
        "inpatient",
        "imaging",
        "advanced_imaging",
        "lab",
        "mental_health_outpatient",
        "rehabilitation",
        "chiropractic",
        "drugs_generic",
        "drugs_preferred_brand",
    } <= categories, categories
    # Emergencies out of network are paid as in network (No Surprises Act).
    oon_er = d.filter(
        pl.col("emergency")
        & (pl.col("network_tier") == "out_of_network")
        & (pl.col("status") == "paid")
    )
    assert oon_er.height > 0
    assert oon_er["cost_share_tier"].is_in(["in_network", "all_providers"]).all()


def test_write_world_and_the_cli(tmp_path, monkeypatch):
    out = tmp_path / "world"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "claims",
            "--members",
            "300",
            "--year",
            str(YEAR),
            "--out",
            str(out),
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "claim lines" in result.output and "out of network" in result.output

    context = read_snapshot(out / "context")
    written = pl.read_parquet(out / "claims.parquet")
    assert pq.read_schema(out / "claims.parquet").names == list(CLAIM_LINES)
    assert dict(written.schema) == CLAIM_LINES
    claims, memory = generate_world(300, YEAR, seed=3)
    assert written.equals(claims)
    for name in SCHEMAS:
        assert getattr(context, name).equals(getattr(memory, name)), name
    assert set(context.designs) == set(memory.designs)

    # Row groups hold whole families, so a reader can stream family partitions.
    monkeypatch.setattr(gen, "ROW_GROUP_LINES", 500)
    summary = write_world(600, YEAR, tmp_path / "grouped", seed=3, chunk_members=200)
    assert summary.members == 600 and summary.lines > 0
    parquet = pq.ParquetFile(tmp_path / "grouped" / "claims.parquet")
    assert parquet.metadata.num_row_groups > 3
    assert b"family" in parquet.schema_arrow.metadata[b"openhmo.order"]
    seen: set[str] = set()
    for group in range(parquet.metadata.num_row_groups):
        numbers = pl.from_arrow(parquet.read_row_group(group, columns=["member_number"]))
        families = set(numbers.to_series().str.slice(0, 12).unique())
        assert not families & seen, f"row group {group} continues a family"
        seen |= families
